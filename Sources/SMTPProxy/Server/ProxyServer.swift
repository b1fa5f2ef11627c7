import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SMTPCore
import SMTPTranscript

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
    /// SMTPS listeners (`--implicit-tls-listen`, RFC 8314 §3.3): TLS from the first octet with
    /// `clientTLSContext`.
    public var implicitTLSListen: [HostPort] = []
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
    /// `--proxy-protocol`: every client connection starts with a HAProxy PROXY v1 or v2 header.
    public var proxyProtocol = false
    public var proxyProtocolLimits = ProxyProtocolParser.Limits()
    /// Seconds a client has to send the whole PROXY header (Postfix
    /// `smtpd_upstream_proxy_timeout`: 5 s; 10 s leaves room for a busy balancer).
    public var proxyProtocolTimeout: Int64 = 10
    /// `--transparent`: each connection's upstream is its original destination, not `upstream`.
    public var transparent: TransparentConfiguration?
    public var logger = Logger(label: "smtpscope.proxy")

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
    /// `--spoof-source`: the client's address, bound (IP_TRANSPARENT) before connecting upstream.
    var upstreamSource: SocketAddress?
    var connectTimeout: TimeAmount
    var clientTLSContext: NIOSSLContext?
    var upstreamTLSContext: NIOSSLContext?
    var upstreamServerHostname: String?
    var transcripts: TranscriptWriter
    var sessionIDs: SessionIDSource
}

/// Session ids for every event loop, in time order (ULIDs from `SessionIDGenerator`).
final class SessionIDSource: Sendable {
    private let generator = NIOLockedValueBox(SessionIDGenerator())

    func next(at time: Timestamp) -> String {
        generator.withLockedValue { $0.next(at: time) }
    }
}

/// The proxy's listeners: accepts clients, reads a PROXY protocol header when configured, terminates
/// implicit TLS on SMTPS listeners, enforces the connection limits, and gives each connection a
/// `RelayHandler`.
public final class ProxyServer: Sendable {
    /// One bound listening socket.
    public struct Listener: Sendable {
        public var address: SocketAddress
        /// An SMTPS listener (RFC 8314).
        public var implicitTLS: Bool
    }

    public struct StartError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public let configuration: ProxyServerConfiguration
    private let group: any EventLoopGroup
    /// Copied into each new session; a reload replaces it, sessions keep their copy.
    private let session: NIOLockedValueBox<RelaySessionContext>
    private let limiter: ConnectionLimiter
    private let registry = ChannelRegistry()
    private let metrics: ProxyMetrics?
    private let logger: Logger
    private let router: TransparentRouter?

    public init(configuration: ProxyServerConfiguration, group: any EventLoopGroup, policy: any SessionPolicy = AllowAllPolicy(), transcripts: TranscriptWriter, metrics: ProxyMetrics? = nil) {
        self.configuration = configuration
        self.group = group
        self.metrics = metrics
        self.logger = configuration.logger
        self.limiter = ConnectionLimiter(maxTotal: configuration.maxConnections, maxPerClient: configuration.maxConnectionsPerClient)
        self.router = configuration.transparent.map { TransparentRouter(configuration: $0, logger: configuration.logger) }
        self.session = NIOLockedValueBox(RelaySessionContext(
            configuration: configuration.relay,
            policy: policy,
            upstream: configuration.upstream,
            connectTimeout: .seconds(configuration.upstreamConnectTimeout),
            clientTLSContext: configuration.clientTLSContext,
            upstreamTLSContext: configuration.upstreamTLSContext,
            upstreamServerHostname: configuration.upstreamServerHostname,
            transcripts: transcripts,
            sessionIDs: SessionIDSource()
        ))
    }

    public var openConnections: Int { limiter.openConnections }

    /// SIGHUP: sessions accepted from now on are offered `context` (STARTTLS and SMTPS); open
    /// sessions keep the one they started with.
    public func replaceClientTLSContext(_ context: NIOSSLContext) {
        session.withLockedValue { $0.clientTLSContext = context }
    }

    /// SIGHUP: sessions accepted from now on are judged by `policy`; open sessions keep theirs.
    public func replacePolicy(_ policy: any SessionPolicy) {
        session.withLockedValue { $0.policy = policy }
    }

    /// Binds every listen address; returns the bound addresses (port 0 becomes the real port).
    public func start() async throws -> [SocketAddress] {
        try await startListeners().map(\.address)
    }

    /// Binds `listen`, then `implicitTLSListen`, in order.
    public func startListeners() async throws -> [Listener] {
        if !configuration.implicitTLSListen.isEmpty && configuration.clientTLSContext == nil {
            throw StartError(description: "--implicit-tls-listen needs a certificate (--tls-cert)")
        }
        if router != nil && (configuration.proxyProtocol || !configuration.implicitTLSListen.isEmpty) {
            throw StartError(description: "--transparent goes with neither --proxy-protocol nor --implicit-tls-listen")
        }
        var listeners: [Listener] = []
        let all = configuration.listen.map { ($0, false) } + configuration.implicitTLSListen.map { ($0, true) }
        for (listen, implicitTLS) in all {
            let channel = try await bootstrap(implicitTLS: implicitTLS, listen: listen).bind(host: listen.host, port: listen.port).get()
            registry.state.withLockedValue { $0.listeners.append(channel) }
            if let address = channel.localAddress {
                router?.noteListening(on: address)
                listeners.append(Listener(address: address, implicitTLS: implicitTLS))
                logger.info("listening", metadata: ["address": "\(listen.host):\(address.port ?? 0)", "implicit_tls": "\(implicitTLS)", "proxy_protocol": "\(configuration.proxyProtocol)"])
            }
        }
        return listeners
    }

    private func bootstrap(implicitTLS: Bool, listen: HostPort) -> ServerBootstrap {
        // `--listen 0.0.0.0:P --listen [::]:P` (a transparent gateway's usual pair): the IPv6
        // socket takes IPv6 only, as Postfix's do, so both can bind.
        let all = configuration.listen + configuration.implicitTLSListen
        let v6Only = listen.host.contains(":") && all.contains { !$0.host.contains(":") && $0.port == listen.port && listen.port != 0 }
        var bootstrap = ServerBootstrap(group: group)
        if v6Only {
            bootstrap = bootstrap.serverChannelOption(ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only), value: 1)
        }
        return bootstrap
            .serverChannelInitializer { [router] channel in
                router?.prepareListener(channel, listen: listen) ?? channel.eventLoop.makeSucceededVoidFuture()
            }
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 512, initial: 8192, maximum: 65536))
            .childChannelInitializer { [self] channel in
                // Transparent mode reads the original destination off the socket first.
                let destination = router?.destination(of: channel) ?? channel.eventLoop.makeSucceededFuture(nil)
                return destination.flatMapThrowing { destination in
                    try self.initialize(channel, implicitTLS: implicitTLS, destination: destination)
                }
            }
    }

    /// The pipeline of a new client connection: [PROXY header] [TLS observer, TLS] relay.
    private func initialize(_ channel: Channel, implicitTLS: Bool, destination: SocketAddress?) throws {
        var session = self.session.withLockedValue { $0 }
        let pipeline = channel.pipeline.syncOperations
        let id = ObjectIdentifier(channel)
        let registry = self.registry
        registry.state.withLockedValue { $0.clients[id] = channel }
        channel.closeFuture.whenComplete { _ in
            registry.state.withLockedValue { _ = $0.clients.removeValue(forKey: id) }
        }
        var tlsContext: NIOSSLContext?
        if implicitTLS {
            guard let context = session.clientTLSContext else { throw StartError(description: "no certificate for implicit TLS") }
            tlsContext = context
            session.configuration.clientLegImplicitTLS = true
        }
        let admitted = session
        if configuration.proxyProtocol {
            let parser = ProxyProtocolParser(limits: configuration.proxyProtocolLimits)
            try pipeline.addHandler(ProxyProtocolHandler(parser: parser, timeout: .seconds(configuration.proxyProtocolTimeout), logger: logger, metrics: metrics) { [self] context, header in
                let client = header.source.map { SessionRecord.Endpoint(ip: $0.ip, port: $0.port) } ?? Self.endpoint(context.channel.remoteAddress)
                let server = header.destination.map { SessionRecord.Endpoint(ip: $0.ip, port: $0.port) } ?? Self.endpoint(context.channel.localAddress)
                try admit(context.channel, session: admitted, client: client, server: server)
            })
        }
        if let tlsContext {
            // The observer sits on the socket side of TLS, so it sees the hellos (version, cipher, SNI).
            try pipeline.addHandler(TLSHandshakeObserverHandler())
            try pipeline.addHandler(NIOSSLServerHandler(context: tlsContext))
        }
        if let router, let destination {
            let client = channel.remoteAddress?.unmappingIPv4
            switch router.route(client: client, destination: destination) {
            case .relay(let upstream, let source):
                var relayed = admitted
                relayed.upstream = upstream
                relayed.upstreamSource = source
                try admit(channel, session: relayed, client: Self.endpoint(client), server: Self.endpoint(destination))
            case .loop(let detail):
                logger.warning("connection refused: destination is the proxy itself", metadata: ["client": "\(client?.ipAddress ?? "?"):\(client?.port ?? 0)", "detail": "\(detail)"])
                try admit(channel, session: admitted, client: Self.endpoint(client), server: Self.endpoint(destination), loop: detail)
            }
        } else if !configuration.proxyProtocol {
            try admit(channel, session: admitted, client: Self.endpoint(channel.remoteAddress), server: Self.endpoint(channel.localAddress))
        }
    }

    /// The connection limits, then the relay, for the client the connection (or its PROXY header)
    /// names; a transparent connection to the proxy itself (`loop`) gets the loop refusal instead.
    private func admit(_ channel: Channel, session: RelaySessionContext, client: SessionRecord.Endpoint?, server: SessionRecord.Endpoint?, loop: String? = nil) throws {
        let pipeline = channel.pipeline.syncOperations
        let clientIP = client?.ip ?? "unknown"
        guard limiter.acquire(clientIP) else {
            logger.warning("connection refused: too many connections", metadata: ["client": "\(clientIP)"])
            metrics?.connectionRefused(reason: "limit")
            try pipeline.addHandler(RefuseHandler(reply: "421 4.7.0 \(session.configuration.hostname) Error: too many connections\r\n"))
            return
        }
        let limiter = self.limiter
        let metrics = self.metrics
        metrics?.connectionOpened()
        channel.closeFuture.whenComplete { _ in
            limiter.release(clientIP)
            metrics?.connectionClosed()
        }
        if let loop {
            metrics?.connectionRefused(reason: "loop")
            try pipeline.addHandler(LoopRefusalHandler(session: session, client: client, server: server, detail: loop))
            return
        }
        try pipeline.addHandler(RelayHandler(session: session, client: client, server: server))
    }

    private static func endpoint(_ address: SocketAddress?) -> SessionRecord.Endpoint? {
        address.map { SessionRecord.Endpoint(ip: $0.ipAddress ?? "unknown", port: $0.port ?? 0) }
    }

    /// SIGTERM: stop accepting, let sessions finish until `deadline` seconds, then answer the rest
    /// `421 4.3.2` and close them.
    public func drain(deadline seconds: Int64) async {
        let listeners = registry.state.withLockedValue { $0.listeners }
        for listener in listeners { try? await listener.close() }
        await registry.waitForNoClients(seconds: Double(seconds))
        let remaining = registry.state.withLockedValue { Array($0.clients.values) }
        guard !remaining.isEmpty else { return }
        logger.warning("drain deadline passed; closing open sessions with 421", metadata: ["sessions": "\(remaining.count)"])
        for channel in remaining { channel.pipeline.fireUserInboundEventTriggered(ProxyShutdownEvent()) }
        // The 421 goes out as the client reads; one that does not read is not waited for long.
        await registry.waitForNoClients(seconds: 2)
        for channel in registry.state.withLockedValue({ Array($0.clients.values) }) { try? await channel.close() }
    }
}

/// Sent to each session still open at the drain deadline: it answers 421 and closes.
struct ProxyShutdownEvent {}

/// The listeners and open client channels, for draining.
final class ChannelRegistry: Sendable {
    let state = NIOLockedValueBox<(listeners: [Channel], clients: [ObjectIdentifier: Channel])>(([], [:]))

    /// Returns once every client channel has closed, or after `seconds`.
    func waitForNoClients(seconds: Double) async {
        for _ in 0..<Int(seconds * 10) where state.withLockedValue({ !$0.clients.isEmpty }) {
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
    }
}

/// Answers a connection over the limits with one reply and closes it.
final class RefuseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reply: String
    private var sent = false

    init(reply: String) {
        self.reply = reply
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Added after a PROXY protocol header: the channel is already active.
        if context.channel.isActive { refuse(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        refuse(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    private func refuse(_ context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        let buffer = context.channel.allocator.buffer(string: reply)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }
}

@available(*, unavailable)
extension RefuseHandler: Sendable {}
