import NIOCore
import SMTPCore
import SMTPProxy
import Testing

/// TLS on either leg and the EHLO that follows it (issue 14): the upstream never gets a second
/// EHLO on a session it already identified, and only a failed handshake is a TLS failure.
@Suite struct RelaySessionStateMachineTLSTests {
    typealias H = RelayHarness

    static let authEHLO = "250-upstream.example\r\n250-PIPELINING\r\n250-SIZE 20000000\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN\r\n"

    static func configuration(clientTLS: ClientTLSMode = .offer, upstreamTLS: UpstreamTLSMode = .off) -> RelayConfiguration {
        var configuration = RelayConfiguration()
        configuration.clientTLS = clientTLS
        configuration.upstreamTLS = upstreamTLS
        return configuration
    }

    /// Greeted, EHLO done, then the client's STARTTLS and handshake.
    static func afterClientTLS(_ configuration: RelayConfiguration, upstreamEHLO: String = authEHLO) -> H {
        var h = H.greeted(configuration: configuration, upstreamEHLO: upstreamEHLO)
        h.client("STARTTLS\r\n")
        #expect(h.takeClient() == "220 2.0.0 Ready to start TLS\r\n")
        h.apply(h.machine.receiveClientTLSEstablished())
        return h
    }

    // MARK: The client's EHLO after its STARTTLS

    /// A plaintext upstream that already had EHLO: the client's post-TLS EHLO is answered by the
    /// proxy (OpenSMTPD would answer a second EHLO `503 5.5.1 Already identified`).
    @Test func theClientsEHLOAfterSTARTTLSIsAnsweredByTheProxy() {
        var h = Self.afterClientTLS(Self.configuration(clientTLS: .require))
        h.client("EHLO client.example\r\n")
        #expect(h.takeUpstream() == "", "no second EHLO upstream")
        // No STARTTLS any more, and AUTH, held back before TLS under `require`, is offered now.
        #expect(h.takeClient() == "250-upstream.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250-CHUNKING\r\n250 AUTH PLAIN LOGIN\r\n")
        #expect(h.upstreamCommands.filter { $0.hasPrefix("EHLO") }.count == 1)
        h.client("MAIL FROM:<a@x>\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<a@x>\r\n")
    }

    @Test func theClientsHELOAfterSTARTTLSIsAnsweredByTheProxy() {
        var h = Self.afterClientTLS(Self.configuration())
        h.client("HELO client.example\r\n")
        #expect(h.takeUpstream() == "")
        #expect(h.takeClient() == "250 upstream.example\r\n")
    }

    /// The upstream leg did its own STARTTLS and the EHLO after it (the legitimate second EHLO);
    /// the client's STARTTLS and EHLO later change nothing upstream.
    @Test func afterTheUpstreamsOwnSTARTTLSTheClientsPostTLSEHLOStaysWithTheProxy() {
        var h = H.greeted(configuration: Self.configuration(upstreamTLS: .opportunistic))
        h.client("EHLO c\r\n")
        h.upstream("250-up\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
        #expect(h.takeUpstream() == "EHLO c\r\nSTARTTLS\r\n")
        h.upstream("220 go\r\n")
        h.apply(h.machine.receiveUpstreamTLSEstablished())
        #expect(h.takeUpstream() == "EHLO c\r\n", "the EHLO RFC 3207 §4.2 requires after the upstream's handshake")
        h.upstream("250-up\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        #expect(h.takeClient().contains("STARTTLS\r\n"))
        h.client("STARTTLS\r\n")
        _ = h.takeClient()
        h.apply(h.machine.receiveClientTLSEstablished())
        h.client("EHLO c\r\n")
        #expect(h.takeUpstream() == "")
        #expect(h.takeClient() == "250-up\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 CHUNKING\r\n")
    }

    /// After a reconnection the new upstream session gets its own EHLO from the proxy, and the
    /// client's next EHLO is answered from that one.
    @Test func aReconnectedUpstreamIsIdentifiedByTheProxysEHLO() {
        var h = H.inData(configuration: Self.configuration())
        h.client("a\nb\r\n.\r\n")
        _ = h.takeClient()
        h.client("EHLO again.example\r\n")
        #expect(h.connects == 2)
        h.apply(h.machine.receiveUpstreamConnected())
        h.upstream("220 again\r\n")
        #expect(h.takeUpstream() == "EHLO client.example\r\n")
        h.upstream("250-again.example\r\n250 PIPELINING\r\n")
        #expect(h.takeUpstream() == "", "one EHLO per upstream session")
        #expect(h.takeClient().hasPrefix("250-again.example\r\n"))
    }

    /// A transaction open upstream when the client starts TLS is reset there too, since the
    /// client's is forgotten (RFC 3207 §4.2).
    @Test func aTransactionOpenUpstreamAtTheClientsSTARTTLSIsReset() {
        var h = H.greeted(configuration: Self.configuration(), upstreamEHLO: Self.authEHLO)
        h.client("MAIL FROM:<a@x>\r\n")
        h.upstream("250 2.1.0 Ok\r\n")
        _ = h.takeUpstream()
        h.client("STARTTLS\r\n")
        _ = h.takeClient()
        h.apply(h.machine.receiveClientTLSEstablished())
        #expect(h.takeUpstream() == "RSET\r\n")
        h.upstream("250 2.0.0 Ok\r\n")
        h.client("EHLO c\r\nMAIL FROM:<b@x>\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<b@x>\r\n")
    }

    // MARK: Upstream TLS failures

    /// A TLS error after the handshake completed (NIOSSL's `uncleanShutdown` at a close without
    /// close_notify) is not a failed handshake, let alone a stripped STARTTLS.
    @Test func aTLSErrorAfterTheUpstreamHandshakeIsNotAFailure() {
        var h = H.greeted(configuration: Self.configuration(upstreamTLS: .opportunistic))
        h.client("EHLO c\r\n")
        h.upstream("250-up\r\n250 STARTTLS\r\n")
        h.upstream("220 go\r\n")
        h.apply(h.machine.receiveUpstreamTLSEstablished())
        h.upstream("250-up\r\n250 PIPELINING\r\n")
        _ = h.takeClient()
        h.client("QUIT\r\n")
        h.upstream("221 2.0.0 Bye\r\n")
        h.apply(h.machine.receiveUpstreamTLSFailed(reason: "uncleanShutdown"))
        #expect(h.anomalies.isEmpty)
        #expect(h.takeClient() == "221 2.0.0 Bye\r\n")
    }

    @Test func aTLSErrorMidSessionAfterTheHandshakeIsNotAFailureEither() {
        var h = H.greeted(configuration: Self.configuration(upstreamTLS: .opportunistic))
        h.client("EHLO c\r\n")
        h.upstream("250-up\r\n250 STARTTLS\r\n")
        h.upstream("220 go\r\n")
        h.apply(h.machine.receiveUpstreamTLSEstablished())
        h.upstream("250-up\r\n250 PIPELINING\r\n")
        _ = h.takeClient()
        h.apply(h.machine.receiveUpstreamTLSFailed(reason: "uncleanShutdown"))
        #expect(h.anomalies.isEmpty)
        #expect(h.takeClient() == "")
        #expect(!h.clientClosed)
    }

    /// A handshake that fails is its own anomaly, not `starttls_stripped`.
    @Test func aFailedUpstreamHandshakeIsUpstreamTLSFailed() {
        var h = H.greeted(configuration: Self.configuration(upstreamTLS: .opportunistic))
        h.client("EHLO c\r\n")
        h.upstream("250-up\r\n250 STARTTLS\r\n")
        h.upstream("220 go\r\n")
        #expect(h.upstreamTLSStarted)
        h.apply(h.machine.receiveUpstreamTLSFailed(reason: "handshakeFailed"))
        #expect(h.anomalies == ["upstream_tls_failed"])
        #expect(h.takeClient().hasPrefix("421 4.7.0 "))
        #expect(h.clientClosed)
    }
}
