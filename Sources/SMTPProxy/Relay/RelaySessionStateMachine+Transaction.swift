import MailMessage
import NIOCore
import SMTPCore
import SMTPTranscript

/// The mail transaction (RFC 5321 §3.3): MAIL, RCPT, the checks before a message, and what goes
/// upstream ahead of it.
extension RelaySessionStateMachine {
    mutating func executeMail(_ path: SMTPPath, _ parameters: [ESMTPParameter], _ answering: AwaitedReply, _ actions: inout [Action]) {
        func local(_ code: Int, _ enhanced: String, _ text: String, error: Bool = false) {
            replies.answer(answering, with: .proxy(code, enhanced, text), isError: error)
        }
        if configuration.clientTLS == .require && !client.tlsActive {
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
            if size > UInt64(EHLOReconciler.clientSizeLimit(upstream: upstream.extensions, proxyLimit: configuration.limits.maxMessageOctets)) {
                return local(552, "5.3.4", "Message size exceeds fixed limit")
            }
        }
        let smtpUTF8 = parameters.contains(keyword: "SMTPUTF8")
        if !path.isASCII && !smtpUTF8 {
            return local(553, "5.6.7", "Must declare SMTPUTF8 to send UTF8 address")
        }
        if configuration.upstreamTLS.requiresTLS && !upstream.tlsActive {
            return local(451, "4.7.5", "Error: TLS to the upstream is required but not available")
        }
        facts.awaitingReply(to: messageEndAwaitingReply)
        let decision = policy.decide(at: .mail, facts: facts.probing(mailFrom: path, parameters: parameters))
        recordVerdicts(decision, deciding: answering.commandID, &actions)
        if refuse(decision, answering, &actions) { return }
        facts.beganTransaction(mailFrom: path, parameters: parameters)
        let upstreamPath = decision.rewriteMailFrom ?? path
        if decision.rewriteMailFrom != nil { actions.append(.record(.mailFromRewritten(upstreamPath, command: answering.commandID))) }
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

    mutating func executeRcpt(_ path: SMTPPath, _ parameters: [ESMTPParameter], _ answering: AwaitedReply, _ actions: inout [Action]) {
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
        // The recipients given before this one count, pipelined ones before the upstream answers.
        let decision = policy.decide(at: .rcpt, facts: facts.probing(recipient: path))
        recordVerdicts(decision, deciding: answering.commandID, &actions)
        transaction?.recipientCommands += 1
        facts.gaveRecipient()
        if refuse(decision, answering, &actions) { return }
        transaction?.addedRecipients += decision.addRecipients
        if let settlement = Self.settlement(of: decision), transaction?.settlement == nil { transaction?.settlement = settlement }
        if transaction?.settlement != nil {
            // Answered as if accepted: the transaction will never reach the upstream.
            transaction?.accepted.append(path)
            facts.acceptedRecipient(path)
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

    /// Checks shared by DATA and the first BDAT (command `id`); returns the refusal, if any.
    mutating func refuseMessageStart(id: Int, _ actions: inout [Action]) -> SMTPReply? {
        guard let current = transaction, current.mailAccepted else { return .proxy(503, "5.5.1", "Error: need MAIL command") }
        guard current.recipientCommands > 0 else { return .proxy(503, "5.5.1", "Error: need RCPT command") }
        guard !current.accepted.isEmpty else { return .proxy(554, "5.5.1", "Error: no valid recipients") }
        let decision = policy.decide(at: .data, facts: facts)
        recordVerdicts(decision, deciding: id, &actions)
        switch decision.action {
        case .continue, .discard, .quarantine:
            transaction?.addedRecipients += decision.addRecipients
            if let redirect = decision.redirect { transaction?.redirect = redirect }
            if let settlement = Self.settlement(of: decision), transaction?.settlement == nil { transaction?.settlement = settlement }
            return nil
        case .reject(let reply), .tempfail(let reply):
            return SMTPReply(reply)
        case .disconnect(let reply):
            return disconnectReply(reply)
        }
    }

    /// Sends bcc recipients, then DATA.
    mutating func startUpstreamData(expecting: Expectation, _ actions: inout [Action]) {
        prepareUpstreamMessage(&actions)
        sendUpstream(.data, expecting: expecting, &actions)
    }

    /// What goes upstream before the message: bcc recipients (never shown to the client). A
    /// redirect first replaces the upstream transaction with one for the redirect address alone.
    mutating func prepareUpstreamMessage(_ actions: inout [Action]) {
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

    /// A transaction the client will not complete upstream: RSET, so the upstream's next MAIL
    /// starts clean.
    mutating func closeUpstreamTransaction(_ transaction: Transaction?, _ actions: inout [Action]) {
        guard let transaction, transaction.upstreamOpen, upstream.kind == .ready else { return }
        sendUpstream(.rset, expecting: .internalOnly, &actions)
    }
}
