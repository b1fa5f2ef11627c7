import Logging
import NIOCore

/// Reads the PROXY protocol header (haproxy.org proxy-protocol.txt §2) before anything else on a
/// client connection, then hands the connection on: `install` puts the relay behind this handler,
/// which forwards the octets that followed the header and removes itself.
///
/// With `--proxy-protocol` every connection must carry a header. A missing, malformed or late one
/// closes the connection without a greeting, as Postfix's postscreen and smtpd do; the reason is
/// logged.
final class ProxyProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Called once with the header; adds the handlers that serve the session after this one.
    typealias Install = (ChannelHandlerContext, ProxyProtocolHeader) throws -> Void

    private let parser: ProxyProtocolParser
    private let timeout: TimeAmount
    private let logger: Logger
    private let install: Install
    private let metrics: ProxyMetrics?
    private var buffer: ByteBuffer?
    private var timer: Scheduled<Void>?
    private var done = false

    init(parser: ProxyProtocolParser, timeout: TimeAmount, logger: Logger, metrics: ProxyMetrics? = nil, install: @escaping Install) {
        self.parser = parser
        self.metrics = metrics
        self.timeout = timeout
        self.logger = logger
        self.install = install
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armTimer(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armTimer(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        if !done {
            done = true
            metrics?.connectionRefused(reason: "proxy_protocol")
            logger.info("PROXY protocol: connection closed before a complete header", metadata: peer(context))
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var incoming = unwrapInboundIn(data)
        if var held = buffer {
            // Bounded: the parser throws once the octets held exceed the longest header.
            held.writeBuffer(&incoming)
            incoming = held
        }
        do {
            let header = try parser.parseHeader(from: &incoming)
            buffer = incoming
            if let header { accept(header, context) }
        } catch {
            refuse(context, "\(error)")
        }
    }

    private func accept(_ header: ProxyProtocolHeader, _ context: ChannelHandlerContext) {
        done = true
        timer?.cancel()
        var metadata = peer(context)
        metadata["proxy_version"] = "\(header.version)"
        metadata["proxy_command"] = "\(header.command)"
        if let source = header.source { metadata["client"] = "\(source.ip):\(source.port)" }
        if let destination = header.destination { metadata["server"] = "\(destination.ip):\(destination.port)" }
        logger.debug("PROXY protocol header accepted", metadata: metadata)
        do {
            try install(context, header)
        } catch {
            logger.error("PROXY protocol: cannot start the session: \(error)", metadata: metadata)
            context.close(promise: nil)
            return
        }
        let rest = buffer
        buffer = nil
        if let rest, rest.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(rest))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }

    private func refuse(_ context: ChannelHandlerContext, _ reason: String) {
        done = true
        timer?.cancel()
        buffer = nil
        metrics?.connectionRefused(reason: "proxy_protocol")
        logger.warning("PROXY protocol: \(reason); closing the connection without a greeting", metadata: peer(context))
        context.close(promise: nil)
    }

    private func armTimer(_ context: ChannelHandlerContext) {
        guard timer == nil, !done else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let seconds = timeout.nanoseconds / 1_000_000_000
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = bound.value
            guard !handler.done else { return }
            handler.refuse(context, "no complete header within \(seconds) s")
        }
    }

    private func peer(_ context: ChannelHandlerContext) -> Logger.Metadata {
        let address = context.channel.remoteAddress
        return ["peer": "\(address?.ipAddress ?? "unknown"):\(address?.port ?? 0)"]
    }
}

@available(*, unavailable)
extension ProxyProtocolHandler: Sendable {}
