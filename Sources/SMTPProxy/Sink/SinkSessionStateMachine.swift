import NIOCore
import SMTPCore

/// The protocol side of one `smtpscope sink` session: a strict RFC 5321 server that accepts every
/// well-formed transaction (RFC 5321 §3.3, §4.1.1, §4.3.2; RFC 3030 BDAT; RFC 1870 SIZE; RFC 6531
/// SMTPUTF8), with no I/O.
///
/// The channel handler feeds it the client's bytes and performs the actions it returns, in order.
/// Commands are framed by `LineFramer` (2048-octet limit), parsed by `CommandParser`, and DATA content
/// is read by `DataContentParser` in strict mode: the content ends at `CRLF.CRLF` only, and a bare
/// LF, bare CR or NUL makes the transaction fail with `550 5.5.2` once the real end of data arrives
/// (as Postfix `smtpd_forbid_bare_newline = reject`), so the sink can never be smuggled into.
///
/// One action is returned per call, so replies to pipelined commands (RFC 2920) leave in command order.
public struct SinkSessionStateMachine: Sendable {
    public enum Action: Sendable, Hashable {
        case reply(SMTPReply)
        /// Send the reply, then close the connection.
        case replyAndClose(SMTPReply)
        /// Drop the content passed on for the current transaction, then send the reply.
        case discardMessage(SMTPReply)
        /// The message is complete and accepted: keep it and answer `250 2.0.0 Ok: queued as ID`
        /// (or `451 4.3.0` if it cannot be kept).
        case deliverMessage(SinkEnvelope)
    }

    /// The mail transaction between MAIL and the end of its content (RFC 5321 §3.3).
    private struct Transaction: Sendable {
        var mailFrom: SMTPPath
        var parameters: [ESMTPParameter]
        var smtpUTF8: Bool
        var recipients: [String] = []
        var usedBDAT = false
        var octets = 0
        var oversized = false
        var chunkScanner = SinkChunkScanner()
    }

    private enum State: Sendable {
        case command
        /// After `354`, until `CRLF.CRLF`.
        case data(DataContentParser)
        /// Inside a BDAT chunk; a refused chunk is still read (RFC 3030 §2) and then answered with
        /// `refusal`.
        case chunk(size: UInt64, remaining: UInt64, last: Bool, refusal: SMTPReply?)
        case closed
    }

    public let configuration: SinkConfiguration
    private var framer: LineFramer
    private var state = State.command
    private var heloName: String?
    private var extended = false
    private var transaction: Transaction?
    private var errors = 0

    public init(configuration: SinkConfiguration) {
        self.configuration = configuration
        self.framer = LineFramer(maxLineOctets: configuration.maxCommandLineOctets)
    }

    /// The `220` the server sends first (RFC 5321 §4.2, §3.1).
    public var greeting: SMTPReply { SinkReplies.greeting(configuration.hostname) }

    /// True once the session has said its last word; later input is ignored.
    public var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// True while message content (DATA or a BDAT chunk) is being read.
    public var isReadingContent: Bool {
        switch state {
        case .data, .chunk: true
        case .command, .closed: false
        }
    }

    /// Consumes input from `buffer` up to the next action, passing accepted message content to
    /// `content`. Returns nil when `buffer` holds no complete unit; the unread rest stays in it.
    public mutating func receive(_ buffer: inout ByteBuffer, content: (ByteBuffer) -> Void) -> Action? {
        while true {
            switch state {
            case .closed:
                buffer.moveReaderIndex(to: buffer.writerIndex)
                return nil
            case .command:
                guard let frame = framer.next(from: &buffer) else { return nil }
                if let action = receiveCommand(frame) { return action }
            case .data, .chunk:
                if let action = receiveContent(&buffer, content: content) { return action }
                if buffer.readableBytes == 0 { return nil }
            }
        }
    }

    /// The idle timer expired (RFC 5321 §4.5.3.2).
    public mutating func receiveIdleTimeout() -> Action {
        state = .closed
        return .replyAndClose(SinkReplies.timeout(configuration.hostname))
    }

    /// The server is stopping (RFC 5321 §3.8: `421` before closing).
    public mutating func receiveShutdown() -> Action {
        state = .closed
        return .replyAndClose(SinkReplies.shuttingDown(configuration.hostname))
    }

    // MARK: - Commands

    /// Answers one command line. Returns nil when the command starts a BDAT chunk that is answered
    /// only after its octets are read.
    public mutating func receiveCommand(_ frame: LineFramer.Frame) -> Action? {
        precondition(!isReadingContent, "commands are not read inside message content")
        if isClosed { return nil }
        if errors >= configuration.maxErrors {
            state = .closed
            return .replyAndClose(SinkReplies.tooManyErrors(configuration.hostname))
        }
        switch frame {
        case .overlong:
            return respond(SinkReplies.lineTooLong)
        case .line(let line, _):
            switch CommandParser.parse(line: line.readableBytesView) {
            case .failure(let error):
                return respond(SinkReplies.commandError(error))
            case .success(let command):
                return receive(command)
            }
        }
    }

    private mutating func receive(_ command: SMTPCommand) -> Action? {
        switch command {
        case .helo(let domain):
            heloName = domain
            extended = false
            return resetTransaction(SinkReplies.helo(configuration.hostname))
        case .ehlo(let domain):
            heloName = domain
            extended = true
            return resetTransaction(SinkReplies.ehlo(configuration.hostname, configuration))
        case .mail(let path, let parameters):
            return receiveMail(path, parameters)
        case .rcpt(let path, let parameters):
            return receiveRcpt(path, parameters)
        case .data:
            return receiveData()
        case .bdat(let size, let last):
            return receiveBdat(size: size, last: last)
        case .rset:
            return resetTransaction(SinkReplies.ok)
        case .noop:
            return .reply(SinkReplies.ok)
        case .quit:
            transaction = nil
            state = .closed
            return .replyAndClose(SinkReplies.bye())
        case .vrfy:
            return .reply(SinkReplies.vrfy)
        case .help:
            return .reply(SinkReplies.help)
        case .auth:
            return respond(SinkReplies.authNotEnabled)
        case .expn, .starttls, .xclient, .xforward:
            return respond(SinkReplies.commandNotImplemented)
        case .lhlo, .unknown:
            return respond(SinkReplies.unrecognized)
        }
    }

    /// `mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF` (RFC 5321 §4.1.1.2).
    private mutating func receiveMail(_ path: SMTPPath, _ parameters: [ESMTPParameter]) -> Action {
        guard heloName != nil else { return respond(SinkReplies.needHelo) }
        guard transaction == nil else { return respond(SinkReplies.nestedMail) }
        guard path.isSyntacticallyValid else { return respond(SinkReplies.badSender) }
        var smtpUTF8 = false
        for parameter in parameters {
            // RFC 5321 §4.1.1.2: parameters exist only in ESMTP, after EHLO.
            guard extended else { return respond(SinkReplies.unsupportedParameter(parameter.keyword)) }
            switch parameter.keyword {
            case "SIZE":
                // RFC 1870 §6: a declared size over the limit is refused before any content.
                switch [parameter].size {
                case .valid(let size) where size <= UInt64(configuration.maxMessageOctets):
                    break
                case .valid, .overflow:
                    return respond(SinkReplies.messageTooBig)
                case .invalid, .absent:
                    return respond(SinkReplies.badSize)
                }
            case "BODY":
                // RFC 6152 §2: 7BIT or 8BITMIME; BINARYMIME is not offered.
                guard let value = parameter.value?.uppercased(), value == "7BIT" || value == "8BITMIME" else {
                    return respond(SinkReplies.badBody)
                }
            case "SMTPUTF8":
                // RFC 6531 §3.4: a keyword without a value.
                guard parameter.value == nil else { return respond(SinkReplies.unsupportedParameter(parameter.keyword)) }
                smtpUTF8 = true
            default:
                return respond(SinkReplies.unsupportedParameter(parameter.keyword))
            }
        }
        guard path.isASCII || smtpUTF8 else { return respond(SinkReplies.needSMTPUTF8) }
        transaction = Transaction(mailFrom: path, parameters: parameters, smtpUTF8: smtpUTF8)
        return .reply(SinkReplies.senderOk)
    }

    /// `rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path ) [SP Rcpt-parameters] CRLF`
    /// (RFC 5321 §4.1.1.3).
    private mutating func receiveRcpt(_ path: SMTPPath, _ parameters: [ESMTPParameter]) -> Action {
        guard var current = transaction else { return respond(SinkReplies.needMail) }
        guard !current.usedBDAT else { return respond(SinkReplies.recipientAfterBDAT) }
        guard path.isSyntacticallyValid else { return respond(SinkReplies.badRecipient) }
        // No RCPT parameter (DSN's NOTIFY, ORCPT) is offered.
        if let parameter = parameters.first { return respond(SinkReplies.unsupportedParameter(parameter.keyword)) }
        guard path.isASCII || current.smtpUTF8 else { return respond(SinkReplies.needSMTPUTF8) }
        // RFC 5321 §4.5.3.1.8: 452 (not 552) for one recipient too many.
        guard current.recipients.count < configuration.maxRecipients else { return respond(SinkReplies.tooManyRecipients) }
        current.recipients.append(path.address)
        transaction = current
        return .reply(SinkReplies.recipientOk)
    }

    /// `data = "DATA" CRLF` (RFC 5321 §4.1.1.4).
    private mutating func receiveData() -> Action {
        guard let current = transaction else { return respond(heloName == nil ? SinkReplies.needHelo : SinkReplies.needMail) }
        guard !current.usedBDAT else { return respond(SinkReplies.dataAfterBDAT) }
        guard !current.recipients.isEmpty else { return respond(SinkReplies.needRecipient) }
        state = .data(DataContentParser(reportsLenientEndCandidates: false))
        return .reply(SinkReplies.startData)
    }

    /// `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF` (RFC 3030 §2). The chunk's octets
    /// follow the command whatever the reply, so a refused chunk is read and dropped.
    private mutating func receiveBdat(size: UInt64, last: Bool) -> Action? {
        var refusal: SMTPReply?
        if transaction == nil {
            refusal = heloName == nil ? SinkReplies.needHelo : SinkReplies.needMail
        } else if transaction?.recipients.isEmpty == true {
            refusal = SinkReplies.needRecipient
        } else if size == 0 && !last {
            refusal = SinkReplies.emptyChunkWithoutLast
        }
        if refusal == nil { transaction?.usedBDAT = true }
        state = .chunk(size: size, remaining: size, last: last, refusal: refusal)
        if size == 0 { return finishChunk(size: size, last: last, refusal: refusal) }
        return nil
    }

    // MARK: - Content

    /// Reads DATA content or a BDAT chunk. Returns nil when more input is needed.
    public mutating func receiveContent(_ buffer: inout ByteBuffer, content: (ByteBuffer) -> Void) -> Action? {
        switch state {
        case .command, .closed:
            preconditionFailure("content is read only after 354 or BDAT")
        case .data(var parser):
            guard var current = transaction else { preconditionFailure("DATA content without a transaction") }
            let limit = configuration.maxMessageOctets
            var octets = current.octets
            var oversized = current.oversized
            var stop = DataContentParser.Stop.lenientEndCandidate
            while stop == .lenientEndCandidate {
                stop = parser.parse(&buffer) { slice in
                    octets += slice.readableBytes
                    // Past the limit nothing more is kept: the verdict is 552 anyway.
                    if octets > limit { oversized = true }
                    if !oversized { content(slice) }
                }
            }
            current.octets = octets
            current.oversized = oversized
            guard stop == .endOfData else {
                transaction = current
                state = .data(parser)
                return nil
            }
            state = .command
            transaction = nil
            let observations = parser.observations
            if observations.bareLF > 0 { return respond(SinkReplies.bareLF, discarding: true) }
            if observations.bareCR > 0 { return respond(SinkReplies.bareCR, discarding: true) }
            if observations.nul > 0 { return respond(SinkReplies.nul, discarding: true) }
            if current.oversized { return respond(SinkReplies.messageFileTooBig, discarding: true) }
            return .deliverMessage(envelope(current, command: "DATA"))
        case .chunk(let size, let remaining, let last, let refusal):
            let take = Int(min(UInt64(buffer.readableBytes), remaining))
            guard take > 0, let slice = buffer.readSlice(length: take) else { return nil }
            if refusal == nil, var current = transaction {
                current.chunkScanner.scan(slice)
                current.octets += take
                if current.octets > configuration.maxMessageOctets { current.oversized = true }
                if !current.oversized { content(slice) }
                transaction = current
            }
            let left = remaining - UInt64(take)
            state = .chunk(size: size, remaining: left, last: last, refusal: refusal)
            return left == 0 ? finishChunk(size: size, last: last, refusal: refusal) : nil
        }
    }

    private mutating func finishChunk(size: UInt64, last: Bool, refusal: SMTPReply?) -> Action {
        state = .command
        if let refusal { return respond(refusal) }
        guard var current = transaction else { preconditionFailure("BDAT chunk without a transaction") }
        if last { current.chunkScanner.finish() }
        // RFC 3030 §2: a failed chunk fails the transaction; the client must not send more chunks.
        let scanner = current.chunkScanner
        let failure: SMTPReply? =
            if scanner.bareLF > 0 { SinkReplies.bareLF }
            else if scanner.bareCR > 0 { SinkReplies.bareCR }
            else if scanner.nul > 0 { SinkReplies.nul }
            else if current.oversized { SinkReplies.messageFileTooBig }
            else { nil }
        if let failure {
            transaction = nil
            return respond(failure, discarding: true)
        }
        guard last else {
            transaction = current
            return .reply(SinkReplies.chunkReceived(size))
        }
        transaction = nil
        return .deliverMessage(envelope(current, command: "BDAT"))
    }

    // MARK: - Helpers

    private func envelope(_ transaction: Transaction, command: String) -> SinkEnvelope {
        SinkEnvelope(
            helo: heloName,
            mailFrom: transaction.mailFrom.address,
            mailParameters: transaction.parameters,
            recipients: transaction.recipients,
            command: command,
            size: transaction.octets
        )
    }

    /// Ends any transaction (RFC 5321 §4.1.1.5: RSET, HELO and EHLO clear the buffers).
    private mutating func resetTransaction(_ reply: SMTPReply) -> Action {
        let hadTransaction = transaction != nil
        transaction = nil
        return hadTransaction ? .discardMessage(reply) : .reply(reply)
    }

    /// A reply that counts towards the error limit when it is a 4xx or 5xx.
    private mutating func respond(_ reply: SMTPReply, discarding: Bool = false) -> Action {
        if reply.code >= 400 { errors += 1 }
        return discarding ? .discardMessage(reply) : .reply(reply)
    }
}
