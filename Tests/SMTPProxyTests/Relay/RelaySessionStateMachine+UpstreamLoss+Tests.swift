import NIOCore
import SMTPCore
import SMTPProxy
import Testing

/// The upstream going away at the awkward moments the soak (`tools/soak`) found: inside an AUTH
/// exchange and inside a transaction. The client always gets an answer to what it sent, and never
/// one that belongs to another connection's state.
@Suite struct RelaySessionStateMachineUpstreamLossTests {
    typealias H = RelayHarness

    /// After the upstream's 334 the client is writing its response: the exchange cannot move to a
    /// new connection, so the client hears `421` at once, not at the command timeout.
    @Test func anUpstreamLostInsideAUTHIsAnsweredAtOnce() {
        var h = H.greeted(upstreamEHLO: "250-upstream\r\n250 AUTH PLAIN LOGIN\r\n")
        h.client("AUTH LOGIN\r\n")
        h.upstream("334 VXNlcm5hbWU6\r\n")
        #expect(h.takeClient() == "334 VXNlcm5hbWU6\r\n")
        _ = h.takeUpstream()
        let connects = h.connects
        h.apply(h.machine.receiveUpstreamClosed())
        #expect(h.takeClient().hasPrefix("421 4.4.2 "))
        #expect(h.clientClosed)
        h.client("YWxpY2U=\r\n")
        #expect(h.takeUpstream() == "", "nothing is written to a connection that is gone")
        #expect(h.connects == connects)
    }

    /// MAIL was accepted by an upstream that then closed: a new connection knows nothing of it,
    /// so the RCPT is answered `421` rather than relayed into a `503`.
    @Test func anUpstreamLostInsideATransactionIsNotReconnectedUnderIt() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@example.com>\r\n")
        h.upstream("250 2.1.0 Ok\r\n")
        #expect(h.takeClient() == "250 2.1.0 Ok\r\n")
        _ = h.takeUpstream()
        let connects = h.connects
        h.apply(h.machine.receiveUpstreamClosed())
        h.client("RCPT TO:<b@example.org>\r\nDATA\r\n")
        #expect(h.takeClient().hasPrefix("421 4.4.2 "))
        #expect(h.clientClosed)
        #expect(h.connects == connects)
        #expect(h.takeUpstream() == "")
    }

    /// Between transactions the proxy still reconnects and the session goes on.
    @Test func anUpstreamLostBetweenTransactionsIsReconnected() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        let connects = h.connects
        h.apply(h.machine.receiveUpstreamClosed())
        h.client("MAIL FROM:<a@example.com>\r\n")
        #expect(h.connects == connects + 1)
        #expect(!h.clientClosed)
    }
}
