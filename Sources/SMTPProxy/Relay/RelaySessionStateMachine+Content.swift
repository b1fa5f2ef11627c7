import MailMessage
import NIOCore
import SMTPCore
import SMTPTranscript

/// Message content (DATA, RFC 5321 §4.1.1.4; BDAT, RFC 3030): read from the client, checked, and
/// written upstream in canonical form or relayed in chunks.
extension RelaySessionStateMachine {
    mutating func executeData(kind: ConversationEvent.ContentCommand, _ answering: AwaitedReply, id: Int, _ actions: inout [Action]) {
        if let refusal = refuseMessageStart(id: id, &actions) {
            replies.answer(answering, with: refusal, isError: (500...504).contains(refusal.code), followUp: refusal.replyCode == .serviceNotAvailable ? .closeClient : .none)
            return
        }
        let slot = replies.open(answering: answering)
        if spoolsMessages { return startSpooledData(slot: slot, id: id, &actions) }
        content = Content(commandID: id, kind: .data)
        client.earlyContent = client.buffer.readableBytes > 0
        client.enter(.awaitingReply(.data))
        startUpstreamData(expecting: .data(slot: slot, kind: kind), &actions)
    }

    mutating func executeBDAT(size: UInt64, last: Bool, _ answering: AwaitedReply, id: Int, _ actions: inout [Action]) {
        if content != nil {
            // A further chunk of an open transfer.
            let slot = replies.open(answering: answering)
            content?.chunkRemaining = size
            content?.chunkSize = size
            content?.chunkIsLast = last
            content?.chunkSlot = slot
            if content?.relaysChunks == true { relayChunkHeader(&actions) }
            client.enter(.content)
            if size == 0 { finishChunk(&actions) }
            return
        }
        let slot = replies.open(answering: answering)
        if let refusal = refuseMessageStart(id: id, &actions) {
            // RFC 3030 §3: the chunk is read all the same, then refused.
            client.enter(.discardingChunk(ChunkDiscard(remaining: size, slot: slot, reply: refusal)))
            if size == 0 {
                replies.fill(slot, with: refusal, origin: .proxy, followUp: .none)
                client.enter(.commands)
            }
            return
        }
        var started = Content(commandID: id, kind: .bdat)
        started.chunkRemaining = size
        started.chunkSize = size
        started.chunkIsLast = last
        started.chunkSlot = slot
        actions.append(.record(.client(.messageBegin(commandID: id, .bdat))))
        if spoolsMessages {
            started.spooled = true
            started.inspector = MessageInspector(limits: messageLimits)
            content = started
            actions.append(.record(.messageReadByRelay))
            actions.append(.dropSpool)
            client.enter(.content)
            if size == 0 { finishChunk(&actions) }
            return
        }
        if upstream.extensions.offers(.chunking) && upstream.extensions.offers(.pipelining) {
            // RFC 3030 on both legs: each chunk streams upstream as it arrives, without waiting
            // for the previous chunk's reply, which RFC 2920 allows only where PIPELINING is
            // offered (without it, the upstream gets DATA, below).
            started.relaysChunks = true
            content = started
            prepareUpstreamMessage(&actions)
            relayChunkHeader(&actions)
            client.enter(.content)
            if size == 0 { finishChunk(&actions) }
            return
        }
        // The upstream lacks CHUNKING, so it gets DATA; the chunk waits in the client's buffer
        // until its 354.
        content = started
        client.enter(.awaitingReply(.bdat))
        startUpstreamData(expecting: .data(slot: slot, kind: .bdat), &actions)
    }

    /// Sends the current chunk's `BDAT n` upstream (never LAST: `endRelayedMessage` ends the
    /// message), unless the transfer has already failed, or the upstream refused an earlier chunk
    /// (RFC 3030 §2: the sender MUST NOT send further BDAT after a 4xx or 5xx to one).
    mutating func relayChunkHeader(_ actions: inout [Action]) {
        guard let current = content else { return }
        let relayed = current.failure == nil && current.upstreamRefusal == nil && upstream.kind == .ready
        content?.chunkRelayed = relayed
        guard relayed else { return }
        let expecting = Expectation.chunk(slot: current.chunkSlot, message: current.commandID, octets: current.chunkSize, ofLast: current.chunkIsLast)
        sendRaw("BDAT \(current.chunkSize)", expecting: expecting, &actions)
    }

    mutating func readDataContent(_ actions: inout [Action]) {
        guard var current = content else { return }
        var out = ByteBuffer()
        var slices: [ByteBuffer] = []
        let stop = current.parser.parse(&client.buffer) { slices.append($0) }
        for slice in slices {
            forward(slice, &current, into: &out, &actions)
        }
        if out.readableBytes > 0 { actions.append(.sendUpstream(out)) }
        switch stop {
        case .needMoreBytes, .lenientEndCandidate:
            client.buffer.discardReadBytes()
            content = current
        case .endOfData:
            finishReading(&current, &actions)
            actions.append(.record(.client(.messageEnd(commandID: current.commandID, octets: current.octets, complete: true, current.parser.observations))))
            content = current
            endMessage(slot: replies.open(answering: .endOfData(id: current.commandID)), &actions)
            client.enter(.commands)
        }
    }

    mutating func readChunk(_ actions: inout [Action]) {
        guard var current = content, current.chunkRemaining > 0 else { return }
        let take = Int(min(UInt64(client.buffer.readableBytes), current.chunkRemaining))
        guard let slice = client.buffer.readSlice(length: take) else { return }
        current.chunkRemaining -= UInt64(take)
        var out = ByteBuffer()
        forward(slice, &current, into: &out, &actions)
        if current.relaysChunks {
            // Checked, and owed upstream under this chunk's `BDAT n`: sent as read.
            if current.chunkRelayed, current.failure == nil {
                actions.append(.sendUpstream(slice))
                // The upstream owes this chunk's reply only once it has the last octet: a client
                // sending within its data rate must not run the upstream's deadline out.
                upstream.restartDeadline()
            }
        } else if out.readableBytes > 0 {
            actions.append(.sendUpstream(out))
        }
        content = current
        if current.chunkRemaining == 0 { finishChunk(&actions) }
    }

    /// A BDAT chunk was read in full: a middle chunk is answered by the proxy (or, relayed, by the
    /// upstream), the last one ends the message.
    mutating func finishChunk(_ actions: inout [Action]) {
        guard var current = content else { return }
        if current.chunkRelayed, current.failure == nil, current.chunkSize > 0 {
            actions.append(.record(.upstreamContent(octets: Int(current.chunkSize))))
        }
        if current.chunkIsLast {
            finishReading(&current, &actions)
            content = current
            actions.append(.record(.client(.messageEnd(commandID: current.commandID, octets: current.octets, complete: true, current.parser.observations))))
            endMessage(slot: current.chunkSlot, &actions)
        } else if let failure = current.failure {
            replies.fill(current.chunkSlot, with: reply(for: failure), origin: .proxy)
        } else if current.relaysChunks {
            // A relayed chunk is answered by the upstream (`handleChunkReply`); one kept back after
            // the upstream refused an earlier chunk gets that refusal.
            if !current.chunkRelayed {
                replies.fill(current.chunkSlot, with: current.upstreamRefusal ?? reply(for: .upstreamLost), origin: .proxy)
            }
        } else {
            replies.fill(current.chunkSlot, with: .proxy(250, "2.0.0", "\(current.chunkSize) octets received"), origin: .proxy)
        }
        client.enter(.commands)
    }

    /// Checks one piece of content and writes it upstream in canonical form; the first forbidden
    /// octet or excess octet stops the upstream transaction: it is never cleaned and sent on.
    mutating func forward(_ slice: ByteBuffer, _ current: inout Content, into out: inout ByteBuffer, _ actions: inout [Action]) {
        current.octets += slice.readableBytes
        if current.failure == nil {
            actions.append(.record(.client(.messageContent(slice))))
        }
        guard current.failure == nil else { return }
        if current.octets > contentLimit {
            let detail = "content over the \(contentLimit)-octet limit: refused with 552 5.3.4, read no further"
            return stopRelaying(.tooLarge, .messageTruncated, detail, &current, &out, &actions)
        }
        if !current.measureHeader(slice, limit: configuration.limits.maxHeaderSectionOctets) {
            let detail = "header section over \(configuration.limits.maxHeaderSectionOctets) octets; transaction aborted"
            return stopRelaying(.headerTooLarge, .messageHeaderAnomaly, detail, &current, &out, &actions)
        }
        if current.spooled {
            spool(slice, &current, &actions)
            return
        }
        if current.relaysChunks {
            // BDAT is length-delimited: the octets go upstream as they are (`readChunk`), no
            // stuffing, once they pass the checks the DATA path makes.
            do {
                try current.writer.check(slice)
            } catch {
                refuseContent(error, &current, &actions)
                abortUpstreamTransfer(&actions)
            }
            return
        }
        let mark = out.writerIndex
        do {
            try current.writer.write(slice, into: &out)
        } catch {
            out.moveWriterIndex(to: mark)
            refuseContent(error, &current, &actions)
            if out.readableBytes > 0 {
                actions.append(.sendUpstream(out))
                out.clear()
            }
            abortUpstreamTransfer(&actions)
        }
    }

    /// The most content octets this transaction may carry: `--message-size-limit`, or the SIZE
    /// its MAIL declared when smaller (hostile-input case 11). Both count the message as RFC 1870 §6.1
    /// does: CRLFs included, stuffing dots and the terminating dot not, which is what the
    /// content parser hands over.
    var contentLimit: Int {
        let limit = configuration.limits.maxMessageOctets
        guard case .valid(let declared)? = transaction?.mailParameters.size, declared < UInt64(limit) else { return limit }
        return Int(declared)
    }

    /// A message over a limit is read no further: nothing more of it goes upstream (its spool is
    /// dropped, or the upstream transfer aborted), and the client hears why at its end of data.
    private mutating func stopRelaying(
        _ failure: ContentFailure, _ kind: SMTPAnomalyKind, _ detail: String,
        _ current: inout Content, _ out: inout ByteBuffer, _ actions: inout [Action]
    ) {
        current.failure = failure
        actions.append(.record(.messageTruncated))
        note(kind, detail, &actions)
        out.clear()
        if current.spooled {
            actions.append(.dropSpool)
        } else {
            abortUpstreamTransfer(&actions)
        }
    }

    /// The first octet DATA may not carry (bare CR, bare LF, NUL): the transaction fails, and the
    /// client hears why at its end of data.
    mutating func refuseContent(_ error: DataContentWriter.ForbiddenOctet, _ current: inout Content, _ actions: inout [Action]) {
        current.failure = .forbidden(error.octet)
        actions.append(.record(.messageTruncated))
        let kind: SMTPAnomalyKind = switch error.octet {
        case .bareLF: .bareLFInData
        case .bareCR: .bareCRInData
        case .nul: .nulInData
        }
        note(kind, "at content octet \(error.offset); transaction aborted", &actions)
    }

    func reply(for failure: ContentFailure) -> SMTPReply {
        switch failure {
        case .forbidden(.bareLF): .proxy(550, "5.5.2", "Error: bare <LF> received")
        case .forbidden(.bareCR): .proxy(550, "5.5.2", "Error: bare <CR> received")
        case .forbidden(.nul): .proxy(550, "5.5.2", "Error: NUL character in message content")
        case .tooLarge: .proxy(552, "5.3.4", "Error: message file too big")
        case .headerTooLarge: .proxy(552, "5.3.4", "Error: message header section too big")
        case .upstreamLost: .proxy(451, "4.4.2", "Error: upstream connection lost, message not delivered")
        case .spoolFailed: .messageNotStored
        case .rejected(let reply): SMTPReply(reply)
        }
    }
}
