import NIOCore
import SMTPCore

/// Sits between the socket and `NIOSSLServerHandler` and reads the handshake records going by, so
/// the transcript can name the negotiated version, cipher suite and SNI (RFC 8446 §4.1). NIOSSL
/// reports the version but not the cipher; the SMTP core's observer reads both from the hellos.
final class TLSHandshakeObserverHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private(set) var observer = TLSHandshakeObserver()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        observer.receiveFromClient(unwrapInboundIn(data))
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        observer.receiveFromServer(unwrapOutboundIn(data))
        context.write(data, promise: promise)
    }
}

@available(*, unavailable)
extension TLSHandshakeObserverHandler: Sendable {}
