import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The Linux socket options transparent mode reads and sets, through NIO's `SocketOptionProvider`.
enum TransparentSocket {
    /// The connection's original destination after a `REDIRECT`; nil when netfilter has none for
    /// it (no NAT: a TPROXY connection or one made straight to the proxy), or the channel is not a
    /// socket.
    static func originalDestination(of channel: any Channel) -> EventLoopFuture<SocketAddress?> {
        guard let local = channel.localAddress, let query = OriginalDestination.query(forLocal: local),
            let provider = channel as? any SocketOptionProvider
        else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        let answer: EventLoopFuture<SocketAddress?>
        switch query {
        case .ipv4:
            answer = provider.unsafeGetSocketOption(level: query.level, name: query.name).map { (raw: sockaddr_in) in
                OriginalDestination.decode(raw)
            }
        case .ipv6:
            answer = provider.unsafeGetSocketOption(level: query.level, name: query.name).map { (raw: sockaddr_in6) in
                OriginalDestination.decode(raw)
            }
        }
        // ENOENT: conntrack has no NAT for it. Any other failure leaves the same fallback.
        return answer.recover { _ in nil }
    }

    /// `IP_TRANSPARENT` (SOL_IP, 19) or `IPV6_TRANSPARENT` (SOL_IPV6, 75), per the family of the
    /// socket's address: lets a listener accept connections to foreign addresses (TPROXY) and an
    /// upstream socket bind to the client's address (`--spoof-source`). Needs CAP_NET_ADMIN.
    static func transparentOption(ipv6: Bool) -> ChannelOptions.Types.SocketOption {
        ipv6
            ? ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel(rawValue: 41), name: NIOBSDSocket.Option(rawValue: 75))
            : ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel(rawValue: 0), name: NIOBSDSocket.Option(rawValue: 19))
    }

    /// The transparent option for a socket of `address`'s family.
    static func transparentOption(for address: SocketAddress) -> ChannelOptions.Types.SocketOption {
        if case .v6 = address.unmappingIPv4 { return transparentOption(ipv6: true) }
        return transparentOption(ipv6: false)
    }

    /// Sets the transparent option on a channel's socket.
    static func makeTransparent(_ channel: any Channel, ipv6: Bool) -> EventLoopFuture<Void> {
        channel.setOption(transparentOption(ipv6: ipv6), value: 1)
    }

    /// Whether this process may set `IP_TRANSPARENT` (CAP_NET_ADMIN), tried on a throwaway socket
    /// so that `--spoof-source` fails at start-up, not on the first session. Returns the error text.
    static func transparentPermissionProblem() -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "socket(): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        var on: CInt = 1
        guard setsockopt(fd, 0, 19, &on, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
            return "setsockopt(IP_TRANSPARENT): \(String(cString: strerror(errno)))"
        }
        return nil
    }

    /// The addresses of the host's interfaces, for `LoopGuard`.
    static func hostAddresses() -> [SocketAddress] {
        ((try? System.enumerateDevices()) ?? []).compactMap(\.address)
    }
}
