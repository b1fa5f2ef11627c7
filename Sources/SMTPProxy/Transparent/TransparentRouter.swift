import Logging
import NIOConcurrencyHelpers
import NIOCore

/// `--transparent`: every connection's upstream is the address its client dialled, as a gateway's
/// firewall intercepted it (nftables/iptables `REDIRECT` or `TPROXY`).
public struct TransparentConfiguration: Sendable {
    /// `--spoof-source`: connect upstream from the client's own address (needs TPROXY routing
    /// for the replies, and CAP_NET_ADMIN).
    public var spoofSource: Bool

    public init(spoofSource: Bool = false) {
        self.spoofSource = spoofSource
    }

    /// Why this process cannot spoof a source address (IP_TRANSPARENT refused), or nil.
    public static func spoofingPermissionProblem() -> String? {
        TransparentSocket.transparentPermissionProblem()
    }
}

/// Decides, for each accepted connection of a transparent proxy, where it is relayed.
final class TransparentRouter: Sendable {
    enum Route: Sendable {
        /// Relay to `upstream`, from `source` when the client's address is spoofed.
        case relay(upstream: HostPort, source: SocketAddress?)
        /// The destination is the proxy itself; refuse, with the reason for the transcript.
        case loop(String)
    }

    let configuration: TransparentConfiguration
    private let listeners = NIOLockedValueBox<[SocketAddress]>([])
    private let logger: Logger

    init(configuration: TransparentConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// A listener is bound (its real port known): connections to it are loops.
    func noteListening(on address: SocketAddress) {
        listeners.withLockedValue { $0.append(address) }
    }

    /// Before a listener binds: `IP_TRANSPARENT`, so that TPROXY can hand it connections to
    /// foreign addresses. Without CAP_NET_ADMIN the listener still serves `REDIRECT`, which needs
    /// no privilege, so a refusal is logged, not fatal.
    func prepareListener(_ channel: any Channel, listen: HostPort) -> EventLoopFuture<Void> {
        // A host name binds IPv4 first; an IPv6 literal is the only IPv6 listener.
        return TransparentSocket.makeTransparent(channel, ipv6: listen.host.contains(":")).recover { [logger] error in
            logger.warning("IP_TRANSPARENT not set (needs CAP_NET_ADMIN): TPROXY cannot deliver to this listener, REDIRECT still can", metadata: ["address": "\(listen)", "error": "\(error)"])
        }
    }

    /// Where the client was going: the `REDIRECT`ed original destination, else the accepted
    /// socket's own local address (TPROXY keeps the destination there). IPv4-mapped addresses of
    /// a dual-stack listener come back as IPv4.
    func destination(of channel: any Channel) -> EventLoopFuture<SocketAddress?> {
        let local = channel.localAddress?.unmappingIPv4
        return TransparentSocket.originalDestination(of: channel).map { $0 ?? local }
    }

    func route(client: SocketAddress?, destination: SocketAddress) -> Route {
        let guardian = LoopGuard(listeners: listeners.withLockedValue { $0 })
        if let loop = guardian.loop(to: destination, localAddresses: TransparentSocket.hostAddresses) {
            return .loop(loop)
        }
        let upstream = HostPort(host: destination.ipAddress ?? "", port: destination.port ?? 0)
        return .relay(upstream: upstream, source: configuration.spoofSource ? Self.spoofedSource(client: client, destination: destination) : nil)
    }

    /// The client's address with port 0, when it can source a connection to `destination`
    /// (same address family).
    static func spoofedSource(client: SocketAddress?, destination: SocketAddress) -> SocketAddress? {
        guard let client = client?.unmappingIPv4, let ip = client.ipAddress else { return nil }
        guard client.protocol == destination.unmappingIPv4.protocol else { return nil }
        return try? SocketAddress(ipAddress: ip, port: 0)
    }
}
