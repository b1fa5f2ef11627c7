import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a redirected connection was going: Linux netfilter keeps the address a client dialled
/// before an iptables/nftables `REDIRECT` (or `DNAT`) rewrote it to the proxy's listener, and
/// returns it from `getsockopt` on the accepted socket.
///
/// The options are Linux's ABI, not in Glibc's headers: `SO_ORIGINAL_DST` (80) at level `SOL_IP`
/// (linux/netfilter_ipv4.h) answers a `sockaddr_in`; `IP6T_SO_ORIGINAL_DST` (80) at level
/// `SOL_IPV6` (linux/netfilter_ipv6/ip6_tables.h) answers a `sockaddr_in6`. Both fail with
/// `ENOENT` when conntrack knows no such connection (the client came straight to the proxy).
enum OriginalDestination {
    /// Which `getsockopt` asks a socket for its original destination.
    enum Query: Sendable, Hashable {
        /// `getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sockaddr_in, ...)`.
        case ipv4
        /// `getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &sockaddr_in6, ...)`.
        case ipv6

        var level: NIOBSDSocket.OptionLevel {
            switch self {
            case .ipv4: NIOBSDSocket.OptionLevel(rawValue: 0)  // SOL_IP
            case .ipv6: NIOBSDSocket.OptionLevel(rawValue: 41)  // SOL_IPV6
            }
        }

        var name: NIOBSDSocket.Option {
            switch self {
            case .ipv4: NIOBSDSocket.Option(rawValue: 80)  // SO_ORIGINAL_DST
            case .ipv6: NIOBSDSocket.Option(rawValue: 80)  // IP6T_SO_ORIGINAL_DST
            }
        }
    }

    /// The query that fits a connection accepted on `local`: conntrack keys an IPv4 connection by
    /// IPv4 addresses even when a dual-stack socket shows it IPv4-mapped.
    static func query(forLocal local: SocketAddress) -> Query? {
        switch local.unmappingIPv4 {
        case .v4: .ipv4
        case .v6: .ipv6
        case .unixDomainSocket: nil
        }
    }

    /// The address in a `SO_ORIGINAL_DST` answer; nil unless it is an IPv4 address with a port.
    static func decode(_ raw: sockaddr_in) -> SocketAddress? {
        guard raw.sin_family == sa_family_t(AF_INET), raw.sin_port != 0 else { return nil }
        return SocketAddress(raw)
    }

    /// The address in an `IP6T_SO_ORIGINAL_DST` answer; nil unless it is an IPv6 address with a
    /// port. An IPv4-mapped address comes back as IPv4.
    static func decode(_ raw: sockaddr_in6) -> SocketAddress? {
        guard raw.sin6_family == sa_family_t(AF_INET6), raw.sin6_port != 0 else { return nil }
        return SocketAddress(raw).unmappingIPv4
    }
}
