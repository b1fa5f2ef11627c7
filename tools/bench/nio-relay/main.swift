// The floor under any SwiftNIO proxy: accept, connect upstream, copy octets both ways, parse
// nothing. `tools/bench/proxy` runs it beside HAProxy so the table separates what NIO's
// per-connection work costs from what smtpscope's parsing, rules and transcripts cost.
//
// Usage: nio-relay LISTEN_PORT UPSTREAM_PORT   (both on 127.0.0.1)
import NIOCore
import NIOPosix

/// One leg of the relay: what it reads goes to its partner, and it reads only while the partner
/// can take more (the back-pressure rule of NIO's connect-proxy example).
final class Leg: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    var partner: Leg?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var partnerWritable = true

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.context?.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
        partner = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        partner?.partnerWritabilityChanged(context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if partnerWritable { context.read() } else { pendingRead = true }
    }

    private func partnerWritabilityChanged(_ writable: Bool) {
        partnerWritable = writable
        if writable, pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }
}

/// Holds the client's reads until the upstream is connected, then joins the two legs.
final class Joiner: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private let upstream: SocketAddress
    private var held: [NIOAny] = []

    init(upstream: SocketAddress) { self.upstream = upstream }

    func channelActive(context: ChannelHandlerContext) {
        let client = context.channel
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .connect(to: upstream)
            .whenComplete { result in
                switch result {
                case .success(let server):
                    let near = Leg()
                    let far = Leg()
                    near.partner = far
                    far.partner = near
                    do {
                        try client.pipeline.syncOperations.addHandler(near)
                        try server.pipeline.syncOperations.addHandler(far)
                    } catch {
                        client.close(promise: nil)
                        server.close(promise: nil)
                        return
                    }
                    let joiner = loopBoundSelf.value
                    let context = loopBoundContext.value
                    for data in joiner.held { context.fireChannelRead(data) }
                    joiner.held = []
                    context.fireChannelReadComplete()
                    context.pipeline.syncOperations.removeHandler(joiner, promise: nil)
                case .failure:
                    client.close(promise: nil)
                }
            }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        held.append(data)
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 3, let listenPort = Int(arguments[1]), let upstreamPort = Int(arguments[2]) else {
    print("usage: nio-relay LISTEN_PORT UPSTREAM_PORT")
    exit(2)
}
let upstream = try SocketAddress(ipAddress: "127.0.0.1", port: upstreamPort)
let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(Joiner(upstream: upstream))
        }
    }
    .bind(host: "127.0.0.1", port: listenPort)
    .wait()
try server.closeFuture.wait()
