import NIOCore
import SMTPCore
import SMTPProxy
import Testing

/// `--client-tls passthrough`: the client's STARTTLS goes to the upstream, and after the upstream's 220
/// the machine hands the session to the blind relay.
@Suite struct RelaySessionStateMachinePassthroughTests {
    typealias H = RelayHarness

    static let ehloWithSTARTTLS = "250-upstream\r\n250-PIPELINING\r\n250-SIZE 20000000\r\n250 STARTTLS\r\n"

    private static var passthrough: RelayConfiguration {
        var configuration = RelayConfiguration()
        configuration.clientTLS = .passthrough
        // What `smtpscope proxy --client-tls passthrough` implies; the machine must not start
        // TLS upstream on its own even when told `opportunistic`.
        configuration.upstreamTLS = .opportunistic
        return configuration
    }

    private func greeted(upstreamEHLO: String = ehloWithSTARTTLS) -> RelayHarness {
        var h = H(configuration: Self.passthrough)
        h.apply(h.machine.receiveUpstreamConnected())
        h.upstream("220 upstream ESMTP\r\n")
        _ = h.takeClient()
        h.client("EHLO client.example\r\n")
        #expect(h.takeUpstream() == "EHLO client.example\r\n", "the proxy never sends its own STARTTLS under passthrough")
        h.upstream(upstreamEHLO)
        return h
    }

    @Test func offersSTARTTLSOnlyWhenTheUpstreamDoes() {
        var offered = greeted()
        #expect(offered.takeClient().contains("STARTTLS"))
        var withheld = greeted(upstreamEHLO: H.plainEHLO)
        #expect(!withheld.takeClient().contains("STARTTLS"))
        #expect(!withheld.upstreamTLSStarted && !offered.upstreamTLSStarted)
    }

    @Test func relaysSTARTTLSAndHandsOverAfterThe220() {
        var h = greeted()
        _ = h.takeClient()
        h.client("STARTTLS\r\n")
        #expect(h.takeUpstream() == "STARTTLS\r\n")
        #expect(h.takeClient() == "", "the client waits for the upstream's own answer")
        h.upstream("220 2.0.0 Ready to start TLS\r\n")
        #expect(h.takeClient() == "220 2.0.0 Ready to start TLS\r\n")
        #expect(h.passthroughStarted)
        #expect(!h.clientTLSStarted, "the proxy terminates nothing")
        #expect(h.machine.wantsClientBytes)
        #expect(h.machine.clientTimeout == nil && h.machine.upstreamTimeout == nil, "the blind relay keeps its own idle timer")
        #expect(h.events.contains { if case .passthroughStarted = $0 { true } else { false } })
        // Nothing reaches the machine any more, and whatever did would not be parsed.
        h.client("\u{16}\u{03}\u{01}garbage")
        #expect(h.takeUpstream() == "" && h.takeClient() == "")
    }

    @Test func discardsPlaintextPipelinedAfterSTARTTLSOnBothSides() {
        var h = greeted()
        _ = h.takeClient()
        h.client("STARTTLS\r\nMAIL FROM:<injected@example>\r\n")
        #expect(h.takeUpstream() == "STARTTLS\r\n", "CVE-2011-0411: nothing after STARTTLS goes upstream in plaintext")
        h.upstream("220 2.0.0 Ready\r\n250 2.1.0 injected reply\r\n")
        #expect(h.takeClient() == "220 2.0.0 Ready\r\n")
        #expect(h.passthroughStarted)
        // One anomaly per kind and session; both sides' plaintext was dropped all the same.
        #expect(h.anomalies.contains("plaintext_after_starttls"))
    }

    @Test func relaysTheUpstreamsRefusalAndStaysInPlaintext() {
        var h = greeted()
        _ = h.takeClient()
        h.client("STARTTLS\r\n")
        h.upstream("454 4.7.0 TLS not available due to local problem\r\n")
        #expect(h.takeClient() == "454 4.7.0 TLS not available due to local problem\r\n")
        #expect(!h.passthroughStarted)
        h.client("NOOP\r\n")
        #expect(h.takeClient() == "250 2.0.0 Ok\r\n")
    }

    @Test func answers454WhenTheUpstreamOffersNoSTARTTLS() {
        var h = greeted(upstreamEHLO: H.plainEHLO)
        _ = h.takeClient()
        h.client("STARTTLS\r\n")
        #expect(h.takeClient() == "454 4.7.0 TLS not available\r\n")
        #expect(h.takeUpstream() == "")
    }

    @Test func answers503BeforeEHLO() {
        var h = H(configuration: Self.passthrough)
        h.apply(h.machine.receiveUpstreamConnected())
        h.upstream("220 upstream ESMTP\r\n")
        _ = h.takeClient()
        h.client("STARTTLS\r\n")
        #expect(h.takeClient() == "503 5.5.1 Error: send EHLO first\r\n")
        #expect(h.takeUpstream() == "")
    }

    @Test func eitherSideClosingEndsTheSession() {
        var upstreamFirst = greeted()
        upstreamFirst.client("STARTTLS\r\n")
        upstreamFirst.upstream("220 Ready\r\n")
        upstreamFirst.apply(upstreamFirst.machine.receiveUpstreamClosed())
        #expect(upstreamFirst.clientClosed)
        #expect(upstreamFirst.machine.isClosed)

        var clientFirst = greeted()
        clientFirst.client("STARTTLS\r\n")
        clientFirst.upstream("220 Ready\r\n")
        clientFirst.apply(clientFirst.machine.receiveClientClosed())
        #expect(clientFirst.upstreamClosed)
    }

    @Test func anIdlePassthroughSessionClosesWithoutAPlaintextReply() {
        var h = greeted()
        h.client("STARTTLS\r\n")
        h.upstream("220 Ready\r\n")
        _ = h.takeClient()
        h.apply(h.machine.receiveTimeout(.client))
        #expect(h.takeClient() == "", "a 421 in plaintext would only corrupt the TLS stream")
        #expect(h.clientClosed && h.upstreamClosed)
        #expect(h.events.contains { if case .close(.proxy, .timeout) = $0 { true } else { false } })
    }
}
