import NIOCore
import Testing

@testable import SMTPProxy

/// A transparent proxy never relays to itself.
@Suite struct TransparentLoopGuardTests {
    static func address(_ ip: String, _ port: Int) throws -> SocketAddress {
        try SocketAddress(ipAddress: ip, port: port)
    }

    let hostAddresses: [SocketAddress]
    let wildcard: LoopGuard

    init() throws {
        hostAddresses = try ["192.0.2.1", "198.51.100.1", "2001:db8:1::1", "127.0.0.1"].map { try Self.address($0, 0) }
        wildcard = LoopGuard(listeners: [try Self.address("0.0.0.0", 10025), try Self.address("::", 10025)])
    }

    @Test(arguments: [
        // Straight to the proxy's port on one of the host's addresses.
        ("192.0.2.1", 10025, true),
        ("2001:db8:1::1", 10025, true),
        ("::ffff:198.51.100.1", 10025, true),
        // Loopback and "this host" are the host whatever the interfaces say.
        ("127.0.0.2", 10025, true),
        ("::1", 10025, true),
        ("0.0.0.0", 10025, true),
        // A REDIRECTed or TPROXYed connection to a foreign server.
        ("198.51.100.25", 25, false),
        ("2001:db8:2::25", 25, false),
        // TPROXY to a foreign address that happens to use the proxy's port.
        ("198.51.100.25", 10025, false),
        // The host itself, on a port the proxy does not listen on (a local MTA).
        ("192.0.2.1", 25, false),
    ])
    func refusesOnlyDestinationsThatAreThisProxy(ip: String, port: Int, loops: Bool) throws {
        let detail = wildcard.loop(to: try Self.address(ip, port)) { hostAddresses }
        #expect((detail != nil) == loops, "\(ip):\(port): \(detail ?? "no loop")")
    }

    @Test func asksForTheHostsAddressesOnlyWhenAListenerHasTheDestinationsPort() throws {
        var asked = 0
        _ = wildcard.loop(to: try Self.address("198.51.100.25", 25)) {
            asked += 1
            return hostAddresses
        }
        #expect(asked == 0)
        _ = wildcard.loop(to: try Self.address("198.51.100.25", 10025)) {
            asked += 1
            return hostAddresses
        }
        #expect(asked == 1)
    }

    @Test func aSpecificListenerLoopsOnlyOnItsOwnAddress() throws {
        let guardian = LoopGuard(listeners: [try Self.address("192.0.2.1", 10025)])
        #expect(guardian.loop(to: try Self.address("192.0.2.1", 10025)) { hostAddresses } != nil)
        #expect(guardian.loop(to: try Self.address("::ffff:192.0.2.1", 10025)) { hostAddresses } != nil)
        #expect(guardian.loop(to: try Self.address("198.51.100.1", 10025)) { hostAddresses } == nil)
    }

    @Test func theDetailNamesTheDestination() throws {
        let detail = try #require(wildcard.loop(to: try Self.address("::ffff:192.0.2.1", 10025)) { hostAddresses })
        #expect(detail.contains("192.0.2.1:10025"))
    }
}
