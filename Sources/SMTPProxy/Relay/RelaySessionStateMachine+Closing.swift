import MailMessage
import NIOCore
import SMTPCore
import SMTPTranscript

/// How a session ends: the client's close or half-close, the upstream's close, a deadline, shutdown,
/// an upstream protocol error, and the proxy's own last reply.
extension RelaySessionStateMachine {
    /// The client half-closed the connection (its FIN; with TLS, its close_notify or a FIN without
    /// one). A half-closed client still reads (RFC 9293 §3.6): Exim pipelines the end of a message
    /// and QUIT and closes its side at once. Everything it sent is relayed and answered as usual;
    /// once nothing more can come of it the session ends (`endHalfClosedSession`). A message whose
    /// end never came is not delivered.
    public mutating func receiveClientInputClosed() -> [Action] {
        var actions: [Action] = []
        switch client.kind {
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
        guard !client.inputClosed else { return actions }
        client.inputClosed = true
        pump(&actions)
        return actions
    }

    public mutating func receiveClientClosed() -> [Action] {
        var actions: [Action] = []
        guard client.kind != .closed else { return actions }
        client.enter(.closed)
        actions.append(.record(.close(by: .client, reason: .fin)))
        if upstream.kind != .closed {
            upstream.enter(.closed)
            actions.append(.closeUpstream)
        }
        return actions
    }

    public mutating func receiveUpstreamClosed() -> [Action] {
        var actions: [Action] = []
        switch upstream.kind {
        case .closed, .lost:
            return actions
        case .passthrough:
            upstream.enter(.closed)
            actions.append(.record(.close(by: .server, reason: .fin)))
            if client.kind != .closed {
                client.enter(.closed)
                actions.append(.closeClient)
            }
            return actions
        case .connecting, .ready, .tlsHandshake:
            break
        }
        if case .quit(let slot)? = upstream.expectations.first?.context {
            quitAnswered(slot: slot, reply: nil, &actions)
            pump(&actions)
            return actions
        }
        let hadGreeting = upstream.greetingSlot == nil
        upstream.enter(.lost)
        if client.kind == .sasl {
            // The client is writing its next SASL response for an exchange no new connection
            // can take up (its secrets were never kept): answer now rather than at a timeout.
            upstream.enter(.closed)
            upstream.forgetCommands()
            actions.append(.record(.close(by: .server, reason: .fin)))
            failSession(.upstreamConnectionLost(configuration.hostname), &actions)
            return actions
        }
        if content != nil, client.kind == .content || client.kind == .awaitingReply(.bdat) || content?.relaysChunks == true {
            // Mid-content: read on to the client's end of data, then answer 451 4.4.2.
            if content?.failure == nil {
                content?.failure = .upstreamLost
                actions.append(.record(.messageTruncated))
            }
            answerRelayedChunks()
            upstream.forgetCommands()
            pump(&actions)
            return actions
        }
        if !upstream.expectations.isEmpty || !hadGreeting {
            upstream.forgetCommands()
            upstream.enter(.closed)
            actions.append(.record(.close(by: .server, reason: .fin)))
            let reply: SMTPReply = hadGreeting
                ? .upstreamConnectionLost(configuration.hostname)
                : .proxy(421, "4.4.1", "\(configuration.hostname) Service not available: upstream closed the connection")
            if let slot = upstream.greetingSlot {
                upstream.greetingSlot = nil
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
        if leg == .upstream, case .quit(let slot)? = upstream.expectations.first?.context {
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
    mutating func endByProxy(_ reason: SessionRecord.Close.Reason, _ reply: SMTPReply) -> [Action] {
        var actions: [Action] = []
        guard client.kind != .closed else { return actions }
        actions.append(.record(.close(by: .proxy, reason: reason)))
        if client.kind == .passthrough {
            // Inside end-to-end TLS the proxy has nothing it could say: it closes both legs.
            client.enter(.closed)
            upstream.enter(.closed)
            actions.append(.closeClient)
            actions.append(.closeUpstream)
            return actions
        }
        failSession(reply, &actions)
        return actions
    }

    /// The client half-closed and everything it sent has been acted on: a message, chunk or SASL
    /// exchange left unfinished is abandoned (its upstream transfer aborted, so nothing is
    /// delivered), and once every reply is written the session ends: QUIT goes upstream when it can
    /// take one, and both legs close at its reply. True when something changed.
    mutating func endHalfClosedSession(_ actions: inout [Action]) -> Bool {
        guard client.deferred == nil else { return false }
        switch client.kind {
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
            if case .discardingChunk(let current) = client.mode, current.remaining > 0 {
                replies.remove(current.slot)
            }
            client.enter(.commands)
            return true
        case .sasl:
            // The upstream's exchange is cancelled as RFC 4954 §4 says.
            if upstream.kind == .ready { sendRaw("*", expecting: .internalOnly, &actions) }
            client.enter(.commands)
            return true
        case .commands:
            guard replies.isEmpty else { return false }
        case .beforeGreeting, .awaitingReply, .tlsHandshake, .passthrough, .closed:
            return false
        }
        actions.append(.record(.close(by: .client, reason: .fin)))
        if upstream.kind == .ready {
            client.enter(.awaitingReply(.quit))
            sendUpstream(.quit, expecting: .quit(slot: nil), &actions)
        } else {
            closeBothLegs(&actions)
        }
        return true
    }

    mutating func closeBothLegs(_ actions: inout [Action]) {
        client.enter(.closed)
        client.deferred = nil
        client.buffer.clear()
        replies.removeAll()
        actions.append(.closeClient)
        if upstream.kind != .closed {
            upstream.enter(.closed)
            upstream.forgetCommands()
            actions.append(.closeUpstream)
        }
    }

    /// An upstream protocol error (a reply that answers no command, or a malformed one): `421 4.3.0`
    /// to the client, close, since no later reply could be paired safely.
    mutating func protocolError(_ detail: String, kind: SMTPAnomalyKind = .malformedReply, _ actions: inout [Action]) {
        note(kind, detail, &actions)
        upstream.enter(.closed)
        upstream.forgetCommands()
        actions.append(.closeUpstream)
        actions.append(.record(.close(by: .proxy, reason: .error)))
        replies.failRemaining(with: .proxy(421, "4.3.0", "\(configuration.hostname) Error: upstream protocol error"))
        upstream.greetingSlot = nil
    }

    /// Ends the session with one last reply after those already due.
    mutating func failSession(_ reply: SMTPReply, _ actions: inout [Action]) {
        client.deferred = nil
        client.buffer.clear()
        if client.kind == .content || client.kind == .discardingChunk || client.kind == .sasl { client.enter(.commands) }
        if let slot = upstream.greetingSlot {
            upstream.greetingSlot = nil
            replies.fill(slot, with: reply, origin: .proxy, followUp: .closeClient)
        } else {
            replies.failRemaining(with: reply)
        }
        pump(&actions)
    }
}
