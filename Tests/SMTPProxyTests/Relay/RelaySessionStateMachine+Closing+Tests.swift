import NIOCore
import SMTPCore
import SMTPProxy
import SMTPTranscript
import Testing

/// How a session ends (issue 14): a client that half-closes still gets every reply it is owed,
/// and QUIT reaches the upstream, whose 221 the client gets.
@Suite struct RelaySessionStateMachineClosingTests {
    typealias H = RelayHarness

    static let chunkingEHLO = "250-upstream\r\n250-PIPELINING\r\n250-SIZE 20000000\r\n250-CHUNKING\r\n250 8BITMIME\r\n"

    static func closes(_ h: H) -> [String] {
        h.events.compactMap {
            if case .close(let by, let reason) = $0 { return "\(by.rawValue) \(reason.rawValue)" }
            return nil
        }
    }

    // MARK: Half-closed clients

    /// Exim: the content, its end and QUIT in one segment, then FIN at once. The upstream's 250
    /// reaches the client, QUIT goes upstream, and only its 221 ends the session.
    @Test func aHalfClosedClientsPipelinedEndOfDataAndQUITAreAnswered() {
        var h = H.inData()
        h.client("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        h.apply(h.machine.receiveClientInputClosed())
        #expect(h.takeUpstream() == "Subject: x\r\n\r\nbody\r\n.\r\n")
        #expect(!h.clientClosed && !h.upstreamClosed)
        h.upstream("250 2.0.0 Ok: queued as 4F2\r\n")
        #expect(h.takeClient() == "250 2.0.0 Ok: queued as 4F2\r\n")
        #expect(h.takeUpstream() == "QUIT\r\n")
        #expect(!h.clientClosed)
        h.upstream("221 2.0.0 Bye\r\n")
        #expect(h.takeClient() == "221 2.0.0 Bye\r\n")
        #expect(h.clientClosed && h.upstreamClosed)
        #expect(h.upstreamCommands.suffix(2) == [".", "QUIT"])
    }

    /// The same with `MAIL / RCPT / BDAT n LAST + content / QUIT` in one segment and FIN, to an
    /// upstream that offers CHUNKING.
    @Test func aHalfClosedClientsBDATLastAndQUITGetTheQueuedReplyAnd221() {
        var h = H.greeted(upstreamEHLO: Self.chunkingEHLO)
        h.client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 7 LAST\r\nhello\r\nQUIT\r\n")
        h.apply(h.machine.receiveClientInputClosed())
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 7\r\nhello\r\nBDAT 0 LAST\r\n")
        h.upstream("250 2.0.0 7 octets\r\n250 2.0.0 Ok: queued as 9C1\r\n")
        #expect(h.takeClient() == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued as 9C1\r\n")
        #expect(h.takeUpstream() == "QUIT\r\n")
        h.upstream("221 2.0.0 Bye\r\n")
        #expect(h.takeClient() == "221 2.0.0 Bye\r\n")
        #expect(h.clientClosed && h.upstreamClosed)
    }

    /// FIN without QUIT after a whole message: the message was ended, so it is delivered and its
    /// reply written; then the proxy says QUIT upstream itself and closes both legs.
    @Test func aHalfCloseWithoutQUITAfterAWholeMessageIsAnsweredThenEnded() {
        var h = H.inData()
        h.client("Subject: x\r\n\r\nbody\r\n.\r\n")
        h.apply(h.machine.receiveClientInputClosed())
        #expect(!h.clientClosed)
        h.upstream("250 2.0.0 queued\r\n")
        #expect(h.takeClient() == "250 2.0.0 queued\r\n")
        #expect(h.takeUpstream().hasSuffix("\r\n.\r\nQUIT\r\n"))
        #expect(Self.closes(h) == ["client FIN"])
        h.upstream("221 2.0.0 Bye\r\n")
        #expect(h.takeClient() == "", "the proxy owes nothing to a client that sent no QUIT")
        #expect(h.clientClosed && h.upstreamClosed)
    }

    /// FIN in the middle of the content: the end of data never came, so the message must not be
    /// delivered. The upstream leg closes before any terminating dot.
    @Test func aHalfCloseMidMessageAbortsItUpstream() {
        var h = H.inData()
        h.client("Subject: x\r\n\r\npart of a bo")
        h.apply(h.machine.receiveClientInputClosed())
        #expect(h.upstreamClosed && h.clientClosed)
        #expect(!h.takeUpstream().contains("\r\n.\r\n"))
        #expect(h.takeClient() == "")
        let abandoned = h.events.contains { if case .client(.messageAbandoned) = $0 { return true } else { return false } }
        #expect(abandoned)
    }

    /// FIN mid-chunk, to an upstream that takes BDAT: no LAST ever goes upstream.
    @Test func aHalfCloseMidChunkAbortsTheRelayedMessage() {
        var h = H.greeted(upstreamEHLO: Self.chunkingEHLO)
        h.client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n")
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        _ = h.takeClient()
        h.client("BDAT 100 LAST\r\nabc")
        h.apply(h.machine.receiveClientInputClosed())
        #expect(!h.takeUpstream().contains("LAST"))
        #expect(h.upstreamClosed && h.clientClosed)
    }

    /// FIN with commands still unanswered: they are answered first.
    @Test func aHalfClosedClientGetsTheRepliesItIsOwedBeforeTheClose() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n")
        h.apply(h.machine.receiveClientInputClosed())
        #expect(!h.clientClosed)
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        #expect(h.takeClient() == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        #expect(h.takeUpstream().hasSuffix("QUIT\r\n"))
        h.upstream("221 2.0.0 Bye\r\n")
        #expect(h.clientClosed && h.upstreamClosed)
    }

    /// Under passthrough the relay is blind: a FIN from the client ends both legs, and the client
    /// channel is closed too (it is only half-closed, so nothing else would close it).
    @Test func aHalfCloseUnderPassthroughClosesBothLegs() {
        var configuration = RelayConfiguration()
        configuration.clientTLS = .passthrough
        var h = H.greeted(configuration: configuration, upstreamEHLO: "250-upstream\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
        h.client("STARTTLS\r\n")
        h.upstream("220 2.0.0 Ready to start TLS\r\n")
        #expect(h.passthroughStarted)
        h.apply(h.machine.receiveClientInputClosed())
        #expect(h.clientClosed && h.upstreamClosed)
    }

    // MARK: QUIT

    @Test func quitGoesUpstreamAndTheUpstreams221IsRelayed() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("QUIT\r\n")
        #expect(h.takeUpstream() == "QUIT\r\n")
        #expect(h.takeClient() == "", "the client's 221 is the upstream's")
        #expect(!h.clientClosed)
        #expect(h.machine.upstreamTimeout == RelayConfiguration().timeouts.quitReply)
        h.upstream("221 2.0.0 Bye\r\n")
        #expect(h.takeClient() == "221 2.0.0 Bye\r\n")
        #expect(h.clientClosed && h.upstreamClosed)
        let origins = h.events.compactMap { if case .clientReply(let reply, _, let origin) = $0, reply.code == 221 { return origin } else { return nil } }
        #expect(origins == [.server])
    }

    /// No 221 within the short deadline: the proxy answers the client itself, and the record says
    /// the QUIT went but no reply came.
    @Test func quitUnansweredByTheUpstreamIsAnsweredByTheProxyAtTheDeadline() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("QUIT\r\n")
        #expect(h.takeUpstream() == "QUIT\r\n")
        h.apply(h.machine.receiveTimeout(.upstream))
        #expect(h.takeClient() == "221 2.0.0 Bye\r\n")
        #expect(h.clientClosed && h.upstreamClosed)
        let origins = h.events.compactMap { if case .clientReply(let reply, _, let origin) = $0, reply.code == 221 { return origin } else { return nil } }
        #expect(origins == [.proxy])
        #expect(h.upstreamCommands.last == "QUIT")
    }

    @Test func quitToAnUpstreamThatClosesWithoutAReplyIsStillAnswered221() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        h.client("QUIT\r\n")
        h.apply(h.machine.receiveUpstreamClosed())
        #expect(h.takeClient() == "221 2.0.0 Bye\r\n")
        #expect(h.clientClosed)
    }

    /// With the upstream leg gone (an aborted transaction closed it), nothing goes upstream and
    /// nothing is recorded as sent there.
    @Test func quitWithNoUpstreamLegIsAnsweredByTheProxyAndNotRecordedUpstream() {
        var h = H.inData()
        h.client("a\nb\r\n.\r\n")
        _ = h.takeClient()
        let before = h.upstreamCommands
        h.client("QUIT\r\n")
        #expect(h.takeClient() == "221 2.0.0 Bye\r\n")
        #expect(h.clientClosed)
        #expect(h.upstreamCommands == before)
        #expect(!h.takeUpstream().contains("QUIT"))
    }

    /// Without PIPELINING upstream, QUIT waits for the reply before it and still goes.
    @Test func quitToAnUnpipelinedUpstreamWaitsItsTurn() {
        var h = H.greeted(upstreamEHLO: "250-upstream\r\n250 8BITMIME\r\n")
        h.client("MAIL FROM:<a@x>\r\nRSET\r\nQUIT\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<a@x>\r\n")
        h.upstream("250 Ok\r\n")
        #expect(h.takeUpstream() == "RSET\r\n")
        h.upstream("250 Ok\r\n")
        #expect(h.takeUpstream() == "QUIT\r\n")
        h.upstream("221 Bye\r\n")
        #expect(h.takeClient() == "250 Ok\r\n250 Ok\r\n221 Bye\r\n")
        #expect(h.clientClosed)
    }
}
