import NIOCore
import NIOSSL
import NIOTLS

/// The upstream leg's end of the relay: hands every event to the `RelayHandler` that owns the
/// session. Both channels run on one event loop, so no hop is needed.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let relay: NIOLoopBound<RelayHandler>

    init(relay: NIOLoopBound<RelayHandler>) {
        self.relay = relay
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        relay.value.upstreamRead(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        relay.value.upstreamInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        relay.value.upstreamWritabilityChanged(context.channel.isWritable)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            relay.value.upstreamTLSEstablished()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        relay.value.upstreamError(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension UpstreamHandler: Sendable {}
