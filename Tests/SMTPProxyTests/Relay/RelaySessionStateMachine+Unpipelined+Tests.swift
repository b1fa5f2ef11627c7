import NIOCore
import SMTPCore
import SMTPProxy
import Testing

/// An upstream that does not offer PIPELINING gets one command at a time (RFC 2920 §3.1), however
/// the client pipelines to the proxy, which always offers it; the client's replies keep its order.
@Suite struct RelayUnpipelinedTests {
    typealias H = RelayHarness

    static let ehloWithoutPipelining = "250-upstream\r\n250-SIZE 20000000\r\n250 8BITMIME\r\n"
    static let chunkingWithoutPipelining = "250-upstream\r\n250-SIZE 20000000\r\n250-8BITMIME\r\n250 CHUNKING\r\n"

    @Test func aPipelinedGroupGoesUpstreamOneCommandAtATime() {
        var h = H.greeted(upstreamEHLO: Self.ehloWithoutPipelining)
        h.client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<a@x>\r\n")
        h.upstream("250 2.1.0 Ok\r\n")
        #expect(h.takeUpstream() == "RCPT TO:<b@y>\r\n")
        h.upstream("550 5.1.1 No such user\r\n")
        #expect(h.takeUpstream() == "RCPT TO:<c@y>\r\n")
        h.upstream("250 2.1.5 Ok\r\n")
        #expect(h.takeUpstream() == "DATA\r\n")
        h.upstream("354 go\r\n")
        #expect(h.takeClient() == "250 2.1.0 Ok\r\n550 5.1.1 No such user\r\n250 2.1.5 Ok\r\n354 go\r\n")
        h.client("hi\r\n.\r\nRSET\r\n")
        #expect(h.takeUpstream() == "hi\r\n.\r\n", "the RSET waits for the message's reply")
        h.upstream("250 2.0.0 queued\r\n")
        #expect(h.takeUpstream() == "RSET\r\n")
        h.upstream("250 2.0.0 Ok\r\n")
        #expect(h.takeClient() == "250 2.0.0 queued\r\n250 2.0.0 Ok\r\n")
        // The record says when each command went, not when the client sent it.
        #expect(h.upstreamCommands.suffix(6) == ["MAIL FROM:<a@x>", "RCPT TO:<b@y>", "RCPT TO:<c@y>", "DATA", ".", "RSET"])
    }

    @Test func anUpstreamWithPipeliningStillGetsTheGroupAtOnce() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\n")
    }

    @Test func commandsHeldWhenTheUpstreamGoesEndTheSessionAsAPipelinedGroupWould() {
        var h = H.greeted(upstreamEHLO: Self.ehloWithoutPipelining)
        h.client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nNOOP\r\nRCPT TO:<c@y>\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<a@x>\r\n")
        h.apply(h.machine.receiveUpstreamClosed())
        #expect(h.takeUpstream() == "", "nothing held goes to a connection that is gone")
        // As with an upstream that pipelines: the open transaction cannot move to a new
        // connection, so the client gets 421 and the session ends rather than waiting.
        #expect(h.takeClient() == "421 4.4.2 smtpscope Error: upstream connection lost\r\n")
        #expect(h.clientClosed)
    }

    @Test func anUpstreamOfferingCHUNKINGWithoutPipeliningGetsDATA() {
        var h = RelayBDATTests.inTransaction(ehlo: Self.chunkingWithoutPipelining)
        h.client("BDAT 4\r\nab\r\nBDAT 3 LAST\r\nc\r\n")
        #expect(h.takeUpstream() == "DATA\r\n")
        h.upstream("354 go\r\n")
        #expect(h.takeUpstream().hasSuffix("\r\n.\r\n"))
        h.upstream("250 2.0.0 queued\r\n")
        #expect(h.takeClient().hasSuffix("250 2.0.0 queued\r\n"))
        #expect(!h.upstreamCommands.contains { $0.hasPrefix("BDAT") })
    }
}
