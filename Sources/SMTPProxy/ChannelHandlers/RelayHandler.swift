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

/// The client leg of one proxied session: feeds `RelaySessionStateMachine` and performs its actions.
///
/// Back-pressure follows swift-nio-examples' GlueHandler: the client is read only while the
/// upstream is writable and the state machine wants bytes, so a 50 MB message streams through
/// with flat memory.
final class RelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: RelaySessionContext
    private var machine: RelaySessionStateMachine
    private var transcript: ProxyTranscript
    private var context: ChannelHandlerContext?
    private var upstream: Channel?
    private var upstreamWritable = true
    private var pendingRead = false
    /// The machine's deadlines (`clientTimeout`, `upstreamTimeout`) and the passthrough idle
    /// timer; made in `handlerAdded`, and dropped at the end, since each holds this handler.
    private var clientTimer: DeadlineTimer?
    private var upstreamTimer: DeadlineTimer?
    private var passthroughTimer: DeadlineTimer?
    /// The deadlines the timers run for: moved only when the machine starts a new one.
    private var clientDeadline: (seconds: Int64, epoch: Int)?
    private var upstreamDeadline: (seconds: Int64, epoch: Int)?
    private var lastClientWrite: EventLoopFuture<Void>?
    private var finished = false
    private var observer: TLSHandshakeObserverHandler?
    /// The message `message` rules are deciding on; at most one per session at a time.
    private var spool: LoopSpool?
    private var quarantined = 0
    private var clientHandshakeDone = false
    /// The upstream leg's handshake as it goes by; `nil` before STARTTLS there and once it is over.
    private var upstreamObserver: TLSHandshakeObserverHandler?
    /// An upstream 421 is logged once per session.
    private var loggedUpstream421 = false
    /// `--client-tls passthrough`, once started: the end-to-end handshake as it goes by. Octets
    /// are relayed blind; nothing reaches the state machine any more.
    private var passthrough: TLSHandshakeObserver?

    init(session: RelaySessionContext, client: SessionRecord.Endpoint?, server: SessionRecord.Endpoint?) {
        self.session = session
        self.machine = RelaySessionStateMachine(configuration: session.configuration, policy: session.policy, facts: PolicyFacts(client: client, server: server))
        let start = Timestamp.now()
        self.transcript = ProxyTranscript(sessionID: session.sessionIDs.next(at: start), start: start, client: client, server: server)
    }

    // MARK: Client channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        clientTimer = DeadlineTimer { bound.value.deadlineFired(.client) }
        upstreamTimer = DeadlineTimer { bound.value.deadlineFired(.upstream) }
        passthroughTimer = DeadlineTimer { bound.value.passthroughIdle() }
        // Implicit TLS (RFC 8314): the server put the TLS handlers in front of the relay.
        observer = try? context.pipeline.syncOperations.handler(type: TLSHandshakeObserverHandler.self)
        // A client's FIN ends only its sending side: it still reads the replies to what it sent
        // (`ChannelEvent.inputClosed`, `RelaySessionStateMachine.receiveClientInputClosed`).
        try? context.channel.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        // Added after a PROXY protocol header was read: the channel is already active.
        if context.channel.isActive { startSession() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context holds this handler: keeping it past removal would keep every closed
        // session, its machine and its buffers, alive for good.
        self.context = nil
        observer = nil
        dropTimers()
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
        if passthrough != nil {
            passthrough?.receiveFromClient(bytes)
            passthroughActive(on: context.eventLoop)
            upstream?.write(bytes, promise: nil)
            return
        }
        perform(machine.receiveClientBytes(bytes))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        upstream?.flush()
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        passthrough?.receiveClose(from: .client)
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
            perform(machine.receiveClientTLSEstablished(version: summary.version))
        } else if event is ProxyShutdownEvent {
            if !finished { perform(machine.receiveShutdown()) }
            return
        } else if case ChannelEvent.inputClosed = event {
            if !finished { perform(machine.receiveClientInputClosed()) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .some(.uncleanShutdown) = error as? NIOSSLError, clientHandshakeDone {
            // A FIN without close_notify after the handshake: NIOSSL follows this with
            // `inputClosed`, and the half-closed client is still answered.
            return
        }
        if (error is NIOSSLError || error is BoringSSLError) && observer != nil && !clientHandshakeDone {
            perform(machine.receiveClientTLSFailed(reason: "\(error)"))
        } else {
            // After the handshake, a close without close_notify is an ordinary end of session.
            perform(machine.receiveClientClosed())
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Passthrough: the upstream's octets go straight to the client, so GlueHandler's rule
        // holds in this direction too.
        if passthrough != nil { upstream?.setOption(.autoRead, value: context.channel.isWritable).whenFailure { _ in } }
        context.fireChannelWritabilityChanged()
    }

    /// GlueHandler's rule: read from the client only while the upstream can take what follows.
    func read(context: ChannelHandlerContext) {
        if inPlace({ $0.wantsClientBytes }) && upstreamWritable && spool?.acceptsMore != false {
            context.read()
        } else {
            pendingRead = true
        }
    }

    // MARK: Upstream channel events (same event loop)

    func upstreamRead(_ bytes: ByteBuffer) {
        transcript.noteServerOctets(bytes.readableBytes)
        // A reply before the end of the message it answers: the upstream has given up on it, and
        // the rest must not be read as commands there.
        abortRelease()
        if passthrough != nil, let context {
            passthrough?.receiveFromServer(bytes)
            passthroughActive(on: context.eventLoop)
            lastClientWrite = context.writeAndFlush(wrapOutboundOut(bytes))
            return
        }
        perform(machine.receiveUpstreamBytes(bytes))
        context?.flush()
        upstream?.flush()
    }

    func upstreamInactive() {
        upstream = nil
        abortRelease()
        passthrough?.receiveClose(from: .server)
        perform(machine.receiveUpstreamClosed())
        context?.flush()
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        upstreamWritable = writable
        if writable { continueRelease() }
        resumeReadingIfDue()
    }

    func upstreamTLSEstablished() {
        var tls = SessionRecord.UpstreamTLS(established: true, sni: session.upstreamServerHostname, certificate: session.configuration.upstreamTLS == .verify ? .verified : .notChecked)
        if let upstreamObserver {
            tls.version = upstreamObserver.observer.summary.version
            tls.cipher = upstreamObserver.observer.summary.cipher
            upstream?.pipeline.syncOperations.removeHandler(upstreamObserver, promise: nil)
            self.upstreamObserver = nil
        }
        if tls.version == nil, let version = try? upstream?.pipeline.syncOperations.nioSSL_tlsVersion() {
            tls.version = Self.name(of: version)
        }
        transcript.noteUpstreamTLS(tls, at: .now())
        perform(machine.receiveUpstreamTLSEstablished())
        upstream?.flush()
    }

    func upstreamError(_ error: any Error) {
        // Only a handshake in progress can fail: after it, a TLS error (a close without
        // close_notify, NIOSSL's `uncleanShutdown`) is the end of the connection, which
        // `upstreamInactive` reports.
        guard error is NIOSSLError || error is BoringSSLError, upstreamObserver != nil else { return }
        upstreamHandshakeFailed(reason: UpstreamFailureText.tls(error))
    }

    /// The record gets what the handshake showed, and the machine answers the client.
    private func upstreamHandshakeFailed(reason: String) {
        var tls = SessionRecord.UpstreamTLS(established: false, sni: session.upstreamServerHostname, failure: reason)
        tls.version = upstreamObserver?.observer.summary.version
        tls.cipher = upstreamObserver?.observer.summary.cipher
        if session.configuration.upstreamTLS == .verify {
            tls.certificate = reason.contains("CERTIFICATE_VERIFY_FAILED") ? .failed : nil
        } else {
            tls.certificate = .notChecked
        }
        self.upstreamObserver = nil
        transcript.noteUpstreamTLS(tls, at: .now())
        perform(machine.receiveUpstreamTLSFailed(reason: reason))
        context?.flush()
    }

    // MARK: Actions

    private func perform(_ actions: [RelaySessionStateMachine.Action]) {
        guard let context else { return }
        for action in actions {
            switch action {
            case .sendToClient(let bytes):
                lastClientWrite = context.writeAndFlush(wrapOutboundOut(bytes))
            case .sendUpstream(let bytes):
                if release != nil {
                    release?.held.append(bytes)
                } else {
                    upstream?.write(bytes, promise: nil)
                }
            case .connectUpstream:
                connectUpstream(context)
            case .startClientTLS:
                startClientTLS(context)
            case .startUpstreamTLS:
                startUpstreamTLS()
            case .startPassthrough:
                passthrough = TLSHandshakeObserver()
                passthroughActive(on: context.eventLoop)
            case .closeUpstream:
                abortRelease()
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
                appendToSpool(bytes, on: context.eventLoop)
            case .releaseSpool(let edits):
                releaseSpool(edits, on: context.eventLoop)
            case .dropSpool:
                abortRelease()
                closeSpool()
            case .quarantineSpool(let request):
                quarantine(request, on: context.eventLoop)
            case .record(let event):
                switch event {
                case .ruleVerdicts(let verdicts, _): log(verdicts)
                case .xclientRefused(let reply): logXCLIENTRefusal(reply)
                case .client(.anomaly(let anomaly)): logUpstreamFailure(anomaly)
                case .client(.messageAbandoned(_, let octets)): logAbandonedMessage(octets: octets)
                case .upstreamReply(let reply) where reply.code == 421: logUpstream421(reply)
                default: break
                }
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

    /// The operator asked for `--xclient` and this upstream connection does not honour it (logged
    /// again if a reconnection is refused too).
    private func logXCLIENTRefusal(_ reply: SMTPReply) {
        Self.logger.warning(
            "upstream refused XCLIENT: it sees the proxy as the client",
            metadata: ["session": "\(transcript.sessionID)", "reply": "\(reply.code) \(reply.lines.first ?? "")"]
        )
    }

    private static let logger = Logger(label: "smtpscope.proxy")

    /// The upstream could not be reached or its TLS failed: the client was answered 421. Each
    /// anomaly kind is recorded (and so logged) once per session; the detail names no secret.
    private func logUpstreamFailure(_ anomaly: SMTPAnomaly) {
        switch anomaly.kind {
        case .upstreamUnreachable, .upstreamTLSFailed:
            Self.logger.warning(
                "\(anomaly.detail ?? anomaly.kind.rawValue)",
                metadata: ["session": "\(transcript.sessionID)", "upstream": "\(session.upstream.host):\(session.upstream.port)", "anomaly": "\(anomaly.kind.rawValue)"]
            )
        default:
            break
        }
    }

    private func logUpstream421(_ reply: SMTPReply) {
        guard !loggedUpstream421 else { return }
        loggedUpstream421 = true
        Self.logger.notice(
            "upstream answered 421: it is closing the connection",
            metadata: ["session": "\(transcript.sessionID)", "upstream": "\(session.upstream.host):\(session.upstream.port)", "reply": "\(reply.code) \(reply.lines.first?.prefix(200) ?? "")"]
        )
    }

    /// A client that half-closed in the middle of a message: the message was not delivered.
    private func logAbandonedMessage(octets: Int) {
        Self.logger.notice(
            "client closed its side before the end of its message: the upstream transfer was aborted, nothing delivered",
            metadata: ["session": "\(transcript.sessionID)", "client": "\(transcript.client.map { "\($0.ip):\($0.port)" } ?? "unknown")", "octets": "\(octets)"]
        )
    }

    // MARK: Spool

    private func appendToSpool(_ bytes: ByteBuffer, on loop: any EventLoop) {
        let spool = self.spool ?? LoopSpool(configuration: session.configuration.spool, eventLoop: loop)
        self.spool = spool
        let bound = NIOLoopBound((handler: self, spool: spool), eventLoop: loop)
        spool.append(bytes) { failure in
            let handler = bound.value.handler
            // A failure of a spool already dropped or handed on is not this message's.
            if let failure, handler.spool === bound.value.spool {
                Self.logger.warning("cannot spool the message: \(failure)", metadata: ["session": "\(handler.transcript.sessionID)"])
                handler.perform(handler.machine.receiveSpoolFailed(failure))
            }
            handler.resumeReadingIfDue()
        }
    }

    /// A spooled message on its way upstream with its header edits, dot-stuffed and ended with
    /// `CRLF.CRLF`, a piece at a time as the upstream takes it (GlueHandler's rule), so a 10 MB
    /// message spooled to disk is never held whole in memory. Pieces on disk are read on the thread
    /// pool; one read at a time is in flight.
    private struct SpoolRelease {
        var offset = 0
        /// Nil without edits: the spool goes out as it is.
        var rewriter: HeaderRewriter?
        var writer = DataContentWriter()
        /// What the machine sent upstream meanwhile (a pipelined RSET, say): it follows the
        /// message's end, never its middle.
        var held: [ByteBuffer] = []
        var reading = false
    }

    private var release: SpoolRelease?

    private func releaseSpool(_ edits: [HeaderEdit], on loop: any EventLoop) {
        guard upstream != nil, let spool, spool.failure == nil else {
            // The spool lost octets: abort the upstream transaction rather than send half a message.
            upstream?.close(promise: nil)
            closeSpool()
            return
        }
        release = SpoolRelease(rewriter: edits.isEmpty ? nil : HeaderRewriter(edits: edits))
        continueRelease()
    }

    /// Reads the next piece while the upstream is writable; `upstreamWritabilityChanged` resumes it.
    private func continueRelease() {
        guard let current = release, !current.reading else { return }
        guard let upstream, let spool, spool.failure == nil, let loop = context?.eventLoop else { return abortRelease() }
        guard upstream.isWritable else { return }
        release?.reading = true
        let bound = NIOLoopBound((handler: self, spool: spool), eventLoop: loop)
        // A spool in memory answers at once, so its pieces go out in one go.
        spool.piece(at: current.offset).whenComplete { result in
            let handler = bound.value.handler
            guard handler.release != nil, handler.spool === bound.value.spool else { return }
            handler.release?.reading = false
            switch result {
            case .success(let piece?):
                handler.sendReleased(piece)
                handler.continueRelease()
            case .success(nil):
                handler.finishRelease()
            case .failure:
                handler.abortRelease()
            }
        }
    }

    private func sendReleased(_ piece: ByteBuffer) {
        guard let upstream else { return abortRelease() }
        release?.offset += piece.readableBytes
        var wire = ByteBuffer()
        do {
            if release?.rewriter != nil {
                var edited = ByteBuffer()
                release?.rewriter?.receive(piece, into: &edited)
                try release?.writer.write(edited, into: &wire)
            } else {
                try release?.writer.write(piece, into: &wire)
            }
        } catch {
            // The content was checked when spooled and the rewriter writes only canonical fields,
            // so this cannot fail; if it ever did, half a message must not pass for a whole one.
            return abortRelease()
        }
        upstream.writeAndFlush(wire, promise: nil)
    }

    private func finishRelease() {
        guard let upstream else { return abortRelease() }
        var wire = ByteBuffer()
        var edited = ByteBuffer()
        do {
            release?.rewriter?.finish(into: &edited)
            try release?.writer.write(edited, into: &wire)
            try release?.writer.finish(into: &wire)
        } catch {
            return abortRelease()
        }
        let held = release?.held ?? []
        release = nil
        closeSpool()
        upstream.write(wire, promise: nil)
        for command in held { upstream.write(command, promise: nil) }
        upstream.flush()
    }

    /// Closing the upstream leg mid-message is what aborts its transaction (no terminating dot).
    private func abortRelease() {
        guard release != nil else { return }
        release = nil
        closeSpool()
        upstream?.close(promise: nil)
    }

    /// Stores the spooled message in the quarantine, off the event loop: the store fsyncs the
    /// message, its record and the folder (the client hears 250 only once they are on disk), which
    /// must not stall the other sessions of this loop. The spool goes with the job; the next
    /// message of the session gets a new one.
    private func quarantine(_ request: RelaySessionStateMachine.QuarantineRequest, on loop: any EventLoop) {
        let held = spool
        spool = nil
        quarantined += 1
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
            size: held?.octets ?? 0
        )
        quarantinesInFlight += 1
        guard let held else {
            return quarantineStored(request, failure: "nothing spooled")
        }
        let job = QuarantineJob(
            store: SinkMessageStore(directory: session.configuration.spool.quarantineDirectory, durable: true),
            id: "\(transcript.sessionID)-\(quarantined)",
            record: record
        )
        let bound = NIOLoopBound((handler: self, spool: held), eventLoop: loop)
        // After every queued write to the spool; a failed one means the copy would not be whole.
        held.onThreadPool { spool in job.write(spool) }.whenComplete { result in
            let failure: String?
            switch result {
            case .success(let text): failure = text
            case .failure(let error): failure = "\(error)"
            }
            bound.value.handler.quarantineStored(request, failure: failure)
            bound.value.spool.close()
        }
    }

    private var quarantinesInFlight = 0

    private func quarantineStored(_ request: RelaySessionStateMachine.QuarantineRequest, failure: String?) {
        quarantinesInFlight -= 1
        let actions = machine.receiveQuarantineStored(request, failure: failure)
        guard finished else { return perform(actions) }
        // The session ended while the message was being stored: nobody is left to answer, but
        // the record still says where the message is (or that it is not), and is written now.
        for case .record(let event) in actions { transcript.record(event, at: .now()) }
        if quarantinesInFlight == 0 { writeRecord() }
    }

    private func closeSpool() {
        spool?.close()
        spool = nil
    }

    private func resumeReadingIfDue() {
        guard pendingRead, inPlace({ $0.wantsClientBytes }), upstreamWritable, spool?.acceptsMore != false, let context else { return }
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
        // An address literal (every transparent session, and most `--upstream`s) skips the
        // resolver: a getaddrinfo and a Happy Eyeballs race per session cost more than the relay.
        let connected: EventLoopFuture<Channel>
        if let address = try? SocketAddress(ipAddress: target.host, port: target.port) {
            connected = bootstrap.connect(to: address)
        } else {
            connected = bootstrap.connect(host: target.host, port: target.port)
        }
        connected
            .hop(to: context.eventLoop)
            .whenComplete { result in
                let handler = bound.value
                switch result {
                case .success(let channel):
                    handler.upstreamConnected(channel)
                case .failure(let error):
                    handler.perform(handler.machine.receiveUpstreamConnectFailed(reason: UpstreamFailureText.connect(error)))
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
            upstreamHandshakeFailed(reason: "no TLS context")
            return
        }
        do {
            let handler = try NIOSSLClientHandler(context: sslContext, serverHostname: session.upstreamServerHostname)
            // On the socket side of TLS, so it sees the hellos (version, cipher); in place before
            // the TLS handler, which sends its ClientHello as soon as it is added.
            let observer = TLSHandshakeObserverHandler(proxyIsServer: false)
            try upstream.pipeline.syncOperations.addHandler(observer, position: .first)
            upstreamObserver = observer
            try upstream.pipeline.syncOperations.addHandler(handler, position: .after(observer))
        } catch {
            upstreamHandshakeFailed(reason: "\(error)")
        }
    }

    private func armTimers(_ context: ChannelHandlerContext) {
        guard !finished else {
            // A pending timer holds this handler, and with it the whole session: a closed session
            // keeps none (an upstream closing after the client would arm one).
            dropTimers()
            return
        }
        // Deadlines, not idle timers: reads alone do not move them, so a trickling client still hits
        // them (hostile-input case 15).
        let (client, upstream) = inPlace { machine in
            (machine.clientTimeout.map { (seconds: $0, epoch: machine.clientDeadlineEpoch) },
             machine.upstreamTimeout.map { (seconds: $0, epoch: machine.upstreamDeadlineEpoch) })
        }
        if client?.seconds != clientDeadline?.seconds || client?.epoch != clientDeadline?.epoch {
            clientDeadline = client
            clientTimer?.move(to: client.map { .now() + .seconds($0.seconds) }, on: context.eventLoop)
        }
        if upstream?.seconds != upstreamDeadline?.seconds || upstream?.epoch != upstreamDeadline?.epoch {
            upstreamDeadline = upstream
            upstreamTimer?.move(to: upstream.map { .now() + .seconds($0.seconds) }, on: context.eventLoop)
        }
    }

    /// Reads the machine where it lies. A plain get of a computed property of the machine (stored
    /// in this class) copies the whole struct first, and that copy, after every event, was measured
    /// at 2 % of the proxy's CPU.
    private func inPlace<T>(_ body: (inout RelaySessionStateMachine) -> T) -> T {
        body(&machine)
    }

    private func deadlineFired(_ leg: RelaySessionStateMachine.Leg) {
        guard let context, !finished else { return }
        let passed: Bool? = switch leg {
        case .client: clientTimer?.fired(now: .now(), on: context.eventLoop)
        case .upstream: upstreamTimer?.fired(now: .now(), on: context.eventLoop)
        }
        if passed == true { perform(machine.receiveTimeout(leg)) }
    }

    /// An octet went by (or the blind relay began): the idle deadline starts again.
    private func passthroughActive(on loop: any EventLoop) {
        passthroughTimer?.move(to: .now() + .seconds(machine.passthroughIdleTimeout), on: loop)
    }

    /// A passthrough session ends after `passthroughIdleTimeout` seconds without an octet either way.
    private func passthroughIdle() {
        guard let context, !finished, passthroughTimer?.fired(now: .now(), on: context.eventLoop) == true else { return }
        perform(machine.receiveTimeout(.client))
    }

    private func dropTimers() {
        clientTimer?.cancel()
        upstreamTimer?.cancel()
        passthroughTimer?.cancel()
        clientTimer = nil
        upstreamTimer = nil
        passthroughTimer = nil
    }

    /// Writes the session's record once, off the event loop.
    private func finish() {
        guard !finished else { return }
        finished = true
        dropTimers()
        if let passthrough { transcript.noteClientTLS(passthrough.summary, at: .now()) }
        passthrough = nil
        upstream?.close(promise: nil)
        upstream = nil
        release = nil
        closeSpool()
        // A message on its way into the quarantine is in the record once it is there.
        if quarantinesInFlight == 0 { writeRecord() }
    }

    private func writeRecord() {
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
