import MailMessage
import NIOCore
import SMTPCore
import SMTPTranscript

/// The client's commands: framing, when each may run (RFC 2920 §3.1), and what each does.
extension RelaySessionStateMachine {
    /// Reads as far as the current mode allows; true when something was consumed.
    mutating func processClient(_ actions: inout [Action]) -> Bool {
        var moved = false
        while true {
            switch client.kind {
            case .commands:
                guard client.deferred == nil else { return moved }
                let before = client.buffer.readableBytes
                guard let frame = client.commandFramer.next(from: &client.buffer) else {
                    if client.commandFramer.isDroppingOverlongLine {
                        client.droppedOverlongOctets += before - client.buffer.readableBytes
                        if client.droppedOverlongOctets > configuration.limits.maxOverlongLineOctets {
                            note(.overlongLine, "more than \(configuration.limits.maxOverlongLineOctets) octets without CRLF; session closed", &actions)
                            failSession(.proxy(421, "4.7.0", "\(configuration.hostname) Error: line too long"), &actions)
                        }
                    }
                    client.buffer.discardReadBytes()
                    return moved || before != client.buffer.readableBytes
                }
                moved = true
                client.droppedOverlongOctets = 0
                handleCommandFrame(frame, &actions)
            case .sasl:
                guard let frame = client.saslFramer.next(from: &client.buffer) else { return moved }
                moved = true
                handleSASLFrame(frame, &actions)
            case .content:
                guard client.buffer.readableBytes > 0 else { return moved }
                moved = true
                if content?.kind == .bdat {
                    readChunk(&actions)
                } else {
                    readDataContent(&actions)
                }
            case .discardingChunk:
                guard client.buffer.readableBytes > 0, case .discardingChunk(var current) = client.mode, current.remaining > 0 else { return moved }
                moved = true
                let take = Int(min(UInt64(client.buffer.readableBytes), current.remaining))
                client.buffer.moveReaderIndex(forwardBy: take)
                current.remaining -= UInt64(take)
                guard current.remaining == 0 else {
                    client.enter(.discardingChunk(current))
                    continue
                }
                replies.fill(current.slot, with: current.reply, origin: current.reply.replyCode == .ok ? .proxy : .server)
                client.enter(.commands)
                return true
            case .beforeGreeting, .awaitingReply, .tlsHandshake, .passthrough, .closed:
                return moved
            }
        }
    }

    mutating func handleCommandFrame(_ frame: LineFramer.Frame, _ actions: inout [Action]) {
        client.restartDeadline()
        let id = client.nextCommandID
        client.nextCommandID += 1
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
                    client.enter(.awaitingReply(.quit))
                    return
                }
                replies.answer(.invalidCommand(id: id, verb: error.verb), with: .proxy(error.code, error.enhanced.description, error.text), isError: true)
            case .success(let command):
                actions.append(.record(.client(.command(id: id, command, line: command.redactedLine))))
                if canRun(command) {
                    execute(command, id: id, &actions)
                } else {
                    client.deferred = (id, command)
                }
            }
        }
    }

    /// Commands that end a pipelined group (RFC 2920 §3.1) or change how the next bytes read wait
    /// for every earlier reply; commands relayed upstream wait for the upstream leg.
    func canRun(_ command: SMTPCommand) -> Bool {
        switch command {
        case .ehlo, .helo, .lhlo, .data, .auth, .starttls, .quit:
            if !replies.isEmpty { return false }
        case .bdat:
            if !replies.isEmpty && content == nil { return false }
        case .mail, .rcpt, .rset, .noop, .vrfy, .expn, .help, .xclient, .xforward, .unknown:
            break
        }
        if upstream.spoolReleasePending && needsUpstream(command) { return false }
        if needsUpstream(command) && upstream.kind != .ready && !transactionRefusedSession {
            return upstream.kind == .closed
        }
        return true
    }

    func needsUpstream(_ command: SMTPCommand) -> Bool {
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

    mutating func reconnect(_ actions: inout [Action]) {
        if client.authenticated || transaction != nil {
            // Neither can move to a new connection: the SASL exchange cannot be replayed (its
            // secrets were never kept), and an open transaction's MAIL and RCPTs were accepted
            // by the upstream that is gone, so a new one would answer its next command 503.
            client.deferred = nil
            client.buffer.clear()
            replies.failRemaining(with: .upstreamConnectionLost(configuration.hostname))
            return
        }
        upstream.reconnect()
        actions.append(.connectUpstream)
    }

    mutating func execute(_ command: SMTPCommand, id: Int, _ actions: inout [Action]) {
        let answering = AwaitedReply.command(id: id, command)
        func local(_ code: Int, _ enhanced: String?, _ text: String, error: Bool = false, followUp: ReplyQueue.FollowUp = .none) {
            replies.answer(answering, with: .proxy(code, enhanced, text), isError: error, followUp: followUp)
        }
        if upstream.kind == .closed && needsUpstream(command) {
            if transactionRefusedSession {
                local(503, "5.5.1", "Error: session refused", error: true)
            } else {
                replies.answer(answering, with: .upstreamConnectionLost(configuration.hostname), followUp: .closeClient)
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
            let decision = policy.decide(at: .helo, facts: facts.probing(helo: name))
            recordVerdicts(decision, deciding: answering.commandID, &actions)
            if refuse(decision, answering, &actions) { return }
            if let settlement = Self.settlement(of: decision) { sessionSettlement = settlement }
            facts.greeted(as: name)
            let verb = command.verb
            client.greetingProtocol = verb == "EHLO" ? .esmtp : .smtp
            if let identified = upstream.identified, upstream.kind == .ready {
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
            if upstream.kind == .ready {
                let slot = replies.open(answering: answering)
                sendUpstream(.rset, expecting: .relay(slot: slot), &actions)
            } else {
                local(250, "2.0.0", "Ok")
            }
        case .noop:
            local(250, "2.0.0", "Ok")
        case .quit:
            if content != nil { abortUpstreamTransfer(&actions) }
            client.enter(.awaitingReply(.quit))
            if upstream.kind == .ready {
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
            if client.tlsActive {
                local(554, "5.5.1", "Error: TLS already active", error: true)
            } else if configuration.clientTLS == .off {
                local(502, "5.5.1", "Error: command not implemented", error: true)
            } else if configuration.clientTLS == .passthrough {
                relaySTARTTLS(answering, &actions)
            } else {
                local(220, "2.0.0", "Ready to start TLS", followUp: .startClientTLS)
                client.enter(.awaitingReply(.starttls))
            }
        case .auth(let mechanism, let initial):
            executeAuth(mechanism, initial, id: id, answering, &actions)
        }
    }

    /// Applies a terminal policy action; true when the command was answered by the proxy.
    mutating func refuse(_ decision: PolicyDecision, _ answering: AwaitedReply, _ actions: inout [Action]) -> Bool {
        switch decision.action {
        case .continue, .discard, .quarantine:
            return false
        case .reject(let reply), .tempfail(let reply):
            replies.answer(answering, with: SMTPReply(reply))
            return true
        case .disconnect(let reply):
            replies.answer(answering, with: disconnectReply(reply), followUp: .closeClient)
            return true
        }
    }

    static func settlement(of decision: PolicyDecision) -> Settlement? {
        switch decision.action {
        case .discard: .discard
        case .quarantine(let reason): .quarantine(reason: reason)
        case .continue, .reject, .tempfail, .disconnect: nil
        }
    }
}
