import MailMessage
import NIOCore
import SMTPCore
import SMTPTranscript

/// The upstream session before the client's commands may pass: EHLO, STARTTLS towards the upstream
/// (RFC 3207), XCLIENT, and the client's EHLO answered from the upstream's.
extension RelaySessionStateMachine {
    /// The upstream's EHLO exchange is over (TLS and XCLIENT done or not wanted): the client's EHLO
    /// is answered, or the reconnected upstream takes the client's commands again.
    mutating func finishEHLO(_ purpose: EHLOPurpose, reply: SMTPReply) {
        switch purpose {
        case .ehlo(let slot, let verb, _):
            // Held while STARTTLS or XCLIENT might follow (`holdUntilEHLOSettles`).
            if upstream.kind == .connecting { upstream.enter(.ready) }
            if verb == "EHLO", reply.replyCode == .ok { upstream.identified = reply }
            answerEHLO(slot: slot, verb: verb, reply: reply)
        case .resumeEHLO:
            upstream.enter(.ready)
            upstream.identified = reply
        }
    }

    /// STARTTLS or XCLIENT may follow the reply to the EHLO about to go out: nothing else of the
    /// client's goes upstream before it (`finishEHLO` releases the hold), so a command pipelined
    /// after EHLO can never reach the upstream in plaintext ahead of its STARTTLS.
    mutating func holdUntilEHLOSettles() {
        let tlsMayFollow = proxyStartsUpstreamTLS && !upstream.tlsActive && !upstream.tlsTried
        let xclientMayFollow = configuration.xclient && !upstream.xclientTried
        if tlsMayFollow || xclientMayFollow { upstream.enter(.negotiating) }
    }

    /// EHLO again on the same upstream connection, after STARTTLS or XCLIENT.
    mutating func sendEHLOAgain(for purpose: EHLOPurpose, _ actions: inout [Action]) {
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
    mutating func startXCLIENTIfWanted(after purpose: EHLOPurpose, ehloReply: SMTPReply, _ actions: inout [Action]) -> Bool {
        guard configuration.xclient, !upstream.xclientTried, let offered = upstream.extensions.parameters(of: .xclient) else { return false }
        let client = XCLIENTCommand.Client(address: facts.clientIP, port: facts.clientPort, helo: facts.helo, proto: client.greetingProtocol)
        var commands = XCLIENTCommand.arguments(for: client, offered: offered)
        guard !commands.isEmpty else { return false }
        upstream.xclientTried = true
        upstream.enter(.negotiating)
        let first = commands.removeFirst()
        sendUpstream(.xclient(first), expecting: .xclient(remaining: commands, accepted: false, then: purpose, ehloReply: ehloReply), &actions)
        return true
    }

    /// XCLIENT_README: a server that accepts XCLIENT starts a new session with a 220 greeting, so
    /// the proxy sends EHLO again and answers the client from that reply. A refusal is not the
    /// client's concern: the session goes on without it (the upstream events record it).
    mutating func handleXCLIENTReply(_ reply: SMTPReply, remaining: inout [String], accepted: Bool, then: EHLOPurpose, ehloReply: SMTPReply, _ actions: inout [Action]) {
        if reply.isPositiveCompletion {
            // A new session at the upstream: the EHLO that follows is the one it expects.
            upstream.identified = nil
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
    mutating func answerFromIdentifiedUpstream(_ identified: SMTPReply, verb: String, _ answering: AwaitedReply, _ actions: inout [Action]) {
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

    mutating func answerEHLO(slot: Int, verb: String, reply: SMTPReply) {
        guard verb == "EHLO", reply.replyCode == .ok else {
            replies.fill(slot, with: reply, origin: .server)
            return
        }
        let lines = EHLOReconciler.clientLines(upstream: reply, configuration: configuration, clientLegIsTLS: client.tlsActive)
        replies.fill(slot, with: SMTPReply(code: 250, lines: lines), origin: .proxy)
    }

    /// Under passthrough the upstream's STARTTLS belongs to the client, so the proxy never uses it.
    var proxyStartsUpstreamTLS: Bool {
        configuration.upstreamTLS != .off && configuration.clientTLS != .passthrough
    }

    /// `--client-tls passthrough`: the client's STARTTLS goes to the upstream, whose reply decides.
    /// STARTTLS is offered only when the upstream offers it; a client that sends it anyway gets
    /// Postfix's `454 4.7.0`.
    mutating func relaySTARTTLS(_ answering: AwaitedReply, _ actions: inout [Action]) {
        guard facts.helo != nil else {
            replies.answer(answering, with: .proxy(503, "5.5.1", "Error: send EHLO first"), isError: true)
            return
        }
        guard upstream.kind == .ready, upstream.extensions.offers(.startTLS), !upstream.tlsActive else {
            replies.answer(answering, with: .proxy(454, "4.7.0", "TLS not available"))
            return
        }
        let slot = replies.open(answering: answering)
        sendUpstream(.starttls, expecting: .passthroughSTARTTLS(slot: slot), &actions)
        client.enter(.awaitingReply(.starttls))
    }

    /// STARTTLS towards the upstream when `--upstream-tls` asks for it and the upstream offers it;
    /// true when the handshake is under way.
    mutating func startUpstreamTLSIfWanted(ehloReply: SMTPReply, then: EHLOPurpose, _ actions: inout [Action]) -> Bool {
        guard proxyStartsUpstreamTLS, !upstream.tlsActive, !upstream.tlsTried else { return false }
        upstream.tlsTried = true
        guard upstream.extensions.offers(.startTLS) else {
            // Opportunistic TLS without an offer is plain SMTP, not a downgrade.
            if configuration.upstreamTLS.requiresTLS { note(.starttlsStripped, "the upstream does not offer STARTTLS", &actions) }
            return false
        }
        // Nothing else goes upstream until the handshake is done (or refused).
        upstream.enter(.negotiating)
        sendUpstream(.starttls, expecting: .starttls(ehloReply: ehloReply, then: then), &actions)
        return true
    }
}
