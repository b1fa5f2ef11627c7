import MailMessage
import NIOCore
import SMTPCore
import SMTPTranscript

/// The relay between one SMTP client and its upstream server (RFC 5321, RFC 2920 pipelining,
/// RFC 3030 CHUNKING, RFC 3207 STARTTLS, RFC 4954 AUTH), as a pure state machine.
///
/// Each input is one `receiveX` call returning the `Action`s the channel layer performs, in order.
/// Every byte sent to either peer is one the machine has parsed: commands are re-written from their
/// parsed form, message content is re-serialised by `DataContentWriter` (never relayed as it came) or,
/// BDAT to an upstream that offers CHUNKING, relayed in length-delimited chunks once checked as DATA
/// would check it, and replies reach the client in command order whatever their origin.
public struct RelayStateMachine: Sendable {
    // MARK: Configuration

    public let configuration: RelayConfiguration
    private let policy: any SessionPolicy
    private var facts: PolicyFacts

    // MARK: Client leg

    private enum ClientMode: Sendable, Hashable {
        /// No greeting yet: any byte is a synchronisation error (`554 5.5.0`, hostile-input case 7).
        case beforeGreeting
        case commands
        /// A command's reply decides how the next bytes read (DATA, BDAT, AUTH).
        case awaitingReply(Awaiting)
        case sasl
        case content
        /// Consuming a BDAT chunk that will not be relayed.
        case discardingChunk
        case tlsHandshake
        /// `--client-tls passthrough`: TLS runs end to end; the channel layer relays octets blind.
        case passthrough
        case closed
    }

    private enum Awaiting: Sendable, Hashable {
        case data
        case bdat
        case auth
        /// Nothing after STARTTLS is read in plaintext: STARTTLS wipes the slate.
        case starttls
        /// Nothing after QUIT is acted on.
        case quit
    }

    private var clientMode = ClientMode.beforeGreeting {
        // Each new mode starts a new client deadline (`clientDeadlineEpoch`).
        didSet { if clientMode != oldValue { restartClientDeadline() } }
    }
    private var clientBuffer = ByteBuffer()
    private var commandFramer: LineFramer
    private var saslFramer: LineFramer
    private var replies = ReplyQueue()
    /// A command read but not yet acted on: it waits for earlier replies or for the upstream.
    private var deferred: (id: Int, command: SMTPCommand)?
    private var nextCommandID = 1
    private var errors = 0
    private var droppedOverlongOctets = 0
    private var reportedAnomalies = Set<SMTPAnomalyKind>()
    private var clientTLSActive = false
    /// The client half-closed the connection: all it will send is in `clientBuffer`.
    private var clientInputClosed = false
    private var authenticated = false
    private var sasl: (authID: Int, exchange: SASLExchange, slot: Int)?
    /// Bytes the client sent after DATA before the 354: a synchronisation error (hostile-input case 7).
    private var earlyContent = false

    // MARK: Transaction

    private struct Transaction: Sendable {
        var smtpUTF8: Bool
        /// The reverse-path and parameters as sent upstream, for a redirect's new transaction.
        var mailFrom: SMTPPath
        var mailParameters: [ESMTPParameter]
        var mailAccepted = false
        /// False when a rule settled the transaction before MAIL went upstream.
        var upstreamOpen = true
        var recipientCommands = 0
        var accepted: [SMTPPath] = []
        var addedRecipients: [SMTPPath] = []
        var redirect: SMTPPath?
        /// Set once a rule discarded or quarantined the transaction: the client is answered as if
        /// it were delivered, and nothing more of it goes upstream.
        var settlement: Settlement?
    }

    /// What a rule decided for a whole transaction instead of delivery.
    enum Settlement: Sendable, Hashable {
        case discard
        case quarantine(reason: String)

        var outcome: SessionRecord.TransactionOutcome {
            switch self {
            case .discard: .discarded
            case .quarantine: .quarantined
            }
        }
    }

    /// A `connect`, `helo` or `auth` rule's discard or quarantine: every transaction of the session.
    private var sessionSettlement: Settlement?

    private var transaction: Transaction?

    private enum ContentFailure: Sendable, Hashable {
        case forbidden(DataContentWriter.Octet)
        case tooLarge
        case headerTooLarge
        case upstreamLost
        case spoolFailed
        case rejected(PolicyReply)
    }

    /// Message content in flight from the client.
    private struct Content: Sendable {
        var commandID: Int
        var kind: SMTPInspector.DataKind
        var parser = DataContentParser(reportsLenientEndCandidates: false)
        var writer = DataContentWriter()
        var octets = 0
        var failure: ContentFailure?
        /// BDAT: octets left in the current chunk, whether it is the last, and its reply slot.
        var chunkRemaining: UInt64 = 0
        var chunkIsLast = false
        var chunkSlot = 0
        var chunkSize: UInt64 = 0
        /// BDAT relayed as BDAT (RFC 3030; the upstream offers CHUNKING): each client chunk goes
        /// upstream raw under its own `BDAT n`, never LAST; only the proxy's closing `BDAT 0 LAST`,
        /// sent once the whole message has passed its checks, lets the upstream commit it.
        var relaysChunks = false
        /// The current chunk's `BDAT n` went upstream: its octets are owed there.
        var chunkRelayed = false
        /// An upstream reply to a chunk that was not 2xx: RFC 3030 §2 says no further BDAT may
        /// follow it, so later chunks stay with the proxy and are answered with it.
        var upstreamRefusal: SMTPReply?
        /// Spooled: the proxy answers 354 and the chunks itself and keeps the message until `message`
        /// rules have seen it whole; nothing goes upstream before.
        var spooled = false
        /// Reads the spooled message for the `message` stage's facts, and for the record.
        var inspector: MessageInspector?
        /// The inspector's reading, taken at the end of the content.
        var summary: MessageSummary?
        /// The header section so far, bounded by `maxHeaderSectionOctets`: its octets, the last four of
        /// them, and whether its empty line was seen.
        var headerOctets = 0
        var headerTail: UInt32 = 0
        var headerEnded = false

        /// Reads `slice` up to the end of the header section; false once the section is longer
        /// than `limit`.
        mutating func measureHeader(_ slice: ByteBuffer, limit: Int) -> Bool {
            guard !headerEnded else { return true }
            for octet in slice.readableBytesView {
                headerOctets += 1
                headerTail = headerTail << 8 | UInt32(octet)
                // CRLF CRLF, or a message that starts with its empty line.
                if headerTail == 0x0D0A_0D0A || (headerOctets == 2 && headerTail == 0x0D0A) {
                    headerEnded = true
                    return true
                }
                if headerOctets > limit { return false }
            }
            return true
        }
    }

    private var content: Content?
    /// A refused BDAT chunk being read: the reply waits until its octets are consumed.
    private var discard: (remaining: UInt64, slot: Int, reply: SMTPReply)?

    // MARK: Upstream leg

    private enum UpstreamState: Sendable, Hashable {
        case connecting
        case ready
        case tlsHandshake
        /// `--client-tls passthrough`: after the upstream's 220 to the client's STARTTLS.
        case passthrough
        /// Closed by the proxy (aborted transaction) or by the upstream between commands: reopened
        /// on demand.
        case lost
        case closed
    }

    /// A command for the upstream, with what its reply will answer.
    private struct UpstreamCommand: Sendable {
        var bytes: ByteBuffer
        var line: String
        var expecting: Expectation
    }

    /// What an upstream reply answers.
    private enum Expectation: Sendable {
        case greeting(resuming: Bool)
        case relay(slot: Int)
        case ehlo(slot: Int, verb: String, name: String)
        case mail(slot: Int)
        case rcpt(slot: Int, path: SMTPPath)
        case data(slot: Int, kind: SMTPInspector.DataKind)
        case endOfData(slot: Int)
        /// A client chunk relayed as `BDAT n` (`Content.relaysChunks`). Its 2xx fills the client's
        /// slot, except for the client's LAST chunk (`ofLast`), which waits for `lastChunk`.
        case chunk(slot: Int, message: Int, octets: UInt64, ofLast: Bool)
        /// The proxy's `BDAT 0 LAST` (or `BDAT 2 LAST`) ending a relayed message.
        case lastChunk(slot: Int)
        /// DATA for a spooled message: on 354 the channel layer sends the spool with its edits.
        case spooledData(slot: Int, edits: [HeaderEdit], octets: Int)
        case auth(slot: Int)
        case starttls(ehloReply: SMTPReply, then: EHLOPurpose)
        /// The client's own STARTTLS, relayed under `--client-tls passthrough`.
        case passthroughSTARTTLS(slot: Int)
        case resumeEHLO
        /// XCLIENT (`--xclient`): the commands still to send, whether one was accepted, and the
        /// EHLO exchange it belongs to, with the EHLO reply to fall back on when it is refused.
        case xclient(remaining: [String], accepted: Bool, then: EHLOPurpose, ehloReply: SMTPReply)
        /// QUIT, the client's (its reply slot) or the proxy's for a client that half-closed
        /// without one (`nil`): the session ends at the upstream's reply.
        case quit(slot: Int?)
        /// Replies the client never sees (bcc RCPT, SASL cancel).
        case internalOnly
    }

    /// What an upstream EHLO exchange is for: the client's EHLO, or a reconnection. It says what to
    /// do once the upstream leg is encrypted or has accepted XCLIENT: EHLO again, for the same end.
    private enum EHLOPurpose: Sendable {
        case ehlo(slot: Int, verb: String, name: String)
        case resumeEHLO
    }

    private var upstreamState = UpstreamState.connecting
    private var upstreamBuffer = ByteBuffer()
    private var upstreamFramer = LineFramer(maxLineOctets: SMTPLimits().maxReplyLineOctets)
    private var replyAssembler = ReplyAssembler()
    private var expectations = CircularBuffer<Expectation>(initialCapacity: 8)
    /// Commands waiting for the reply to the one before: an upstream that does not offer
    /// PIPELINING gets one command at a time (RFC 2920 §3.1: a client SHOULD NOT pipeline
    /// otherwise, and Postfix's `smtpd_forbid_unauth_pipelining` disconnects one that does).
    private var unpipelined = CircularBuffer<UpstreamCommand>(initialCapacity: 4)
    private var upstreamTLSActive = false
    private var upstreamTLSTried = false
    private var upstreamExtensions: [String: String?] = [:]
    /// The upstream's 250 to the EHLO that ended the last EHLO exchange on this connection: the
    /// upstream session is identified, and a strict server refuses a second EHLO on it (RFC 5321
    /// §4.1.4 allows that; OpenSMTPD: `503 5.5.1 Already identified`). A client's later EHLO or
    /// HELO (the one RFC 3207 §4.2 requires after its STARTTLS, or any other) is answered from it.
    /// A new connection, STARTTLS or XCLIENT towards the upstream starts its session again.
    private var upstreamIdentified: SMTPReply?
    private var greetingSlot: Int?
    /// `--xclient`: XCLIENT went (or was tried) on this upstream connection; a reconnection resets it.
    private var xclientTried = false
    /// The client's greeting verb, for XCLIENT's PROTO.
    private var clientProtocol: XCLIENTCommand.ClientProtocol?

    public init(configuration: RelayConfiguration, policy: any SessionPolicy = AllowAllPolicy(), facts: PolicyFacts = PolicyFacts()) {
        self.configuration = configuration
        self.policy = policy
        self.facts = facts
        self.commandFramer = LineFramer(maxLineOctets: configuration.limits.maxCommandLineOctets)
        self.saslFramer = LineFramer(maxLineOctets: configuration.limits.maxAuthLineOctets + 2)
        if configuration.clientLegImplicitTLS {
            // RFC 8314 §3.3: the channel layer completes the handshake before any SMTP octet.
            self.clientTLSActive = true
            self.facts.tls = true
        }
    }

    // MARK: Inputs

    /// The client connected: ask the policy, then open the upstream leg.
    public mutating func start() -> [Action] {
        var actions: [Action] = []
        let slot = replies.open(answering: .greeting)
        let decision = policy.decide(at: .connect, facts: facts)
        recordVerdicts(decision, &actions)
        switch decision.action {
        case .continue, .discard, .quarantine:
            sessionSettlement = Self.settlement(of: decision)
            greetingSlot = slot
            upstreamState = .connecting
            actions.append(.connectUpstream)
        case .reject(let reply), .tempfail(let reply):
            upstreamState = .closed
            replies.fill(slot, with: SMTPReply(reply), origin: .proxy, followUp: .resumeCommands)
            transactionRefusedSession = true
        case .disconnect(let reply):
            upstreamState = .closed
            replies.fill(slot, with: reply.map(SMTPReply.init) ?? .proxy(421, "4.7.0", "\(configuration.hostname) Service not available, closing transmission channel"), origin: .proxy, followUp: .closeClient)
        }
        pump(&actions)
        return actions
    }

    /// Set when a `connect` rule refused the session: every later command is refused too.
    private var transactionRefusedSession = false

    public mutating func receiveUpstreamConnected() -> [Action] {
        guard upstreamState == .connecting else { return [] }
        upstreamDeadlineEpoch &+= 1
        expectations.append(.greeting(resuming: greetingSlot == nil))
        return []
    }

    public mutating func receiveUpstreamConnectFailed(reason: String) -> [Action] {
        var actions: [Action] = []
        guard upstreamState == .connecting else { return actions }
        upstreamState = .closed
        actions.append(.record(.client(.anomaly(SMTPAnomaly(.upstreamUnreachable, "upstream unreachable: \(reason)")))))
        let reply = SMTPReply.proxy(421, "4.4.1", "\(configuration.hostname) Service not available: upstream unreachable")
        if let slot = greetingSlot {
            greetingSlot = nil
            replies.fill(slot, with: reply, origin: .proxy, followUp: .closeClient)
        } else {
            replies.failRemaining(with: reply)
        }
        actions.append(.record(.close(by: .proxy, reason: .error)))
        pump(&actions)
        return actions
    }

    public mutating func receiveClientBytes(_ bytes: ByteBuffer) -> [Action] {
        var actions: [Action] = []
        var bytes = bytes
        switch clientMode {
        case .closed, .tlsHandshake, .passthrough:
            return actions
        case .beforeGreeting:
            // As in Postfix ≥ 3.9 (hostile-input case 7): talking before the greeting is a protocol
            // synchronisation error.
            note(.commandBeforeGreeting, "\(bytes.readableBytes) octets before the greeting", &actions)
            clientMode = .closed
            let refusal = SMTPReply.proxy(554, "5.5.0", "Error: SMTP protocol synchronization")
            var out = ByteBuffer()
            refusal.write(into: &out)
            actions.append(.sendToClient(out))
            actions.append(.record(.clientReply(refusal, answering: .unknown, origin: .proxy)))
            actions.append(.record(.close(by: .proxy, reason: .error)))
            actions.append(.closeClient)
            actions.append(.closeUpstream)
            upstreamState = .closed
            replies.removeAll()
            return actions
        case .awaitingReply(.data):
            // Content before 354: remembered, then refused when the 354 would go out.
            earlyContent = true
            return actions
        case .commands, .awaitingReply, .sasl, .content, .discardingChunk:
            break
        }
        if clientBuffer.readableBytes + bytes.readableBytes > configuration.limits.maxHeldClientOctets + 65536,
            clientMode != .content, clientMode != .discardingChunk
        {
            failSession(.proxy(421, "4.7.0", "Error: too much pipelined input"), &actions)
            return actions
        }
        if clientMode == .content || clientMode == .discardingChunk {
            contentOctetsSinceDeadline += bytes.readableBytes
            if contentOctetsSinceDeadline / max(1, configuration.limits.minDataRate) >= configuration.timeouts.dataBlock {
                restartClientDeadline()
            }
        }
        clientBuffer.writeBuffer(&bytes)
        pump(&actions)
        return actions
    }

    public mutating func receiveUpstreamBytes(_ bytes: ByteBuffer) -> [Action] {
        var actions: [Action] = []
        var bytes = bytes
        switch upstreamState {
        case .ready, .connecting:
            break
        case .tlsHandshake, .passthrough, .lost, .closed:
            return actions
        }
        upstreamBuffer.writeBuffer(&bytes)
        while upstreamState == .ready || upstreamState == .connecting, let frame = upstreamFramer.next(from: &upstreamBuffer) {
            switch frame {
            case .overlong(let prefix, let total):
                protocolError("reply line of \(total) octets: \(String(decoding: prefix.readableBytesView.prefix(80), as: UTF8.self))", &actions)
            case .line(let line, _):
                switch replyAssembler.receive(line: line) {
                case nil:
                    break
                case .malformed(let text):
                    protocolError("malformed reply line: \(text.prefix(80))", &actions)
                case .reply(let reply):
                    if reply.hasMixedCodes {
                        protocolError("multi-line reply with mixed codes", &actions)
                    } else if reply.hasControlOctets {
                        protocolError("reply line with a CR or NUL octet", &actions)
                    } else if reply.droppedLines > 0 {
                        // Hostile-input case 24: no real reply is that long; relaying it cut would
                        // hide what the upstream said.
                        protocolError("multi-line reply of \(reply.lines.count + reply.droppedLines) lines", &actions)
                    } else {
                        handleUpstreamReply(reply, &actions)
                        sendNextUnpipelined(&actions)
                    }
                }
            }
        }
        if upstreamState == .tlsHandshake || upstreamState == .passthrough, upstreamBuffer.readableBytes > 0 {
            // STARTTLS wipes the slate: bytes after the upstream's 220 to STARTTLS are discarded.
            // Under passthrough too: a TLS server says nothing before the client's hello.
            note(.plaintextAfterSTARTTLS, "\(upstreamBuffer.readableBytes) octets from the upstream after its 220 to STARTTLS", &actions)
            upstreamBuffer.clear()
        }
        pump(&actions)
        return actions
    }

    /// The client leg's handshake is done (after STARTTLS, or at once on an implicit-TLS listener);
    /// `version` is the protocol version it agreed, which `tls.version` rules read.
    public mutating func receiveClientTLSEstablished(version: String? = nil) -> [Action] {
        var actions: [Action] = []
        if clientTLSActive || clientMode == .tlsHandshake { facts.tlsVersion = version }
        guard clientMode == .tlsHandshake else { return actions }
        // RFC 3207 §4.2: forget everything learnt before the handshake.
        clientTLSActive = true
        clientMode = .commands
        facts.helo = nil
        facts.tls = true
        facts.authUser = nil
        facts.authMechanism = nil
        if transaction?.upstreamOpen == true, upstreamState == .ready {
            // The client's transaction is forgotten; the upstream's must be too.
            sendUpstream(.rset, expecting: .internalOnly, &actions)
        }
        transaction = nil
        pump(&actions)
        return actions
    }

    public mutating func receiveClientTLSFailed(reason: String) -> [Action] {
        var actions: [Action] = []
        clientMode = .closed
        actions.append(.record(.client(.tlsSummary(tlsFailure(reason)))))
        actions.append(.record(.close(by: .proxy, reason: .error)))
        actions.append(.closeClient)
        actions.append(.closeUpstream)
        upstreamState = .closed
        return actions
    }

    public mutating func receiveUpstreamTLSEstablished() -> [Action] {
        var actions: [Action] = []
        guard upstreamState == .tlsHandshake, case .starttls(_, let then)? = pendingUpstreamTLS else { return actions }
        pendingUpstreamTLS = nil
        upstreamTLSActive = true
        upstreamState = .ready
        upstreamFramer = LineFramer(maxLineOctets: SMTPLimits().maxReplyLineOctets)
        replyAssembler.reset()
        actions.append(.record(.upstreamTLSStarted))
        sendEHLOAgain(for: then, &actions)
        pump(&actions)
        return actions
    }

    /// The upstream leg's TLS handshake failed. Only a handshake can fail here: once TLS is up, an
    /// error at the close (a FIN without close_notify, NIOSSL's `uncleanShutdown`) is the end of
    /// the connection, which `receiveUpstreamClosed` reports, not a failed or stripped TLS.
    public mutating func receiveUpstreamTLSFailed(reason: String) -> [Action] {
        var actions: [Action] = []
        guard upstreamState == .tlsHandshake else { return actions }
        note(.upstreamTLSFailed, "upstream TLS handshake failed: \(reason)", &actions)
        upstreamState = .closed
        failSession(.proxy(421, "4.7.0", "Error: TLS negotiation with the upstream failed"), &actions)
        return actions
    }

    private var pendingUpstreamTLS: Expectation?

    /// The client half-closed the connection (its FIN; with TLS, its close_notify or a FIN without
    /// one). A half-closed client still reads (RFC 9293 §3.6): Exim pipelines the end of a message
    /// and QUIT and closes its side at once. Everything it sent is relayed and answered as usual;
    /// once nothing more can come of it the session ends (`endHalfClosedSession`). A message whose
    /// end never came is not delivered.
    public mutating func receiveClientInputClosed() -> [Action] {
        var actions: [Action] = []
        switch clientMode {
        case .closed:
            return actions
        case .passthrough:
            // The blind relay has no use for a half-closed leg: both legs close, as they did when
            // a FIN closed the client channel outright.
            var actions = receiveClientClosed()
            actions.append(.closeClient)
            return actions
        case .beforeGreeting, .commands, .awaitingReply, .sasl, .content, .discardingChunk, .tlsHandshake:
            break
        }
        guard !clientInputClosed else { return actions }
        clientInputClosed = true
        pump(&actions)
        return actions
    }

    public mutating func receiveClientClosed() -> [Action] {
        var actions: [Action] = []
        guard clientMode != .closed else { return actions }
        clientMode = .closed
        actions.append(.record(.close(by: .client, reason: .fin)))
        if upstreamState != .closed {
            upstreamState = .closed
            actions.append(.closeUpstream)
        }
        return actions
    }

    public mutating func receiveUpstreamClosed() -> [Action] {
        var actions: [Action] = []
        switch upstreamState {
        case .closed, .lost:
            return actions
        case .passthrough:
            upstreamState = .closed
            actions.append(.record(.close(by: .server, reason: .fin)))
            if clientMode != .closed {
                clientMode = .closed
                actions.append(.closeClient)
            }
            return actions
        case .connecting, .ready, .tlsHandshake:
            break
        }
        if case .quit(let slot)? = expectations.first {
            quitAnswered(slot: slot, reply: nil, &actions)
            pump(&actions)
            return actions
        }
        let hadGreeting = greetingSlot == nil
        upstreamState = .lost
        if clientMode == .sasl {
            // The client is writing its next SASL response for an exchange no new connection
            // can take up (its secrets were never kept): answer now rather than at a timeout.
            sasl = nil
            upstreamState = .closed
            forgetUpstreamCommands()
            actions.append(.record(.close(by: .server, reason: .fin)))
            failSession(.proxy(421, "4.4.2", "\(configuration.hostname) Error: upstream connection lost"), &actions)
            return actions
        }
        if content != nil, clientMode == .content || clientMode == .awaitingReply(.bdat) || content?.relaysChunks == true {
            // Mid-content: read on to the client's end of data, then answer 451 4.4.2.
            if content?.failure == nil {
                content?.failure = .upstreamLost
                actions.append(.record(.messageTruncated))
            }
            answerRelayedChunks()
            forgetUpstreamCommands()
            pump(&actions)
            return actions
        }
        if !expectations.isEmpty || !hadGreeting {
            forgetUpstreamCommands()
            upstreamState = .closed
            actions.append(.record(.close(by: .server, reason: .fin)))
            let reply: SMTPReply = hadGreeting
                ? .proxy(421, "4.4.2", "\(configuration.hostname) Error: upstream connection lost")
                : .proxy(421, "4.4.1", "\(configuration.hostname) Service not available: upstream closed the connection")
            if let slot = greetingSlot {
                greetingSlot = nil
                replies.fill(slot, with: reply, origin: .proxy, followUp: .closeClient)
            } else {
                replies.failRemaining(with: reply)
            }
        }
        pump(&actions)
        return actions
    }

    /// A deadline of RFC 5321 §4.5.3.2 passed on one leg.
    public mutating func receiveTimeout(_ leg: Leg) -> [Action] {
        if leg == .upstream, case .quit(let slot)? = expectations.first {
            var actions: [Action] = []
            quitAnswered(slot: slot, reply: nil, &actions)
            pump(&actions)
            return actions
        }
        let text = switch leg {
        case .client: "Error: timeout exceeded"
        case .upstream: "Error: upstream timeout exceeded"
        }
        return endByProxy(.timeout, .proxy(421, "4.4.2", "\(configuration.hostname) \(text)"))
    }

    /// The proxy is shutting down and the drain deadline passed with this session still open.
    /// RFC 5321 §3.8: a server that shuts down answers 421 first, even between commands. A message
    /// not yet ended goes no further, so the upstream never commits it.
    public mutating func receiveShutdown() -> [Action] {
        endByProxy(.fin, .proxy(421, "4.3.2", "\(configuration.hostname) Service shutting down"))
    }

    /// The proxy ends the session with `reply` to what the client is owed.
    private mutating func endByProxy(_ reason: SessionRecord.Close.Reason, _ reply: SMTPReply) -> [Action] {
        var actions: [Action] = []
        guard clientMode != .closed else { return actions }
        actions.append(.record(.close(by: .proxy, reason: reason)))
        if clientMode == .passthrough {
            // Inside end-to-end TLS the proxy has nothing it could say: it closes both legs.
            clientMode = .closed
            upstreamState = .closed
            actions.append(.closeClient)
            actions.append(.closeUpstream)
            return actions
        }
        failSession(reply, &actions)
        return actions
    }

    // MARK: Queries for the channel layer

    /// Whether the channel layer should read from the client now.
    public var wantsClientBytes: Bool {
        switch clientMode {
        case .commands, .sasl:
            return deferred == nil && clientBuffer.readableBytes < configuration.limits.maxHeldClientOctets
        case .content, .discardingChunk, .beforeGreeting:
            return true
        case .tlsHandshake, .passthrough:
            // The TLS handler below (or the blind relay) consumes these reads.
            return true
        case .awaitingReply(.data):
            return true
        case .awaitingReply, .closed:
            return false
        }
    }

    /// Seconds the client may stay silent now, or `nil` while the proxy is the one waiting.
    public var clientTimeout: Int64? {
        switch clientMode {
        case .commands, .sasl:
            return replies.isEmpty && deferred == nil ? configuration.timeouts.serverIdle : nil
        case .content, .discardingChunk:
            return configuration.timeouts.dataBlock
        case .beforeGreeting, .awaitingReply, .tlsHandshake, .closed:
            return nil
        case .passthrough:
            // The blind relay keeps its own idle timer (`passthroughIdleTimeout`).
            return nil
        }
    }

    /// Seconds a passthrough session may carry no octet in either direction.
    public var passthroughIdleTimeout: Int64 { configuration.timeouts.serverIdle }

    /// Seconds the upstream may take for the reply it owes, or `nil` when it owes none.
    public var upstreamTimeout: Int64? {
        guard let head = expectations.first else { return nil }
        switch head {
        case .greeting: return configuration.timeouts.greeting
        case .data, .spooledData: return configuration.timeouts.dataInitiation
        case .endOfData, .chunk, .lastChunk: return configuration.timeouts.endOfData
        case .quit: return configuration.timeouts.quitReply
        case .relay, .ehlo, .mail, .rcpt, .auth, .starttls, .passthroughSTARTTLS, .resumeEHLO, .xclient, .internalOnly:
            return configuration.timeouts.command
        }
    }

    public var isClosed: Bool { clientMode == .closed }

    /// The client's deadline (`clientTimeout`) runs from the last change of this number, not from
    /// the last read: it changes when a command or SASL line is complete, when the mode changes,
    /// and in content after each `minDataRate × dataBlock` octets. So a client that trickles a
    /// command or a message one octet at a time still hits the deadline (hostile-input case 15).
    public private(set) var clientDeadlineEpoch = 0
    private var contentOctetsSinceDeadline = 0

    /// The upstream's deadline (`upstreamTimeout`) runs from the last change of this number: it
    /// changes when a reply arrives and when a command is sent with none outstanding, so each
    /// reply the upstream owes gets its RFC 5321 §4.5.3.2 time, whatever else happens meanwhile.
    public private(set) var upstreamDeadlineEpoch = 0

    private mutating func restartClientDeadline() {
        clientDeadlineEpoch &+= 1
        contentOctetsSinceDeadline = 0
    }

    // MARK: The pump

    /// Sends the replies that are due, then acts on client input until nothing more can move.
    private mutating func pump(_ actions: inout [Action]) {
        var moved = true
        while moved {
            moved = flushReplies(&actions)
            if let pending = deferred {
                if canRun(pending.command) {
                    deferred = nil
                    execute(pending.command, id: pending.id, &actions)
                    moved = true
                } else if upstreamState == .lost, needsUpstream(pending.command) {
                    reconnect(&actions)
                    moved = true
                }
            }
            if deferred == nil, processClient(&actions) { moved = true }
            if !moved, clientInputClosed { moved = endHalfClosedSession(&actions) }
        }
    }

    /// The client half-closed and everything it sent has been acted on: a message, chunk or SASL
    /// exchange left unfinished is abandoned (its upstream transfer aborted, so nothing is
    /// delivered), and once every reply is written the session ends: QUIT goes upstream when it can
    /// take one, and both legs close at its reply. True when something changed.
    private mutating func endHalfClosedSession(_ actions: inout [Action]) -> Bool {
        guard deferred == nil else { return false }
        switch clientMode {
        case .content, .discardingChunk:
            if let current = content {
                if current.kind == .bdat { replies.remove(current.chunkSlot) }
                actions.append(.record(.client(.messageAbandoned(commandID: current.commandID, octets: current.octets))))
                if current.spooled {
                    actions.append(.dropSpool)
                } else {
                    abortUpstreamTransfer(&actions)
                }
                content = nil
                transaction = nil
            }
            if let current = discard {
                replies.remove(current.slot)
                discard = nil
            }
            clientMode = .commands
            return true
        case .sasl:
            // The upstream's exchange is cancelled as RFC 4954 §4 says.
            sasl = nil
            if upstreamState == .ready { sendRaw("*", expecting: .internalOnly, &actions) }
            clientMode = .commands
            return true
        case .commands:
            guard replies.isEmpty else { return false }
        case .beforeGreeting, .awaitingReply, .tlsHandshake, .passthrough, .closed:
            return false
        }
        actions.append(.record(.close(by: .client, reason: .fin)))
        if upstreamState == .ready {
            clientMode = .awaitingReply(.quit)
            sendUpstream(.quit, expecting: .quit(slot: nil), &actions)
        } else {
            closeBothLegs(&actions)
        }
        return true
    }

    private mutating func closeBothLegs(_ actions: inout [Action]) {
        clientMode = .closed
        deferred = nil
        clientBuffer.clear()
        replies.removeAll()
        actions.append(.closeClient)
        if upstreamState != .closed {
            upstreamState = .closed
            forgetUpstreamCommands()
            actions.append(.closeUpstream)
        }
    }

    private mutating func flushReplies(_ actions: inout [Action]) -> Bool {
        var moved = false
        while let slot = replies.popReady(), let reply = slot.reply {
            moved = true
            var out = ByteBuffer()
            reply.write(into: &out)
            actions.append(.sendToClient(out))
            actions.append(.record(.clientReply(reply, answering: slot.answering, origin: slot.origin)))
            switch slot.followUp {
            case .none:
                break
            case .closeClient:
                clientMode = .closed
                // Nothing the client sent after this reply is acted on or answered.
                deferred = nil
                clientBuffer.clear()
                actions.append(.record(.close(by: .proxy, reason: reply.code == 221 ? .quit : .error)))
                actions.append(.closeClient)
                if upstreamState != .closed {
                    upstreamState = .closed
                    actions.append(.closeUpstream)
                }
                replies.removeAll()
                return true
            case .startClientTLS:
                if clientBuffer.readableBytes > 0 {
                    // STARTTLS wipes the slate: plaintext pipelined behind it is dropped, CVE-2011-0411.
                    note(.plaintextAfterSTARTTLS, "\(clientBuffer.readableBytes) octets pipelined after STARTTLS discarded", &actions)
                    clientBuffer.clear()
                }
                clientMode = .tlsHandshake
                actions.append(.record(.client(.tlsStarted(implicit: false))))
                actions.append(.startClientTLS)
            case .startPassthrough:
                if clientBuffer.readableBytes > 0 {
                    // CVE-2011-0411: never relayed into the upstream's TLS stream either.
                    note(.plaintextAfterSTARTTLS, "\(clientBuffer.readableBytes) octets pipelined after STARTTLS discarded", &actions)
                    clientBuffer.clear()
                }
                clientMode = .passthrough
                deferred = nil
                actions.append(.record(.passthroughStarted))
                actions.append(.startPassthrough)
                replies.removeAll()
                return true
            case .enterContent:
                clientMode = .content
            case .enterSASL:
                clientMode = .sasl
            case .resumeCommands:
                if clientMode != .closed { clientMode = .commands }
            }
            if slot.isError {
                errors += 1
                if errors >= configuration.limits.maxErrors, clientMode != .closed {
                    // Postfix `smtpd_hard_error_limit`: nothing read after this error is answered.
                    replies.removeAll()
                    replies.answer(.unknown, with: .proxy(421, "4.7.0", "\(configuration.hostname) Error: too many errors"), followUp: .closeClient)
                }
            }
        }
        return moved
    }

    // MARK: Client input

    /// Reads as far as the current mode allows; true when something was consumed.
    private mutating func processClient(_ actions: inout [Action]) -> Bool {
        var moved = false
        while true {
            switch clientMode {
            case .commands:
                guard deferred == nil else { return moved }
                let before = clientBuffer.readableBytes
                guard let frame = commandFramer.next(from: &clientBuffer) else {
                    if commandFramer.isDroppingOverlongLine {
                        droppedOverlongOctets += before - clientBuffer.readableBytes
                        if droppedOverlongOctets > configuration.limits.maxOverlongLineOctets {
                            note(.overlongLine, "more than \(configuration.limits.maxOverlongLineOctets) octets without CRLF; session closed", &actions)
                            failSession(.proxy(421, "4.7.0", "\(configuration.hostname) Error: line too long"), &actions)
                        }
                    }
                    clientBuffer.discardReadBytes()
                    return moved || before != clientBuffer.readableBytes
                }
                moved = true
                droppedOverlongOctets = 0
                handleCommandFrame(frame, &actions)
            case .sasl:
                guard let frame = saslFramer.next(from: &clientBuffer) else { return moved }
                moved = true
                handleSASLFrame(frame, &actions)
            case .content:
                guard clientBuffer.readableBytes > 0 else { return moved }
                moved = true
                if content?.kind == .bdat {
                    readChunk(&actions)
                } else {
                    readDataContent(&actions)
                }
            case .discardingChunk:
                guard clientBuffer.readableBytes > 0, let current = discard else { return moved }
                moved = true
                let take = Int(min(UInt64(clientBuffer.readableBytes), current.remaining))
                clientBuffer.moveReaderIndex(forwardBy: take)
                discard?.remaining -= UInt64(take)
                if discard?.remaining == 0 {
                    discard = nil
                    replies.fill(current.slot, with: current.reply, origin: current.reply.code == 250 ? .proxy : .server)
                    clientMode = .commands
                    return true
                }
            case .beforeGreeting, .awaitingReply, .tlsHandshake, .passthrough, .closed:
                return moved
            }
        }
    }

    private mutating func handleCommandFrame(_ frame: LineFramer.Frame, _ actions: inout [Action]) {
        restartClientDeadline()
        let id = nextCommandID
        nextCommandID += 1
        switch frame {
        case .overlong(_, let total):
            note(.overlongLine, "command line of \(total) octets", &actions)
            actions.append(.record(.client(.invalidCommand(id: id, SMTPCommandError(code: 500, enhanced: .init(statusClass: 5, subject: 5, detail: 2), text: "Error: line too long"), line: "[\(total) octets]"))))
            replies.answer(.invalidCommand(id: id, verb: nil), with: .proxy(500, "5.5.2", "Error: line too long"), isError: true)
        case .line(let line, let terminator):
            if terminator == .bareLF { note(.bareLFInCommand, nil, &actions) }
            switch CommandParser.parse(line: line.readableBytesView) {
            case .failure(let error):
                let shown = error.verb == "AUTH" ? "AUTH [redacted]" : String(decoding: line.readableBytesView.prefix(512), as: UTF8.self)
                actions.append(.record(.client(.invalidCommand(id: id, error, line: shown))))
                if error.verb == "BDAT" {
                    // The chunk's end cannot be known, so whatever follows could be read as
                    // commands: answer and close, as Postfix does (`521 5.5.4`).
                    replies.answer(.invalidCommand(id: id, verb: error.verb), with: .proxy(521, "5.5.4", error.text), isError: true, followUp: .closeClient)
                    clientMode = .awaitingReply(.quit)
                    return
                }
                replies.answer(.invalidCommand(id: id, verb: error.verb), with: .proxy(error.code, error.enhanced.description, error.text), isError: true)
            case .success(let command):
                actions.append(.record(.client(.command(id: id, command, line: command.redactedLine))))
                if canRun(command) {
                    execute(command, id: id, &actions)
                } else {
                    deferred = (id, command)
                }
            }
        }
    }

    /// Commands that end a pipelined group (RFC 2920 §3.1) or change how the next bytes read wait
    /// for every earlier reply; commands relayed upstream wait for the upstream leg.
    private func canRun(_ command: SMTPCommand) -> Bool {
        switch command {
        case .ehlo, .helo, .lhlo, .data, .auth, .starttls, .quit:
            if !replies.isEmpty { return false }
        case .bdat:
            if !replies.isEmpty && content == nil { return false }
        case .mail, .rcpt, .rset, .noop, .vrfy, .expn, .help, .xclient, .xforward, .unknown:
            break
        }
        if spoolReleasePending && needsUpstream(command) { return false }
        if needsUpstream(command) && upstreamState != .ready && !transactionRefusedSession {
            return upstreamState == .closed
        }
        return true
    }

    private func needsUpstream(_ command: SMTPCommand) -> Bool {
        switch command {
        case .ehlo, .helo, .mail, .rcpt, .data, .auth, .vrfy, .expn:
            return true
        case .bdat:
            return content == nil
        case .starttls:
            return configuration.clientTLS == .passthrough
        case .lhlo, .rset, .noop, .quit, .help, .xclient, .xforward, .unknown:
            return false
        }
    }

    private mutating func reconnect(_ actions: inout [Action]) {
        if authenticated || transaction != nil {
            // Neither can move to a new connection: the SASL exchange cannot be replayed (its
            // secrets were never kept), and an open transaction's MAIL and RCPTs were accepted
            // by the upstream that is gone, so a new one would answer its next command 503.
            deferred = nil
            clientBuffer.clear()
            replies.failRemaining(with: .proxy(421, "4.4.2", "\(configuration.hostname) Error: upstream connection lost"))
            return
        }
        upstreamState = .connecting
        upstreamTLSActive = false
        upstreamTLSTried = false
        upstreamIdentified = nil
        xclientTried = false
        upstreamBuffer.clear()
        replyAssembler.reset()
        upstreamFramer = LineFramer(maxLineOctets: SMTPLimits().maxReplyLineOctets)
        actions.append(.connectUpstream)
    }

    private mutating func execute(_ command: SMTPCommand, id: Int, _ actions: inout [Action]) {
        let answering = SMTPInspector.Answered.command(id: id, command)
        func local(_ code: Int, _ enhanced: String?, _ text: String, error: Bool = false, followUp: ReplyQueue.FollowUp = .none) {
            replies.answer(answering, with: .proxy(code, enhanced, text), isError: error, followUp: followUp)
        }
        if upstreamState == .closed && needsUpstream(command) {
            if transactionRefusedSession {
                local(503, "5.5.1", "Error: session refused", error: true)
            } else {
                local(421, "4.4.2", "\(configuration.hostname) Error: upstream connection lost", followUp: .closeClient)
            }
            return
        }
        if content != nil {
            // Inside a BDAT transfer only BDAT, RSET, QUIT and NOOP make sense (RFC 3030 §3).
            switch command {
            case .bdat, .rset, .quit, .noop:
                break
            default:
                local(503, "5.5.1", "Error: BDAT transfer in progress", error: true)
                return
            }
        }
        switch command {
        case .helo(let name), .ehlo(let name):
            var probe = facts
            probe.helo = name
            let decision = policy.decide(at: .helo, facts: probe)
            recordVerdicts(decision, &actions)
            if refuse(decision, answering, &actions) { return }
            if let settlement = Self.settlement(of: decision) { sessionSettlement = settlement }
            facts.helo = name
            let verb = command.verb
            clientProtocol = verb == "EHLO" ? .esmtp : .smtp
            if let identified = upstreamIdentified, upstreamState == .ready {
                answerFromIdentifiedUpstream(identified, verb: verb, answering, &actions)
                return
            }
            transaction = nil
            let slot = replies.open(answering: answering)
            holdUntilEHLOSettles()
            sendUpstream(verb == "EHLO" ? .ehlo(domain: name) : .helo(domain: name), expecting: .ehlo(slot: slot, verb: verb, name: name), &actions)
        case .lhlo:
            local(502, "5.5.1", "Error: command not implemented", error: true)
        case .mail(let path, let parameters):
            executeMail(path, parameters, answering, &actions)
        case .rcpt(let path, let parameters):
            executeRcpt(path, parameters, answering, &actions)
        case .data:
            executeData(kind: .data, answering, id: id, &actions)
        case .bdat(let size, let last):
            executeBDAT(size: size, last: last, answering, id: id, &actions)
        case .rset:
            if content != nil {
                // RFC 3030 §3: RSET ends an unfinished BDAT transfer with its transaction.
                abortUpstreamTransfer(&actions)
                content = nil
            }
            transaction = nil
            if upstreamState == .ready {
                let slot = replies.open(answering: answering)
                sendUpstream(.rset, expecting: .relay(slot: slot), &actions)
            } else {
                local(250, "2.0.0", "Ok")
            }
        case .noop:
            local(250, "2.0.0", "Ok")
        case .quit:
            if content != nil { abortUpstreamTransfer(&actions) }
            clientMode = .awaitingReply(.quit)
            if upstreamState == .ready {
                // The upstream gets the QUIT and the client its 221 (`quitAnswered`), so both
                // sides end the session cleanly and the record shows what each leg carried.
                let slot = replies.open(answering: answering)
                sendUpstream(.quit, expecting: .quit(slot: slot), &actions)
            } else {
                local(221, "2.0.0", "Bye", followUp: .closeClient)
            }
        case .vrfy, .expn:
            let slot = replies.open(answering: answering)
            sendUpstream(command, expecting: .relay(slot: slot), &actions)
        case .help:
            local(214, "2.0.0", "See RFC 5321")
        case .xclient, .xforward:
            // Never relayed: a client must not choose the identity the upstream trusts.
            local(502, "5.5.1", "Error: command not implemented", error: true)
        case .unknown:
            local(502, "5.5.2", "Error: command not recognized", error: true)
        case .starttls:
            if clientTLSActive {
                local(554, "5.5.1", "Error: TLS already active", error: true)
            } else if configuration.clientTLS == .off {
                local(502, "5.5.1", "Error: command not implemented", error: true)
            } else if configuration.clientTLS == .passthrough {
                relaySTARTTLS(answering, &actions)
            } else {
                local(220, "2.0.0", "Ready to start TLS", followUp: .startClientTLS)
                clientMode = .awaitingReply(.starttls)
            }
        case .auth(let mechanism, let initial):
            executeAuth(mechanism, initial, id: id, answering, &actions)
        }
    }

    /// Applies a terminal policy action; true when the command was answered by the proxy.
    private mutating func refuse(_ decision: PolicyDecision, _ answering: SMTPInspector.Answered, _ actions: inout [Action]) -> Bool {
        switch decision.action {
        case .continue, .discard, .quarantine:
            return false
        case .reject(let reply), .tempfail(let reply):
            replies.answer(answering, with: SMTPReply(reply))
            return true
        case .disconnect(let reply):
            replies.answer(answering, with: reply.map(SMTPReply.init) ?? .proxy(421, "4.7.0", "\(configuration.hostname) Service not available, closing transmission channel"), followUp: .closeClient)
            return true
        }
    }

    private static func settlement(of decision: PolicyDecision) -> Settlement? {
        switch decision.action {
        case .discard: .discard
        case .quarantine(let reason): .quarantine(reason: reason)
        case .continue, .reject, .tempfail, .disconnect: nil
        }
    }

    private mutating func executeMail(_ path: SMTPPath, _ parameters: [ESMTPParameter], _ answering: SMTPInspector.Answered, _ actions: inout [Action]) {
        func local(_ code: Int, _ enhanced: String, _ text: String, error: Bool = false) {
            replies.answer(answering, with: .proxy(code, enhanced, text), isError: error)
        }
        if configuration.clientTLS == .require && !clientTLSActive {
            return local(530, "5.7.0", "Must issue a STARTTLS command first")
        }
        guard facts.helo != nil else { return local(503, "5.5.1", "Error: send HELO/EHLO first", error: true) }
        guard transaction == nil else { return local(503, "5.5.1", "Error: nested MAIL command", error: true) }
        switch parameters.size {
        case .absent:
            break
        case .invalid:
            return local(501, "5.5.4", "Bad SIZE parameter syntax", error: true)
        case .overflow:
            return local(552, "5.3.4", "Message size exceeds fixed limit")
        case .valid(let size):
            // The limit offered in EHLO: the smaller of the proxy's and the upstream's (RFC 1870 §6).
            if size > UInt64(EHLOReconciler.clientSizeLimit(upstream: upstreamExtensions, proxyLimit: configuration.limits.maxMessageOctets)) {
                return local(552, "5.3.4", "Message size exceeds fixed limit")
            }
        }
        let smtpUTF8 = parameters.contains(keyword: "SMTPUTF8")
        if !path.isASCII && !smtpUTF8 {
            return local(553, "5.6.7", "Must declare SMTPUTF8 to send UTF8 address")
        }
        if configuration.upstreamTLS.requiresTLS && !upstreamTLSActive {
            return local(451, "4.7.5", "Error: TLS to the upstream is required but not available")
        }
        var probe = facts
        probe.mailFrom = path
        probe.mailParameters = parameters
        let decision = policy.decide(at: .mail, facts: probe)
        recordVerdicts(decision, &actions)
        if refuse(decision, answering, &actions) { return }
        facts.mailFrom = path
        facts.mailParameters = parameters
        facts.recipients = []
        facts.recipientCount = 0
        let upstreamPath = decision.rewriteMailFrom ?? path
        if decision.rewriteMailFrom != nil { actions.append(.record(.mailFromRewritten(upstreamPath))) }
        var started = Transaction(smtpUTF8: smtpUTF8, mailFrom: upstreamPath, mailParameters: parameters, addedRecipients: decision.addRecipients)
        started.redirect = decision.redirect
        if let settlement = Self.settlement(of: decision) ?? sessionSettlement {
            // Settled before anything went upstream: the whole transaction stays with the proxy.
            started.settlement = settlement
            started.upstreamOpen = false
            started.mailAccepted = true
            transaction = started
            return local(250, "2.1.0", "Ok")
        }
        transaction = started
        let slot = replies.open(answering: answering)
        sendUpstream(.mail(from: upstreamPath, parameters: parameters), expecting: .mail(slot: slot), &actions)
    }

    private mutating func executeRcpt(_ path: SMTPPath, _ parameters: [ESMTPParameter], _ answering: SMTPInspector.Answered, _ actions: inout [Action]) {
        func local(_ code: Int, _ enhanced: String, _ text: String, error: Bool = false) {
            replies.answer(answering, with: .proxy(code, enhanced, text), isError: error)
        }
        guard let current = transaction else { return local(503, "5.5.1", "Error: need MAIL command", error: true) }
        guard current.recipientCommands < configuration.limits.maxRecipients else {
            return local(452, "4.5.3", "Error: too many recipients")
        }
        if !path.isASCII && !current.smtpUTF8 {
            return local(553, "5.6.7", "Must declare SMTPUTF8 to send UTF8 address")
        }
        var probe = facts
        probe.recipient = path
        // The recipients given before this one: pipelined RCPTs count before the upstream answers.
        probe.recipientCount = current.recipientCommands
        let decision = policy.decide(at: .rcpt, facts: probe)
        recordVerdicts(decision, &actions)
        transaction?.recipientCommands += 1
        facts.recipientCount += 1
        if refuse(decision, answering, &actions) { return }
        transaction?.addedRecipients += decision.addRecipients
        if let settlement = Self.settlement(of: decision), transaction?.settlement == nil { transaction?.settlement = settlement }
        if transaction?.settlement != nil {
            // Answered as if accepted: the transaction will never reach the upstream.
            transaction?.accepted.append(path)
            facts.recipients.append(path)
            return local(250, "2.1.5", "Ok")
        }
        if let redirect = decision.redirect {
            // At `rcpt`, a redirect replaces this recipient only; later stages replace them all.
            let slot = replies.open(answering: answering)
            sendUpstream(.rcpt(to: redirect, parameters: parameters), expecting: .rcpt(slot: slot, path: path), &actions)
            return
        }
        let slot = replies.open(answering: answering)
        sendUpstream(.rcpt(to: decision.rewriteRecipient ?? path, parameters: parameters), expecting: .rcpt(slot: slot, path: path), &actions)
    }

    /// Checks shared by DATA and the first BDAT; returns the refusal, if any.
    private mutating func refuseMessageStart(_ actions: inout [Action]) -> SMTPReply? {
        guard let current = transaction, current.mailAccepted else { return .proxy(503, "5.5.1", "Error: need MAIL command") }
        guard current.recipientCommands > 0 else { return .proxy(503, "5.5.1", "Error: need RCPT command") }
        guard !current.accepted.isEmpty else { return .proxy(554, "5.5.1", "Error: no valid recipients") }
        let decision = policy.decide(at: .data, facts: facts)
        recordVerdicts(decision, &actions)
        switch decision.action {
        case .continue, .discard, .quarantine:
            transaction?.addedRecipients += decision.addRecipients
            if let redirect = decision.redirect { transaction?.redirect = redirect }
            if let settlement = Self.settlement(of: decision), transaction?.settlement == nil { transaction?.settlement = settlement }
            return nil
        case .reject(let reply), .tempfail(let reply):
            return SMTPReply(reply)
        case .disconnect(let reply):
            return reply.map(SMTPReply.init) ?? .proxy(421, "4.7.0", "\(configuration.hostname) Service not available, closing transmission channel")
        }
    }

    /// Sends bcc recipients, then DATA.
    private mutating func startUpstreamData(expecting: Expectation, _ actions: inout [Action]) {
        prepareUpstreamMessage(&actions)
        sendUpstream(.data, expecting: expecting, &actions)
    }

    /// What goes upstream before the message: bcc recipients (never shown to the client). A
    /// redirect first replaces the upstream transaction with one for the redirect address alone.
    private mutating func prepareUpstreamMessage(_ actions: inout [Action]) {
        if let current = transaction, let redirect = current.redirect {
            sendUpstream(.rset, expecting: .internalOnly, &actions)
            sendUpstream(.mail(from: current.mailFrom, parameters: current.mailParameters), expecting: .internalOnly, &actions)
            sendUpstream(.rcpt(to: redirect, parameters: []), expecting: .internalOnly, &actions)
            transaction?.redirect = nil
        }
        for recipient in transaction?.addedRecipients ?? [] {
            sendUpstream(.rcpt(to: recipient, parameters: []), expecting: .internalOnly, &actions)
        }
        transaction?.addedRecipients = []
    }

    private mutating func executeData(kind: SMTPInspector.DataKind, _ answering: SMTPInspector.Answered, id: Int, _ actions: inout [Action]) {
        if let refusal = refuseMessageStart(&actions) {
            replies.answer(answering, with: refusal, isError: (500...504).contains(refusal.code), followUp: refusal.code == 421 ? .closeClient : .none)
            return
        }
        let slot = replies.open(answering: answering)
        if spoolsMessages { return startSpooledData(slot: slot, id: id, &actions) }
        content = Content(commandID: id, kind: .data)
        earlyContent = clientBuffer.readableBytes > 0
        clientMode = .awaitingReply(.data)
        startUpstreamData(expecting: .data(slot: slot, kind: kind), &actions)
    }

    private mutating func executeBDAT(size: UInt64, last: Bool, _ answering: SMTPInspector.Answered, id: Int, _ actions: inout [Action]) {
        if content != nil {
            // A further chunk of an open transfer.
            let slot = replies.open(answering: answering)
            content?.chunkRemaining = size
            content?.chunkSize = size
            content?.chunkIsLast = last
            content?.chunkSlot = slot
            if content?.relaysChunks == true { relayChunkHeader(&actions) }
            clientMode = .content
            if size == 0 { finishChunk(&actions) }
            return
        }
        let slot = replies.open(answering: answering)
        if let refusal = refuseMessageStart(&actions) {
            // RFC 3030 §3: the chunk is read all the same, then refused.
            discard = (size, slot, refusal)
            clientMode = .discardingChunk
            if size == 0 {
                discard = nil
                replies.fill(slot, with: refusal, origin: .proxy, followUp: .none)
                clientMode = .commands
            }
            return
        }
        var started = Content(commandID: id, kind: .bdat)
        started.chunkRemaining = size
        started.chunkSize = size
        started.chunkIsLast = last
        started.chunkSlot = slot
        actions.append(.record(.client(.messageBegin(commandID: id, .bdat))))
        if spoolsMessages {
            started.spooled = true
            started.inspector = MessageInspector(limits: messageLimits)
            content = started
            actions.append(.record(.messageReadByRelay))
            actions.append(.dropSpool)
            clientMode = .content
            if size == 0 { finishChunk(&actions) }
            return
        }
        if upstreamExtensions["CHUNKING"] != nil && upstreamExtensions["PIPELINING"] != nil {
            // RFC 3030 on both legs: each chunk streams upstream as it arrives, without waiting
            // for the previous chunk's reply, which RFC 2920 allows only where PIPELINING is
            // offered (without it, the upstream gets DATA, below).
            started.relaysChunks = true
            content = started
            prepareUpstreamMessage(&actions)
            relayChunkHeader(&actions)
            clientMode = .content
            if size == 0 { finishChunk(&actions) }
            return
        }
        // The upstream lacks CHUNKING, so it gets DATA; the chunk waits in the client's buffer
        // until its 354.
        content = started
        clientMode = .awaitingReply(.bdat)
        startUpstreamData(expecting: .data(slot: slot, kind: .bdat), &actions)
    }

    /// Sends the current chunk's `BDAT n` upstream (never LAST: `endRelayedMessage` ends the
    /// message), unless the transfer has already failed, or the upstream refused an earlier chunk
    /// (RFC 3030 §2: the sender MUST NOT send further BDAT after a 4xx or 5xx to one).
    private mutating func relayChunkHeader(_ actions: inout [Action]) {
        guard let current = content else { return }
        let relayed = current.failure == nil && current.upstreamRefusal == nil && upstreamState == .ready
        content?.chunkRelayed = relayed
        guard relayed else { return }
        let expecting = Expectation.chunk(slot: current.chunkSlot, message: current.commandID, octets: current.chunkSize, ofLast: current.chunkIsLast)
        sendRaw("BDAT \(current.chunkSize)", expecting: expecting, &actions)
    }

    private mutating func executeAuth(_ mechanism: String, _ initial: SASLResponse?, id: Int, _ answering: SMTPInspector.Answered, _ actions: inout [Action]) {
        func local(_ code: Int, _ enhanced: String, _ text: String, error: Bool = false) {
            replies.answer(answering, with: .proxy(code, enhanced, text), isError: error)
        }
        if authenticated { return local(503, "5.5.1", "Error: already authenticated", error: true) }
        if transaction != nil { return local(503, "5.5.1", "Error: MAIL transaction in progress", error: true) }
        if configuration.clientTLS == .require && !clientTLSActive {
            return local(530, "5.7.0", "Must issue a STARTTLS command first")
        }
        guard case .some(.some(let offered)) = upstreamExtensions["AUTH"],
            offered.uppercased().split(separator: " ").contains(Substring(mechanism))
        else { return local(504, "5.5.4", "Unsupported authentication mechanism", error: true) }
        if initial?.isCancellation == true { return local(501, "5.7.0", "Authentication aborted") }
        var exchange = SASLExchange(mechanism: mechanism)
        if let initial { exchange.receiveResponse(initial) }
        facts.authMechanism = mechanism
        if let user = exchange.user {
            facts.authUser = user
            actions.append(.record(.client(.authIdentity(authID: id, mechanism: mechanism, user: user))))
        }
        let slot = replies.open(answering: answering)
        sasl = (id, exchange, slot)
        clientMode = .awaitingReply(.auth)
        sendUpstream(.auth(mechanism: mechanism, initialResponse: initial), expecting: .auth(slot: slot), &actions)
    }

    private mutating func handleSASLFrame(_ frame: LineFramer.Frame, _ actions: inout [Action]) {
        restartClientDeadline()
        guard var current = sasl else {
            clientMode = .commands
            return
        }
        actions.append(.record(.client(.saslResponse(authID: current.authID))))
        let answering = SMTPInspector.Answered.saslResponse(id: current.authID)
        switch frame {
        case .overlong:
            // RFC 4954 §4: 12288 octets at most. The upstream exchange is cancelled.
            sasl = nil
            sendRaw("*", expecting: .internalOnly, &actions)
            replies.answer(answering, with: .proxy(500, "5.5.6", "Authentication exchange line is too long"), isError: true, followUp: .resumeCommands)
            clientMode = .awaitingReply(.auth)
        case .line(let line, _):
            let response = SASLResponse(base64Text: String(decoding: line.readableBytesView, as: UTF8.self))
            if response.isCancellation {
                sasl = nil
                sendRaw("*", expecting: .internalOnly, &actions)
                replies.answer(answering, with: .proxy(501, "5.7.0", "Authentication aborted"), followUp: .resumeCommands)
                clientMode = .awaitingReply(.auth)
                return
            }
            let hadUser = current.exchange.user != nil
            current.exchange.receiveResponse(response)
            if !hadUser, let user = current.exchange.user {
                facts.authUser = user
                actions.append(.record(.client(.authIdentity(authID: current.authID, mechanism: current.exchange.mechanism, user: user))))
            }
            let slot = replies.open(answering: answering)
            current.slot = slot
            sasl = current
            clientMode = .awaitingReply(.auth)
            sendRaw(response.base64Text, expecting: .auth(slot: slot), redacted: true, &actions)
        }
    }

    // MARK: Content

    private mutating func readDataContent(_ actions: inout [Action]) {
        guard var current = content else { return }
        var out = ByteBuffer()
        var slices: [ByteBuffer] = []
        let stop = current.parser.parse(&clientBuffer) { slices.append($0) }
        for slice in slices {
            forward(slice, &current, into: &out, &actions)
        }
        if out.readableBytes > 0 { actions.append(.sendUpstream(out)) }
        switch stop {
        case .needMoreBytes, .lenientEndCandidate:
            clientBuffer.discardReadBytes()
            content = current
        case .endOfData:
            finishReading(&current, &actions)
            actions.append(.record(.client(.messageEnd(commandID: current.commandID, octets: current.octets, complete: true, current.parser.observations))))
            content = current
            endMessage(slot: replies.open(answering: .endOfData(id: current.commandID)), &actions)
            clientMode = .commands
        }
    }

    private mutating func readChunk(_ actions: inout [Action]) {
        guard var current = content, current.chunkRemaining > 0 else { return }
        let take = Int(min(UInt64(clientBuffer.readableBytes), current.chunkRemaining))
        guard let slice = clientBuffer.readSlice(length: take) else { return }
        current.chunkRemaining -= UInt64(take)
        var out = ByteBuffer()
        forward(slice, &current, into: &out, &actions)
        if current.relaysChunks {
            // Checked, and owed upstream under this chunk's `BDAT n`: sent as read.
            if current.chunkRelayed, current.failure == nil {
                actions.append(.sendUpstream(slice))
                // The upstream owes this chunk's reply only once it has the last octet: a client
                // sending within its data rate must not run the upstream's deadline out.
                upstreamDeadlineEpoch &+= 1
            }
        } else if out.readableBytes > 0 {
            actions.append(.sendUpstream(out))
        }
        content = current
        if current.chunkRemaining == 0 { finishChunk(&actions) }
    }

    /// A BDAT chunk was read in full: a middle chunk is answered by the proxy (or, relayed, by the
    /// upstream), the last one ends the message.
    private mutating func finishChunk(_ actions: inout [Action]) {
        guard var current = content else { return }
        if current.chunkRelayed, current.failure == nil, current.chunkSize > 0 {
            actions.append(.record(.upstreamContent(octets: Int(current.chunkSize))))
        }
        if current.chunkIsLast {
            finishReading(&current, &actions)
            content = current
            actions.append(.record(.client(.messageEnd(commandID: current.commandID, octets: current.octets, complete: true, current.parser.observations))))
            endMessage(slot: current.chunkSlot, &actions)
        } else if let failure = current.failure {
            replies.fill(current.chunkSlot, with: reply(for: failure), origin: .proxy)
        } else if current.relaysChunks {
            // A relayed chunk is answered by the upstream (`handleChunkReply`); one kept back after
            // the upstream refused an earlier chunk gets that refusal.
            if !current.chunkRelayed {
                replies.fill(current.chunkSlot, with: current.upstreamRefusal ?? reply(for: .upstreamLost), origin: .proxy)
            }
        } else {
            replies.fill(current.chunkSlot, with: .proxy(250, "2.0.0", "\(current.chunkSize) octets received"), origin: .proxy)
        }
        clientMode = .commands
    }

    /// Checks one piece of content and writes it upstream in canonical form; the first forbidden
    /// octet or excess octet stops the upstream transaction: it is never cleaned and sent on.
    private mutating func forward(_ slice: ByteBuffer, _ current: inout Content, into out: inout ByteBuffer, _ actions: inout [Action]) {
        current.octets += slice.readableBytes
        if current.failure == nil {
            actions.append(.record(.client(.messageContent(slice))))
        }
        guard current.failure == nil else { return }
        if current.octets > contentLimit {
            current.failure = .tooLarge
            actions.append(.record(.messageTruncated))
            note(.messageTruncated, "content over the \(contentLimit)-octet limit: refused with 552 5.3.4, read no further", &actions)
            out.clear()
            if current.spooled {
                actions.append(.dropSpool)
            } else {
                abortUpstreamTransfer(&actions)
            }
            return
        }
        if !current.measureHeader(slice, limit: configuration.limits.maxHeaderSectionOctets) {
            current.failure = .headerTooLarge
            actions.append(.record(.messageTruncated))
            note(.messageHeaderAnomaly, "header section over \(configuration.limits.maxHeaderSectionOctets) octets; transaction aborted", &actions)
            out.clear()
            if current.spooled {
                actions.append(.dropSpool)
            } else {
                abortUpstreamTransfer(&actions)
            }
            return
        }
        if current.spooled {
            spool(slice, &current, &actions)
            return
        }
        if current.relaysChunks {
            // BDAT is length-delimited: the octets go upstream as they are (`readChunk`), no
            // stuffing, once they pass the checks the DATA path makes.
            do {
                try current.writer.check(slice)
            } catch {
                refuseContent(error, &current, &actions)
                abortUpstreamTransfer(&actions)
            }
            return
        }
        let mark = out.writerIndex
        do {
            try current.writer.write(slice, into: &out)
        } catch {
            out.moveWriterIndex(to: mark)
            refuseContent(error, &current, &actions)
            if out.readableBytes > 0 {
                actions.append(.sendUpstream(out))
                out.clear()
            }
            abortUpstreamTransfer(&actions)
        }
    }

    /// The most content octets this transaction may carry: `--message-size-limit`, or the SIZE
    /// its MAIL declared when smaller (hostile-input case 11). Both count the message as RFC 1870 §6.1
    /// does: CRLFs included, stuffing dots and the terminating dot not, which is what the
    /// content parser hands over.
    private var contentLimit: Int {
        let limit = configuration.limits.maxMessageOctets
        guard case .valid(let declared)? = transaction?.mailParameters.size, declared < UInt64(limit) else { return limit }
        return Int(declared)
    }

    /// The client's message is complete: end it upstream, or refuse it.
    private mutating func endMessage(slot: Int, _ actions: inout [Action]) {
        guard var current = content else { return }
        content = nil
        if current.spooled {
            endSpooledMessage(&current, slot: slot, &actions)
            return
        }
        let open = transaction
        transaction = nil
        if current.failure == nil, current.relaysChunks {
            if endRelayedMessage(&current, open: open, slot: slot, &actions) { return }
        } else if current.failure == nil {
            var out = ByteBuffer()
            do {
                try current.writer.finish(into: &out)
                actions.append(.record(.upstreamContent(octets: current.octets)))
                sendBytes(out, line: ".", expecting: .endOfData(slot: slot), &actions)
                return
            } catch {
                current.failure = .forbidden(error.octet)
                note(.bareCRInData, "at the end of the content; transaction aborted", &actions)
                abortUpstreamTransfer(&actions)
            }
        }
        if let failure = current.failure {
            replies.fill(slot, with: reply(for: failure), origin: .proxy)
        }
    }

    /// The client's LAST chunk was read whole and every octet passed: the proxy ends the relayed
    /// message with a LAST chunk of its own (RFC 3030 allows a zero-size one), so the upstream can
    /// commit only a message the proxy has checked to its end. False when the end fails its check
    /// (`current.failure` says why).
    private mutating func endRelayedMessage(_ current: inout Content, open: Transaction?, slot: Int, _ actions: inout [Action]) -> Bool {
        if let refusal = current.upstreamRefusal {
            // RFC 3030 §2: after a 4xx or 5xx to a chunk the sender MUST NOT send further BDAT
            // (a LAST pipelined before the refusal arrived is the upstream's to discard). RSET
            // clears whatever the upstream kept of the failed transaction.
            closeUpstreamTransaction(open, &actions)
            replies.fill(slot, with: refusal, origin: .proxy)
            return true
        }
        var end = ByteBuffer()
        do {
            try current.writer.finish(into: &end)
        } catch {
            current.failure = .forbidden(error.octet)
            note(.bareCRInData, "at the end of the content; transaction aborted", &actions)
            abortUpstreamTransfer(&actions)
            return false
        }
        // `finish` puts CRLF before its "." when the content does not end with one (BDAT content
        // may end anywhere). The DATA path sends that CRLF, so this one does too: the upstream
        // stores the same message either way.
        if end.readableBytes > 3 {
            sendRaw("BDAT 2 LAST", expecting: .lastChunk(slot: slot), &actions)
            actions.append(.record(.upstreamContent(octets: 2)))
            actions.append(.sendUpstream(ByteBuffer(string: "\r\n")))
        } else {
            sendRaw("BDAT 0 LAST", expecting: .lastChunk(slot: slot), &actions)
        }
        return true
    }

    /// The first octet DATA may not carry (bare CR, bare LF, NUL): the transaction fails, and the
    /// client hears why at its end of data.
    private mutating func refuseContent(_ error: DataContentWriter.ForbiddenOctet, _ current: inout Content, _ actions: inout [Action]) {
        current.failure = .forbidden(error.octet)
        actions.append(.record(.messageTruncated))
        let kind: SMTPAnomalyKind = switch error.octet {
        case .bareLF: .bareLFInData
        case .bareCR: .bareCRInData
        case .nul: .nulInData
        }
        note(kind, "at content octet \(error.offset); transaction aborted", &actions)
    }

    // MARK: Spooled messages

    /// Whether the next message is held whole by the proxy before anything goes upstream.
    private var spoolsMessages: Bool {
        policy.evaluatesMessages || transaction?.settlement != nil
    }

    /// What the relay's reading of a spooled message keeps: decoded body text only for a policy
    /// that reads it.
    private var messageLimits: MessageLimits {
        var limits = MessageLimits()
        if !policy.readsMessageBody { limits.maxBodyTextOctets = 0 }
        return limits
    }

    /// DATA when the message is spooled: the proxy answers 354 itself.
    private mutating func startSpooledData(slot: Int, id: Int, _ actions: inout [Action]) {
        if clientBuffer.readableBytes > 0 {
            // Hostile-input case 7: content pipelined after DATA, before any 354.
            note(.unparsedBytes, "message content sent before 354", &actions)
            clientBuffer.clear()
            replies.fill(slot, with: .proxy(554, "5.5.0", "Error: SMTP protocol synchronization"), origin: .proxy, followUp: .closeClient)
            return
        }
        var started = Content(commandID: id, kind: .data)
        started.spooled = true
        started.inspector = MessageInspector(limits: messageLimits)
        content = started
        // Whatever an earlier, interrupted message left behind is not part of this one.
        actions.append(.dropSpool)
        actions.append(.record(.client(.messageBegin(commandID: id, .data))))
        actions.append(.record(.messageReadByRelay))
        clientMode = .awaitingReply(.data)
        replies.fill(slot, with: .proxy(354, nil, "End data with <CR><LF>.<CR><LF>"), origin: .proxy, followUp: .enterContent)
    }

    /// The spooled message has all its content: one reading serves the `message` rules and the
    /// record, which gets it ahead of the message's end.
    private func finishReading(_ current: inout Content, _ actions: inout [Action]) {
        guard current.summary == nil, var inspector = current.inspector else { return }
        let summary = inspector.finish()
        current.inspector = nil
        current.summary = summary
        actions.append(.record(.messageRead(summary)))
    }

    /// Checks a piece of spooled content as the upstream would get it, reads it for the
    /// `message` stage, and hands it to the channel layer's spool.
    private mutating func spool(_ slice: ByteBuffer, _ current: inout Content, _ actions: inout [Action]) {
        do {
            try current.writer.check(slice)
        } catch {
            refuseContent(error, &current, &actions)
            actions.append(.dropSpool)
            return
        }
        current.inspector?.receive(slice)
        // A discarded message needs no copy; every other outcome sends or stores it.
        if transaction?.settlement != .discard { actions.append(.spool(slice)) }
    }

    /// The whole message is spooled: the `message` stage decides, then the message is refused,
    /// settled by the proxy, or sent upstream with its edits.
    private mutating func endSpooledMessage(_ current: inout Content, slot: Int, _ actions: inout [Action]) {
        let open = transaction
        transaction = nil
        if current.failure == nil {
            var scratch = ByteBuffer()
            do {
                try current.writer.finish(into: &scratch)
            } catch {
                current.failure = .forbidden(error.octet)
                note(.bareCRInData, "at the end of the content; transaction aborted", &actions)
            }
        }
        if let failure = current.failure {
            actions.append(.dropSpool)
            closeUpstreamTransaction(open, &actions)
            replies.fill(slot, with: reply(for: failure), origin: .proxy)
            return
        }
        var settlement = open?.settlement
        var settlingRules: [String] = []
        var edits: [HeaderEdit] = []
        var added = open?.addedRecipients ?? []
        var redirect = open?.redirect
        if settlement == nil, policy.evaluatesMessages {
            var probe = facts
            probe.messageSize = current.octets
            probe.message = current.summary
            let decision = policy.decide(at: .message, facts: probe)
            recordVerdicts(decision, &actions)
            switch decision.action {
            case .reject(let refusal), .tempfail(let refusal):
                actions.append(.dropSpool)
                closeUpstreamTransaction(open, &actions)
                replies.fill(slot, with: SMTPReply(refusal), origin: .proxy)
                return
            case .disconnect(let refusal):
                actions.append(.dropSpool)
                replies.fill(slot, with: refusal.map(SMTPReply.init) ?? .proxy(421, "4.7.0", "\(configuration.hostname) Service not available, closing transmission channel"), origin: .proxy, followUp: .closeClient)
                return
            case .discard, .quarantine, .continue:
                settlement = Self.settlement(of: decision)
                settlingRules = decision.verdicts.filter { $0.enforced && ($0.action == "quarantine" || $0.action == "discard") }.map(\.rule)
                edits = decision.headerEdits
                added += decision.addRecipients
                redirect = decision.redirect ?? redirect
            }
        }
        if let settlement {
            closeUpstreamTransaction(open, &actions)
            switch settlement {
            case .discard:
                actions.append(.dropSpool)
                actions.append(.record(.transactionSettled(settlement.outcome)))
                replies.fill(slot, with: .proxy(250, "2.0.0", "Ok"), origin: .proxy)
            case .quarantine(let reason):
                // Answered once the quarantine holds the message (receiveQuarantineStored).
                let request = QuarantineRequest(reason: reason, rules: settlingRules, helo: facts.helo, authUser: facts.authUser, mailFrom: facts.mailFrom, recipients: facts.recipients, slot: slot)
                actions.append(.quarantineSpool(request))
            }
            return
        }
        guard upstreamState == .ready, let open else {
            // The upstream went away while the message was spooled: nothing was delivered.
            actions.append(.dropSpool)
            replies.fill(slot, with: reply(for: .upstreamLost), origin: .proxy)
            return
        }
        transaction = open
        transaction?.addedRecipients = added
        transaction?.redirect = redirect
        spoolReleasePending = true
        startUpstreamData(expecting: .spooledData(slot: slot, edits: edits, octets: current.octets), &actions)
        transaction = nil
    }

    /// Set from DATA for a spooled message until the spool is on its way: no other command may
    /// reach the upstream in between, or it would read as message content.
    private var spoolReleasePending = false

    /// The channel layer could not write the spooled message (a full or missing temporary folder): it
    /// lacks octets, so it is never released; its end is answered 451 and the session goes on.
    public mutating func receiveSpoolFailed(_ reason: String) -> [Action] {
        var actions: [Action] = []
        guard var current = content, current.spooled, current.failure == nil else { return actions }
        current.failure = .spoolFailed
        content = current
        actions.append(.record(.messageTruncated))
        note(.messageTruncated, "spool: \(reason); refused with 451 4.3.0", &actions)
        actions.append(.dropSpool)
        return actions
    }

    /// The channel layer stored a quarantined message, or could not (`failure`).
    public mutating func receiveQuarantineStored(_ request: QuarantineRequest, failure: String?) -> [Action] {
        var actions: [Action] = []
        if let failure {
            // Nothing is lost: the client keeps the message and may try again.
            note(.quarantineFailed, failure, &actions)
            replies.fill(request.slot, with: .proxy(451, "4.3.0", "Error: message not stored, try again later"), origin: .proxy)
        } else {
            actions.append(.record(.transactionSettled(.quarantined)))
            replies.fill(request.slot, with: .proxy(250, "2.0.0", "Ok"), origin: .proxy)
        }
        pump(&actions)
        return actions
    }

    /// A transaction the client will not complete upstream: RSET, so the upstream's next MAIL
    /// starts clean.
    private mutating func closeUpstreamTransaction(_ transaction: Transaction?, _ actions: inout [Action]) {
        guard let transaction, transaction.upstreamOpen, upstreamState == .ready else { return }
        sendUpstream(.rset, expecting: .internalOnly, &actions)
    }

    private func reply(for failure: ContentFailure) -> SMTPReply {
        switch failure {
        case .forbidden(.bareLF): .proxy(550, "5.5.2", "Error: bare <LF> received")
        case .forbidden(.bareCR): .proxy(550, "5.5.2", "Error: bare <CR> received")
        case .forbidden(.nul): .proxy(550, "5.5.2", "Error: NUL character in message content")
        case .tooLarge: .proxy(552, "5.3.4", "Error: message file too big")
        case .headerTooLarge: .proxy(552, "5.3.4", "Error: message header section too big")
        case .upstreamLost: .proxy(451, "4.4.2", "Error: upstream connection lost, message not delivered")
        case .spoolFailed: .proxy(451, "4.3.0", "Error: message not stored, try again later")
        case .rejected(let reply): SMTPReply(reply)
        }
    }

    /// Closing the upstream before the terminating dot (or the proxy's LAST chunk) is the only way
    /// to abort a DATA (or BDAT) transfer; nothing the upstream received can become a message.
    private mutating func abortUpstreamTransfer(_ actions: inout [Action]) {
        guard upstreamState == .ready || upstreamState == .tlsHandshake else { return }
        upstreamState = .lost
        answerRelayedChunks()
        forgetUpstreamCommands()
        actions.append(.record(.upstreamCommand("[connection closed: transaction aborted]")))
        actions.append(.closeUpstream)
    }

    /// The upstream leg is gone with replies to relayed chunks still owed: each middle chunk the
    /// proxy read whole is answered as it is when the upstream lacks CHUNKING; the chunk still being
    /// read, and the client's LAST, are answered at their end (`finishChunk`, `endMessage`) with the
    /// reason the transfer failed.
    private mutating func answerRelayedChunks() {
        let reading = clientMode == .content ? content?.chunkSlot : nil
        for case .chunk(let slot, _, let octets, false) in expectations where slot != reading {
            replies.fill(slot, with: .proxy(250, "2.0.0", "\(octets) octets received"), origin: .proxy)
        }
    }

    /// The upstream's reply to a relayed chunk goes to the client's chunk, except for the client's
    /// LAST chunk: its `BDAT n` and the proxy's closing LAST chunk both answer it, and the client
    /// gets the first of the two that is not 2xx, else the last (which names the queued message).
    private mutating func handleChunkReply(_ reply: SMTPReply, slot: Int, message: Int, ofLast: Bool) {
        if reply.isPositiveCompletion {
            if !ofLast { replies.fill(slot, with: reply, origin: .server) }
            return
        }
        if content?.commandID == message, content?.upstreamRefusal == nil { content?.upstreamRefusal = reply }
        replies.fill(slot, with: reply, origin: .server)
    }

    // MARK: Upstream replies

    private mutating func handleUpstreamReply(_ reply: SMTPReply, _ actions: inout [Action]) {
        actions.append(.record(.upstreamReply(reply)))
        upstreamDeadlineEpoch &+= 1
        guard let expectation = expectations.popFirst() else {
            if reply.code == 421 {
                upstreamState = .closed
                actions.append(.record(.close(by: .server, reason: .error)))
                replies.failRemaining(with: .proxy(421, "4.4.2", "\(configuration.hostname) Error: upstream closed the connection"))
            } else {
                protocolError("reply without a command: \(reply.code)", kind: .replyWithoutCommand, &actions)
            }
            return
        }
        switch expectation {
        case .greeting(let resuming):
            if resuming {
                guard reply.code == 220 else {
                    replies.failRemaining(with: .proxy(421, "4.4.1", "\(configuration.hostname) Error: upstream refused the connection"))
                    return
                }
                // Still not ready: nothing of the client's goes out before EHLO (and STARTTLS).
                sendUpstream(.ehlo(domain: facts.helo ?? configuration.hostname), expecting: .resumeEHLO, &actions)
            } else if let slot = greetingSlot {
                greetingSlot = nil
                upstreamState = .ready
                replies.fill(slot, with: reply, origin: .server, followUp: reply.code == 220 ? .resumeCommands : .closeClient)
            }
        case .relay(let slot):
            replies.fill(slot, with: reply, origin: .server)
        case .ehlo(let slot, let verb, let name):
            let purpose = EHLOPurpose.ehlo(slot: slot, verb: verb, name: name)
            if verb == "EHLO" && reply.code == 250 {
                upstreamExtensions = EHLOReconciler.extensions(of: reply)
                if startUpstreamTLSIfWanted(ehloReply: reply, then: purpose, &actions) { return }
                if startXCLIENTIfWanted(after: purpose, ehloReply: reply, &actions) { return }
            }
            finishEHLO(purpose, reply: reply)
        case .resumeEHLO:
            guard reply.code == 250 else {
                replies.failRemaining(with: .proxy(421, "4.4.2", "\(configuration.hostname) Error: upstream connection lost"))
                return
            }
            upstreamExtensions = EHLOReconciler.extensions(of: reply)
            if startUpstreamTLSIfWanted(ehloReply: reply, then: .resumeEHLO, &actions) { return }
            if startXCLIENTIfWanted(after: .resumeEHLO, ehloReply: reply, &actions) { return }
            finishEHLO(.resumeEHLO, reply: reply)
        case .passthroughSTARTTLS(let slot):
            if reply.code == 220 {
                // Stops reading replies at once: what follows the 220 is the upstream's TLS.
                upstreamState = .passthrough
                forgetUpstreamCommands()
                replies.fill(slot, with: reply, origin: .server, followUp: .startPassthrough)
            } else {
                note(.starttlsStripped, "upstream answered the client's STARTTLS with \(reply.code)", &actions)
                replies.fill(slot, with: reply, origin: .server, followUp: .resumeCommands)
            }
        case .starttls(let ehloReply, let then):
            if reply.code == 220 {
                // RFC 3207 §4.2: the upstream forgets the EHLO; the proxy sends it again.
                upstreamIdentified = nil
                upstreamState = .tlsHandshake
                pendingUpstreamTLS = expectation
                actions.append(.startUpstreamTLS)
                return
            }
            note(.starttlsStripped, "upstream answered STARTTLS with \(reply.code)", &actions)
            if startXCLIENTIfWanted(after: then, ehloReply: ehloReply, &actions) { return }
            finishEHLO(then, reply: ehloReply)
        case .xclient(var remaining, let accepted, let then, let ehloReply):
            handleXCLIENTReply(reply, remaining: &remaining, accepted: accepted, then: then, ehloReply: ehloReply, &actions)
        case .mail(let slot):
            if reply.isPositiveCompletion { transaction?.mailAccepted = true } else { transaction = nil }
            replies.fill(slot, with: reply, origin: .server)
        case .rcpt(let slot, let path):
            if reply.isPositiveCompletion {
                transaction?.accepted.append(path)
                facts.recipients.append(path)
            }
            replies.fill(slot, with: reply, origin: .server)
        case .data(let slot, let kind):
            handleDataReply(reply, slot: slot, kind: kind, &actions)
        case .endOfData(let slot), .lastChunk(let slot):
            replies.fill(slot, with: reply, origin: .server)
        case .chunk(let slot, let message, _, let ofLast):
            handleChunkReply(reply, slot: slot, message: message, ofLast: ofLast)
        case .spooledData(let slot, let edits, let octets):
            spoolReleasePending = false
            guard reply.code == 354 else {
                // The upstream refused the message: the client gets its code for the end of data.
                actions.append(.dropSpool)
                replies.fill(slot, with: reply, origin: .server)
                return
            }
            expectations.append(.endOfData(slot: slot))
            actions.append(.record(.upstreamContent(octets: octets)))
            actions.append(.record(.upstreamCommand(".")))
            actions.append(.releaseSpool(edits))
        case .auth(let slot):
            if reply.code == 334 {
                sasl?.exchange.receiveChallenge(reply.lines.first ?? "")
                replies.fill(slot, with: reply, origin: .server, followUp: .enterSASL)
            } else if reply.isPositiveCompletion {
                sasl = nil
                authenticated = true
                authSucceeded(reply, slot: slot, &actions)
            } else {
                facts.authUser = nil
                sasl = nil
                replies.fill(slot, with: reply, origin: .server, followUp: .resumeCommands)
            }
        case .quit(let slot):
            quitAnswered(slot: slot, reply: reply, &actions)
        case .internalOnly:
            break
        }
    }

    /// The upstream answered the QUIT (`reply`), closed without answering, or let its short deadline
    /// pass (`nil`): both legs close, the client's QUIT answered with the upstream's 221 or, when
    /// none came, the proxy's own.
    private mutating func quitAnswered(slot: Int?, reply: SMTPReply?, _ actions: inout [Action]) {
        upstreamState = .closed
        forgetUpstreamCommands()
        actions.append(.closeUpstream)
        guard let slot else {
            if clientMode != .closed { closeBothLegs(&actions) }
            return
        }
        if let reply, reply.code == 221 {
            replies.fill(slot, with: reply, origin: .server, followUp: .closeClient)
        } else {
            replies.fill(slot, with: .proxy(221, "2.0.0", "Bye"), origin: .proxy, followUp: .closeClient)
        }
    }

    /// The upstream accepted the credentials: now `auth` rules judge the user (rules README). A
    /// refusal is the client's reply instead of the upstream's 235, and the authenticated upstream
    /// connection is dropped, so nothing is ever relayed under an identity the rules refused.
    private mutating func authSucceeded(_ reply: SMTPReply, slot: Int, _ actions: inout [Action]) {
        let decision = policy.decide(at: .auth, facts: facts)
        recordVerdicts(decision, &actions)
        if let settlement = Self.settlement(of: decision) { sessionSettlement = settlement }
        switch decision.action {
        case .continue, .discard, .quarantine:
            replies.fill(slot, with: reply, origin: .server, followUp: .resumeCommands)
            return
        case .reject(let refusal), .tempfail(let refusal):
            replies.fill(slot, with: SMTPReply(refusal), origin: .proxy, followUp: .resumeCommands)
        case .disconnect(let refusal):
            replies.fill(slot, with: refusal.map(SMTPReply.init) ?? .proxy(421, "4.7.0", "\(configuration.hostname) Service not available, closing transmission channel"), origin: .proxy, followUp: .closeClient)
        }
        authenticated = false
        facts.authUser = nil
        facts.authMechanism = nil
        abortUpstreamTransfer(&actions)
    }

    /// The upstream's EHLO exchange is over (TLS and XCLIENT done or not wanted): the client's EHLO
    /// is answered, or the reconnected upstream takes the client's commands again.
    private mutating func finishEHLO(_ purpose: EHLOPurpose, reply: SMTPReply) {
        switch purpose {
        case .ehlo(let slot, let verb, _):
            // Held while STARTTLS or XCLIENT might follow (`holdUntilEHLOSettles`).
            if upstreamState == .connecting { upstreamState = .ready }
            if verb == "EHLO", reply.code == 250 { upstreamIdentified = reply }
            answerEHLO(slot: slot, verb: verb, reply: reply)
        case .resumeEHLO:
            upstreamState = .ready
            upstreamIdentified = reply
        }
    }

    /// STARTTLS or XCLIENT may follow the reply to the EHLO about to go out: nothing else of the
    /// client's goes upstream before it (`finishEHLO` releases the hold), so a command pipelined
    /// after EHLO can never reach the upstream in plaintext ahead of its STARTTLS.
    private mutating func holdUntilEHLOSettles() {
        let tlsMayFollow = proxyStartsUpstreamTLS && !upstreamTLSActive && !upstreamTLSTried
        let xclientMayFollow = configuration.xclient && !xclientTried
        if tlsMayFollow || xclientMayFollow { upstreamState = .connecting }
    }

    /// EHLO again on the same upstream connection, after STARTTLS or XCLIENT.
    private mutating func sendEHLOAgain(for purpose: EHLOPurpose, _ actions: inout [Action]) {
        holdUntilEHLOSettles()
        switch purpose {
        case .ehlo(let slot, let verb, let name):
            sendUpstream(.ehlo(domain: name), expecting: .ehlo(slot: slot, verb: verb, name: name), &actions)
        case .resumeEHLO:
            sendUpstream(.ehlo(domain: facts.helo ?? configuration.hostname), expecting: .resumeEHLO, &actions)
        }
    }

    /// `--xclient`: once per upstream connection, after its last EHLO before any client command, tell
    /// an upstream that offers XCLIENT who the client is. True when XCLIENT is under way; nothing of
    /// the client's goes upstream until it is over.
    private mutating func startXCLIENTIfWanted(after purpose: EHLOPurpose, ehloReply: SMTPReply, _ actions: inout [Action]) -> Bool {
        guard configuration.xclient, !xclientTried, case .some(.some(let offered)) = upstreamExtensions["XCLIENT"] else { return false }
        let client = XCLIENTCommand.Client(address: facts.client?.ip, port: facts.client?.port, helo: facts.helo, proto: clientProtocol)
        var commands = XCLIENTCommand.arguments(for: client, offered: offered)
        guard !commands.isEmpty else { return false }
        xclientTried = true
        upstreamState = .connecting
        let first = commands.removeFirst()
        sendUpstream(.xclient(first), expecting: .xclient(remaining: commands, accepted: false, then: purpose, ehloReply: ehloReply), &actions)
        return true
    }

    /// XCLIENT_README: a server that accepts XCLIENT starts a new session with a 220 greeting, so
    /// the proxy sends EHLO again and answers the client from that reply. A refusal is not the
    /// client's concern: the session goes on without it (the upstream events record it).
    private mutating func handleXCLIENTReply(_ reply: SMTPReply, remaining: inout [String], accepted: Bool, then: EHLOPurpose, ehloReply: SMTPReply, _ actions: inout [Action]) {
        if reply.isPositiveCompletion {
            // A new session at the upstream: the EHLO that follows is the one it expects.
            upstreamIdentified = nil
            if !remaining.isEmpty {
                let next = remaining.removeFirst()
                sendUpstream(.xclient(next), expecting: .xclient(remaining: remaining, accepted: true, then: then, ehloReply: ehloReply), &actions)
                return
            }
            sendEHLOAgain(for: then, &actions)
        } else if accepted {
            // An earlier XCLIENT started a new session: it needs its EHLO all the same.
            actions.append(.record(.xclientRefused(reply)))
            sendEHLOAgain(for: then, &actions)
        } else {
            actions.append(.record(.xclientRefused(reply)))
            finishEHLO(then, reply: ehloReply)
        }
    }

    /// EHLO or HELO on an upstream session that is already identified (`upstreamIdentified`): the
    /// proxy answers it from the upstream's EHLO reply, reconciled for the client leg as it is now
    /// (after the client's STARTTLS: no STARTTLS, AUTH where `--client-tls require` held it back),
    /// and never sends the upstream a second EHLO. An EHLO resets the transaction (RFC 5321
    /// §4.1.4), so one open upstream gets RSET.
    private mutating func answerFromIdentifiedUpstream(_ identified: SMTPReply, verb: String, _ answering: SMTPInspector.Answered, _ actions: inout [Action]) {
        if transaction?.upstreamOpen == true {
            sendUpstream(.rset, expecting: .internalOnly, &actions)
        }
        transaction = nil
        let slot = replies.open(answering: answering)
        if verb == "EHLO" {
            answerEHLO(slot: slot, verb: verb, reply: identified)
        } else {
            replies.fill(slot, with: SMTPReply(code: 250, lines: [identified.lines.first ?? configuration.hostname]), origin: .proxy)
        }
    }

    private mutating func answerEHLO(slot: Int, verb: String, reply: SMTPReply) {
        guard verb == "EHLO", reply.code == 250 else {
            replies.fill(slot, with: reply, origin: .server)
            return
        }
        let lines = EHLOReconciler.clientLines(upstream: reply, configuration: configuration, clientLegIsTLS: clientTLSActive)
        replies.fill(slot, with: SMTPReply(code: 250, lines: lines), origin: .proxy)
    }

    /// Under passthrough the upstream's STARTTLS belongs to the client, so the proxy never uses it.
    private var proxyStartsUpstreamTLS: Bool {
        configuration.upstreamTLS != .off && configuration.clientTLS != .passthrough
    }

    /// `--client-tls passthrough`: the client's STARTTLS goes to the upstream, whose reply decides.
    /// STARTTLS is offered only when the upstream offers it; a client that sends it anyway gets
    /// Postfix's `454 4.7.0`.
    private mutating func relaySTARTTLS(_ answering: SMTPInspector.Answered, _ actions: inout [Action]) {
        guard facts.helo != nil else {
            replies.answer(answering, with: .proxy(503, "5.5.1", "Error: send EHLO first"), isError: true)
            return
        }
        guard upstreamState == .ready, upstreamExtensions["STARTTLS"] != nil, !upstreamTLSActive else {
            replies.answer(answering, with: .proxy(454, "4.7.0", "TLS not available"))
            return
        }
        let slot = replies.open(answering: answering)
        sendUpstream(.starttls, expecting: .passthroughSTARTTLS(slot: slot), &actions)
        clientMode = .awaitingReply(.starttls)
    }

    /// STARTTLS towards the upstream when `--upstream-tls` asks for it and the upstream offers it;
    /// true when the handshake is under way.
    private mutating func startUpstreamTLSIfWanted(ehloReply: SMTPReply, then: EHLOPurpose, _ actions: inout [Action]) -> Bool {
        guard proxyStartsUpstreamTLS, !upstreamTLSActive, !upstreamTLSTried else { return false }
        upstreamTLSTried = true
        guard upstreamExtensions["STARTTLS"] != nil else {
            // Opportunistic TLS without an offer is plain SMTP, not a downgrade.
            if configuration.upstreamTLS.requiresTLS { note(.starttlsStripped, "the upstream does not offer STARTTLS", &actions) }
            return false
        }
        // Nothing else goes upstream until the handshake is done (or refused).
        upstreamState = .connecting
        sendUpstream(.starttls, expecting: .starttls(ehloReply: ehloReply, then: then), &actions)
        return true
    }

    private mutating func handleDataReply(_ reply: SMTPReply, slot: Int, kind: SMTPInspector.DataKind, _ actions: inout [Action]) {
        guard reply.code == 354 else {
            // The upstream refused the message: the client gets its code, and what it streams on is
            // never read as commands (hostile-input case 8).
            transaction = nil
            switch kind {
            case .data:
                content = nil
                if earlyContent {
                    note(.unparsedBytes, "content sent before the reply to DATA", &actions)
                    replies.fill(slot, with: reply, origin: .server, followUp: .closeClient)
                } else {
                    replies.fill(slot, with: reply, origin: .server, followUp: .resumeCommands)
                }
            case .bdat:
                let remaining = content?.chunkRemaining ?? 0
                content = nil
                discard = (remaining, slot, reply)
                clientMode = .discardingChunk
                if remaining == 0 {
                    discard = nil
                    replies.fill(slot, with: reply, origin: .server, followUp: .resumeCommands)
                }
            }
            return
        }
        switch kind {
        case .data:
            if earlyContent || clientBuffer.readableBytes > 0 {
                // Hostile-input case 7: content before 354. Nothing was sent after DATA, so closing the
                // upstream leg leaves no message behind.
                note(.unparsedBytes, "message content sent before 354", &actions)
                abortUpstreamTransfer(&actions)
                content = nil
                clientBuffer.clear()
                replies.fill(slot, with: .proxy(554, "5.5.0", "Error: SMTP protocol synchronization"), origin: .proxy, followUp: .closeClient)
                return
            }
            if let id = content?.commandID { actions.append(.record(.client(.messageBegin(commandID: id, .data)))) }
            replies.fill(slot, with: reply, origin: .server, followUp: .enterContent)
        case .bdat:
            clientMode = .content
            if content?.chunkRemaining == 0 { finishChunk(&actions) }
        }
    }

    /// An upstream protocol error (a reply that answers no command, or a malformed one): `421 4.3.0`
    /// to the client, close, since no later reply could be paired safely.
    private mutating func protocolError(_ detail: String, kind: SMTPAnomalyKind = .malformedReply, _ actions: inout [Action]) {
        note(kind, detail, &actions)
        upstreamState = .closed
        forgetUpstreamCommands()
        actions.append(.closeUpstream)
        actions.append(.record(.close(by: .proxy, reason: .error)))
        replies.failRemaining(with: .proxy(421, "4.3.0", "\(configuration.hostname) Error: upstream protocol error"))
        greetingSlot = nil
    }

    /// Ends the session with one last reply after those already due.
    private mutating func failSession(_ reply: SMTPReply, _ actions: inout [Action]) {
        deferred = nil
        clientBuffer.clear()
        if clientMode == .content || clientMode == .discardingChunk || clientMode == .sasl { clientMode = .commands }
        if let slot = greetingSlot {
            greetingSlot = nil
            replies.fill(slot, with: reply, origin: .proxy, followUp: .closeClient)
        } else {
            replies.failRemaining(with: reply)
        }
        pump(&actions)
    }

    // MARK: Output helpers

    private mutating func sendUpstream(_ command: SMTPCommand, expecting: Expectation, _ actions: inout [Action]) {
        var out = ByteBuffer()
        out.writeString(command.wireLine)
        out.writeStaticString("\r\n")
        sendBytes(out, line: command.redactedLine, expecting: expecting, &actions)
    }

    private mutating func sendRaw(_ line: String, expecting: Expectation, redacted: Bool = false, _ actions: inout [Action]) {
        var out = ByteBuffer()
        out.writeString(line)
        out.writeStaticString("\r\n")
        sendBytes(out, line: redacted ? "[redacted]" : line, expecting: expecting, &actions)
    }

    private mutating func sendBytes(_ bytes: ByteBuffer, line: String, expecting: Expectation, _ actions: inout [Action]) {
        let command = UpstreamCommand(bytes: bytes, line: line, expecting: expecting)
        if upstreamExtensions["PIPELINING"] == nil && !(expectations.isEmpty && unpipelined.isEmpty) {
            unpipelined.append(command)
            return
        }
        transmit(command, &actions)
    }

    private mutating func transmit(_ command: UpstreamCommand, _ actions: inout [Action]) {
        if expectations.isEmpty { upstreamDeadlineEpoch &+= 1 }
        expectations.append(command.expecting)
        actions.append(.record(.upstreamCommand(command.line)))
        actions.append(.sendUpstream(command.bytes))
    }

    /// The next held command goes once the upstream has answered every earlier one and nothing
    /// (STARTTLS, XCLIENT, a reconnection) keeps the client's commands back.
    private mutating func sendNextUnpipelined(_ actions: inout [Action]) {
        guard upstreamState == .ready, expectations.isEmpty, let next = unpipelined.popFirst() else { return }
        transmit(next, &actions)
    }

    /// Forgets what was sent or held for an upstream connection that is over. Held commands are
    /// answered with the rest: every caller fails the client's open replies or, mid-content,
    /// holds none (DATA and BDAT go upstream only after every earlier reply).
    private mutating func forgetUpstreamCommands() {
        expectations.removeAll()
        unpipelined.removeAll()
    }

    private mutating func note(_ kind: SMTPAnomalyKind, _ detail: String?, _ actions: inout [Action]) {
        // Repeated anomalies of one kind add nothing but transcript size.
        guard reportedAnomalies.insert(kind).inserted else { return }
        actions.append(.record(.client(.anomaly(SMTPAnomaly(kind, detail)))))
    }

    private func recordVerdicts(_ decision: PolicyDecision, _ actions: inout [Action]) {
        if !decision.verdicts.isEmpty { actions.append(.record(.ruleVerdicts(decision.verdicts))) }
    }

    private func tlsFailure(_ reason: String) -> TLSSummary {
        var summary = TLSSummary()
        summary.established = false
        summary.failure = reason
        return summary
    }
}
