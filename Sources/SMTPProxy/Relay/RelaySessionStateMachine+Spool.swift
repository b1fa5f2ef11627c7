import MailMessage
import NIOCore
import SMTPCore
import SMTPRules
import SMTPTranscript

/// Messages held whole by the proxy before anything goes upstream, for `message` rules, discard and
/// quarantine.
extension RelaySessionStateMachine {
    /// Whether the next message is held whole by the proxy before anything goes upstream.
    var spoolsMessages: Bool {
        policy.evaluatesMessages || transaction?.settlement != nil
    }

    /// What the relay's reading of a spooled message keeps: decoded body text only for a policy
    /// that reads it.
    var messageLimits: MessageLimits {
        var limits = MessageLimits()
        if !policy.readsMessageBody { limits.maxBodyTextOctets = 0 }
        return limits
    }

    /// DATA when the message is spooled: the proxy answers 354 itself.
    mutating func startSpooledData(slot: Int, id: Int, _ actions: inout [Action]) {
        if client.buffer.readableBytes > 0 {
            // Hostile-input case 7: content pipelined after DATA, before any 354.
            note(.unparsedBytes, "message content sent before 354", &actions)
            client.buffer.clear()
            replies.fill(slot, with: .synchronizationError, origin: .proxy, followUp: .closeClient)
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
        client.enter(.awaitingReply(.data))
        replies.fill(slot, with: .proxy(354, nil, "End data with <CR><LF>.<CR><LF>"), origin: .proxy, followUp: .enterContent)
    }

    /// The spooled message has all its content: one reading serves the `message` rules and the
    /// record, which gets it ahead of the message's end.
    func finishReading(_ current: inout Content, _ actions: inout [Action]) {
        guard current.summary == nil, var inspector = current.inspector else { return }
        let summary = inspector.finish()
        current.inspector = nil
        current.summary = summary
        actions.append(.record(.messageRead(summary)))
    }

    /// Checks a piece of spooled content as the upstream would get it, reads it for the
    /// `message` stage, and hands it to the channel layer's spool.
    mutating func spool(_ slice: ByteBuffer, _ current: inout Content, _ actions: inout [Action]) {
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
    mutating func endSpooledMessage(_ current: inout Content, slot: Int, _ actions: inout [Action]) {
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
            let message = current.summary.map { RuleMessageFacts($0, size: current.octets) }
            let decision = policy.decide(at: .message, facts: facts.probing(message: message))
            recordVerdicts(decision, deciding: current.commandID, &actions)
            switch decision.action {
            case .reject(let refusal), .tempfail(let refusal):
                actions.append(.dropSpool)
                closeUpstreamTransaction(open, &actions)
                replies.fill(slot, with: SMTPReply(refusal), origin: .proxy)
                return
            case .disconnect(let refusal):
                actions.append(.dropSpool)
                replies.fill(slot, with: disconnectReply(refusal), origin: .proxy, followUp: .closeClient)
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
                actions.append(.record(.transactionSettled(settlement.outcome, command: current.commandID)))
                replies.fill(slot, with: .proxy(250, "2.0.0", "Ok"), origin: .proxy)
            case .quarantine(let reason):
                // Answered once the quarantine holds the message (receiveQuarantineStored).
                let request = QuarantineRequest(reason: reason, rules: settlingRules, helo: facts.helo, authUser: facts.authUser, mailFrom: facts.mailFrom, recipients: facts.recipients, slot: slot, commandID: current.commandID)
                actions.append(.quarantineSpool(request))
            }
            return
        }
        guard upstream.kind == .ready, let open else {
            // The upstream went away while the message was spooled: nothing was delivered.
            actions.append(.dropSpool)
            replies.fill(slot, with: reply(for: .upstreamLost), origin: .proxy)
            return
        }
        transaction = open
        transaction?.addedRecipients = added
        transaction?.redirect = redirect
        upstream.spoolReleasePending = true
        startUpstreamData(expecting: .spooledData(slot: slot, edits: edits, octets: current.octets), &actions)
        transaction = nil
    }

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
            replies.fill(request.slot, with: .messageNotStored, origin: .proxy)
        } else {
            actions.append(.record(.transactionSettled(.quarantined, command: request.commandID)))
            replies.fill(request.slot, with: .proxy(250, "2.0.0", "Ok"), origin: .proxy)
        }
        pump(&actions)
        return actions
    }
}
