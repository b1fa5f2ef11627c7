import NIOCore
import SMTPCore
import SMTPProxy
import Testing

/// BDAT relayed as BDAT when the upstream offers CHUNKING (RFC 3030): each client chunk goes upstream
/// raw under its own `BDAT n`, and only the proxy's closing LAST chunk, sent once the whole message
/// passed its checks, lets the upstream commit it.
@Suite struct RelayBDATTests {
    typealias H = RelayHarness

    static let chunkingEHLO = "250-upstream\r\n250-PIPELINING\r\n250-SIZE 20000000\r\n250-8BITMIME\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n"

    /// Greeted, EHLO done with an upstream offering CHUNKING, MAIL and RCPT accepted.
    static func inTransaction(mail: String = "MAIL FROM:<a@x>", configuration: RelayConfiguration = RelayConfiguration(), policy: any SessionPolicy = AllowAllPolicy(), ehlo: String = chunkingEHLO) -> H {
        var h = H.greeted(configuration: configuration, policy: policy, upstreamEHLO: ehlo)
        h.client("\(mail)\r\nRCPT TO:<b@y>\r\n")
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        _ = h.takeClient()
        _ = h.takeUpstream()
        return h
    }

    @Test func aLastChunkGoesUpstreamRawThenTheProxyEndsTheMessage() {
        var h = Self.inTransaction()
        h.client("BDAT 7 LAST\r\n.a\r\nb\r\n")
        // No dot-stuffing: the line starting with "." stays single-dotted.
        #expect(h.takeUpstream() == "BDAT 7\r\n.a\r\nb\r\nBDAT 0 LAST\r\n")
        #expect(h.takeClient() == "")
        h.upstream("250 2.0.0 7 octets received\r\n")
        #expect(h.takeClient() == "", "the client's LAST waits for the upstream's reply to LAST")
        h.upstream("250 2.0.0 Ok: queued as 4F2\r\n")
        #expect(h.takeClient() == "250 2.0.0 Ok: queued as 4F2\r\n")
        #expect(!h.upstreamClosed)
        #expect(h.upstreamCommands.suffix(2) == ["BDAT 7", "BDAT 0 LAST"])
        let content = h.events.compactMap { if case .upstreamContent(let octets) = $0 { return octets } else { return nil } }
        #expect(content == [7])
    }

    @Test func severalChunksKeepTheirSizesAndTheirReplies() {
        var h = Self.inTransaction()
        h.client("BDAT 5\r\n.a\r\nb")
        #expect(h.takeUpstream() == "BDAT 5\r\n.a\r\nb")
        h.upstream("250 2.0.0 5 octets\r\n")
        #expect(h.takeClient() == "250 2.0.0 5 octets\r\n")
        h.client("BDAT 3 LAST\r\nc\r\n")
        #expect(h.takeUpstream() == "BDAT 3\r\nc\r\nBDAT 0 LAST\r\n")
        h.upstream("250 2.0.0 3 octets\r\n250 2.0.0 queued\r\n")
        #expect(h.takeClient() == "250 2.0.0 queued\r\n")
    }

    @Test func aChunkStreamsUpstreamAsItArrives() {
        var h = Self.inTransaction()
        h.client("BDAT 10 LAST\r\n0123")
        #expect(h.takeUpstream() == "BDAT 10\r\n0123")
        h.client("45")
        #expect(h.takeUpstream() == "45")
        h.client("67\r\n")
        #expect(h.takeUpstream() == "67\r\nBDAT 0 LAST\r\n")
    }

    @Test func anEmptyLastChunkFromTheClientIsRelayedToo() {
        var h = Self.inTransaction()
        h.client("BDAT 4\r\nab\r\nBDAT 0 LAST\r\n")
        #expect(h.takeUpstream() == "BDAT 4\r\nab\r\nBDAT 0\r\nBDAT 0 LAST\r\n")
        h.upstream("250 2.0.0 4 octets\r\n250 2.0.0 0 octets\r\n250 2.0.0 queued\r\n")
        #expect(h.takeClient() == "250 2.0.0 4 octets\r\n250 2.0.0 queued\r\n")
    }

    /// DataContentWriter.finish adds CRLF to content that lacks it; so does this path.
    @Test func contentWithoutAFinalCRLFGetsOneInTheProxysLastChunk() {
        var h = Self.inTransaction()
        h.client("BDAT 3 LAST\r\nabc")
        #expect(h.takeUpstream() == "BDAT 3\r\nabcBDAT 2 LAST\r\n\r\n")
        h.upstream("250 2.0.0 3 octets\r\n250 2.0.0 queued\r\n")
        #expect(h.takeClient() == "250 2.0.0 queued\r\n")
    }

    @Test func pipelinedChunksAreAnsweredInOrder() {
        var h = Self.inTransaction()
        h.client("BDAT 4\r\nab\r\nBDAT 4\r\ncd\r\nBDAT 4 LAST\r\nef\r\nQUIT\r\n")
        #expect(h.takeUpstream() == "BDAT 4\r\nab\r\nBDAT 4\r\ncd\r\nBDAT 4\r\nef\r\nBDAT 0 LAST\r\n")
        h.upstream("250 2.0.0 first\r\n")
        #expect(h.takeClient() == "250 2.0.0 first\r\n")
        h.upstream("250 2.0.0 second\r\n250 2.0.0 third\r\n")
        #expect(h.takeClient() == "250 2.0.0 second\r\n")
        h.upstream("250 2.0.0 queued\r\n")
        #expect(h.takeClient() == "250 2.0.0 queued\r\n")
        #expect(h.takeUpstream() == "QUIT\r\n")
        h.upstream("221 2.0.0 Bye\r\n")
        #expect(h.takeClient() == "221 2.0.0 Bye\r\n")
    }

    @Test func aBareLFMidChunkClosesTheUpstreamAndIsRefusedAfterTheChunk() {
        var h = Self.inTransaction()
        h.client("BDAT 4\r\nab\r\nBDAT 10 LAST\r\nab\ncd")
        #expect(h.takeUpstream() == "BDAT 4\r\nab\r\nBDAT 10\r\n", "nothing of the bad piece goes upstream")
        #expect(h.upstreamClosed)
        #expect(h.anomalies.contains("bare_lf_in_data"))
        // The chunk before it was read whole; the failing one is answered once consumed.
        #expect(h.takeClient() == "250 2.0.0 4 octets received\r\n")
        h.client("efghi")
        #expect(h.takeClient() == "550 5.5.2 Error: bare <LF> received\r\n")
        #expect(h.takeUpstream() == "")
        // The session goes on, on a new upstream connection.
        let connects = h.connects
        h.client("MAIL FROM:<c@x>\r\n")
        #expect(h.connects == connects + 1)
    }

    @Test func aBareLFInAMiddleChunkRefusesTheRestOfTheTransfer() {
        var h = Self.inTransaction()
        h.client("BDAT 4\r\na\nbc")
        #expect(h.upstreamClosed)
        #expect(h.takeClient() == "550 5.5.2 Error: bare <LF> received\r\n")
        h.client("BDAT 2 LAST\r\nxy")
        #expect(h.takeClient() == "550 5.5.2 Error: bare <LF> received\r\n")
        #expect(h.takeUpstream() == "BDAT 4\r\n")
    }

    /// A CR ending one chunk is checked against the first octet of the next: split CRLF passes.
    @Test func aCRLFSplitAcrossChunksIsRelayedAsSent() {
        var h = Self.inTransaction()
        h.client("BDAT 3\r\nab\rBDAT 3 LAST\r\n\ncd")
        #expect(h.takeUpstream() == "BDAT 3\r\nab\rBDAT 3\r\n\ncdBDAT 2 LAST\r\n\r\n")
        #expect(!h.upstreamClosed)
    }

    /// A bare CR at the end of a chunk shows only with the next octet: the upstream has it, but is
    /// closed before any LAST, so it never commits the message.
    @Test func aBareCRAtTheEndOfAChunkAbortsBeforeAnyLast() {
        var h = Self.inTransaction()
        h.client("BDAT 3\r\nab\rBDAT 3 LAST\r\nxcd")
        #expect(h.takeUpstream() == "BDAT 3\r\nab\rBDAT 3\r\n")
        #expect(h.upstreamClosed)
        #expect(h.takeClient() == "250 2.0.0 3 octets received\r\n550 5.5.2 Error: bare <CR> received\r\n")
    }

    @Test func aBareCREndingTheMessageAbortsInsteadOfLast() {
        var h = Self.inTransaction()
        h.client("BDAT 3 LAST\r\nab\r")
        #expect(h.takeUpstream() == "BDAT 3\r\nab\r")
        #expect(h.upstreamClosed)
        #expect(h.takeClient() == "550 5.5.2 Error: bare <CR> received\r\n")
    }

    @Test func aNULIsRefused() {
        var h = Self.inTransaction()
        h.clientBytes(Array("BDAT 4 LAST\r\nab".utf8) + [0, 0x0A])
        #expect(h.upstreamClosed)
        #expect(h.takeClient() == "550 5.5.2 Error: NUL character in message content\r\n")
    }

    @Test func theDeclaredSizeIsEnforcedMidChunk() {
        var h = Self.inTransaction(mail: "MAIL FROM:<a@x> SIZE=6")
        h.client("BDAT 10 LAST\r\n0123")
        #expect(h.takeUpstream() == "BDAT 10\r\n0123")
        h.client("456789")
        #expect(h.upstreamClosed)
        #expect(h.takeUpstream() == "", "no octet past the declared size goes upstream")
        #expect(h.takeClient() == "552 5.3.4 Error: message file too big\r\n")
    }

    @Test func theMessageSizeLimitIsEnforced() {
        var configuration = RelayConfiguration()
        configuration.limits.maxMessageOctets = 8
        var h = Self.inTransaction(configuration: configuration)
        h.client("BDAT 6\r\nabcd\r\nBDAT 6 LAST\r\nefgh\r\n")
        #expect(h.upstreamClosed)
        #expect(h.takeUpstream() == "BDAT 6\r\nabcd\r\nBDAT 6\r\n")
        #expect(h.takeClient() == "250 2.0.0 6 octets received\r\n552 5.3.4 Error: message file too big\r\n")
    }

    @Test func theHeaderSectionLimitIsEnforced() {
        var configuration = RelayConfiguration()
        configuration.limits.maxHeaderSectionOctets = 20
        var h = Self.inTransaction(configuration: configuration)
        let header = "Subject: " + String(repeating: "x", count: 40) + "\r\n\r\nbody\r\n"
        h.client("BDAT \(header.utf8.count) LAST\r\n\(header)")
        #expect(h.upstreamClosed)
        #expect(!h.takeUpstream().contains("LAST"))
        #expect(h.takeClient() == "552 5.3.4 Error: message header section too big\r\n")
    }

    /// RFC 3030 §2: after a 5xx to a chunk no further BDAT goes upstream; the client's later chunks
    /// get the refusal, and RSET clears the upstream's transaction instead of a LAST.
    @Test func anUpstreamRefusalOfAMiddleChunkStopsFurtherChunks() {
        var h = Self.inTransaction()
        h.client("BDAT 4\r\nab\r\n")
        #expect(h.takeUpstream() == "BDAT 4\r\nab\r\n")
        h.upstream("554 5.6.0 Error: no thanks\r\n")
        #expect(h.takeClient() == "554 5.6.0 Error: no thanks\r\n")
        h.client("BDAT 4\r\ncd\r\nBDAT 4 LAST\r\nef\r\n")
        #expect(h.takeUpstream() == "RSET\r\n")
        #expect(h.takeClient() == "554 5.6.0 Error: no thanks\r\n554 5.6.0 Error: no thanks\r\n")
        h.upstream("250 2.0.0 Ok\r\n")
        #expect(h.takeClient() == "")
        h.client("MAIL FROM:<c@x>\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<c@x>\r\n")
        #expect(!h.upstreamClosed)
    }

    /// A chunk already announced upstream when the refusal arrives still gets its octets (the
    /// upstream discards them, RFC 3030 §2), and its own reply.
    @Test func aChunkInFlightWhenTheRefusalArrivesIsCompleted() {
        var h = Self.inTransaction()
        h.client("BDAT 4\r\nab\r\nBDAT 6\r\ncd")
        #expect(h.takeUpstream() == "BDAT 4\r\nab\r\nBDAT 6\r\ncd")
        h.upstream("452 4.3.1 Insufficient system storage\r\n")
        #expect(h.takeClient() == "452 4.3.1 Insufficient system storage\r\n")
        h.client("ef\r\n")
        #expect(h.takeUpstream() == "ef\r\n")
        h.client("BDAT 2 LAST\r\ngh")
        #expect(h.takeUpstream() == "RSET\r\n")
        h.upstream("503 5.5.1 Error: discarded\r\n250 2.0.0 Ok\r\n")
        #expect(h.takeClient() == "503 5.5.1 Error: discarded\r\n452 4.3.1 Insufficient system storage\r\n")
    }

    /// The client's LAST is answered by the first of its two upstream replies that is not 2xx.
    @Test func aRefusedLastChunkGivesTheClientThatRefusal() {
        var h = Self.inTransaction()
        h.client("BDAT 4 LAST\r\nab\r\n")
        #expect(h.takeUpstream() == "BDAT 4\r\nab\r\nBDAT 0 LAST\r\n")
        h.upstream("552 5.3.4 Message too big\r\n")
        #expect(h.takeClient() == "552 5.3.4 Message too big\r\n")
        h.upstream("503 5.5.1 Error: no transaction\r\n")
        #expect(h.takeClient() == "", "the client's LAST was answered by the first refusal")
    }

    @Test func aRefusedProxyLastGivesTheClientThatRefusal() {
        var h = Self.inTransaction()
        h.client("BDAT 4 LAST\r\nab\r\n")
        h.upstream("250 2.0.0 4 octets\r\n550 5.7.1 Content rejected\r\n")
        #expect(h.takeClient() == "550 5.7.1 Content rejected\r\n")
    }

    @Test func anUpstreamWithoutCHUNKINGStillGetsDATA() {
        var h = Self.inTransaction(ehlo: H.plainEHLO)
        h.client("BDAT 5\r\n.a\r\nbBDAT 3 LAST\r\nc\r\n")
        #expect(h.takeUpstream() == "DATA\r\n")
        h.upstream("354 go\r\n")
        #expect(h.takeUpstream() == "..a\r\nbc\r\n.\r\n")
        h.upstream("250 2.0.0 queued\r\n")
        #expect(h.takeClient() == "250 2.0.0 5 octets received\r\n250 2.0.0 queued\r\n")
    }

    struct MessageRules: SessionPolicy {
        var evaluatesMessages: Bool { true }
        func decide(at stage: PolicyStage, facts: PolicyFacts) -> PolicyDecision { .continue }
    }

    @Test func aSpooledMessageStillGoesAsDATA() {
        var h = Self.inTransaction(policy: MessageRules())
        h.client("BDAT 5\r\n.a\r\nb")
        #expect(h.takeUpstream() == "")
        #expect(h.takeClient() == "250 2.0.0 5 octets received\r\n")
        h.client("BDAT 3 LAST\r\nc\r\n")
        #expect(h.takeUpstream() == "DATA\r\n")
        h.upstream("354 go\r\n")
        #expect(h.released.count == 1)
        #expect(h.spooled == ".a\r\nbc\r\n")
        h.upstream("250 2.0.0 queued\r\n")
        #expect(h.takeClient() == "250 2.0.0 queued\r\n")
    }

    @Test func anUpstreamLostMidChunkIsAnswered451AfterTheChunk() {
        var h = Self.inTransaction()
        h.client("BDAT 4\r\nab\r\nBDAT 10 LAST\r\nabcde")
        #expect(h.takeUpstream() == "BDAT 4\r\nab\r\nBDAT 10\r\nabcde")
        h.apply(h.machine.receiveUpstreamClosed())
        #expect(h.takeClient() == "250 2.0.0 4 octets received\r\n")
        h.client("fghij")
        #expect(h.takeUpstream() == "", "nothing is written to a connection that is gone")
        #expect(h.takeClient() == "451 4.4.2 Error: upstream connection lost, message not delivered\r\n")
        #expect(!h.clientClosed)
    }

    @Test func anUpstreamLostBetweenChunksIsAnsweredAtTheNextChunk() {
        var h = Self.inTransaction()
        h.client("BDAT 4\r\nab\r\n")
        h.upstream("250 2.0.0 4 octets\r\n")
        #expect(h.takeClient() == "250 2.0.0 4 octets\r\n")
        _ = h.takeUpstream()
        h.apply(h.machine.receiveUpstreamClosed())
        h.client("BDAT 2 LAST\r\ncd")
        #expect(h.takeUpstream() == "")
        #expect(h.takeClient() == "451 4.4.2 Error: upstream connection lost, message not delivered\r\n")
    }

    @Test func rsetMidTransferAbortsTheUpstreamTransaction() {
        var h = Self.inTransaction()
        h.client("BDAT 4\r\nab\r\nRSET\r\n")
        #expect(h.upstreamClosed)
        #expect(h.takeUpstream() == "BDAT 4\r\nab\r\n")
        #expect(h.takeClient() == "250 2.0.0 4 octets received\r\n250 2.0.0 Ok\r\n")
        let connects = h.connects
        h.client("MAIL FROM:<c@x>\r\n")
        #expect(h.connects == connects + 1)
        h.apply(h.machine.receiveUpstreamConnected())
        h.upstream("220 again\r\n")
        #expect(h.takeUpstream() == "EHLO client.example\r\n")
        h.upstream(Self.chunkingEHLO)
        #expect(h.takeUpstream() == "MAIL FROM:<c@x>\r\n", "RSET ended the BDAT transfer")
    }

    /// QUIT waits for the replies before it (RFC 2920 §3.1), then aborts the open transfer.
    @Test func quitMidTransferAbortsTheUpstreamTransaction() {
        var h = Self.inTransaction()
        h.client("BDAT 4\r\nab\r\nQUIT\r\n")
        #expect(h.takeClient() == "")
        h.upstream("250 2.0.0 4 octets received\r\n")
        #expect(h.upstreamClosed)
        #expect(!h.takeUpstream().contains("LAST"))
        #expect(h.takeClient() == "250 2.0.0 4 octets received\r\n221 2.0.0 Bye\r\n")
        #expect(h.clientClosed)
    }

    @Test func theClientVanishingMidChunkClosesTheUpstream() {
        var h = Self.inTransaction()
        h.client("BDAT 10 LAST\r\nabc")
        h.apply(h.machine.receiveClientClosed())
        #expect(h.upstreamClosed)
        #expect(!h.takeUpstream().contains("LAST"))
    }

    @Test func aSecondMessageOnTheSameConnectionIsRelayedToo() {
        var h = Self.inTransaction()
        h.client("BDAT 4 LAST\r\nab\r\nMAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nBDAT 4 LAST\r\ncd\r\n")
        #expect(h.takeUpstream() == "BDAT 4\r\nab\r\nBDAT 0 LAST\r\nMAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\n")
        h.upstream("250 2.0.0 4\r\n250 2.0.0 queued 1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        #expect(h.takeUpstream() == "BDAT 4\r\ncd\r\nBDAT 0 LAST\r\n")
        h.upstream("250 2.0.0 4\r\n250 2.0.0 queued 2\r\n")
        #expect(h.takeClient() == "250 2.0.0 queued 1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 queued 2\r\n")
    }
}
