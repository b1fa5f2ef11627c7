import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// `--metrics HOST:PORT`: serves the Prometheus text exposition format (version 0.0.4) at
/// `GET /metrics` over HTTP/1.1 (RFC 9112). Every other path is 404, every other method on
/// `/metrics` is 405. Request bodies are discarded.
public final class MetricsServer: Sendable {
    public let address: HostPort
    private let group: any EventLoopGroup
    private let render: @Sendable () -> [UInt8]
    private let logger: Logger
    private let channel = NIOLockedValueBox<(any Channel)?>(nil)

    /// `render` produces the exposition text, e.g. `PrometheusCollectorRegistry.emitToBuffer`.
    public init(address: HostPort, group: any EventLoopGroup, logger: Logger, render: @escaping @Sendable () -> [UInt8]) {
        self.address = address
        self.group = group
        self.logger = logger
        self.render = render
    }

    /// Binds the listener; returns the bound address (port 0 becomes the real port).
    public func start() async throws -> SocketAddress {
        let render = self.render
        let bound = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(render: render))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
        channel.withLockedValue { $0 = bound }
        let port = bound.localAddress?.port ?? address.port
        logger.info("metrics endpoint listening", metadata: ["url": "http://\(HostPort(host: address.host, port: port))/metrics"])
        guard let local = bound.localAddress else { throw ChannelError.inappropriateOperationForState }
        return local
    }

    public func stop() async {
        let bound = channel.withLockedValue { channel in
            defer { channel = nil }
            return channel
        }
        try? await bound?.close()
    }
}

/// One HTTP connection of the metrics endpoint.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () -> [UInt8]
    private var head: HTTPRequestHead?

    init(render: @escaping @Sendable () -> [UInt8]) {
        self.render = render
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
        case .body:
            break
        case .end:
            guard let request = head else { return }
            head = nil
            respond(to: request, context)
        }
    }

    private func respond(to request: HTTPRequestHead, _ context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let status: HTTPResponseStatus
        let body: ByteBuffer
        var headers = HTTPHeaders()
        if path != "/metrics" {
            status = .notFound
            body = context.channel.allocator.buffer(string: "not found: the metrics are at /metrics\n")
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        } else if request.method != .GET && request.method != .HEAD {
            status = .methodNotAllowed
            body = context.channel.allocator.buffer(string: "method not allowed\n")
            headers.add(name: "Allow", value: "GET, HEAD")
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        } else {
            status = .ok
            body = context.channel.allocator.buffer(bytes: render())
            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
        }
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension MetricsHTTPHandler: Sendable {}
