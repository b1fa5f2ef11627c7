import NIOCore
import SMTPCore

/// Sits between the socket and NIOSSL's handler and reads the handshake records going by, so the
/// transcript can name the negotiated version, cipher suite and SNI (RFC 8446 §4.1). NIOSSL
/// reports the version but not the cipher; the SMTP core's observer reads both from the hellos.
/// On the client leg the proxy is the TLS server; on the upstream leg it is the TLS client, and
/// what it reads comes from the server.
final class TLSHandshakeObserverHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private(set) var observer = TLSHandshakeObserver()
    private let proxyIsServer: Bool

    init(proxyIsServer: Bool = true) {
        self.proxyIsServer = proxyIsServer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if proxyIsServer {
            observer.receiveFromClient(unwrapInboundIn(data))
        } else {
            observer.receiveFromServer(unwrapInboundIn(data))
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if proxyIsServer {
            observer.receiveFromServer(unwrapOutboundIn(data))
        } else {
            observer.receiveFromClient(unwrapOutboundIn(data))
        }
        context.write(data, promise: promise)
    }
}

@available(*, unavailable)
extension TLSHandshakeObserverHandler: Sendable {}
