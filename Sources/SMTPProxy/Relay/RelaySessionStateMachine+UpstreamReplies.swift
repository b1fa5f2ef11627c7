import MailMessage
import NIOCore
import SMTPCore
import SMTPTranscript

/// The upstream leg's replies, each paired with the command it answers, and the commands sent to it
/// (one at a time when it does not offer PIPELINING).
extension RelaySessionStateMachine {
    mutating func handleUpstreamReply(_ reply: SMTPReply, _ actions: inout [Action]) {
        actions.append(.record(.upstreamReply(reply)))
        upstream.restartDeadline()
        guard let entry = upstream.expectations.take() else {
            if reply.replyCode == .serviceNotAvailable {
                upstream.enter(.closed)
                actions.append(.record(.close(by: .server, reason: .error)))
                replies.failRemaining(with: .proxy(421, "4.4.2", "\(configuration.hostname) Error: upstream closed the connection"))
            } else {
                protocolError("reply without a command: \(reply.code)", kind: .replyWithoutCommand, &actions)
            }
            return
        }
        if !entry.awaited.accepts(reply.code) {
            // Recorded as a capture's reader records it; what the proxy does next is the plan's.
            note(.unexpectedReply, "upstream answered \(entry.awaited.description) with \(reply.code)", &actions)
        }
        // What the reply does next is the protocol's (the conversation layer's, as for a capture);
        // what the proxy does about it is the plan the command was sent with.
        let turn = ConversationTurn(reply, answering: entry.awaited)
        switch entry.context {
        case .greeting(let resuming):
            let ready = reply.replyCode == .serviceReady
            if resuming {
                guard ready else {
                    replies.failRemaining(with: .proxy(421, "4.4.1", "\(configuration.hostname) Error: upstream refused the connection"))
                    return
                }
                // Still not ready: nothing of the client's goes out before EHLO (and STARTTLS).
                upstream.enter(.negotiating)
                sendUpstream(.ehlo(domain: facts.helo ?? configuration.hostname), expecting: .resumeEHLO, &actions)
            } else if let slot = upstream.greetingSlot {
                upstream.greetingSlot = nil
                upstream.enter(.ready)
                replies.fill(slot, with: reply, origin: .server, followUp: ready ? .resumeCommands : .closeClient)
            }
        case .relay(let slot):
            replies.fill(slot, with: reply, origin: .server)
        case .ehlo(let slot, let verb, let name):
            let purpose = EHLOPurpose.ehlo(slot: slot, verb: verb, name: name)
            if verb == "EHLO", case .greeted(let offered) = turn {
                upstream.extensions = offered
                if startUpstreamTLSIfWanted(ehloReply: reply, then: purpose, &actions) { return }
                if startXCLIENTIfWanted(after: purpose, ehloReply: reply, &actions) { return }
            }
            finishEHLO(purpose, reply: reply)
        case .resumeEHLO:
            guard case .greeted(let offered) = turn else {
                replies.failRemaining(with: .upstreamConnectionLost(configuration.hostname))
                return
            }
            upstream.extensions = offered
            if startUpstreamTLSIfWanted(ehloReply: reply, then: .resumeEHLO, &actions) { return }
            if startXCLIENTIfWanted(after: .resumeEHLO, ehloReply: reply, &actions) { return }
            finishEHLO(.resumeEHLO, reply: reply)
        case .passthroughSTARTTLS(let slot):
            if turn == .tlsHandshake {
                // Stops reading replies at once: what follows the 220 is the upstream's TLS.
                upstream.enter(.passthrough)
                upstream.forgetCommands()
                replies.fill(slot, with: reply, origin: .server, followUp: .startPassthrough)
            } else {
                note(.starttlsStripped, "upstream answered the client's STARTTLS with \(reply.code)", &actions)
                replies.fill(slot, with: reply, origin: .server, followUp: .resumeCommands)
            }
        case .starttls(let ehloReply, let then):
            if turn == .tlsHandshake {
                // RFC 3207 §4.2: the upstream forgets the EHLO; the proxy sends it again.
                upstream.identified = nil
                upstream.enter(.tlsHandshake(then: then))
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
                facts.acceptedRecipient(path)
                policy.observe(.recipientAccepted(path), facts: facts)
            }
            replies.fill(slot, with: reply, origin: .server)
        case .data(let slot, let kind):
            handleDataReply(reply, turn: turn, slot: slot, kind: kind, &actions)
        case .endOfData(let slot), .lastChunk(let slot):
            if reply.isPositiveCompletion, let message = messageAwaitingReply { policy.observe(.messageAccepted(octets: message.octets), facts: message.facts) }
            messageAwaitingReply = nil
            facts.awaitingReply(to: nil)
            replies.fill(slot, with: reply, origin: .server)
        case .chunk(let slot, let message, _, let ofLast):
            handleChunkReply(reply, slot: slot, message: message, ofLast: ofLast)
        case .spooledData(let slot, let edits, let octets):
            upstream.spoolReleasePending = false
            guard turn == .messageContent else {
                // The upstream refused the message: the client gets its code for the end of data.
                actions.append(.dropSpool)
                replies.fill(slot, with: reply, origin: .server)
                return
            }
            upstream.expectations.append(.endOfData(id: upstream.nextCommandID - 1), .endOfData(slot: slot))
            actions.append(.record(.upstreamContent(octets: octets)))
            actions.append(.record(.upstreamCommand(".")))
            actions.append(.releaseSpool(edits))
        case .auth(let slot):
            switch turn {
            case .saslChallenge(let challenge):
                client.receiveChallenge(challenge)
                replies.fill(slot, with: reply, origin: .server, followUp: .enterSASL)
            case .saslEnded(succeeded: true):
                client.endSASL()
                client.authenticated = true
                authSucceeded(reply, slot: slot, &actions)
            default:
                facts.unauthenticated()
                client.endSASL()
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
    mutating func quitAnswered(slot: Int?, reply: SMTPReply?, _ actions: inout [Action]) {
        upstream.enter(.closed)
        upstream.forgetCommands()
        actions.append(.closeUpstream)
        guard let slot else {
            if client.kind != .closed { closeBothLegs(&actions) }
            return
        }
        if let reply, reply.replyCode == .closing {
            replies.fill(slot, with: reply, origin: .server, followUp: .closeClient)
        } else {
            replies.fill(slot, with: .proxy(221, "2.0.0", "Bye"), origin: .proxy, followUp: .closeClient)
        }
    }

    mutating func sendUpstream(_ command: SMTPCommand, expecting: Expectation, _ actions: inout [Action]) {
        var out = ByteBuffer()
        out.writeString(command.wireLine)
        out.writeStaticString("\r\n")
        sendBytes(out, line: command.redactedLine, awaiting: .command(id: upstream.nextCommandID, command), expecting: expecting, &actions)
    }

    /// A line the proxy writes itself rather than from a parsed command: a BDAT header, a SASL
    /// response or its cancellation.
    mutating func sendRaw(_ line: String, expecting: Expectation, redacted: Bool = false, _ actions: inout [Action]) {
        var out = ByteBuffer()
        out.writeString(line)
        out.writeStaticString("\r\n")
        let id = upstream.nextCommandID
        let awaited: AwaitedReply = switch expecting {
        case .chunk: .bdatChunk(id: id, last: false)
        case .lastChunk: .bdatChunk(id: id, last: true)
        case .auth, .internalOnly: .saslResponse(id: id)
        default: .unknown
        }
        sendBytes(out, line: redacted ? "[redacted]" : line, awaiting: awaited, expecting: expecting, &actions)
    }

    mutating func sendBytes(_ bytes: ByteBuffer, line: String, awaiting awaited: AwaitedReply, expecting: Expectation, _ actions: inout [Action]) {
        upstream.nextCommandID += 1
        let command = UpstreamCommand(bytes: bytes, line: line, awaited: awaited, expecting: expecting)
        if !upstream.extensions.offers(.pipelining) && !(upstream.expectations.isEmpty && upstream.unpipelined.isEmpty) {
            upstream.unpipelined.append(command)
            return
        }
        transmit(command, &actions)
    }

    mutating func transmit(_ command: UpstreamCommand, _ actions: inout [Action]) {
        if upstream.expectations.isEmpty { upstream.restartDeadline() }
        upstream.expectations.append(command.awaited, command.expecting)
        actions.append(.record(.upstreamCommand(command.line)))
        actions.append(.sendUpstream(command.bytes))
    }

    /// The next held command goes once the upstream has answered every earlier one and nothing
    /// (STARTTLS, XCLIENT, a reconnection) keeps the client's commands back.
    mutating func sendNextUnpipelined(_ actions: inout [Action]) {
        guard upstream.kind == .ready, upstream.expectations.isEmpty, let next = upstream.unpipelined.popFirst() else { return }
        transmit(next, &actions)
    }
}
