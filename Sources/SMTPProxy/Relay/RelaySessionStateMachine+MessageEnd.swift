import MailMessage
import NIOCore
import SMTPCore
import SMTPTranscript

/// The end of a message and of its upstream transfer: the terminating dot or LAST chunk, the
/// upstream's replies to DATA and to relayed chunks, and aborting a transfer.
extension RelaySessionStateMachine {
    /// The client's message is complete: end it upstream, or refuse it.
    mutating func endMessage(slot: Int, _ actions: inout [Action]) {
        guard var current = content else { return }
        content = nil
        messageAwaitingReply = (facts, current.octets)
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
                sendBytes(out, line: ".", awaiting: .endOfData(id: upstream.nextCommandID), expecting: .endOfData(slot: slot), &actions)
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
    mutating func endRelayedMessage(_ current: inout Content, open: Transaction?, slot: Int, _ actions: inout [Action]) -> Bool {
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

    mutating func handleDataReply(_ reply: SMTPReply, turn: ConversationTurn, slot: Int, kind: ConversationEvent.ContentCommand, _ actions: inout [Action]) {
        guard turn == .messageContent else {
            // The upstream refused the message: the client gets its code, and what it streams on is
            // never read as commands (hostile-input case 8).
            let remaining = content?.chunkRemaining ?? 0
            content = nil
            transaction = nil
            switch kind {
            case .data:
                if client.earlyContent {
                    note(.unparsedBytes, "content sent before the reply to DATA", &actions)
                    replies.fill(slot, with: reply, origin: .server, followUp: .closeClient)
                } else {
                    replies.fill(slot, with: reply, origin: .server, followUp: .resumeCommands)
                }
            case .bdat:
                // With nothing left to read, the discard only waits for its reply to go out.
                client.enter(.discardingChunk(ChunkDiscard(remaining: remaining, slot: slot, reply: reply)))
                if remaining == 0 {
                    replies.fill(slot, with: reply, origin: .server, followUp: .resumeCommands)
                }
            }
            return
        }
        switch kind {
        case .data:
            if client.earlyContent || client.buffer.readableBytes > 0 {
                // Hostile-input case 7: content before 354. Nothing was sent after DATA, so closing the
                // upstream leg leaves no message behind.
                note(.unparsedBytes, "message content sent before 354", &actions)
                abortUpstreamTransfer(&actions)
                content = nil
                client.buffer.clear()
                replies.fill(slot, with: .synchronizationError, origin: .proxy, followUp: .closeClient)
                return
            }
            if let id = content?.commandID { actions.append(.record(.client(.messageBegin(commandID: id, .data)))) }
            replies.fill(slot, with: reply, origin: .server, followUp: .enterContent)
        case .bdat:
            client.enter(.content)
            if content?.chunkRemaining == 0 { finishChunk(&actions) }
        }
    }

    /// Closing the upstream before the terminating dot (or the proxy's LAST chunk) is the only way
    /// to abort a DATA (or BDAT) transfer; nothing the upstream received can become a message.
    mutating func abortUpstreamTransfer(_ actions: inout [Action]) {
        guard upstream.kind == .ready || upstream.kind == .tlsHandshake else { return }
        upstream.enter(.lost)
        answerRelayedChunks()
        upstream.forgetCommands()
        actions.append(.record(.upstreamCommand("[connection closed: transaction aborted]")))
        actions.append(.closeUpstream)
    }

    /// The upstream leg is gone with replies to relayed chunks still owed: each middle chunk the
    /// proxy read whole is answered as it is when the upstream lacks CHUNKING; the chunk still being
    /// read, and the client's LAST, are answered at their end (`finishChunk`, `endMessage`) with the
    /// reason the transfer failed.
    mutating func answerRelayedChunks() {
        let reading = client.kind == .content ? content?.chunkSlot : nil
        for case .chunk(let slot, _, let octets, false) in upstream.expectations.map(\.context) where slot != reading {
            replies.fill(slot, with: .proxy(250, "2.0.0", "\(octets) octets received"), origin: .proxy)
        }
    }

    /// The upstream's reply to a relayed chunk goes to the client's chunk, except for the client's
    /// LAST chunk: its `BDAT n` and the proxy's closing LAST chunk both answer it, and the client
    /// gets the first of the two that is not 2xx, else the last (which names the queued message).
    mutating func handleChunkReply(_ reply: SMTPReply, slot: Int, message: Int, ofLast: Bool) {
        if reply.isPositiveCompletion {
            if !ofLast { replies.fill(slot, with: reply, origin: .server) }
            return
        }
        if content?.commandID == message, content?.upstreamRefusal == nil { content?.upstreamRefusal = reply }
        replies.fill(slot, with: reply, origin: .server)
    }
}
