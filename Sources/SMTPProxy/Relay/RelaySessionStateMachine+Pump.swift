import MailMessage
import NIOCore
import SMTPCore
import SMTPTranscript

/// The pump: replies go to the client in command order (`ReplyQueue`), and client input is acted on
/// until nothing more can move.
extension RelaySessionStateMachine {
    /// Sends the replies that are due, then acts on client input until nothing more can move.
    mutating func pump(_ actions: inout [Action]) {
        var moved = true
        while moved {
            moved = flushReplies(&actions)
            if let pending = client.deferred {
                if canRun(pending.command) {
                    client.deferred = nil
                    execute(pending.command, id: pending.id, &actions)
                    moved = true
                } else if upstream.kind == .lost, needsUpstream(pending.command) {
                    reconnect(&actions)
                    moved = true
                }
            }
            if client.deferred == nil, processClient(&actions) { moved = true }
            if !moved, client.inputClosed { moved = endHalfClosedSession(&actions) }
        }
    }

    mutating func flushReplies(_ actions: inout [Action]) -> Bool {
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
                client.enter(.closed)
                // Nothing the client sent after this reply is acted on or answered.
                client.deferred = nil
                client.buffer.clear()
                actions.append(.record(.close(by: .proxy, reason: reply.replyCode == .closing ? .quit : .error)))
                actions.append(.closeClient)
                if upstream.kind != .closed {
                    upstream.enter(.closed)
                    actions.append(.closeUpstream)
                }
                replies.removeAll()
                return true
            case .startClientTLS:
                if client.buffer.readableBytes > 0 {
                    // STARTTLS wipes the slate: plaintext pipelined behind it is dropped, CVE-2011-0411.
                    note(.plaintextAfterSTARTTLS, "\(client.buffer.readableBytes) octets pipelined after STARTTLS discarded", &actions)
                    client.buffer.clear()
                }
                client.enter(.tlsHandshake)
                actions.append(.record(.client(.tlsStarted(implicit: false))))
                actions.append(.startClientTLS)
            case .startPassthrough:
                if client.buffer.readableBytes > 0 {
                    // CVE-2011-0411: never relayed into the upstream's TLS stream either.
                    note(.plaintextAfterSTARTTLS, "\(client.buffer.readableBytes) octets pipelined after STARTTLS discarded", &actions)
                    client.buffer.clear()
                }
                client.enter(.passthrough)
                client.deferred = nil
                actions.append(.record(.passthroughStarted))
                actions.append(.startPassthrough)
                replies.removeAll()
                return true
            case .enterContent:
                client.enter(.content)
            case .enterSASL:
                guard let exchange = client.sasl else {
                    preconditionFailure("a 334 reply with no AUTH exchange under way")
                }
                client.enter(.sasl(exchange))
            case .resumeCommands:
                if client.kind != .closed { client.enter(.commands) }
            }
            if slot.isError {
                client.errors += 1
                if client.errors >= configuration.limits.maxErrors, client.kind != .closed {
                    // Postfix `smtpd_hard_error_limit`: nothing read after this error is answered.
                    replies.removeAll()
                    replies.answer(.unknown, with: .proxy(421, "4.7.0", "\(configuration.hostname) Error: too many errors"), followUp: .closeClient)
                }
            }
        }
        return moved
    }

    mutating func note(_ kind: SMTPAnomalyKind, _ detail: String?, _ actions: inout [Action]) {
        // Repeated anomalies of one kind add nothing but transcript size.
        guard reportedAnomalies.insert(kind).inserted else { return }
        actions.append(.record(.client(.anomaly(SMTPAnomaly(kind, detail)))))
    }

    /// The decision's verdicts, for the record, with the command they decided (`nil` at `connect`).
    func recordVerdicts(_ decision: PolicyDecision, deciding command: Int?, _ actions: inout [Action]) {
        if !decision.verdicts.isEmpty { actions.append(.record(.ruleVerdicts(decision.verdicts, command: command))) }
    }

    func tlsFailure(_ reason: String) -> TLSSummary {
        var summary = TLSSummary()
        summary.established = false
        summary.failure = reason
        return summary
    }
}
