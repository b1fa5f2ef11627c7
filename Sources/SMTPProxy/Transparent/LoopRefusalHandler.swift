import NIOCore
import SMTPCore
import SMTPTranscript

/// Runs a `LoopRefusal` on a client connection and writes its transcript record, in place of a
/// `RelayHandler`: a refused session never opens an upstream leg.
final class LoopRefusalHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let transcripts: TranscriptWriter
    private let idleTimeout: TimeAmount
    private var refusal: LoopRefusal
    private var transcript: ProxyTranscript
    private var framer: LineFramer
    private var buffer = ByteBuffer()
    private var timer: Scheduled<Void>?
    private var lastWrite: EventLoopFuture<Void>?
    private var started = false
    private var finished = false

    init(session: RelaySessionContext, client: SessionRecord.Endpoint?, server: SessionRecord.Endpoint?, detail: String) {
        self.transcripts = session.transcripts
        self.idleTimeout = .seconds(session.configuration.timeouts.serverIdle)
        self.refusal = LoopRefusal(hostname: session.configuration.hostname, detail: detail)
        self.framer = LineFramer(maxLineOctets: session.configuration.limits.maxCommandLineOctets)
        let start = Timestamp.now()
        self.transcript = ProxyTranscript(sessionID: session.sessionIDs.next(at: start), start: start, client: client, server: server)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        perform(refusal.start(), context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        transcript.noteClientOctets(bytes.readableBytes)
        guard !refusal.isClosed else { return }
        buffer.writeBuffer(&bytes)
        while !refusal.isClosed, let frame = framer.next(from: &buffer) {
            perform(refusal.receive(frame), context)
        }
        // A refused client gets no room to pile up input: nothing it sends is relayed.
        buffer.discardReadBytes()
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(refusal.receiveClientClosed(), context)
        finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        perform(refusal.receiveClientClosed(), context)
        context.close(promise: nil)
    }

    private func perform(_ outputs: [LoopRefusal.Output], _ context: ChannelHandlerContext) {
        for output in outputs {
            switch output {
            case .reply(let reply, let answering):
                var out = context.channel.allocator.buffer(capacity: 128)
                reply.write(into: &out)
                lastWrite = context.writeAndFlush(wrapOutboundOut(out))
                transcript.record(.clientReply(reply, answering: answering, origin: .proxy), at: .now())
            case .record(let kind):
                transcript.record(.client(kind), at: .now())
            case .close(let by, let reason):
                transcript.record(.close(by: by, reason: reason), at: .now())
                let channel = context.channel
                if let lastWrite {
                    lastWrite.whenComplete { _ in channel.close(promise: nil) }
                } else {
                    channel.close(promise: nil)
                }
            }
        }
        armTimer(context)
    }

    private func armTimer(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        guard !refusal.isClosed else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: idleTimeout) {
            let (handler, context) = bound.value
            handler.perform(handler.refusal.receiveTimeout(), context)
        }
    }

    /// Writes the session's record once.
    private func finish() {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        transcripts.write(transcript.finish(at: .now()))
    }
}

@available(*, unavailable)
extension LoopRefusalHandler: Sendable {}
