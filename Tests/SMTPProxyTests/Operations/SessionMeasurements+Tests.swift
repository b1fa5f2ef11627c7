import SMTPCore
import SMTPTranscript
import Testing

@testable import SMTPProxy

/// What a finished session's record adds to the metrics.
@Suite struct SessionMeasurementsTests {
    typealias Event = SessionRecord.Event

    /// A pipelined session: greeting, EHLO, MAIL+RCPT+DATA, content, QUIT (times in µs).
    static let events: [Event] = [
        Event(t: 100, from: .server, to: .proxy, text: "220 upstream ESMTP"),
        Event(t: 150, from: .proxy, to: .client, text: "220 upstream ESMTP"),
        Event(t: 200, from: .client, to: .proxy, text: "EHLO client.test"),
        Event(t: 210, from: .proxy, to: .server, text: "EHLO client.test"),
        Event(t: 310, from: .server, to: .proxy, text: "250-upstream"),
        Event(t: 310, from: .server, to: .proxy, text: "250 PIPELINING"),
        Event(t: 320, from: .proxy, to: .client, text: "250-upstream"),
        Event(t: 320, from: .proxy, to: .client, text: "250 PIPELINING"),
        Event(t: 400, from: .proxy, to: .server, text: "MAIL FROM:<a@client.test>"),
        Event(t: 400, from: .proxy, to: .server, text: "RCPT TO:<b@upstream.test>"),
        Event(t: 400, from: .proxy, to: .server, text: "DATA"),
        Event(t: 500, from: .server, to: .proxy, text: "250 2.1.0 Ok"),
        Event(t: 600, from: .server, to: .proxy, text: "550 5.1.1 no"),
        Event(t: 700, from: .server, to: .proxy, text: "354 go ahead"),
        Event(t: 800, from: .proxy, to: .server, text: "[message content: 10 octets]", octets: 10),
        Event(t: 900, from: .proxy, to: .server, text: "."),
        Event(t: 1900, from: .server, to: .proxy, text: "250 2.0.0 queued"),
        Event(t: 2000, from: .proxy, to: .server, text: "[TLS established]"),
        Event(t: 2100, from: .proxy, to: .server, text: "QUIT"),
        Event(t: 2150, from: .server, to: .proxy, text: "221 bye"),
        Event(t: 2160, from: .proxy, to: .client, text: "221 bye"),
    ]

    @Test func upstreamRepliesArePairedWithCommandsInOrder() {
        let (_, latencies) = SessionMeasurements.replyMeasurements(Self.events)
        // EHLO 100, MAIL 100, RCPT 200, DATA 300, end of data (from ".") 1000, QUIT 50; no greeting.
        #expect(latencies == [100, 100, 200, 300, 1000, 50])
    }

    @Test func contentWithoutAnEndOfDataLineStartsTheClock() {
        let events = [
            Event(t: 0, from: .proxy, to: .server, text: "DATA"),
            Event(t: 10, from: .server, to: .proxy, text: "354 go"),
            Event(t: 20, from: .proxy, to: .server, text: "[message content: 5 octets]", octets: 5),
            Event(t: 70, from: .server, to: .proxy, text: "250 ok"),
        ]
        #expect(SessionMeasurements.replyMeasurements(events).latencies == [10, 50])
    }

    @Test func aBDATChunkIsAnsweredOnceAndRedactedSASLCounts() {
        let events = [
            Event(t: 0, from: .proxy, to: .server, text: "AUTH PLAIN"),
            Event(t: 5, from: .server, to: .proxy, text: "334 [redacted]"),
            Event(t: 10, from: .proxy, to: .server, text: "[redacted]"),
            Event(t: 30, from: .server, to: .proxy, text: "235 ok"),
            Event(t: 40, from: .proxy, to: .server, text: "BDAT 5 LAST"),
            Event(t: 40, from: .proxy, to: .server, text: "[message content: 5 octets]", octets: 5),
            Event(t: 90, from: .server, to: .proxy, text: "250 ok"),
        ]
        #expect(SessionMeasurements.replyMeasurements(events).latencies == [5, 20, 50])
    }

    @Test func repliesAreCountedByClassAndLegOnceEach() {
        let (replies, _) = SessionMeasurements.replyMeasurements(Self.events)
        typealias Class = SessionMeasurements.ReplyClass
        #expect(replies[Class(leg: "upstream", codeClass: "2xx")] == 5)
        #expect(replies[Class(leg: "upstream", codeClass: "3xx")] == 1)
        #expect(replies[Class(leg: "upstream", codeClass: "5xx")] == 1)
        #expect(replies[Class(leg: "client", codeClass: "2xx")] == 3)
        #expect(replies[Class(leg: "client", codeClass: "4xx")] == nil)
    }

    @Test(arguments: [("250 ok", "2xx"), ("250", "2xx"), ("421 4.7.0 bye", "4xx"), ("599 x", "5xx"), ("354 go", "3xx")])
    func finalReplyLinesHaveAClass(line: String, expected: String) {
        #expect(SessionMeasurements.finalReplyClass(line) == expected)
    }

    @Test(arguments: ["250-continued", "EHLO x", "", "25", "150 x", "650 x", "2a0 x", "[message content: 1 octets]"])
    func otherLinesHaveNone(line: String) {
        #expect(SessionMeasurements.finalReplyClass(line) == nil)
    }

    @Test func outcomesBytesAndVerdictsComeFromTheRecord() {
        var transaction = SessionRecord.Transaction(mailFrom: nil, rcptTo: [], data: nil, message: nil, rules: [], outcome: .delivered)
        transaction.rules = [
            SessionRecord.RuleVerdict(rule: "a", file: "f", stage: "mail", action: "reject", enforced: true),
            SessionRecord.RuleVerdict(rule: "b", file: "f", stage: "mail", action: "reject", enforced: true),
            SessionRecord.RuleVerdict(rule: "c", file: "f", stage: "message", action: "bcc", enforced: false),
        ]
        var rejected = transaction
        rejected.rules = []
        rejected.outcome = .rejected
        var record = SessionRecord(sessionID: "x", source: .proxy, start: Timestamp(seconds: 0, microseconds: 0), transactions: [transaction, rejected], events: Self.events, outcome: .completed, bytes: SessionRecord.ByteCounts(client: 123, server: 45))
        record.rules = [SessionRecord.RuleVerdict(rule: "d", file: "f", stage: "connect", action: "tag", enforced: true)]
        let measurements = SessionMeasurements(record: record)
        #expect(measurements.sessionOutcome == "completed")
        #expect(measurements.transactionOutcomes == ["delivered", "rejected"])
        #expect(measurements.clientOctets == 123 && measurements.serverOctets == 45)
        typealias Verdict = SessionMeasurements.Verdict
        #expect(measurements.verdicts == [Verdict(action: "reject", enforced: true): 2, Verdict(action: "bcc", enforced: false): 1, Verdict(action: "tag", enforced: true): 1])
        #expect(measurements.upstreamReplyLatencies.count == 6)
    }
}
