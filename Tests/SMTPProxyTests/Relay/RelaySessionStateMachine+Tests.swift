import NIOCore
import SMTPCore
import SMTPProxy
import Testing

@Suite struct RelaySessionStateMachineTests {
    typealias H = RelayHarness

    @Test func relaysTheUpstreamGreetingOnceConnected() {
        var h = RelayHarness()
        #expect(h.connects == 1)
        h.apply(h.machine.receiveUpstreamConnected())
        h.upstream("220 mx.example ESMTP\r\n")
        #expect(h.takeClient() == "220 mx.example ESMTP\r\n")
    }

    @Test func answersAnUnreachableUpstreamWith421InsteadOfAGreeting() {
        var h = RelayHarness()
        h.apply(h.machine.receiveUpstreamConnectFailed(reason: "connection refused"))
        #expect(h.takeClient().hasPrefix("421 4.4.1 "))
        #expect(h.clientClosed)
    }

    @Test func refusesACommandBeforeTheGreetingAsASynchronizationError() {
        var h = RelayHarness()
        h.apply(h.machine.receiveUpstreamConnected())
        h.client("EHLO early\r\n")
        #expect(h.takeClient() == "554 5.5.0 Error: SMTP protocol synchronization\r\n")
        #expect(h.clientClosed && h.upstreamClosed)
        #expect(h.anomalies.contains("command_before_greeting"))
    }

    @Test func reconcilesEHLOWithTheUpstreamsExtensions() {
        var configuration = RelayConfiguration()
        configuration.limits.maxMessageOctets = 10_000_000
        configuration.upstreamTLS = .off
        var h = H.greeted(configuration: configuration)
        h.client("EHLO client.example\r\n")
        #expect(h.takeUpstream() == "EHLO client.example\r\n")
        h.upstream("250-mx.example\r\n250-PIPELINING\r\n250-SIZE 5000000\r\n250-XCLIENT NAME ADDR\r\n250-XFORWARD NAME\r\n250-STARTTLS\r\n250-BINARYMIME\r\n250 SMTPUTF8\r\n")
        #expect(h.takeClient() == "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 5000000\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n")
    }

    @Test(arguments: [
        (ClientTLSMode.offer, "SIZE 0", true, "SIZE 10240000"),
        (ClientTLSMode.off, "SIZE 20000000", false, "SIZE 10240000"),
        (ClientTLSMode.require, "SIZE 1000", true, "SIZE 1000"),
    ])
    func offersSTARTTLSPerClientTLSAndTheSmallerSize(mode: ClientTLSMode, upstreamSize: String, offersSTARTTLS: Bool, size: String) {
        var configuration = RelayConfiguration()
        configuration.clientTLS = mode
        let reply = SMTPReply(code: 250, lines: ["mx", "PIPELINING", upstreamSize, "AUTH PLAIN"])
        let lines = EHLOReconciler.clientLines(upstream: reply, configuration: configuration, clientLegIsTLS: false)
        #expect(lines.contains("STARTTLS") == offersSTARTTLS)
        #expect(lines.contains(size))
        #expect(lines.contains("AUTH PLAIN") == (mode != .require))
    }

    @Test func anUpstreamReplyThatCannotAnswerItsCommandIsRecordedAsACaptureReaderWould() {
        // A 250 to DATA (only 354 or a refusal can answer it, RFC 5321 §4.3.2): relayed as it came,
        // and the record says what pcap mode says of the same exchange.
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        h.client("DATA\r\n")
        _ = h.takeUpstream()
        #expect(!h.anomalies.contains("unexpected_reply"))
        h.upstream("250 2.0.0 Ok\r\n")
        #expect(h.anomalies.contains("unexpected_reply"))
    }

    @Test func keepsRepliesInCommandOrderWhateverTheirOrigin() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nNOOP\r\nRCPT TO:<c@example.org>\r\n")
        // NOOP is answered by the proxy, but only after the replies owed before it.
        #expect(h.takeClient() == "")
        #expect(h.takeUpstream() == "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n")
        h.upstream("250 2.1.0 Ok\r\n")
        #expect(h.takeClient() == "250 2.1.0 Ok\r\n")
        h.upstream("550 5.1.1 unknown\r\n250 2.1.5 Ok\r\n")
        #expect(h.takeClient() == "550 5.1.1 unknown\r\n250 2.0.0 Ok\r\n250 2.1.5 Ok\r\n")
    }

    @Test func answersDATAWith554WhenNoRecipientWasAcceptedAndNeverSendsIt() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        h.upstream("250 Ok\r\n550 5.1.1 no\r\n")
        #expect(h.takeClient() == "250 Ok\r\n550 5.1.1 no\r\n554 5.5.1 Error: no valid recipients\r\n")
        #expect(!h.takeUpstream().contains("DATA"))
    }

    @Test func streamsContentDotStuffedAndEndsWithTheUpstreamsReply() {
        var h = H.inData()
        h.client("Subject: x\r\n\r\n..foo\r\nbar\r\n.\r\n")
        #expect(h.takeUpstream() == "Subject: x\r\n\r\n..foo\r\nbar\r\n.\r\n")
        h.upstream("250 2.0.0 queued as 4F2\r\n")
        #expect(h.takeClient() == "250 2.0.0 queued as 4F2\r\n")
    }

    @Test(arguments: [
        "\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r", "\r.\n", "\n.\r", "\r.\r\n", "\r\n\0.\r\n", "\r\n.\0\r\n",
    ])
    func abortsTheUpstreamTransactionOnSmugglingSequences(sequence: String) {
        let smuggled = "MAIL FROM:<s@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nevil\r\n"
        let input = "Subject: ok\r\n\r\nbody" + sequence + smuggled + ".\r\nNOOP\r\n"
        for dripped in [false, true] {
            var h = H.inData()
            if dripped { h.clientDripped(input) } else { h.client(input) }
            let upstream = h.takeUpstream()
            #expect(h.upstreamClosed, "the upstream leg is closed before any terminating dot")
            #expect(!upstream.contains("\r\n.\r\n"))
            #expect(!upstream.contains("MAIL FROM:<s@x>"))
            #expect(h.takeClient() == "550 5.5.2 " + (sequence.contains("\0") ? "Error: NUL character in message content" : sequence.hasPrefix("\r\n") || sequence.hasPrefix("\n") ? "Error: bare <LF> received" : "Error: bare <CR> received") + "\r\n250 2.0.0 Ok\r\n")
        }
    }

    @Test func contentBeforeThe354IsASynchronizationError() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n")
        h.upstream("250 Ok\r\n250 Ok\r\n")
        _ = h.takeClient()
        h.client("DATA\r\nSubject: early\r\n")
        h.upstream("354 go\r\n")
        #expect(h.takeClient() == "554 5.5.0 Error: SMTP protocol synchronization\r\n")
        #expect(h.clientClosed && h.upstreamClosed)
    }

    @Test func refusesAnOverlongCommandLineAndStaysInSync() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("NOOP " + String(repeating: "x", count: 2041) + "\r\n")
        #expect(h.takeClient() == "250 2.0.0 Ok\r\n", "2048 octets with CRLF is still allowed")
        h.client("NOOP " + String(repeating: "x", count: 2042) + "\r\nNOOP\r\n")
        #expect(h.takeClient() == "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n")
    }

    @Test(arguments: [
        ("SIZE=abc", "501 5.5.4 Bad SIZE parameter syntax\r\n"),
        ("SIZE=99999999999999999999", "552 5.3.4 Message size exceeds fixed limit\r\n"),
        ("SIZE=10240001", "552 5.3.4 Message size exceeds fixed limit\r\n"),
    ])
    func checksTheDeclaredSizeAtMAIL(parameter: String, reply: String) {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@x> \(parameter)\r\n")
        #expect(h.takeClient() == reply)
        #expect(h.takeUpstream() == "")
    }

    @Test func refusesContentOverTheSizeLimitAfterTheEndOfData() {
        var configuration = RelayConfiguration()
        configuration.limits.maxMessageOctets = 100
        var h = H.inData(configuration: configuration)
        h.client(String(repeating: "0123456789\r\n", count: 20) + ".\r\n")
        #expect(h.upstreamClosed)
        #expect(h.takeClient() == "552 5.3.4 Error: message file too big\r\n")
    }

    @Test func relaysRecipientsUpToTheLimitThenAnswers452() {
        var configuration = RelayConfiguration()
        configuration.limits.maxRecipients = 3
        var h = H.greeted(configuration: configuration, upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@x>\r\n" + (1...4).map { "RCPT TO:<r\($0)@y>\r\n" }.joined())
        #expect(h.takeUpstream().components(separatedBy: "RCPT").count == 4)
        h.upstream("250 Ok\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n")
        #expect(h.takeClient().hasSuffix("452 4.5.3 Error: too many recipients\r\n"))
    }

    @Test func turnsBDATIntoDATAUpstream() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n")
        h.upstream("250 Ok\r\n250 Ok\r\n")
        _ = h.takeClient()
        _ = h.takeUpstream()
        h.client("BDAT 5\r\n.a\r\nbBDAT 3 LAST\r\nc\r\n")
        #expect(h.takeUpstream() == "DATA\r\n")
        h.upstream("354 go\r\n")
        #expect(h.takeUpstream() == "..a\r\nbc\r\n.\r\n")
        h.upstream("250 2.0.0 queued\r\n")
        #expect(h.takeClient() == "250 2.0.0 5 octets received\r\n250 2.0.0 queued\r\n")
    }

    @Test func answersAnUnsolicitedUpstreamReplyWith421AndCloses() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.upstream("250 surprise\r\n")
        #expect(h.takeClient().hasPrefix("421 4.3.0 "))
        #expect(h.clientClosed && h.upstreamClosed)
        #expect(h.anomalies.contains("reply_without_command"))
    }

    @Test func answersAMixedCodeMultiLineReplyAsAnUpstreamProtocolError() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@x>\r\n")
        h.upstream("250-ok\r\n550 no\r\n")
        #expect(h.takeClient().hasPrefix("421 4.3.0 "))
    }

    @Test func answersAnUpstreamCloseWithPendingReplies421() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@x>\r\n")
        h.apply(h.machine.receiveUpstreamClosed())
        #expect(h.takeClient().hasPrefix("421 4.4.2 "))
        #expect(h.clientClosed)
    }

    @Test func reconnectsAfterAnAbortedTransactionForTheNextOne() {
        var h = H.inData()
        h.client("a\nb\r\n.\r\n")
        #expect(h.takeClient().hasPrefix("550 5.5.2"))
        h.client("MAIL FROM:<a@x>\r\n")
        #expect(h.connects == 2)
        h.apply(h.machine.receiveUpstreamConnected())
        h.upstream("220 again\r\n")
        #expect(h.takeUpstream().hasSuffix("EHLO client.example\r\n"))
        h.upstream(H.plainEHLO)
        #expect(h.takeUpstream() == "MAIL FROM:<a@x>\r\n")
        h.upstream("250 Ok\r\n")
        #expect(h.takeClient() == "250 Ok\r\n")
    }

    @Test func cancelsAUTHOnStarAndRefusesOverlongResponses() {
        var h = H.greeted(upstreamEHLO: "250-upstream\r\n250 AUTH PLAIN LOGIN\r\n")
        h.client("AUTH LOGIN\r\n")
        h.upstream("334 VXNlcm5hbWU6\r\n")
        #expect(h.takeClient() == "334 VXNlcm5hbWU6\r\n")
        h.client("*\r\n")
        #expect(h.takeClient() == "501 5.7.0 Authentication aborted\r\n")
        h.upstream("501 cancelled\r\n")
        #expect(h.takeClient() == "")
        h.client("AUTH LOGIN\r\n")
        h.upstream("334 VXNlcm5hbWU6\r\n")
        _ = h.takeClient()
        h.client(String(repeating: "A", count: 12289) + "\r\n")
        #expect(h.takeClient() == "500 5.5.6 Authentication exchange line is too long\r\n")
        #expect(!h.takeUpstream().contains("AAAA"))
    }

    @Test func recordsTheUserButNeverTheSecret() {
        var h = H.greeted(upstreamEHLO: "250-upstream\r\n250 AUTH PLAIN\r\n")
        // "\0alice\0secret"
        h.client("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
        h.upstream("235 2.7.0 ok\r\n")
        let recorded = h.events.map { "\($0)" }.joined(separator: "\n")
        #expect(recorded.contains("alice"))
        #expect(!recorded.contains("AGFsaWNlAHNlY3JldA"))
    }

    @Test func discardsPlaintextPipelinedAfterSTARTTLS() {
        var configuration = RelayConfiguration()
        configuration.clientTLS = .offer
        var h = H.greeted(configuration: configuration, upstreamEHLO: H.plainEHLO)
        h.client("STARTTLS\r\nRSET\r\n")
        #expect(h.takeClient() == "220 2.0.0 Ready to start TLS\r\n")
        #expect(h.clientTLSStarted)
        #expect(h.anomalies.contains("plaintext_after_starttls"))
        h.apply(h.machine.receiveClientTLSEstablished())
        h.client("MAIL FROM:<a@x>\r\n")
        #expect(h.takeClient() == "503 5.5.1 Error: send HELO/EHLO first\r\n")
        h.client("STARTTLS\r\n")
        #expect(h.takeClient() == "554 5.5.1 Error: TLS already active\r\n")
    }

    @Test func requireRefusesMAILBeforeTLS() {
        var configuration = RelayConfiguration()
        configuration.clientTLS = .require
        var h = H.greeted(configuration: configuration, upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@x>\r\n")
        #expect(h.takeClient() == "530 5.7.0 Must issue a STARTTLS command first\r\n")
    }

    @Test func upstreamTLSRequireWithoutSTARTTLSAnswers451() {
        var configuration = RelayConfiguration()
        configuration.upstreamTLS = .require
        var h = H.greeted(configuration: configuration, upstreamEHLO: H.plainEHLO)
        #expect(h.anomalies.contains("starttls_stripped"))
        h.client("MAIL FROM:<a@x>\r\n")
        #expect(h.takeClient().hasPrefix("451 4.7.5 "))
        #expect(h.takeUpstream() == "")
    }

    @Test func negotiatesSTARTTLSUpstreamBeforeAnsweringEHLO() {
        var h = H.greeted()
        h.client("EHLO c\r\n")
        h.upstream("250-up\r\n250 STARTTLS\r\n")
        #expect(h.takeUpstream() == "EHLO c\r\nSTARTTLS\r\n")
        h.upstream("220 go\r\n")
        #expect(h.upstreamTLSStarted)
        h.apply(h.machine.receiveUpstreamTLSEstablished())
        #expect(h.takeUpstream() == "EHLO c\r\n")
        h.upstream("250-up\r\n250 8BITMIME\r\n")
        #expect(h.takeClient() == "250-up\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 CHUNKING\r\n")
    }

    @Test func closesAfterTooManyErrors() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client(String(repeating: "BOGUS\r\n", count: 21))
        let replies = h.takeClient().split(separator: "\r\n")
        #expect(replies.count == 21)
        #expect(replies.last?.hasPrefix("421 4.7.0") == true)
        #expect(h.clientClosed)
    }

    @Test func neverRelaysXCLIENTFromAClient() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("XCLIENT ADDR=10.0.0.1\r\n")
        #expect(h.takeClient().hasPrefix("502 "))
        #expect(h.takeUpstream() == "")
    }

    @Test func aPolicyRejectionIsAnsweredByTheProxyAndNeverSentUpstream() {
        struct RejectMail: SessionPolicy {
            var evaluatesMessages: Bool { false }
            func decide(at stage: PolicyStage, facts: PolicyFacts) -> PolicyDecision {
                stage == .mail ? PolicyDecision(action: .reject(PolicyReply(code: 550, enhanced: .init(statusClass: 5, subject: 7, detail: 1), text: "no\r\nMAIL FROM:<x>"))) : .continue
            }
        }
        var h = H.greeted(policy: RejectMail(), upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@x>\r\n")
        #expect(h.takeClient() == "550 5.7.1 no  MAIL FROM:<x>\r\n")
        #expect(h.takeUpstream() == "")
    }

    @Test func timesOutWith421() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        #expect(h.machine.clientTimeout == 300)
        h.apply(h.machine.receiveTimeout(.client))
        #expect(h.takeClient().hasPrefix("421 4.4.2 "))
        #expect(h.clientClosed)
    }
}
