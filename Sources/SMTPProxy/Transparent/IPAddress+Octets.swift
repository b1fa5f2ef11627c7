import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The octets of an IP address, as transparent mode compares them: an IPv4 address is 4 octets,
/// an IPv6 address 16, and an IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2, how a dual-stack
/// listener sees an IPv4 client) is its 4 IPv4 octets, so one address has one spelling.
extension SocketAddress {
    /// nil for a Unix domain socket.
    var ipOctets: [UInt8]? {
        switch self {
        case .v4(let address):
            return withUnsafeBytes(of: address.address.sin_addr) { Array($0) }
        case .v6(let address):
            let octets = withUnsafeBytes(of: address.address.sin6_addr) { Array($0) }
            return Self.isIPv4Mapped(octets) ? Array(octets[12...]) : octets
        case .unixDomainSocket:
            return nil
        }
    }

    /// The same address with an IPv4-mapped IPv6 address turned into the IPv4 address it maps.
    var unmappingIPv4: SocketAddress {
        guard case .v6(let address) = self else { return self }
        let octets = withUnsafeBytes(of: address.address.sin6_addr) { Array($0) }
        guard Self.isIPv4Mapped(octets) else { return self }
        var ipv4 = sockaddr_in()
        ipv4.sin_family = sa_family_t(AF_INET)
        ipv4.sin_port = address.address.sin6_port
        withUnsafeMutableBytes(of: &ipv4.sin_addr) { $0.copyBytes(from: octets[12...]) }
        return SocketAddress(ipv4)
    }

    /// `::ffff:0:0/96`.
    static func isIPv4Mapped(_ octets: [UInt8]) -> Bool {
        octets.count == 16 && octets[0..<10].allSatisfy { $0 == 0 } && octets[10] == 0xFF && octets[11] == 0xFF
    }
}
