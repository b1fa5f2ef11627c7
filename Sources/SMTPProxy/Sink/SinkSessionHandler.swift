import Foundation
import NIOCore
import SMTPCore

/// Tells every open sink session that the sink is stopping.
struct SinkShutdownEvent: Sendable {}

/// Runs one `SinkSessionStateMachine` on a child channel: feeds it the client's bytes, performs its
/// actions, and keeps replies in command order (RFC 2920 §3.1: replies are flushed once a read has
/// been answered, so pipelined commands share one write).
///
/// Reads stop while the channel is not writable, so a client that pipelines without reading replies
/// cannot make the sink buffer them without bound.
final class SinkSessionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var machine: SinkSessionStateMachine
    private let store: SinkMessageStore?
    private let queueIDs: SinkQueueIDGenerator
    private var pendingInput: ByteBuffer?
    private var pendingReplies: ByteBuffer?
    private var spool: SinkSpool?
    private var spoolFailed = false
    private var readHeldForWritability = false
    private var client: SocketAddress?

    init(configuration: SinkConfiguration, store: SinkMessageStore?, queueIDs: SinkQueueIDGenerator) {
        self.machine = SinkSessionStateMachine(configuration: configuration)
        self.store = store
        self.queueIDs = queueIDs
    }

    func channelActive(context: ChannelHandlerContext) {
        client = context.channel.remoteAddress
        send(machine.greeting, context: context)
        flushReplies(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        discardSpool()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var input = pendingInput {
            pendingInput = nil
            input.writeBuffer(&incoming)
            process(&input, context: context)
        } else {
            process(&incoming, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushReplies(context: context)
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            perform(machine.receiveIdleTimeout(), context: context)
        } else if event is SinkShutdownEvent {
            perform(machine.receiveShutdown(), context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readHeldForWritability = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && readHeldForWritability {
            readHeldForWritability = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - Protocol

    private func process(_ input: inout ByteBuffer, context: ChannelHandlerContext) {
        while !machine.isClosed, let action = machine.receive(&input, content: { self.keep($0) }) {
            perform(action, context: context)
        }
        // Only a partial command line (bounded by the framer) is ever left over.
        if input.readableBytes > 0 && !machine.isClosed {
            input.discardReadBytes()
            pendingInput = input
        }
    }

    private func perform(_ action: SinkSessionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .reply(let reply):
            send(reply, context: context)
        case .discardMessage(let reply):
            discardSpool()
            send(reply, context: context)
        case .deliverMessage(let envelope):
            send(deliver(envelope), context: context)
        case .replyAndClose(let reply):
            discardSpool()
            send(reply, context: context)
            let replies = pendingReplies ?? context.channel.allocator.buffer(capacity: 0)
            pendingReplies = nil
            pendingInput = nil
            // Close once the last reply is written, so the client reads it before the FIN.
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(replies)).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }

    /// Keeps accepted content when there is a store; without one the bytes are simply dropped.
    private func keep(_ slice: ByteBuffer) {
        guard let store, !spoolFailed else { return }
        if spool == nil {
            do {
                spool = try store.openSpool(queueID: queueIDs.next())
            } catch {
                spoolFailed = true
                return
            }
        }
        spool?.append(slice)
    }

    private func deliver(_ envelope: SinkEnvelope) -> SMTPReply {
        defer {
            spool = nil
            spoolFailed = false
        }
        guard let store else { return SinkReplies.queued(queueIDs.next()) }
        if spool == nil && !spoolFailed {
            // An empty message (BDAT 0 LAST) has no content slices; it is still kept.
            spool = try? store.openSpool(queueID: queueIDs.next())
        }
        guard let spool, !spoolFailed else { return SinkReplies.storeFailed }
        let record = SinkEnvelopeRecord(
            queueID: spool.queueID,
            received: Date().formatted(.iso8601),
            clientIP: client?.ipAddress,
            clientPort: client?.port,
            helo: envelope.helo,
            mailFrom: envelope.mailFrom,
            mailParams: Dictionary(envelope.mailParameters.map { ($0.keyword, $0.value) }, uniquingKeysWith: { first, _ in first }),
            rcptTo: envelope.recipients,
            command: envelope.command,
            size: envelope.size
        )
        return spool.commit(record) ? SinkReplies.queued(spool.queueID) : SinkReplies.storeFailed
    }

    private func discardSpool() {
        spool?.discard()
        spool = nil
        spoolFailed = false
    }

    private func send(_ reply: SMTPReply, context: ChannelHandlerContext) {
        var buffer = pendingReplies ?? context.channel.allocator.buffer(capacity: 256)
        SinkReplies.write(reply, to: &buffer)
        pendingReplies = buffer
    }

    private func flushReplies(context: ChannelHandlerContext) {
        guard let replies = pendingReplies else { return }
        pendingReplies = nil
        context.writeAndFlush(wrapOutboundOut(replies), promise: nil)
    }
}

@available(*, unavailable)
extension SinkSessionHandler: Sendable {}

/// Answers a connection over the limit and closes it (RFC 5321 §3.1: a `421` greeting).
final class SinkRefusalHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reply: SMTPReply

    init(reply: SMTPReply) {
        self.reply = reply
    }

    func channelActive(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        SinkReplies.write(reply, to: &buffer)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

@available(*, unavailable)
extension SinkRefusalHandler: Sendable {}
