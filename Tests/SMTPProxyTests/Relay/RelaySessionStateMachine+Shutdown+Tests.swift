import SMTPProxy
import Testing

/// The drain deadline (`ProxyServer.drain`): a session still open is answered 421 4.3.2 and closed,
/// as RFC 5321 §3.8 asks of a server that shuts down.
@Suite struct RelayShutdownTests {
    typealias H = RelayHarness

    static func closedByProxy(_ h: H) -> Bool {
        h.events.contains { if case .close(.proxy, .fin) = $0 { true } else { false } }
    }

    @Test func anIdleSessionIsAnswered421AndClosed() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.apply(h.machine.receiveShutdown())
        #expect(h.takeClient() == "421 4.3.2 smtpscope Service shutting down\r\n")
        #expect(h.clientClosed)
        #expect(Self.closedByProxy(h))
    }

    @Test func aCommandAwaitingItsReplyIsAnswered421() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@example.com>\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<a@example.com>\r\n")
        h.apply(h.machine.receiveShutdown())
        #expect(h.takeClient() == "421 4.3.2 smtpscope Service shutting down\r\n")
        #expect(h.clientClosed)
    }

    @Test func aMessageCutShortNeverReachesItsEnd() {
        var h = H.inData()
        h.client("Subject: half\r\n\r\nfirst line\r\n")
        h.apply(h.machine.receiveShutdown())
        #expect(h.takeClient() == "421 4.3.2 smtpscope Service shutting down\r\n")
        h.client(".\r\n")
        #expect(!h.takeUpstream().contains("\r\n.\r\n"), "the upstream must not be handed the end of data")
        #expect(h.clientClosed)
    }

    @Test func aPassthroughSessionClosesWithoutAPlaintextReply() {
        var configuration = RelayConfiguration()
        configuration.clientTLS = .passthrough
        var h = H.greeted(configuration: configuration)
        h.client("EHLO c\r\n")
        h.upstream("250-upstream\r\n250 STARTTLS\r\n")
        h.client("STARTTLS\r\n")
        h.upstream("220 Ready\r\n")
        _ = h.takeClient()
        #expect(h.passthroughStarted)
        h.apply(h.machine.receiveShutdown())
        #expect(h.takeClient() == "")
        #expect(h.clientClosed && h.upstreamClosed)
        #expect(Self.closedByProxy(h))
    }

    @Test func aClosedSessionIsLeftAsItIs() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.apply(h.machine.receiveClientClosed())
        h.events.removeAll()
        h.apply(h.machine.receiveShutdown())
        #expect(h.events.isEmpty)
        #expect(h.takeClient() == "")
    }
}
