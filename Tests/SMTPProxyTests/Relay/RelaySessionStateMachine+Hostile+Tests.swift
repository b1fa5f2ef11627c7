import NIOCore
import SMTPCore
import SMTPProxy
import Testing

/// State-machine checks for the hostile-input cases (README, Security) the end-to-end suite
/// (Tests/integration/security) found the proxy getting wrong.
@Suite struct RelaySessionStateMachineHostileTests {
    typealias H = RelayHarness

    /// Row 24: 10 000 continuation lines are an upstream protocol error, not a reply cut short.
    @Test func answersAnOverlongMultiLineReplyAsAnUpstreamProtocolError() {
        var h = H.greeted()
        h.client("EHLO client.example\r\n")
        _ = h.takeUpstream()
        h.upstream("250-upstream\r\n" + String(repeating: "250-X-FILLER\r\n", count: 10_000) + "250 8BITMIME\r\n")
        #expect(h.takeClient().hasPrefix("421 4.3.0 "))
        #expect(h.clientClosed && h.upstreamClosed)
        #expect(h.anomalies.contains("malformed_reply"))
    }

    /// Principle 3: a reply line holding a CR would reach the client as a line of its own
    /// (RelayFuzzer's first find); it is an upstream protocol error.
    @Test func answersAReplyLineWithABareCRAsAnUpstreamProtocolError() {
        var h = H()
        h.apply(h.machine.receiveUpstreamConnected())
        h.upstream("220 up ESMTP\rBoo\r\n")
        #expect(h.takeClient().hasPrefix("421 4.3.0 "))
        #expect(h.clientClosed && h.upstreamClosed)
    }

    /// Row 9: a line that never ends is cut off at the hard cap, and the transcript says why.
    @Test func recordsTheOverlongLineThatHitsTheHardCap() {
        var configuration = RelayConfiguration()
        configuration.limits.maxOverlongLineOctets = 8192
        var h = H.greeted(configuration: configuration, upstreamEHLO: H.plainEHLO)
        for _ in 0..<4 { h.client(String(repeating: "A", count: 4096)) }
        #expect(h.takeClient().hasPrefix("421 4.7.0 "))
        #expect(h.clientClosed)
        #expect(h.anomalies.contains("overlong_line"))
    }

    /// Row 15: octets that complete no command do not restart the client's deadline; a whole
    /// command does.
    @Test func aTrickledCommandDoesNotRestartTheClientDeadline() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        let start = h.machine.clientDeadlineEpoch
        h.clientDripped("NOOP xxxxxxxx")
        #expect(h.machine.clientDeadlineEpoch == start)
        #expect(h.machine.clientTimeout != nil)
        h.client("\r\n")
        #expect(h.takeClient() == "250 2.0.0 Ok\r\n")
        #expect(h.machine.clientDeadlineEpoch != start)
    }

    /// Row 15: in content the deadline restarts only after `minDataRate × dataBlock` octets, so
    /// a client below the minimum data rate hits `--data-block-timeout`.
    @Test func contentRestartsTheDeadlineOnlyAtTheMinimumDataRate() {
        var configuration = RelayConfiguration()
        configuration.limits.minDataRate = 10
        configuration.timeouts.dataBlock = 3
        var h = H.greeted(configuration: configuration, upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        h.client("DATA\r\n")
        h.upstream("354 go ahead\r\n")
        let start = h.machine.clientDeadlineEpoch
        h.clientDripped(String(repeating: "x", count: 29))
        #expect(h.machine.clientDeadlineEpoch == start)
        h.client("y")
        #expect(h.machine.clientDeadlineEpoch == start + 1)
        h.apply(h.machine.receiveTimeout(.client))
        #expect(h.takeClient().hasSuffix("421 4.4.2 smtpscope Error: timeout exceeded\r\n"))
        #expect(h.clientClosed && h.upstreamClosed)
    }

    /// Row 19: a header section over the limit aborts the upstream transfer and gets 552 at the
    /// end of data; the session goes on.
    @Test func refusesAHeaderSectionOverTheLimitWith552() {
        var configuration = RelayConfiguration()
        configuration.limits.maxHeaderSectionOctets = 1024
        var h = H.inData(configuration: configuration)
        for index in 0..<40 { h.client("X-Filler-\(index): \(String(repeating: "v", count: 40))\r\n") }
        #expect(h.upstreamClosed)
        h.client("\r\nbody\r\n.\r\n")
        #expect(h.takeClient() == "552 5.3.4 Error: message header section too big\r\n")
        #expect(h.anomalies.contains("message_header_anomaly"))
        h.client("NOOP\r\n")
        #expect(h.takeClient() == "250 2.0.0 Ok\r\n")
    }

    /// Row 19: only the header section counts; a long body after a short one is relayed.
    @Test func countsOnlyTheHeaderSectionAgainstItsLimit() {
        var configuration = RelayConfiguration()
        configuration.limits.maxHeaderSectionOctets = 1024
        for header in ["Subject: short\r\n\r\n", "\r\n"] {
            var h = H.inData(configuration: configuration)
            h.client(header)
            for _ in 0..<40 { h.client(String(repeating: "b", count: 60) + "\r\n") }
            h.client(".\r\n")
            #expect(!h.upstreamClosed)
            #expect(h.takeUpstream().hasSuffix("\r\n.\r\n"))
        }
    }

    /// Row 11: content beyond the SIZE that MAIL declared gets 552 at the end of data; stuffing
    /// dots do not count (RFC 1870 §6.1), so a message of exactly the declared size passes.
    @Test func refusesContentLargerThanTheDeclaredSize() {
        for (content, accepted) in [("..1234567\r\n", true), ("123456789\r\n", false)] {
            var h = H.greeted(upstreamEHLO: H.plainEHLO)
            h.client("MAIL FROM:<a@example.com> SIZE=10\r\nRCPT TO:<b@example.org>\r\n")
            h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
            h.client("DATA\r\n")
            h.upstream("354 go ahead\r\n")
            _ = h.takeClient()
            h.client(content + ".\r\n")
            if accepted {
                #expect(h.takeUpstream().hasSuffix("..1234567\r\n.\r\n"))
                h.upstream("250 2.0.0 queued\r\n")
                #expect(h.takeClient() == "250 2.0.0 queued\r\n")
            } else {
                #expect(h.upstreamClosed)
                #expect(h.takeClient() == "552 5.3.4 Error: message file too big\r\n")
            }
        }
    }
}
