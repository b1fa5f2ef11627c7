import NIOCore
import Testing

@testable import SMTPProxy

#if canImport(Glibc)
import Glibc
#endif

/// `getsockopt(SO_ORIGINAL_DST)` answers as Linux fills them, and the options transparent mode uses.
@Suite struct TransparentOriginalDestinationTests {
    static func ipv4(_ octets: [UInt8], port: UInt16, family: Int32 = AF_INET) -> sockaddr_in {
        var raw = sockaddr_in()
        raw.sin_family = sa_family_t(family)
        raw.sin_port = port.bigEndian
        withUnsafeMutableBytes(of: &raw.sin_addr) { $0.copyBytes(from: octets) }
        return raw
    }

    static func ipv6(_ octets: [UInt8], port: UInt16, family: Int32 = AF_INET6) -> sockaddr_in6 {
        var raw = sockaddr_in6()
        raw.sin6_family = sa_family_t(family)
        raw.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &raw.sin6_addr) { $0.copyBytes(from: octets) }
        return raw
    }

    static let documentationIPv6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25]
    static let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 198, 51, 100, 25]

    @Test func decodesAnIPv4OriginalDestinationWithItsPortInNetworkOrder() throws {
        let address = try #require(OriginalDestination.decode(Self.ipv4([198, 51, 100, 25], port: 25)))
        #expect(address.ipAddress == "198.51.100.25")
        #expect(address.port == 25)
        #expect(address.protocol == .inet)
    }

    @Test func decodesAnIPv6OriginalDestination() throws {
        let address = try #require(OriginalDestination.decode(Self.ipv6(Self.documentationIPv6, port: 587)))
        #expect(address.ipAddress == "2001:db8:2::25")
        #expect(address.port == 587)
    }

    @Test func anIPv4MappedIPv6DestinationComesBackAsIPv4() throws {
        let address = try #require(OriginalDestination.decode(Self.ipv6(Self.mapped, port: 25)))
        #expect(address.protocol == .inet)
        #expect(address.ipAddress == "198.51.100.25")
        #expect(address.port == 25)
    }

    @Test func refusesAnswersWithTheWrongFamilyOrNoPort() {
        #expect(OriginalDestination.decode(Self.ipv4([198, 51, 100, 25], port: 25, family: AF_INET6)) == nil)
        #expect(OriginalDestination.decode(Self.ipv4([198, 51, 100, 25], port: 0)) == nil)
        #expect(OriginalDestination.decode(Self.ipv4([0, 0, 0, 0], port: 0, family: 0)) == nil)
        #expect(OriginalDestination.decode(Self.ipv6(Self.documentationIPv6, port: 25, family: AF_INET)) == nil)
        #expect(OriginalDestination.decode(Self.ipv6(Self.documentationIPv6, port: 0)) == nil)
    }

    @Test(arguments: [
        ("198.51.100.25", OriginalDestination.Query.ipv4),
        ("2001:db8:2::25", .ipv6),
        ("::ffff:198.51.100.25", .ipv4),
        ("::1", .ipv6),
    ])
    func asksTheFamilyConntrackKeysTheConnectionBy(local: String, expected: OriginalDestination.Query) throws {
        let address = try SocketAddress(ipAddress: local, port: 10025)
        #expect(OriginalDestination.query(forLocal: address) == expected)
    }

    @Test func usesLinuxsOptionNumbers() {
        // linux/netfilter_ipv4.h SO_ORIGINAL_DST at SOL_IP; ip6_tables.h IP6T_SO_ORIGINAL_DST at SOL_IPV6.
        #expect(OriginalDestination.Query.ipv4.level.rawValue == 0)
        #expect(OriginalDestination.Query.ipv4.name.rawValue == 80)
        #expect(OriginalDestination.Query.ipv6.level.rawValue == 41)
        #expect(OriginalDestination.Query.ipv6.name.rawValue == 80)
        // linux/in.h IP_TRANSPARENT 19; linux/in6.h IPV6_TRANSPARENT 75.
        #expect(TransparentSocket.transparentOption(ipv6: false) == ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel(rawValue: 0), name: NIOBSDSocket.Option(rawValue: 19)))
        #expect(TransparentSocket.transparentOption(ipv6: true) == ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel(rawValue: 41), name: NIOBSDSocket.Option(rawValue: 75)))
    }

    @Test(arguments: [
        ("192.0.2.10", "198.51.100.25", "192.0.2.10"),
        ("::ffff:192.0.2.10", "198.51.100.25", "192.0.2.10"),
        ("2001:db8:1::10", "2001:db8:2::25", "2001:db8:1::10"),
        ("192.0.2.10", "2001:db8:2::25", nil),
    ] as [(String, String, String?)])
    func spoofsTheClientsAddressOnlyInTheDestinationsFamily(client: String, destination: String, expected: String?) throws {
        let source = TransparentRouter.spoofedSource(client: try SocketAddress(ipAddress: client, port: 40000), destination: try SocketAddress(ipAddress: destination, port: 25))
        #expect(source?.ipAddress == expected)
        if source != nil { #expect(source?.port == 0) }
    }
}
