import NIOCore
import SMTPCore
import SMTPProxy
import SMTPTranscript
import Testing

extension RelayHarness {
    /// Started with the client's endpoint known, connected and greeted: the client has the 220.
    static func greeted(configuration: RelayConfiguration, client: SessionRecord.Endpoint) -> RelayHarness {
        var harness = RelayHarness(configuration: configuration)
        harness.machine = RelaySessionStateMachine(configuration: configuration, facts: PolicyFacts(client: client))
        harness.connects = 0
        harness.events = []
        harness.toClient = ""
        harness.apply(harness.machine.start())
        harness.apply(harness.machine.receiveUpstreamConnected())
        harness.upstream("220 upstream ESMTP\r\n")
        _ = harness.takeClient()
        return harness
    }
}

/// `--xclient` (Postfix XCLIENT_README; README, "Command line").
@Suite struct RelaySessionStateMachineXCLIENTTests {
    typealias H = RelayHarness

    static let client = SessionRecord.Endpoint(ip: "192.0.2.7", port: 40123)
    static let offeringEHLO = "250-upstream\r\n250-PIPELINING\r\n250-XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN\r\n250 8BITMIME\r\n"
    static let secondEHLO = "250-upstream.example\r\n250-PIPELINING\r\n250-XCLIENT NAME ADDR PROTO HELO\r\n250 SMTPUTF8\r\n"
    static let xclientLine = "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.7 PORT=40123 HELO=client.example PROTO=ESMTP\r\n"
    /// The client's answer to the second EHLO: SMTPUTF8 from it, no 8BITMIME from the first.
    static let clientEHLOAnswer = "250-upstream.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"

    static func configuration(xclient: Bool = true, upstreamTLS: UpstreamTLSMode = .off) -> RelayConfiguration {
        var configuration = RelayConfiguration()
        configuration.xclient = xclient
        configuration.upstreamTLS = upstreamTLS
        return configuration
    }

    /// EHLO, XCLIENT and the second EHLO done: the client has its EHLO reply.
    static func identified(_ configuration: RelayConfiguration = configuration()) -> RelayHarness {
        var h = H.greeted(configuration: configuration, client: client)
        h.client("EHLO client.example\r\n")
        h.upstream(offeringEHLO)
        h.upstream("220 upstream ESMTP\r\n")
        h.upstream(secondEHLO)
        #expect(h.takeUpstream() == "EHLO client.example\r\n" + xclientLine + "EHLO client.example\r\n")
        #expect(h.takeClient() == clientEHLOAnswer)
        return h
    }

    @Test func sendsXCLIENTAfterTheEHLOThenEHLOsAgainAndAnswersFromThatReply() {
        var h = H.greeted(configuration: Self.configuration(), client: Self.client)
        h.client("EHLO client.example\r\n")
        #expect(h.takeUpstream() == "EHLO client.example\r\n")
        h.upstream(Self.offeringEHLO)
        #expect(h.takeUpstream() == Self.xclientLine)
        #expect(h.takeClient() == "")
        h.upstream("220 upstream ESMTP\r\n")
        #expect(h.takeUpstream() == "EHLO client.example\r\n")
        #expect(h.takeClient() == "", "the XCLIENT greeting is not the client's")
        h.upstream(Self.secondEHLO)
        let answer = h.takeClient()
        #expect(answer == Self.clientEHLOAnswer)
        #expect(!answer.contains("XCLIENT"))
        h.client("MAIL FROM:<a@example.com>\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<a@example.com>\r\n")
        #expect(h.anomalies.isEmpty)
    }

    @Test(arguments: [
        (false, offeringEHLO),
        (true, plainEHLO),
        (true, "250-upstream\r\n250 XCLIENT\r\n"),
        (true, "250-upstream\r\n250 XCLIENT LOGIN DESTADDR\r\n"),
    ])
    func sendsXCLIENTOnlyWhenEnabledAndOffered(enabled: Bool, upstreamEHLO: String) {
        var h = H.greeted(configuration: Self.configuration(xclient: enabled), client: Self.client)
        h.client("EHLO client.example\r\n")
        h.upstream(upstreamEHLO)
        #expect(h.takeUpstream() == "EHLO client.example\r\n")
        #expect(h.takeClient().hasPrefix("250-upstream\r\n250-PIPELINING\r\n"))
        h.client("MAIL FROM:<a@example.com>\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<a@example.com>\r\n")
    }

    static let plainEHLO = RelayHarness.plainEHLO

    @Test(arguments: [
        ("2001:db8::25", "IPV6:2001:db8::25"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
    ])
    func namesIPv6ClientsWithTheIPV6Prefix(ip: String, addr: String) {
        var h = H.greeted(configuration: Self.configuration(), client: .init(ip: ip, port: 2525))
        h.client("EHLO client.example\r\n")
        h.upstream("250-upstream\r\n250 XCLIENT ADDR PORT\r\n")
        #expect(h.takeUpstream() == "EHLO client.example\r\nXCLIENT ADDR=\(addr) PORT=2525\r\n")
    }

    @Test func aClientUsingHELOGetsPROTOSMTPOnlyAfterAnEHLOShowedTheOffer() {
        var h = H.greeted(configuration: Self.configuration(), client: Self.client)
        h.client("HELO old.example\r\n")
        #expect(h.takeUpstream() == "HELO old.example\r\n")
        // A reply to HELO lists no extensions: nothing is known about XCLIENT.
        h.upstream("250 upstream\r\n")
        #expect(h.takeClient() == "250 upstream\r\n")
        #expect(h.takeUpstream() == "")
    }

    @Test func goesOnWithoutXCLIENTWhenTheUpstreamRefusesIt() {
        var h = H.greeted(configuration: Self.configuration(), client: Self.client)
        h.client("EHLO client.example\r\n")
        h.upstream(Self.offeringEHLO)
        _ = h.takeUpstream()
        h.upstream("550 5.7.0 Error: insufficient authorization\r\n")
        #expect(h.takeUpstream() == "", "no EHLO again: the session was not reset")
        #expect(h.takeClient() == "250-upstream\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 CHUNKING\r\n")
        #expect(h.anomalies.isEmpty)
        let upstreamEvents: [String] = h.events.compactMap {
            switch $0 {
            case .upstreamCommand(let line): ">" + line
            case .upstreamReply(let reply): "<\(reply.code)"
            default: nil
            }
        }
        #expect(upstreamEvents.contains(">" + Self.xclientLine.dropLast()))
        #expect(upstreamEvents.contains("<550"))
        #expect(h.events.contains { if case .xclientRefused(let reply) = $0 { reply.code == 550 } else { false } })
        h.client("MAIL FROM:<a@example.com>\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<a@example.com>\r\n")
        // Not tried again on the same connection.
        h.upstream("250 Ok\r\n")
        h.client("RSET\r\nEHLO client.example\r\n")
        h.upstream("250 Ok\r\n" + Self.offeringEHLO)
        #expect(!h.takeUpstream().contains("XCLIENT"))
    }

    @Test func holdsPipelinedClientCommandsUntilXCLIENTAndTheNewEHLOAreDone() {
        for dripped in [false, true] {
            var h = H.greeted(configuration: Self.configuration(), client: Self.client)
            let input = "EHLO client.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nNOOP\r\n"
            if dripped { h.clientDripped(input) } else { h.client(input) }
            #expect(h.takeUpstream() == "EHLO client.example\r\n")
            h.upstream(Self.offeringEHLO)
            #expect(h.takeUpstream() == Self.xclientLine)
            h.upstream("220 upstream ESMTP\r\n")
            #expect(h.takeUpstream() == "EHLO client.example\r\n")
            h.upstream(Self.secondEHLO)
            #expect(h.takeUpstream() == "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
            h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
            #expect(h.takeClient() == Self.clientEHLOAnswer + "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n")
        }
    }

    @Test func splitsALongIdentityOverSeveralXCLIENTCommandsEachAnsweredBeforeTheNext() {
        var h = H.greeted(configuration: Self.configuration(), client: Self.client)
        // 458 octets: with the other attributes the line would pass 512.
        let name = String(repeating: "a", count: 450) + ".example"
        h.client("EHLO \(name)\r\n")
        h.upstream(Self.offeringEHLO)
        #expect(h.takeUpstream() == "EHLO \(name)\r\nXCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.7 PORT=40123\r\n")
        h.upstream("220 upstream ESMTP\r\n")
        #expect(h.takeUpstream() == "XCLIENT HELO=\(name) PROTO=ESMTP\r\n")
        h.upstream("220 upstream ESMTP\r\n")
        #expect(h.takeUpstream() == "EHLO \(name)\r\n")
        h.upstream(Self.secondEHLO)
        #expect(h.takeClient() == Self.clientEHLOAnswer)
    }

    @Test func aRefusalAfterAnAcceptedXCLIENTStillEHLOsAgain() {
        var h = H.greeted(configuration: Self.configuration(), client: Self.client)
        let name = String(repeating: "n", count: 250) + ".example" + String(repeating: "m", count: 200)
        h.client("EHLO \(name)\r\n")
        h.upstream(Self.offeringEHLO)
        _ = h.takeUpstream()
        h.upstream("220 upstream ESMTP\r\n")
        #expect(h.takeUpstream().hasPrefix("XCLIENT "))
        h.upstream("501 5.5.4 Bad PROTO syntax\r\n")
        #expect(h.takeUpstream() == "EHLO \(name)\r\n")
        #expect(h.events.contains { if case .xclientRefused(let reply) = $0 { reply.code == 501 } else { false } })
        h.upstream(Self.secondEHLO)
        #expect(h.takeClient() == Self.clientEHLOAnswer)
    }

    @Test func sendsXCLIENTAgainAfterAReconnectionBeforeTheClientsCommand() {
        var h = Self.identified()
        h.client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n")
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        h.client("DATA\r\n")
        h.upstream("354 go ahead\r\n")
        _ = h.takeClient()
        _ = h.takeUpstream()
        h.client("a\nb\r\n.\r\n")
        #expect(h.upstreamClosed)
        #expect(h.takeClient().hasPrefix("550 5.5.2"))
        h.client("MAIL FROM:<c@x>\r\n")
        #expect(h.connects == 2)
        h.apply(h.machine.receiveUpstreamConnected())
        h.upstream("220 again\r\n")
        #expect(h.takeUpstream().hasSuffix("EHLO client.example\r\n"))
        h.upstream(Self.offeringEHLO)
        #expect(h.takeUpstream() == Self.xclientLine)
        h.upstream("220 upstream ESMTP\r\n")
        #expect(h.takeUpstream() == "EHLO client.example\r\n")
        h.upstream(Self.secondEHLO)
        #expect(h.takeUpstream() == "MAIL FROM:<c@x>\r\n")
        h.upstream("250 Ok\r\n")
        #expect(h.takeClient() == "250 Ok\r\n")
    }

    @Test func sendsXCLIENTAfterThePostTLSEHLO() {
        var h = H.greeted(configuration: Self.configuration(upstreamTLS: .opportunistic), client: Self.client)
        h.client("EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n")
        h.upstream("250-upstream\r\n250-STARTTLS\r\n250 XCLIENT NAME ADDR PROTO HELO PORT\r\n")
        #expect(h.takeUpstream() == "EHLO client.example\r\nSTARTTLS\r\n", "never XCLIENT in plaintext before TLS")
        h.upstream("220 2.0.0 Ready to start TLS\r\n")
        #expect(h.upstreamTLSStarted)
        h.apply(h.machine.receiveUpstreamTLSEstablished())
        #expect(h.takeUpstream() == "EHLO client.example\r\n")
        h.upstream(Self.offeringEHLO)
        #expect(h.takeUpstream() == Self.xclientLine)
        h.upstream("220 upstream ESMTP\r\n")
        #expect(h.takeUpstream() == "EHLO client.example\r\n")
        h.upstream(Self.secondEHLO)
        #expect(h.takeClient() == Self.clientEHLOAnswer)
        #expect(h.takeUpstream() == "MAIL FROM:<a@example.com>\r\n")
    }

    @Test func sendsXCLIENTWhenTheUpstreamRefusesSTARTTLS() {
        var h = H.greeted(configuration: Self.configuration(upstreamTLS: .opportunistic), client: Self.client)
        h.client("EHLO client.example\r\n")
        h.upstream("250-upstream\r\n250-STARTTLS\r\n250 XCLIENT ADDR\r\n")
        _ = h.takeUpstream()
        h.upstream("454 4.7.0 TLS not available\r\n")
        #expect(h.takeUpstream() == "XCLIENT ADDR=192.0.2.7\r\n")
        h.upstream("220 upstream ESMTP\r\n")
        #expect(h.takeUpstream() == "EHLO client.example\r\n")
        h.upstream(Self.secondEHLO)
        #expect(h.takeClient() == Self.clientEHLOAnswer)
    }

    /// The upstream session XCLIENT started is identified by the proxy's EHLO after it: a second
    /// client EHLO is answered from that reply, with neither XCLIENT nor EHLO again upstream (a
    /// strict server refuses a second EHLO).
    @Test func aSecondEHLOOnTheSameConnectionIsAnsweredByTheProxyWithoutXCLIENT() {
        var h = Self.identified()
        h.client("EHLO client.example\r\n")
        #expect(h.takeUpstream() == "")
        #expect(h.takeClient() == Self.clientEHLOAnswer)
    }

    @Test func stillRefusesXCLIENTFromTheClient() {
        var h = Self.identified()
        h.client("XCLIENT ADDR=10.0.0.1\r\n")
        #expect(h.takeClient().hasPrefix("502 "))
        #expect(h.takeUpstream() == "")
    }

    @Test func anUpstreamThatClosesAfterXCLIENTEndsTheSessionWith421() {
        var h = H.greeted(configuration: Self.configuration(), client: Self.client)
        h.client("EHLO client.example\r\n")
        h.upstream(Self.offeringEHLO)
        h.apply(h.machine.receiveUpstreamClosed())
        #expect(h.takeClient().hasPrefix("421 4.4.2"))
        #expect(h.clientClosed)
    }
}
