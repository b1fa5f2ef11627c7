import NIOCore
import NIOPosix
import NIOSSL
import SMTPCore
import SMTPTranscript
import Synchronization

/// A host and port, as `--listen` and `--upstream` take them.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `HOST:PORT`, `[IPv6]:PORT`; nil when malformed.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Everything one proxy instance is started with.
public struct ProxyServerConfiguration: Sendable {
    public var listen: [HostPort]
    public var upstream: HostPort
    public var relay: RelayConfiguration
    /// Open client connections in total (`421 4.7.0` above it).
    public var maxConnections = 1000
    /// Open client connections per client IP (Postfix `smtpd_client_connection_count_limit`: 50).
    public var maxConnectionsPerClient = 50
    /// Seconds to wait for the upstream's TCP connection.
    public var upstreamConnectTimeout: Int64 = 30
    public var clientTLSContext: NIOSSLContext?
    public var upstreamTLSContext: NIOSSLContext?
    /// SNI and the name checked under `--upstream-tls verify`; nil for an IP address.
    public var upstreamServerHostname: String?

    public init(listen: [HostPort], upstream: HostPort, relay: RelayConfiguration) {
        self.listen = listen
        self.upstream = upstream
        self.relay = relay
    }
}

/// What every session of one proxy shares.
struct RelaySessionContext: Sendable {
    var configuration: RelayConfiguration
    var policy: any SessionPolicy
    var upstream: HostPort
    var connectTimeout: TimeAmount
    var clientTLSContext: NIOSSLContext?
    var upstreamTLSContext: NIOSSLContext?
    var upstreamServerHostname: String?
    var transcripts: TranscriptWriter
    var sessionIDs: SessionIDSource
}

/// Session ids for every event loop, in time order (ULIDs from `SessionIDGenerator`).
final class SessionIDSource: Sendable {
    private let generator = Mutex(SessionIDGenerator())

    func next(at time: Timestamp) -> String {
        generator.withLock { $0.next(at: time) }
    }
}

/// The proxy's listeners (DESIGN §5): accepts clients, enforces the connection limits, and gives
/// each connection a `RelayHandler`.
public final class ProxyServer: Sendable {
    public let configuration: ProxyServerConfiguration
    private let group: any EventLoopGroup
    private let session: RelaySessionContext
    private let limiter: ConnectionLimiter
    private let registry = ChannelRegistry()

    public init(configuration: ProxyServerConfiguration, group: any EventLoopGroup, policy: any SessionPolicy = AllowAllPolicy(), transcripts: TranscriptWriter) {
        self.configuration = configuration
        self.group = group
        self.limiter = ConnectionLimiter(maxTotal: configuration.maxConnections, maxPerClient: configuration.maxConnectionsPerClient)
        self.session = RelaySessionContext(
            configuration: configuration.relay,
            policy: policy,
            upstream: configuration.upstream,
            connectTimeout: .seconds(configuration.upstreamConnectTimeout),
            clientTLSContext: configuration.clientTLSContext,
            upstreamTLSContext: configuration.upstreamTLSContext,
            upstreamServerHostname: configuration.upstreamServerHostname,
            transcripts: transcripts,
            sessionIDs: SessionIDSource()
        )
    }

    public var openConnections: Int { limiter.openConnections }

    /// Binds every listen address; returns the bound addresses (port 0 becomes the real port).
    public func start() async throws -> [SocketAddress] {
        var addresses: [SocketAddress] = []
        for listen in configuration.listen {
            let channel = try await bootstrap().bind(host: listen.host, port: listen.port).get()
            registry.state.withLock { $0.listeners.append(channel) }
            if let address = channel.localAddress { addresses.append(address) }
        }
        return addresses
    }

    private func bootstrap() -> ServerBootstrap {
        let session = self.session
        let limiter = self.limiter
        let hostname = configuration.relay.hostname
        let registry = self.registry
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 512, initial: 8192, maximum: 65536))
            .childChannelInitializer { channel in
                let clientIP = channel.remoteAddress?.ipAddress ?? "unknown"
                guard limiter.acquire(clientIP) else {
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RefuseHandler(reply: "421 4.7.0 \(hostname) Error: too many connections\r\n"))
                    }
                }
                let id = ObjectIdentifier(channel)
                registry.state.withLock { $0.clients[id] = channel }
                channel.closeFuture.whenComplete { _ in
                    limiter.release(clientIP)
                    registry.state.withLock { _ = $0.clients.removeValue(forKey: id) }
                }
                let client = channel.remoteAddress.map { SessionRecord.Endpoint(ip: $0.ipAddress ?? "unknown", port: $0.port ?? 0) }
                let server = channel.localAddress.map { SessionRecord.Endpoint(ip: $0.ipAddress ?? "unknown", port: $0.port ?? 0) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RelayHandler(session: session, client: client, server: server))
                }
            }
    }

    /// SIGTERM: stop accepting, let sessions finish until `deadline` seconds, then close the rest.
    public func drain(deadline seconds: Int64) async {
        let listeners = registry.state.withLock { $0.listeners }
        for listener in listeners { try? await listener.close() }
        var waited: Int64 = 0
        while limiter.openConnections > 0 && waited < seconds * 10 {
            try? await Task.sleep(nanoseconds: 100_000_000)
            waited += 1
        }
        let remaining = registry.state.withLock { Array($0.clients.values) }
        for channel in remaining { try? await channel.close() }
    }
}

/// The listeners and open client channels, for draining.
final class ChannelRegistry: Sendable {
    let state = Mutex<(listeners: [Channel], clients: [ObjectIdentifier: Channel])>(([], [:]))
}

/// Answers a connection over the limits with one reply and closes it.
final class RefuseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reply: String

    init(reply: String) {
        self.reply = reply
    }

    func channelActive(context: ChannelHandlerContext) {
        let buffer = context.channel.allocator.buffer(string: reply)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

@available(*, unavailable)
extension RefuseHandler: Sendable {}
