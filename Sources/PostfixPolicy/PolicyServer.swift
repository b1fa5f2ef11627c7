import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SenderLimits

/// `smtpscope policy`: serves Postfix's policy delegation protocol over TCP. Each connection reads
/// requests with a `PolicyRequestParser`, answers each with `PostfixPolicyService`, and keeps the
/// connection open for the next (Postfix reuses it). A malformed or oversized request, or a
/// connection idle longer than `idleTimeout`, closes the connection; Postfix then reconnects.
public final class PolicyServer: Sendable {
    public let host: String
    public let port: Int
    private let group: any EventLoopGroup
    private let service: NIOLockedValueBox<PostfixPolicyService>
    private let record: @Sendable (PolicyDecisionRecord) -> Void
    private let problem: @Sendable (String) -> Void
    private let limits: PolicyRequestParser.Limits
    private let idleTimeout: TimeAmount
    private let channel = NIOLockedValueBox<(any Channel)?>(nil)

    /// `record` receives every decision (from event-loop threads); `problem` every closed
    /// connection's reason.
    public init(host: String, port: Int, group: any EventLoopGroup, service: PostfixPolicyService, limits: PolicyRequestParser.Limits = .init(),
                idleTimeout: TimeAmount = .seconds(600),
                record: @escaping @Sendable (PolicyDecisionRecord) -> Void, problem: @escaping @Sendable (String) -> Void) {
        self.host = host
        self.port = port
        self.group = group
        self.service = NIOLockedValueBox(service)
        self.limits = limits
        self.idleTimeout = idleTimeout
        self.record = record
        self.problem = problem
    }

    /// New requests use `service` (a reload); its ledger should be the old one's, so counts carry on.
    public func replaceService(_ service: PostfixPolicyService) {
        self.service.withLockedValue { $0 = service }
    }

    public func start() async throws -> SocketAddress {
        let service = self.service
        let record = self.record
        let problem = self.problem
        let limits = self.limits
        let idleTimeout = self.idleTimeout
        let bound = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(
                        PolicyConnectionHandler(service: service, limits: limits, record: record, problem: problem))
                }
            }
            .bind(host: host, port: port)
            .get()
        channel.withLockedValue { $0 = bound }
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

/// One policy connection.
final class PolicyConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let service: NIOLockedValueBox<PostfixPolicyService>
    private let record: @Sendable (PolicyDecisionRecord) -> Void
    private let problem: @Sendable (String) -> Void
    private var parser: PolicyRequestParser
    private var connection = PostfixPolicyService.Connection()
    private var failed = false

    init(service: NIOLockedValueBox<PostfixPolicyService>, limits: PolicyRequestParser.Limits, record: @escaping @Sendable (PolicyDecisionRecord) -> Void,
         problem: @escaping @Sendable (String) -> Void) {
        self.service = service
        self.parser = PolicyRequestParser(limits: limits)
        self.record = record
        self.problem = problem
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let buffer = unwrapInboundIn(data)
        let requests: [PolicyRequest]
        do throws(PolicyRequestParser.Failure) {
            requests = try parser.receive(buffer.readableBytesView)
        } catch {
            failed = true
            problem("\(context.remoteAddress.map { "\($0)" } ?? "a client"): \(error); connection closed")
            context.close(promise: nil)
            return
        }
        guard !requests.isEmpty else { return }
        let current = service.withLockedValue { $0 }
        var out = context.channel.allocator.buffer(capacity: 32 * requests.count)
        for request in requests {
            let decision = current.answer(request, connection: &connection)
            out.writeString(decision.response)
            record(decision)
        }
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension PolicyConnectionHandler: Sendable {}
