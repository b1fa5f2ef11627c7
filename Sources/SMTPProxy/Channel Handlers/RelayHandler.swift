import Logging
import MailMessage
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import SMTPCore
import SMTPTranscript

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The client leg of one proxied session: feeds `RelayStateMachine` and performs its actions.
///
/// Back-pressure follows swift-nio-examples' GlueHandler: the client is read only while the
/// upstream is writable and the state machine wants bytes, so a 50 MB message streams through
/// with flat memory.
final class RelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: RelaySessionContext
    private var machine: RelayStateMachine
    private var transcript: ProxyTranscript
    private var context: ChannelHandlerContext?
    private var upstream: Channel?
    private var upstreamWritable = true
    private var pendingRead = false
    private var clientTimer: Scheduled<Void>?
    /// The client deadline `clientTimer` runs for: re-armed only when the machine starts a new one.
    private var clientDeadline: (seconds: Int64, epoch: Int)?
    private var upstreamTimer: Scheduled<Void>?
    private var lastClientWrite: EventLoopFuture<Void>?
    private var finished = false
    private var observer: TLSHandshakeObserverHandler?
    /// The message `message` rules are deciding on; at most one per session at a time.
    private var spool: MessageSpool?
    private var spoolFailure: String?
    private var quarantined = 0
    private var clientHandshakeDone = false

    init(session: RelaySessionContext, client: SessionRecord.Endpoint?, server: SessionRecord.Endpoint?) {
        self.session = session
        var facts = PolicyFacts(client: client, server: server)
        facts.tls = false
        self.machine = RelayStateMachine(configuration: session.configuration, policy: session.policy, facts: facts)
        let start = Timestamp.now()
        self.transcript = ProxyTranscript(sessionID: session.sessionIDs.next(at: start), start: start, client: client, server: server)
    }

    // MARK: Client channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Implicit TLS (RFC 8314): the server put the TLS handlers in front of the relay.
        observer = try? context.pipeline.syncOperations.handler(type: TLSHandshakeObserverHandler.self)
        // Added after a PROXY protocol header was read: the channel is already active.
        if context.channel.isActive { startSession() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context holds this handler: keeping it past removal would keep every closed
        // session, its machine and its buffers, alive for good.
        self.context = nil
        observer = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        startSession()
        context.fireChannelActive()
    }

    private var started = false

    private func startSession() {
        guard !started else { return }
        started = true
        perform(machine.start())
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        transcript.noteClientOctets(bytes.readableBytes)
        perform(machine.receiveClientBytes(bytes))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        upstream?.flush()
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.receiveClientClosed())
        finish()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            var summary = observer?.observer.summary ?? TLSSummary()
            summary.established = true
            if summary.version == nil, let version = try? context.pipeline.syncOperations.nioSSL_tlsVersion() {
                summary.version = Self.name(of: version)
            }
            clientHandshakeDone = true
            transcript.noteClientTLS(summary, at: .now())
            if let observer {
                context.pipeline.syncOperations.removeHandler(observer, promise: nil)
                self.observer = nil
            }
            perform(machine.receiveClientTLSEstablished())
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if (error is NIOSSLError || error is BoringSSLError) && observer != nil && !clientHandshakeDone {
            perform(machine.receiveClientTLSFailed(reason: "\(error)"))
        } else {
            // After the handshake, a close without close_notify is an ordinary end of session.
            perform(machine.receiveClientClosed())
            context.close(promise: nil)
        }
    }

    /// GlueHandler's rule: read from the client only while the upstream can take what follows.
    func read(context: ChannelHandlerContext) {
        if machine.wantsClientBytes && upstreamWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }

    // MARK: Upstream channel events (same event loop)

    func upstreamRead(_ bytes: ByteBuffer) {
        transcript.noteServerOctets(bytes.readableBytes)
        perform(machine.receiveUpstreamBytes(bytes))
        context?.flush()
        upstream?.flush()
    }

    func upstreamInactive() {
        upstream = nil
        perform(machine.receiveUpstreamClosed())
        context?.flush()
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        upstreamWritable = writable
        resumeReadingIfDue()
    }

    func upstreamTLSEstablished() {
        perform(machine.receiveUpstreamTLSEstablished())
        upstream?.flush()
    }

    func upstreamError(_ error: any Error) {
        if error is NIOSSLError || error is BoringSSLError {
            perform(machine.receiveUpstreamTLSFailed(reason: "\(error)"))
            context?.flush()
        }
    }

    // MARK: Actions

    private func perform(_ actions: [RelayStateMachine.Action]) {
        guard let context else { return }
        for action in actions {
            switch action {
            case .sendToClient(let bytes):
                lastClientWrite = context.writeAndFlush(wrapOutboundOut(bytes))
            case .sendUpstream(let bytes):
                upstream?.write(bytes, promise: nil)
            case .connectUpstream:
                connectUpstream(context)
            case .startClientTLS:
                startClientTLS(context)
            case .startUpstreamTLS:
                startUpstreamTLS()
            case .closeUpstream:
                if let upstream {
                    upstream.flush()
                    upstream.close(promise: nil)
                    self.upstream = nil
                    upstreamWritable = true
                }
            case .closeClient:
                let channel = context.channel
                if let lastClientWrite {
                    lastClientWrite.whenComplete { _ in channel.close(promise: nil) }
                } else {
                    channel.close(promise: nil)
                }
            case .spool(let bytes):
                appendToSpool(bytes)
            case .releaseSpool(let edits):
                releaseSpool(edits)
            case .dropSpool:
                closeSpool()
            case .quarantineSpool(let request):
                let failure = quarantine(request)
                closeSpool()
                perform(machine.receiveQuarantineStored(request, failure: failure))
            case .record(let event):
                if case .ruleVerdicts(let verdicts) = event { log(verdicts) }
                transcript.record(event, at: .now())
            }
        }
        armTimers(context)
        resumeReadingIfDue()
    }

    /// The `log` action's text goes to the log, with the session it belongs to.
    private func log(_ verdicts: [SessionRecord.RuleVerdict]) {
        for verdict in verdicts where verdict.action == "log" {
            Self.rulesLogger.notice(
                "\(verdict.detail ?? "")",
                metadata: ["session": "\(transcript.sessionID)", "rule": "\(verdict.rule)", "enforced": "\(verdict.enforced)"]
            )
        }
    }

    private static let rulesLogger = Logger(label: "smtpscope.rules")

    // MARK: Spool

    private func appendToSpool(_ bytes: ByteBuffer) {
        if spool == nil {
            spool = MessageSpool(configuration: session.configuration.spool)
            spoolFailure = nil
        }
        guard spoolFailure == nil else { return }
        do {
            try spool?.append(bytes)
        } catch {
            spoolFailure = "\(error)"
        }
    }

    /// Sends the spooled message upstream with its header edits, dot-stuffed, and the terminating
    /// `CRLF.CRLF`. It is written whole: the channel queues what the upstream cannot take yet, and
    /// no other command can follow it before its reply, so nothing interleaves.
    private func releaseSpool(_ edits: [HeaderEdit]) {
        defer { closeSpool() }
        guard let upstream else { return }
        guard spoolFailure == nil, let spool else {
            // The spool lost octets: abort the upstream transaction rather than send half a message.
            upstream.close(promise: nil)
            return
        }
        // Without edits the spool goes out as it is; with them the header section is rewritten.
        var rewriter = edits.isEmpty ? nil : HeaderRewriter(edits: edits)
        var writer = DataContentWriter()
        var edited = ByteBuffer()
        var wire = ByteBuffer()
        var intact = true
        func send(_ content: ByteBuffer, last: Bool) {
            guard intact else { return }
            do {
                // The content was checked when spooled and the rewriter writes only canonical
                // fields, so this cannot fail; if it ever did, half a message must not go out.
                try writer.write(content, into: &wire)
                if last { try writer.finish(into: &wire) }
                upstream.write(wire, promise: nil)
                wire = ByteBuffer()
            } catch {
                intact = false
            }
        }
        do {
            try spool.forEachPiece { piece in
                guard rewriter != nil else { return send(piece, last: false) }
                rewriter?.receive(piece, into: &edited)
                send(edited, last: false)
                edited.clear()
            }
            rewriter?.finish(into: &edited)
            send(edited, last: true)
        } catch {
            intact = false
        }
        if intact {
            upstream.flush()
        } else {
            upstream.close(promise: nil)
        }
    }

    /// Stores the spooled message in the quarantine; returns why it could not, or nil.
    private func quarantine(_ request: RelayStateMachine.QuarantineRequest) -> String? {
        if let spoolFailure { return "spool: \(spoolFailure)" }
        guard let spool else { return "nothing spooled" }
        quarantined += 1
        let store = SinkMessageStore(directory: session.configuration.spool.quarantineDirectory)
        let id = "\(transcript.sessionID)-\(quarantined)"
        do {
            try store.prepare()
            let file = try store.openSpool(queueID: id)
            try spool.forEachPiece { file.append($0) }
            let record = QuarantineRecord(
                sessionID: transcript.sessionID,
                quarantined: RFC3339.format(.now()),
                reason: request.reason,
                rules: request.rules,
                clientIP: transcript.client?.ip,
                clientPort: transcript.client?.port,
                helo: request.helo,
                authUser: request.authUser,
                mailFrom: request.mailFrom?.address,
                rcptTo: request.recipients.map(\.address),
                size: spool.octets
            )
            guard file.commit(record) else { return "could not write \(id) in \(store.directory)" }
            return nil
        } catch {
            return "\(error)"
        }
    }

    private func closeSpool() {
        spool?.close()
        spool = nil
        spoolFailure = nil
    }

    private func resumeReadingIfDue() {
        guard pendingRead, machine.wantsClientBytes, upstreamWritable, let context else { return }
        pendingRead = false
        context.read()
    }

    private func connectUpstream(_ context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let target = session.upstream
        var bootstrap = ClientBootstrap(group: context.eventLoop)
            .connectTimeout(session.connectTimeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler(relay: bound))
                }
            }
        if let source = session.upstreamSource {
            // `--spoof-source`: IP_TRANSPARENT lets the socket bind the client's (foreign) address.
            bootstrap = bootstrap.channelOption(TransparentSocket.transparentOption(for: source), value: 1).bind(to: source)
        }
        bootstrap
            .connect(host: target.host, port: target.port)
            .hop(to: context.eventLoop)
            .whenComplete { result in
                let handler = bound.value
                switch result {
                case .success(let channel):
                    handler.upstreamConnected(channel)
                case .failure(let error):
                    handler.perform(handler.machine.receiveUpstreamConnectFailed(reason: "\(error)"))
                }
            }
    }

    private func upstreamConnected(_ channel: Channel) {
        guard !machine.isClosed else {
            channel.close(promise: nil)
            return
        }
        upstream = channel
        upstreamWritable = channel.isWritable
        if let address = channel.remoteAddress {
            transcript.upstream = SessionRecord.Endpoint(ip: address.ipAddress ?? "unknown", port: address.port ?? 0)
        }
        perform(machine.receiveUpstreamConnected())
    }

    private func startClientTLS(_ context: ChannelHandlerContext) {
        guard let sslContext = session.clientTLSContext else {
            perform(machine.receiveClientTLSFailed(reason: "no certificate configured"))
            return
        }
        do {
            let observer = TLSHandshakeObserverHandler()
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext), position: .first)
            try context.pipeline.syncOperations.addHandler(observer, position: .first)
            self.observer = observer
            // The handshake needs reads even though the machine wants no plaintext yet.
            context.read()
        } catch {
            perform(machine.receiveClientTLSFailed(reason: "\(error)"))
        }
    }

    private func startUpstreamTLS() {
        guard let upstream, let sslContext = session.upstreamTLSContext else {
            perform(machine.receiveUpstreamTLSFailed(reason: "no TLS context"))
            return
        }
        do {
            let handler = try NIOSSLClientHandler(context: sslContext, serverHostname: session.upstreamServerHostname)
            try upstream.pipeline.syncOperations.addHandler(handler, position: .first)
        } catch {
            perform(machine.receiveUpstreamTLSFailed(reason: "\(error)"))
        }
    }

    private func armTimers(_ context: ChannelHandlerContext) {
        guard !finished else {
            // A timer holds this handler, and with it the whole session, until it fires: a
            // closed session keeps none (an upstream closing after the client would arm one).
            clientTimer?.cancel()
            clientTimer = nil
            upstreamTimer?.cancel()
            upstreamTimer = nil
            return
        }
        // A deadline, not an idle timer: reads alone do not restart it (SECURITY row 15).
        let deadline = machine.clientTimeout.map { (seconds: $0, epoch: machine.clientDeadlineEpoch) }
        let unchanged = deadline?.seconds == clientDeadline?.seconds && deadline?.epoch == clientDeadline?.epoch
        if !unchanged || clientTimer == nil {
            clientTimer?.cancel()
            clientTimer = nil
        }
        clientDeadline = deadline
        if clientTimer == nil, let seconds = deadline?.seconds {
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            clientTimer = context.eventLoop.scheduleTask(in: .seconds(seconds)) {
                let handler = bound.value
                handler.perform(handler.machine.receiveTimeout(.client))
            }
        }
        upstreamTimer?.cancel()
        upstreamTimer = nil
        if let seconds = machine.upstreamTimeout {
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            upstreamTimer = context.eventLoop.scheduleTask(in: .seconds(seconds)) {
                let handler = bound.value
                handler.perform(handler.machine.receiveTimeout(.upstream))
            }
        }
    }

    /// Writes the session's record once, off the event loop.
    private func finish() {
        guard !finished else { return }
        finished = true
        clientTimer?.cancel()
        upstreamTimer?.cancel()
        upstream?.close(promise: nil)
        upstream = nil
        closeSpool()
        session.transcripts.write(transcript.finish(at: .now()))
    }

    static func name(of version: TLSVersion) -> String {
        switch version {
        case .tlsv1: "TLSv1"
        case .tlsv11: "TLSv1.1"
        case .tlsv12: "TLSv1.2"
        case .tlsv13: "TLSv1.3"
        }
    }
}

@available(*, unavailable)
extension RelayHandler: Sendable {}

extension Timestamp {
    /// The wall clock, for transcript times.
    static func now() -> Timestamp {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Timestamp(seconds: Int64(time.tv_sec), microseconds: Int64(time.tv_nsec / 1000))
    }
}
