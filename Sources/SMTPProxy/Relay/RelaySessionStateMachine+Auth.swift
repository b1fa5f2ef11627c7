import MailMessage
import NIOCore
import SMTPCore
import SMTPTranscript

/// AUTH (RFC 4954): the exchange relayed to the upstream, the user read from it, `auth` rules.
extension RelaySessionStateMachine {
    mutating func executeAuth(_ mechanism: String, _ initial: SASLResponse?, id: Int, _ answering: AwaitedReply, _ actions: inout [Action]) {
        func local(_ code: Int, _ enhanced: String, _ text: String, error: Bool = false) {
            replies.answer(answering, with: .proxy(code, enhanced, text), isError: error)
        }
        if client.authenticated { return local(503, "5.5.1", "Error: already authenticated", error: true) }
        if transaction != nil { return local(503, "5.5.1", "Error: MAIL transaction in progress", error: true) }
        if configuration.clientTLS == .require && !client.tlsActive {
            return local(530, "5.7.0", "Must issue a STARTTLS command first")
        }
        guard upstream.extensions.authMechanisms.contains(mechanism) else { return local(504, "5.5.4", "Unsupported authentication mechanism", error: true) }
        if initial?.isCancellation == true { return local(501, "5.7.0", "Authentication aborted") }
        var exchange = SASLExchange(mechanism: mechanism)
        if let initial { exchange.receiveResponse(initial) }
        facts.authenticating(mechanism: mechanism, user: exchange.user)
        if let user = exchange.user {
            actions.append(.record(.client(.authIdentity(authID: id, mechanism: mechanism, user: user))))
        }
        let slot = replies.open(answering: answering)
        client.enter(.awaitingReply(.auth(SASLInProgress(authID: id, exchange: exchange, slot: slot))))
        sendUpstream(.auth(mechanism: mechanism, initialResponse: initial), expecting: .auth(slot: slot), &actions)
    }

    mutating func handleSASLFrame(_ frame: LineFramer.Frame, _ actions: inout [Action]) {
        client.restartDeadline()
        guard case .sasl(var current) = client.mode else {
            preconditionFailure("a SASL response read outside an AUTH exchange")
        }
        actions.append(.record(.client(.saslResponse(authID: current.authID))))
        let answering = AwaitedReply.saslResponse(id: current.authID)
        switch frame {
        case .overlong:
            // RFC 4954 §4: 12288 octets at most. The upstream exchange is cancelled.
            sendRaw("*", expecting: .internalOnly, &actions)
            replies.answer(answering, with: .proxy(500, "5.5.6", "Authentication exchange line is too long"), isError: true, followUp: .resumeCommands)
            client.enter(.awaitingReply(.auth(nil)))
        case .line(let line, _):
            let response = SASLResponse(base64Text: String(decoding: line.readableBytesView, as: UTF8.self))
            if response.isCancellation {
                sendRaw("*", expecting: .internalOnly, &actions)
                replies.answer(answering, with: .proxy(501, "5.7.0", "Authentication aborted"), followUp: .resumeCommands)
                client.enter(.awaitingReply(.auth(nil)))
                return
            }
            let hadUser = current.exchange.user != nil
            current.exchange.receiveResponse(response)
            if !hadUser, let user = current.exchange.user {
                facts.identified(user: user)
                actions.append(.record(.client(.authIdentity(authID: current.authID, mechanism: current.exchange.mechanism, user: user))))
            }
            let slot = replies.open(answering: answering)
            current.slot = slot
            client.enter(.awaitingReply(.auth(current)))
            sendRaw(response.base64Text, expecting: .auth(slot: slot), redacted: true, &actions)
        }
    }

    /// The upstream accepted the credentials: now `auth` rules judge the user (rules README). A
    /// refusal is the client's reply instead of the upstream's 235, and the authenticated upstream
    /// connection is dropped, so nothing is ever relayed under an identity the rules refused.
    mutating func authSucceeded(_ reply: SMTPReply, slot: Int, _ actions: inout [Action]) {
        let decision = policy.decide(at: .auth, facts: facts)
        // `auth` verdicts belong to the session, whichever command they answer.
        recordVerdicts(decision, deciding: nil, &actions)
        if let settlement = Self.settlement(of: decision) { sessionSettlement = settlement }
        switch decision.action {
        case .continue, .discard, .quarantine:
            replies.fill(slot, with: reply, origin: .server, followUp: .resumeCommands)
            return
        case .reject(let refusal), .tempfail(let refusal):
            replies.fill(slot, with: SMTPReply(refusal), origin: .proxy, followUp: .resumeCommands)
        case .disconnect(let refusal):
            replies.fill(slot, with: disconnectReply(refusal), origin: .proxy, followUp: .closeClient)
        }
        client.authenticated = false
        facts.unauthenticated()
        abortUpstreamTransfer(&actions)
    }
}
