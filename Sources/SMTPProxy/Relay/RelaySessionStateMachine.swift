import MailMessage
import NIOCore
import SMTPCore
import SMTPRules
import SMTPTranscript

/// The relay between one SMTP client and its upstream server (RFC 5321, RFC 2920 pipelining,
/// RFC 3030 CHUNKING, RFC 3207 STARTTLS, RFC 4954 AUTH), as a pure state machine.
///
/// Each input is one `receiveX` call returning the `Action`s the channel layer performs, in order.
/// Every byte sent to either peer is one the machine has parsed: commands are re-written from their
/// parsed form, message content is re-serialised by `DataContentWriter` (never relayed as it came) or,
/// BDAT to an upstream that offers CHUNKING, relayed in length-delimited chunks once checked as DATA
/// would check it, and replies reach the client in command order whatever their origin.
///
/// The machine coordinates four states, each a type in `States/`: the client leg (`ClientLeg`),
/// the mail transaction and its message (`TransactionState`, `Content`), the upstream session
/// (`UpstreamSession`, with the replies it owes as `Expectation`s), and the order of the replies
/// owed to the client (`ReplyQueue`). Its extensions, one file a concern, hold the transitions.
public struct RelaySessionStateMachine: Sendable {
    // MARK: Configuration

    public let configuration: RelayConfiguration
    let policy: any SessionPolicy
    var facts: PolicyFacts

    // MARK: States

    var client: ClientLeg
    var mailTransaction = TransactionState.idle
    var upstream = UpstreamSession()
    var replies = ReplyQueue()
    var reportedAnomalies = Set<SMTPAnomalyKind>()
    /// A `connect`, `helo` or `auth` rule's discard or quarantine: every transaction of the session.
    var sessionSettlement: Settlement?
    /// Set when a `connect` rule refused the session: every later command is refused too.
    var transactionRefusedSession = false
    /// The message whose end went upstream, as `policy.observe` reports it once accepted: a
    /// pipelined MAIL may change `facts` before the reply comes.
    var messageAwaitingReply: (facts: PolicyFacts, octets: Int)?

    /// The message whose end the upstream has yet to answer, if any: only one the upstream was sent
    /// (one the proxy refused or settled itself has no reply coming), for the budgets of a MAIL that
    /// a pipelining client sends before that reply.
    var messageEndAwaitingReply: MessageAwaitingReply? {
        guard let message = messageAwaitingReply else { return nil }
        let sent = upstream.expectations.contains { entry in
            switch entry.context {
            case .endOfData, .lastChunk, .spooledData: true
            default: false
            }
        }
        return sent ? MessageAwaitingReply(mailFrom: message.facts.mailFrom, parameters: message.facts.mailParameters, octets: message.octets) : nil
    }

    /// The open transaction (`TransactionState.transaction`).
    var transaction: Transaction? {
        get { mailTransaction.transaction }
        set { mailTransaction.transaction = newValue }
    }

    /// The message in flight, always inside `transaction` (`TransactionState.content`).
    var content: Content? {
        get { mailTransaction.content }
        set { mailTransaction.content = newValue }
    }

    public init(configuration: RelayConfiguration, policy: any SessionPolicy = AllowAllPolicy(), facts: PolicyFacts = PolicyFacts()) {
        self.configuration = configuration
        self.policy = policy
        self.facts = facts
        self.client = ClientLeg(limits: configuration.limits)
        if configuration.clientLegImplicitTLS {
            // RFC 8314 §3.3: the channel layer completes the handshake before any SMTP octet.
            self.client.tlsActive = true
            self.facts.becameEncrypted()
        }
    }

    // MARK: Inputs

    /// The client connected: ask the policy, then open the upstream leg.
    public mutating func start() -> [Action] {
        var actions: [Action] = []
        let slot = replies.open(answering: .greeting)
        let decision = policy.decide(at: .connect, facts: facts)
        recordVerdicts(decision, deciding: nil, &actions)
        switch decision.action {
        case .continue, .discard, .quarantine:
            sessionSettlement = Self.settlement(of: decision)
            policy.observe(.sessionAccepted, facts: facts)
            upstream.greetingSlot = slot
            upstream.enter(.connecting)
            actions.append(.connectUpstream)
        case .reject(let reply), .tempfail(let reply):
            upstream.enter(.closed)
            replies.fill(slot, with: SMTPReply(reply), origin: .proxy, followUp: .resumeCommands)
            transactionRefusedSession = true
        case .disconnect(let reply):
            upstream.enter(.closed)
            replies.fill(slot, with: disconnectReply(reply), origin: .proxy, followUp: .closeClient)
        }
        pump(&actions)
        return actions
    }

    public mutating func receiveUpstreamConnected() -> [Action] {
        guard upstream.kind == .connecting else { return [] }
        if upstream.phase == .connecting { upstream.enter(.greeting) }
        upstream.restartDeadline()
        upstream.expectations.append(.greeting, .greeting(resuming: upstream.greetingSlot == nil))
        return []
    }

    public mutating func receiveUpstreamConnectFailed(reason: String) -> [Action] {
        var actions: [Action] = []
        guard upstream.kind == .connecting else { return actions }
        upstream.enter(.closed)
        actions.append(.record(.client(.anomaly(SMTPAnomaly(.upstreamUnreachable, "upstream unreachable: \(reason)")))))
        let reply = SMTPReply.proxy(421, "4.4.1", "\(configuration.hostname) Service not available: upstream unreachable")
        if let slot = upstream.greetingSlot {
            upstream.greetingSlot = nil
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
        switch client.kind {
        case .closed, .tlsHandshake, .passthrough:
            return actions
        case .beforeGreeting:
            // As in Postfix ≥ 3.9 (hostile-input case 7): talking before the greeting is a protocol
            // synchronisation error.
            note(.commandBeforeGreeting, "\(bytes.readableBytes) octets before the greeting", &actions)
            client.enter(.closed)
            let refusal = SMTPReply.synchronizationError
            var out = ByteBuffer()
            refusal.write(into: &out)
            actions.append(.sendToClient(out))
            actions.append(.record(.clientReply(refusal, answering: .unknown, origin: .proxy)))
            actions.append(.record(.close(by: .proxy, reason: .error)))
            actions.append(.closeClient)
            actions.append(.closeUpstream)
            upstream.enter(.closed)
            replies.removeAll()
            return actions
        case .awaitingReply(.data):
            // Content before 354: remembered, then refused when the 354 would go out.
            client.earlyContent = true
            return actions
        case .commands, .awaitingReply, .sasl, .content, .discardingChunk:
            break
        }
        if client.buffer.readableBytes + bytes.readableBytes > configuration.limits.maxHeldClientOctets + 65536,
            client.kind != .content, client.kind != .discardingChunk
        {
            failSession(.proxy(421, "4.7.0", "Error: too much pipelined input"), &actions)
            return actions
        }
        if client.kind == .content || client.kind == .discardingChunk {
            client.contentOctetsSinceDeadline += bytes.readableBytes
            if client.contentOctetsSinceDeadline / max(1, configuration.limits.minDataRate) >= configuration.timeouts.dataBlock {
                client.restartDeadline()
            }
        }
        client.buffer.writeBuffer(&bytes)
        pump(&actions)
        return actions
    }

    public mutating func receiveUpstreamBytes(_ bytes: ByteBuffer) -> [Action] {
        var actions: [Action] = []
        var bytes = bytes
        switch upstream.kind {
        case .ready, .connecting:
            break
        case .tlsHandshake, .passthrough, .lost, .closed:
            return actions
        }
        upstream.buffer.writeBuffer(&bytes)
        while upstream.kind == .ready || upstream.kind == .connecting, let frame = upstream.framer.next(from: &upstream.buffer) {
            switch frame {
            case .overlong(let prefix, let total):
                protocolError("reply line of \(total) octets: \(String(decoding: prefix.readableBytesView.prefix(80), as: UTF8.self))", &actions)
            case .line(let line, _):
                switch upstream.replyAssembler.receive(line: line) {
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
        if upstream.kind == .tlsHandshake || upstream.kind == .passthrough, upstream.buffer.readableBytes > 0 {
            // STARTTLS wipes the slate: bytes after the upstream's 220 to STARTTLS are discarded.
            // Under passthrough too: a TLS server says nothing before the client's hello.
            note(.plaintextAfterSTARTTLS, "\(upstream.buffer.readableBytes) octets from the upstream after its 220 to STARTTLS", &actions)
            upstream.buffer.clear()
        }
        pump(&actions)
        return actions
    }

    /// The client leg's handshake is done (after STARTTLS, or at once on an implicit-TLS listener);
    /// `version` is the protocol version it agreed, which `tls.version` rules read.
    public mutating func receiveClientTLSEstablished(version: String? = nil) -> [Action] {
        var actions: [Action] = []
        if client.tlsActive || client.kind == .tlsHandshake { facts.negotiatedTLS(version: version) }
        guard client.kind == .tlsHandshake else { return actions }
        // RFC 3207 §4.2: forget everything learnt before the handshake.
        client.tlsActive = true
        client.enter(.commands)
        facts.startedTLS()
        if transaction?.upstreamOpen == true, upstream.kind == .ready {
            // The client's transaction is forgotten; the upstream's must be too.
            sendUpstream(.rset, expecting: .internalOnly, &actions)
        }
        transaction = nil
        pump(&actions)
        return actions
    }

    public mutating func receiveClientTLSFailed(reason: String) -> [Action] {
        var actions: [Action] = []
        client.enter(.closed)
        actions.append(.record(.client(.tlsSummary(tlsFailure(reason)))))
        actions.append(.record(.close(by: .proxy, reason: .error)))
        actions.append(.closeClient)
        actions.append(.closeUpstream)
        upstream.enter(.closed)
        return actions
    }

    public mutating func receiveUpstreamTLSEstablished() -> [Action] {
        var actions: [Action] = []
        guard case .tlsHandshake(let then) = upstream.phase else { return actions }
        upstream.tlsEstablished()
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
        guard upstream.kind == .tlsHandshake else { return actions }
        note(.upstreamTLSFailed, "upstream TLS handshake failed: \(reason)", &actions)
        upstream.enter(.closed)
        failSession(.proxy(421, "4.7.0", "Error: TLS negotiation with the upstream failed"), &actions)
        return actions
    }

    // MARK: Queries for the channel layer

    /// Whether the channel layer should read from the client now.
    public var wantsClientBytes: Bool {
        switch client.kind {
        case .commands, .sasl:
            return client.deferred == nil && client.buffer.readableBytes < configuration.limits.maxHeldClientOctets
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
        switch client.kind {
        case .commands, .sasl:
            return replies.isEmpty && client.deferred == nil ? configuration.timeouts.serverIdle : nil
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
        guard let head = upstream.expectations.first?.context else { return nil }
        switch head {
        case .greeting: return configuration.timeouts.greeting
        case .data, .spooledData: return configuration.timeouts.dataInitiation
        case .endOfData, .chunk, .lastChunk: return configuration.timeouts.endOfData
        case .quit: return configuration.timeouts.quitReply
        case .relay, .ehlo, .mail, .rcpt, .auth, .starttls, .passthroughSTARTTLS, .resumeEHLO, .xclient, .internalOnly:
            return configuration.timeouts.command
        }
    }

    public var isClosed: Bool { client.kind == .closed }

    /// The client's deadline (`clientTimeout`) runs from the last change of this number
    /// (`ClientLeg.deadlineEpoch` says when it changes).
    public var clientDeadlineEpoch: Int { client.deadlineEpoch }

    /// The upstream's deadline (`upstreamTimeout`) runs from the last change of this number
    /// (`UpstreamSession.deadlineEpoch` says when it changes).
    public var upstreamDeadlineEpoch: Int { upstream.deadlineEpoch }
}
