import SMTPTranscript
import Testing

@testable import SMTPReport

@Suite struct ReplyPairingTests {
    typealias F = SessionFixtures

    @Test func pairsPipelinedCommandsWithRepliesInOrder() {
        let pairs = ReplyPairing.pair(F.partialDelivery.events, expectsGreeting: true)
        let summary = pairs.map { "\($0.command ?? "-") => \($0.reply?.code ?? 0)" }
        #expect(summary == [
            "- => 220",
            "EHLO client.example.com => 250",
            "MAIL FROM:<alice@example.com> => 250",
            "RCPT TO:<bob@example.net> => 250",
            "RCPT TO:<nobody@example.net> => 550",
            "RCPT TO:<carol@example.net> => 250",
            "DATA => 354",
            "<CRLF>.<CRLF> after 2048 octets => 250",
            "QUIT => 221",
        ])
        #expect(pairs[4].reply?.enhanced == "5.1.1")
        #expect(pairs[4].wait == 12_000)
        #expect(pairs[7].stage == .endOfData)
        #expect(pairs[1].reply?.text == "mx.example.net\nPIPELINING\nSIZE 10240000\nSTARTTLS\n8BITMIME")
    }

    @Test func joinsMultiLineRepliesAndLiftsTheEnhancedCode() {
        // As the record keeps a reply: the first line's enhanced code is lifted out, the text of
        // the lines after it stays as the server sent it.
        let pairs = ReplyPairing.pair(F.blocklistedAtConnect.events, expectsGreeting: true)
        #expect(pairs[0].stage == .connect)
        #expect(pairs[0].reply == SessionRecord.Reply(
            code: 554, enhanced: "5.7.1",
            text: "Service unavailable; Client host [203.0.113.7] blocked using zen.spamhaus.org;\n5.7.1 https://www.spamhaus.org/query/ip/203.0.113.7"
        ))
    }

    @Test func aSASLResponseAfterA334IsPairedAsAUTHWhateverItSays() {
        let events = [
            F.c(1, "AUTH PLAIN"), F.s(2, "334 "), F.c(3, "*"), F.s(4, "501 5.7.0 Authentication aborted"),
            F.c(5, "NOOP"), F.s(6, "250 Ok"),
        ]
        let pairs = ReplyPairing.pair(events, expectsGreeting: false)
        #expect(pairs.map(\.stage) == [.auth, .auth, .other])
        #expect(pairs.map { $0.reply?.code } == [334, 501, 250])
    }

    @Test func anInvalidCommandIsStagedByItsVerb() {
        let events = [F.c(1, "MAIL FROM:<unterminated"), F.s(2, "501 5.1.7 Bad sender address syntax")]
        let pairs = ReplyPairing.pair(events, expectsGreeting: false)
        #expect(pairs.map(\.stage) == [.mail])
    }

    @Test func answersAuthContinuationLines() {
        let events = [
            F.s(0, "220 mx"), F.c(1, "AUTH LOGIN"), F.s(2, "334 VXNlcm5hbWU6"), F.c(3, "[redacted]"),
            F.s(4, "334 UGFzc3dvcmQ6"), F.c(5, "[redacted]"), F.s(6, "535 5.7.8 Error: authentication failed"),
            F.c(7, "QUIT"), F.s(8, "221 Bye"),
        ]
        let pairs = ReplyPairing.pair(events, expectsGreeting: true)
        #expect(pairs.map(\.stage) == [.connect, .auth, .auth, .auth, .quit])
        #expect(pairs.map { $0.reply?.code } == [220, 334, 334, 535, 221])
    }

    @Test func bdatContentAwaitsNoReplyOfItsOwn() {
        let events = [
            F.c(1, "BDAT 100 LAST"), F.c(1, "[content]", octets: 100), F.s(2, "250 2.0.0 Ok"),
            F.c(3, "QUIT"), F.s(4, "221 Bye"),
        ]
        let pairs = ReplyPairing.pair(events, expectsGreeting: false)
        #expect(pairs.map { $0.command ?? "-" } == ["BDAT 100 LAST", "QUIT"])
        #expect(pairs.map { $0.reply?.code } == [250, 221])
    }

    @Test func contentSentBeforeARefusedDataAwaitsNothing() {
        // The client streamed content without waiting for 354; the server refused DATA.
        let events = [
            F.c(1, "DATA"), F.c(1, "[content]", octets: 10), F.c(1, "QUIT"),
            F.s(2, "554 5.5.1 Error: no valid recipients"), F.s(2, "221 Bye"),
        ]
        let pairs = ReplyPairing.pair(events, expectsGreeting: false)
        #expect(pairs.map { $0.command ?? "-" } == ["DATA", "QUIT"])
        #expect(pairs.map { $0.reply?.code } == [554, 221])
    }

    @Test func aSeparateDotLineMovesTheEndOfData() {
        let events = [
            F.c(1, "DATA"), F.s(2, "354 go"), F.c(3, "[content]", octets: 10), F.c(4, "."), F.s(5, "250 Ok"),
        ]
        let pairs = ReplyPairing.pair(events, expectsGreeting: false)
        #expect(pairs.count == 2)
        #expect(pairs[1].sentAt == 4_000_000)
        #expect(pairs[1].wait == 1_000_000)
    }

    @Test func recordsUnsolicitedRepliesAndUnansweredCommands() {
        let pairs = ReplyPairing.pair(F.serverTimeout.events, expectsGreeting: true)
        let last = pairs[pairs.count - 1]
        #expect(last.isUnsolicited)
        #expect(last.reply?.code == 421)
        #expect(last.stage == .data)
        #expect(last.wait == nil)

        let unanswered = ReplyPairing.pair([F.c(1, "RCPT TO:<a@b>")], expectsGreeting: false)
        #expect(unanswered.count == 1)
        #expect(unanswered[0].reply == nil)
    }

    @Test func proxyModePairsTheServerLegOnly() {
        let events = [
            SessionRecord.Event(t: 0, from: .proxy, to: .client, text: "220 proxy"),
            SessionRecord.Event(t: 1, from: .server, to: .proxy, text: "220 upstream"),
            SessionRecord.Event(t: 2, from: .client, to: .proxy, text: "EHLO c"),
            SessionRecord.Event(t: 3, from: .proxy, to: .server, text: "EHLO c"),
            SessionRecord.Event(t: 9, from: .server, to: .proxy, text: "250 upstream"),
            SessionRecord.Event(t: 10, from: .proxy, to: .client, text: "250 proxy"),
        ]
        let pairs = ReplyPairing.pair(events, expectsGreeting: true)
        #expect(pairs.map { $0.reply?.text } == ["upstream", "upstream"])
        #expect(pairs[1].wait == 6)
    }
}
