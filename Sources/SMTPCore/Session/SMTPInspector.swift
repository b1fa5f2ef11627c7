import NIOCore

/// A passive observer of one SMTP session: fed both directions' bytes in time order, it produces
/// typed events (commands, replies paired with the commands they answer, message content, TLS,
/// anomalies) whatever the chunk boundaries.
///
/// It never decides what the server "should" have done: the server's replies decide, and where the
/// peers disagree the disagreement is an anomaly (README, "How pcap mode reads a session"). Where the
/// client's bytes are ambiguous (a lenient end of data, SMTP smuggling), both readings are followed
/// until the replies show which one the server took.
public struct SMTPInspector: Sendable {
    public enum Side: Sendable, Hashable {
        case client
        case server
    }

    public var limits: SMTPLimits

    // MARK: State

    private enum ClientMode: Sendable {
        case command
        /// Client bytes are held until the reply to this command says how to read them.
        case awaitingReply(id: Int, Awaiting)
        case saslResponse(authID: Int)
        case dataContent(id: Int)
        case bdatChunk(id: Int, remaining: UInt64, last: Bool)
        /// After a 220 to STARTTLS, until the first bytes show TLS or plaintext.
        case tlsProbe
        case encrypted
        /// Mid-stream start or after a gap: skip to a line that is clearly a command.
        case resync
    }

    private enum Awaiting: Sendable, Hashable {
        case data
        case starttls
        case auth
    }

    private enum ServerMode: Sendable {
        case replies
        case tlsProbe
        case encrypted
        /// After a gap: drop to the next line boundary.
        case resync
    }

    private var clientMode: ClientMode
    private var serverMode: ServerMode = .replies
    private var clientBuffer = ByteBuffer()
    private var serverBuffer = ByteBuffer()
    private var clientFramer: LineFramer
    private var serverFramer: LineFramer
    private var replyAssembler: ReplyAssembler
    private var pending: PendingReplies<Void>
    private var nextID = 1
    private var dataParser = DataContentParser()
    /// Content slices of one `dataParser.parse` call, kept to reuse its storage.
    private var contentSlices: [ByteBuffer] = []
    private var messageComplete = true
    private var messageOctets = 0
    private var bdatMessageOpen = false
    private var sasl: SASLExchange?
    private var identityReported = false
    private var authSeen = false
    private var tlsObserver: TLSHandshakeObserver?
    private var pipeliningAdvertised = false
    private var sawEHLOReply = false
    private var serverSeen = false
    /// The session opened with a ClientHello on a port not known for implicit TLS, and whether
    /// the server's first bytes were TLS too.
    private var tlsDetected = false
    /// The client sent plaintext after the 220 to STARTTLS (see `.tlsProbe`).
    private var clientWentPlaintext = false
    /// TLS began with a 220 to STARTTLS, not at the connection's start.
    private var tlsStartedByReply = false
    /// The client's first bytes of an implicit-TLS session were TLS and went to the observer.
    private var clientTLSBytesSeen = false
    private var tlsAnsweredInKind = false
    /// False until the inspector knows where commands start (mid-stream captures).
    private var clientSynchronized: Bool
    private var serverSynchronized: Bool
    private var reportedAnomalies = Set<SMTPAnomalyKind>()
    private var serverGapPending = false
    private var now = Timestamp(microsecondsSinceEpoch: 0)

    private var events: [ConversationEvent] = []
    /// While an alternative reading runs, events from this index on are not handed out yet.
    private var heldFrom: Int?
    /// The lenient reading of an ambiguous end of data, fed the same input as this one.
    private var alternatives: [SMTPInspector] = []
    private var forksAllowed: Bool
    private var octetsSinceFork = 0
    /// Replies that did not fit: the measure by which two readings are compared.
    private(set) var discord = 0

    /// - Parameters:
    ///   - startsAtBeginning: false when the capture begins mid-session (no greeting expected).
    ///   - implicitTLS: true on an implicit-TLS port (RFC 8314), where TLS starts at once.
    public init(limits: SMTPLimits = SMTPLimits(), startsAtBeginning: Bool = true, implicitTLS: Bool = false) {
        self.limits = limits
        self.clientFramer = LineFramer(maxLineOctets: max(limits.maxAuthLineOctets, limits.maxCommandLineOctets))
        self.serverFramer = LineFramer(maxLineOctets: limits.maxReplyLineOctets)
        self.replyAssembler = ReplyAssembler(maxLines: limits.maxReplyLines)
        self.clientSynchronized = startsAtBeginning
        self.serverSynchronized = startsAtBeginning
        self.forksAllowed = true
        self.pending = PendingReplies(capacity: limits.maxPendingCommands)
        if implicitTLS {
            clientMode = .encrypted
            serverMode = .encrypted
            tlsObserver = TLSHandshakeObserver()
        } else {
            clientMode = startsAtBeginning ? .command : .resync
            serverMode = startsAtBeginning ? .replies : .resync
            if startsAtBeginning { pending.append(.greeting, ()) }
        }
    }

    // MARK: Input

    public mutating func receiveClientBytes(_ bytes: ByteBuffer, at time: Timestamp) {
        forEachAlternative { $0.receiveClientBytes(bytes, at: time) }
        octetsSinceFork += alternatives.isEmpty ? 0 : bytes.readableBytes
        now = time
        Self.append(bytes, to: &clientBuffer)
        processClient()
        decideAlternativeIfDue()
    }

    public mutating func receiveServerBytes(_ bytes: ByteBuffer, at time: Timestamp) {
        forEachAlternative { $0.receiveServerBytes(bytes, at: time) }
        octetsSinceFork += alternatives.isEmpty ? 0 : bytes.readableBytes
        now = time
        serverSeen = true
        Self.append(bytes, to: &serverBuffer)
        processServer()
        decideAlternativeIfDue()
    }

    /// Adds received bytes to a side's buffer; an empty buffer takes them over without a copy.
    private static func append(_ bytes: ByteBuffer, to buffer: inout ByteBuffer) {
        if buffer.readableBytes == 0 {
            buffer = bytes
        } else {
            var bytes = bytes
            buffer.writeBuffer(&bytes)
        }
    }

    /// The capture lost `octets` (when known) of one direction.
    public mutating func receiveGap(from side: Side, octets: UInt64?, at time: Timestamp) {
        forEachAlternative { $0.receiveGap(from: side, octets: octets, at: time) }
        now = time
        emit(.anomaly(SMTPAnomaly(.captureGap, "\(octets.map { "\($0) octets" } ?? "octets") lost from the \(side == .client ? "client" : "server")")))
        switch side {
        case .client:
            switch clientMode {
            case .dataContent:
                messageComplete = false
            case .bdatChunk(let id, let remaining, let last):
                messageComplete = false
                if let octets, octets < remaining {
                    clientMode = .bdatChunk(id: id, remaining: remaining - octets, last: last)
                } else {
                    finishMessage(commandID: id, complete: false)
                    clientMode = .resync
                }
            case .encrypted, .tlsProbe:
                break
            case .command, .awaitingReply, .saslResponse, .resync:
                clientBuffer.clear()
                clientFramer = LineFramer(maxLineOctets: clientFramer.maxLineOctets)
                clientMode = .resync
            }
        case .server:
            if case .encrypted = serverMode { return }
            serverBuffer.clear()
            serverFramer = LineFramer(maxLineOctets: serverFramer.maxLineOctets)
            replyAssembler.reset()
            serverMode = .resync
            serverGapPending = true
        }
    }

    /// One side closed its direction (FIN) or reset the connection: a TLS handshake still open
    /// then failed.
    public mutating func receiveClose(from side: Side, at time: Timestamp) {
        forEachAlternative { $0.receiveClose(from: side, at: time) }
        now = time
        tlsObserver?.receiveClose(from: side == .client ? .client : .server)
    }

    /// The session ended (FIN, RST, timeout or end of capture): settle what is still open.
    public mutating func finish(at time: Timestamp) {
        now = time
        if !alternatives.isEmpty { decideAlternative() }
        if case .awaitingReply(let id, .data) = clientMode, clientBuffer.readableBytes > 0 {
            // The reply to DATA was never seen; if the held bytes end like a message, read them as one.
            if clientBuffer.readableBytesView.lastRange(of: "\r\n.\r\n") != nil {
                beginDataContent(commandID: id)
                processClient()
            }
        }
        switch clientMode {
        case .dataContent(let id), .bdatChunk(let id, _, _):
            abandonMessage(commandID: id)
        default:
            if bdatMessageOpen, let id = lastBDATID { abandonMessage(commandID: id) }
        }
        if clientBuffer.readableBytes > 0, case .encrypted = clientMode {} else if clientBuffer.readableBytes > 0 {
            emit(.anomaly(SMTPAnomaly(.unparsedBytes, "\(clientBuffer.readableBytes) client octets without a line end at the end")))
        }
        if let tlsObserver {
            emit(.tlsSummary(tlsObserver.summary))
        }
        clientBuffer.clear()
        serverBuffer.clear()
    }

    /// Events ready to be handed out, in order.
    public mutating func drainEvents() -> [ConversationEvent] {
        if heldFrom == nil {
            // The common case: hand over the whole array instead of copying it out.
            guard !events.isEmpty else { return [] }
            var ready: [ConversationEvent] = []
            swap(&ready, &events)
            events.reserveCapacity(4)
            return ready
        }
        let end = heldFrom ?? events.count
        guard end > 0 else { return [] }
        let ready = Array(events[..<end])
        events.removeFirst(end)
        if heldFrom != nil { heldFrom = 0 }
        return ready
    }

    // MARK: Client side

    private var lastBDATID: Int?

    private mutating func processClient() {
        while clientBuffer.readableBytes > 0 {
            if opensWithTLS() == nil { return }
            switch clientMode {
            case .command, .saslResponse, .resync:
                guard let frame = clientFramer.next(from: &clientBuffer) else {
                    compactClientBuffer()
                    return
                }
                handleClientFrame(frame)
            case .awaitingReply:
                if clientBuffer.readableBytes > limits.maxHeldClientOctets {
                    // The reply that would say how to read these bytes is not coming: read them as
                    // commands and say so.
                    emit(.anomaly(SMTPAnomaly(.unparsedBytes, "over \(limits.maxHeldClientOctets) client octets sent before the reply they depended on")))
                    clientMode = .command
                    continue
                }
                return
            case .dataContent(let id):
                let stop = dataParser.parse(&clientBuffer, into: &contentSlices)
                for content in contentSlices {
                    messageOctets += content.readableBytes
                    emit(.messageContent(content))
                }
                contentSlices.removeAll(keepingCapacity: true)
                switch stop {
                case .needMoreBytes:
                    compactClientBuffer()
                    return
                case .endOfData:
                    finishMessage(commandID: id, complete: messageComplete)
                    pushPending(.endOfData(id: id))
                    clientMode = .command
                case .lenientEndCandidate:
                    forkLenientReading(dataCommandID: id)
                }
            case .bdatChunk(let id, let remaining, let last):
                let take = Int(min(UInt64(clientBuffer.readableBytes), remaining))
                if take > 0, let chunk = clientBuffer.readSlice(length: take) {
                    messageOctets += take
                    emit(.messageContent(chunk))
                }
                let left = remaining - UInt64(take)
                if left > 0 {
                    clientMode = .bdatChunk(id: id, remaining: left, last: last)
                    compactClientBuffer()
                    return
                }
                pushPending(.bdatChunk(id: id, last: last))
                if last { finishMessage(commandID: id, complete: messageComplete) }
                clientMode = .command
            case .tlsProbe:
                guard let looksLikeTLS = TLSHandshakeObserver.looksLikeTLSRecord(clientBuffer) else { return }
                if looksLikeTLS {
                    clientMode = .encrypted
                    if tlsObserver == nil { tlsObserver = TLSHandshakeObserver() }
                } else {
                    emitOnce(.starttlsStripped, "the client went on in plaintext after the 220 to STARTTLS: a decrypted capture, or TLS stripped between the peers")
                    clientWentPlaintext = true
                    clientMode = .command
                }
            case .encrypted:
                if tlsObserver == nil {
                    if let looksLikeTLS = TLSHandshakeObserver.looksLikeTLSRecord(clientBuffer), !looksLikeTLS {
                        clientMode = .command
                        continue
                    }
                    tlsObserver = TLSHandshakeObserver()
                }
                if !clientTLSBytesSeen, !tlsStartedByReply {
                    // The first bytes of an implicit-TLS session: plaintext SMTP on that port means
                    // no handshake was tried, so none failed.
                    guard let looksLikeTLS = TLSHandshakeObserver.looksLikeTLSRecord(clientBuffer) else { return }
                    if !looksLikeTLS {
                        tlsObserver = nil
                        clientMode = .command
                        continue
                    }
                }
                clientTLSBytesSeen = true
                tlsObserver?.receiveFromClient(clientBuffer)
                clientBuffer.clear()
                return
            }
        }
        compactClientBuffer()
    }

    /// Implicit TLS on a port not known for it (RFC 8314 §3.3): a server never greets a TLS client
    /// in plaintext, so a ClientHello before any reply and any command means the whole session is
    /// TLS. Returns nil while the first bytes cannot tell yet, true when the session switched.
    private mutating func opensWithTLS() -> Bool? {
        guard nextID == 1, !serverSeen, tlsObserver == nil, case .command = clientMode,
            let first = clientBuffer.readableBytesView.first,
            first == 0x16 || first & 0x80 != 0
        else { return false }
        guard let looksLikeTLS = TLSHandshakeObserver.looksLikeTLSRecord(clientBuffer) else { return nil }
        guard looksLikeTLS else { return false }
        pending.removeAll()
        tlsDetected = true
        clientMode = .encrypted
        serverMode = .encrypted
        tlsObserver = TLSHandshakeObserver()
        emit(.tlsStarted(implicit: true))
        return true
    }

    private mutating func compactClientBuffer() {
        if clientBuffer.readerIndex > 64 * 1024 { clientBuffer.discardReadBytes() }
    }

    private mutating func handleClientFrame(_ frame: LineFramer.Frame) {
        let line: ByteBuffer
        switch frame {
        case .line(let bytes, let terminator):
            line = bytes
            if terminator == .bareLF, clientSynchronized, case .command = clientMode {
                emitOnce(.bareLFInCommand, "a command line ended in a bare LF")
            }
            if line.readableBytes + 2 > limits.maxCommandLineOctets, case .command = clientMode {
                emit(.anomaly(SMTPAnomaly(.overlongLine, "command line of \(line.readableBytes + 2) octets (limit \(limits.maxCommandLineOctets))")))
            }
        case .overlong(let prefix, let total):
            emit(.anomaly(SMTPAnomaly(.overlongLine, "client line of \(total) octets; only its first \(prefix.readableBytes) kept")))
            line = prefix
        }

        switch clientMode {
        case .saslResponse(let authID):
            let response = SASLResponse(base64Text: String(decoding: line.readableBytesView, as: UTF8.self))
            sasl?.receiveResponse(response)
            emit(.saslResponse(authID: authID))
            reportIdentity(authID: authID)
            pushPending(.saslResponse(id: authID))
            clientMode = .awaitingReply(id: authID, .auth)
            return
        case .resync:
            let parsed = CommandParser.parse(line: line.readableBytesView)
            guard case .success(let command) = parsed, !isUnknown(command) else {
                if line.readableBytesView.elementsEqual(".".utf8) {
                    // The end of a message whose start the capture did not see: its reply follows.
                    pushPending(.unknown)
                }
                return
            }
            clientSynchronized = true
            clientMode = .command
            handleCommand(parsed, line: line)
        default:
            handleCommand(CommandParser.parse(line: line.readableBytesView), line: line)
        }
    }

    /// A command of a known verb (its arguments may still be refused).
    private static func isCommand(_ parsed: Result<SMTPCommand, SMTPCommandError>) -> Bool {
        guard case .success(let command) = parsed else { return false }
        if case .unknown = command { return false }
        return true
    }

    private func isUnknown(_ command: SMTPCommand) -> Bool {
        if case .unknown = command { return true }
        return false
    }

    private mutating func handleCommand(_ parsed: Result<SMTPCommand, SMTPCommandError>, line: ByteBuffer) {
        let id = nextID
        nextID += 1
        // The greeting is always the first reply owed, so only the head can be it: scanning the
        // whole queue for each command made 10 000 pipelined commands quadratic (CaptureFuzzer).
        if case .greeting? = pending.first?.awaited {
            emitOnce(.commandBeforeGreeting, "the client spoke before the server's greeting")
        } else if !pending.isEmpty, sawEHLOReply, !pipeliningAdvertised {
            emitOnce(.pipeliningNotAdvertised, "the client sent a command before the previous reply, without PIPELINING")
        }
        if !Self.isCommand(parsed), !Self.isText(line.readableBytesView) {
            // Binary (another protocol, ciphertext, a broken client): its bytes say nothing a
            // reader can use and must not reach a terminal; what it was is said instead.
            let text = Self.notSMTP(line.readableBytes)
            emit(.anomaly(SMTPAnomaly(.malformedCommand, "a client line of " + text.dropFirst().dropLast())))
            switch parsed {
            case .failure(let error):
                emit(.invalidCommand(id: id, error, line: text))
                pushPending(.invalidCommand(id: id, verb: nil))
            case .success(let command):
                emit(.command(id: id, command, line: text))
                pushPending(.command(id: id, command))
            }
            return
        }
        switch parsed {
        case .failure(let error):
            let text = String(decoding: line.readableBytesView, as: UTF8.self)
            emit(.anomaly(SMTPAnomaly(.malformedCommand, "\(error.code) \(error.text)")))
            emit(.invalidCommand(id: id, error, line: Self.redactIfAuth(text)))
            pushPending(.invalidCommand(id: id, verb: error.verb))
        case .success(let command):
            emit(.command(id: id, command, line: redactedLine(of: command)))
            // A BDAT is answered once, after its chunk (RFC 3030 §2): its pending entry is queued
            // when the chunk has been read.
            if case .bdat = command {} else { pushPending(.command(id: id, command)) }
            switch command {
            case .data:
                clientMode = .awaitingReply(id: id, .data)
            case .bdat(let size, let last):
                if !bdatMessageOpen {
                    bdatMessageOpen = true
                    messageOctets = 0
                    messageComplete = true
                    emit(.messageBegin(commandID: id, .bdat))
                }
                lastBDATID = id
                clientMode = size > 0 ? .bdatChunk(id: id, remaining: size, last: last) : .command
                if size == 0 {
                    pushPending(.bdatChunk(id: id, last: last))
                    // `BDAT 0 LAST` ends the message with no further octets (RFC 3030 §2).
                    if last { finishMessage(commandID: id, complete: messageComplete) }
                }
            case .starttls:
                clientMode = .awaitingReply(id: id, .starttls)
            case .auth(let mechanism, let initial):
                var exchange = SASLExchange(mechanism: mechanism)
                if let initial { exchange.receiveResponse(initial) }
                sasl = exchange
                authSeen = true
                identityReported = false
                reportIdentity(authID: id)
                clientMode = .awaitingReply(id: id, .auth)
            case .rset, .helo, .ehlo, .lhlo:
                if bdatMessageOpen, let bdatID = lastBDATID { finishMessage(commandID: bdatID, complete: false) }
            default:
                break
            }
        }
        if !serverSeen, case .awaitingReply(let waitingID, let awaiting) = clientMode {
            // No server bytes in this capture so far: the server side may be missing altogether.
            // Read on as a successful exchange would go; outcomes stay unknown.
            switch awaiting {
            case .data: beginDataContent(commandID: waitingID)
            case .auth: clientMode = .saslResponse(authID: waitingID)
            case .starttls: clientMode = .tlsProbe
            }
        }
    }

    /// A SASL response read as a command (the capture lost the reply that would have said it was
    /// one) must not reach a transcript: after AUTH, a line that is one base64 token is redacted.
    private func redactedLine(of command: SMTPCommand) -> String {
        if authSeen, case .unknown(let verb, let arguments) = command, arguments.isEmpty, verb.utf8.count >= 4,
            Base64.decode(verb) != nil
        {
            return "[redacted]"
        }
        return command.redactedLine
    }

    /// The placeholder for a line of `octets` octets that is not SMTP text.
    public static func notSMTP(_ octets: Int) -> String {
        "[\(octets) octet\(octets == 1 ? "" : "s") that \(octets == 1 ? "is" : "are") not SMTP]"
    }

    /// Whether a line is text a person can read: valid UTF-8 (RFC 6531 allows it in SMTPUTF8)
    /// without control characters other than HT.
    static func isText(_ bytes: ByteBufferView) -> Bool {
        var ascii = true
        for byte in bytes {
            if byte < 0x20 && byte != 0x09 || byte == 0x7F { return false }
            if byte >= 0x80 { ascii = false }
        }
        if ascii { return true }
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if (0x80...0x9F).contains(scalar.value) { return false }
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    private static func redactIfAuth(_ line: String) -> String {
        let words = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard let verb = words.first, verb.uppercased() == "AUTH" else { return line }
        return words.count > 2 ? "\(words[0]) \(words[1]) [redacted]" : line
    }

    private mutating func reportIdentity(authID: Int) {
        guard !identityReported, let exchange = sasl, let user = exchange.user else { return }
        identityReported = true
        emit(.authIdentity(authID: authID, mechanism: exchange.mechanism, user: user))
    }

    private mutating func beginDataContent(commandID: Int) {
        clientMode = .dataContent(id: commandID)
        dataParser = DataContentParser(reportsLenientEndCandidates: forksAllowed)
        messageComplete = true
        messageOctets = 0
        emit(.messageBegin(commandID: commandID, .data))
    }

    private mutating func finishMessage(commandID: Int, complete: Bool) {
        let observations: DataContentParser.Observations
        if case .dataContent = clientMode {
            observations = dataParser.observations
        } else {
            observations = DataContentParser.Observations()
        }
        bdatMessageOpen = false
        emit(.messageEnd(commandID: commandID, octets: messageOctets, complete: complete, observations))
        if observations.bareLF > 0 {
            emit(.anomaly(SMTPAnomaly(.bareLFInData, "\(observations.bareLF) bare LF, first at content octet \(observations.firstBareLFOffset ?? 0)")))
        }
        if observations.bareCR > 0 {
            emit(.anomaly(SMTPAnomaly(.bareCRInData, "\(observations.bareCR) bare CR, first at content octet \(observations.firstBareCROffset ?? 0)")))
        }
        if observations.nul > 0 {
            emit(.anomaly(SMTPAnomaly(.nulInData, "\(observations.nul) NUL, first at content octet \(observations.firstNULOffset ?? 0)")))
        }
        if observations.overlongLines > 0 {
            emit(.anomaly(SMTPAnomaly(.overlongLine, "\(observations.overlongLines) message lines over 1000 octets (longest \(observations.longestLine))")))
        }
    }

    private mutating func abandonMessage(commandID: Int) {
        bdatMessageOpen = false
        emit(.messageAbandoned(commandID: commandID, octets: messageOctets))
    }

    private mutating func pushPending(_ answered: AwaitedReply) {
        pending.append(answered, ())
    }

    // MARK: Server side

    private mutating func processServer() {
        while serverBuffer.readableBytes > 0 {
            switch serverMode {
            case .replies, .resync:
                guard let frame = serverFramer.next(from: &serverBuffer) else {
                    if serverBuffer.readerIndex > 64 * 1024 { serverBuffer.discardReadBytes() }
                    return
                }
                handleServerFrame(frame)
            case .tlsProbe:
                guard let looksLikeTLS = TLSHandshakeObserver.looksLikeTLSRecord(serverBuffer) else { return }
                if looksLikeTLS {
                    serverMode = .encrypted
                    if tlsObserver == nil { tlsObserver = TLSHandshakeObserver() }
                } else if clientWentPlaintext {
                    // Both peers went on in plaintext: no handshake was attempted, so none failed.
                    // A decrypted capture looks like this (and so does stripping by a machine in
                    // the middle, already flagged on the client's side).
                    tlsObserver = nil
                    serverMode = .replies
                } else {
                    emitOnce(.plaintextAfterSTARTTLS, "the server went on in plaintext after its 220 to STARTTLS")
                    serverMode = .replies
                }
            case .encrypted:
                if tlsObserver == nil {
                    // Implicit-TLS port, but the server greets in plaintext (suricata's
                    // smtp-tls-protodetect): read its replies, and let TLS state come from the client.
                    if let looksLikeTLS = TLSHandshakeObserver.looksLikeTLSRecord(serverBuffer), !looksLikeTLS {
                        serverMode = .replies
                        continue
                    }
                    tlsObserver = TLSHandshakeObserver()
                }
                if let tls = tlsObserver, !tls.summary.clientHelloSeen, let looksLikeTLS = TLSHandshakeObserver.looksLikeTLSRecord(serverBuffer), !looksLikeTLS {
                    // A server greeting in plaintext on an implicit-TLS port: the greeting is owed.
                    if nextID == 1, pending.isEmpty, !tlsStartedByReply { pending.append(.greeting, ()) }
                    serverMode = .replies
                    continue
                }
                if tlsDetected, !tlsAnsweredInKind {
                    guard let looksLikeTLS = TLSHandshakeObserver.looksLikeTLSRecord(serverBuffer) else { return }
                    if !looksLikeTLS {
                        // The client opened with TLS but the server speaks SMTP in plaintext: read
                        // its replies, and the client's records as the lines the server saw.
                        emit(.anomaly(SMTPAnomaly(.unexpectedReply, "the client opened with a TLS ClientHello; the server answered in plaintext")))
                        tlsDetected = false
                        serverMode = .replies
                        clientMode = .command
                        pending.append(.greeting, ())
                        continue
                    }
                    tlsAnsweredInKind = true
                }
                tlsObserver?.receiveFromServer(serverBuffer)
                serverBuffer.clear()
                return
            }
        }
        if serverBuffer.readerIndex > 64 * 1024 { serverBuffer.discardReadBytes() }
    }

    private mutating func handleServerFrame(_ frame: LineFramer.Frame) {
        let line: ByteBuffer
        switch frame {
        case .line(let bytes, _):
            line = bytes
        case .overlong(let prefix, let total):
            emit(.anomaly(SMTPAnomaly(.overlongLine, "server line of \(total) octets; only its first \(prefix.readableBytes) kept")))
            line = prefix
        }
        if case .resync = serverMode {
            // After a gap or at a mid-stream start, the first complete line may be the tail of a
            // reply; take lines from the next one that looks like a reply line.
            guard line.readableBytes >= 3, line.readableBytesView.prefix(3).allSatisfy({ asciiDigit($0) != nil }) else { return }
            serverMode = .replies
        }
        switch replyAssembler.receive(line: line) {
        case nil:
            return
        case .malformed(let text):
            discord += 1
            emit(.anomaly(SMTPAnomaly(.malformedReply, String(text.prefix(200)))))
        case .reply(let reply):
            if reply.hasMixedCodes {
                emit(.anomaly(SMTPAnomaly(.malformedReply, "multi-line reply with mixed codes, final \(reply.code)")))
            }
            handleReply(reply)
        }
    }

    private mutating func handleReply(_ reply: SMTPReply) {
        var answered = takeAnswered(for: reply)
        if case .unknown = answered, serverSynchronized, clientSynchronized, reply.code != 421 {
            discord += 1
            emit(.anomaly(SMTPAnomaly(.replyWithoutCommand, "\(reply.code) \(reply.lines.first ?? "")")))
        }
        if !serverSynchronized { serverSynchronized = true }

        // The server ended a message the client had not finished by the strict rule: follow the server.
        if case .endOfData(let id) = answered, case .dataContent(let contentID) = clientMode, contentID == id {
            answered = .endOfData(id: id)
        }
        if case .command(let id, .data) = answered, case .dataContent(let contentID) = clientMode, contentID == id, reply.codeClass != 3 {
            // A late non-354 reply to DATA: the content was never taken (speculative read of a
            // one-sided start); nothing to undo beyond the mode.
            clientMode = .command
        }
        emit(.reply(reply, answering: answered))
        applyEffects(of: reply, answering: answered)
    }

    /// Pairs a reply with the oldest command awaiting one, realigning after a lost stretch of
    /// server bytes by skipping commands whose replies the capture lost.
    private mutating func takeAnswered(for reply: SMTPReply) -> AwaitedReply {
        if pending.isEmpty {
            if case .dataContent(let id) = clientMode, serverSynchronized {
                // The server ended the message here: after a gap in the content, at the end of data
                // the capture lost (its capture_gap says so); otherwise before the strict end of data.
                if messageComplete {
                    discord += 1
                    emit(.anomaly(SMTPAnomaly(.prematureDataReply, "the server answered \(reply.code) before the client's end of data")))
                }
                finishMessage(commandID: id, complete: messageComplete)
                clientMode = .command
                return .endOfData(id: id)
            }
            return .unknown
        }
        if serverGapPending {
            serverGapPending = false
            pending.realign(toReplyCode: reply.code)
        }
        let head = pending.take()!.awaited
        if !head.accepts(reply.code) {
            discord += 1
            emit(.anomaly(SMTPAnomaly(.unexpectedReply, "\(reply.code) does not answer \(head.description)")))
        }
        return head
    }

    private mutating func applyEffects(of reply: SMTPReply, answering answered: AwaitedReply) {
        switch ConversationTurn(reply, answering: answered) {
        case .greeted(let extensions):
            sawEHLOReply = true
            pipeliningAdvertised = extensions.offers(.pipelining)
        case .messageContent:
            guard case .command(let id, _) = answered, case .awaitingReply(id, .data) = clientMode else { return }
            beginDataContent(commandID: id)
            processClient()
        case .tlsHandshake:
            if case .command(let id, _) = answered, case .awaitingReply(id, .starttls) = clientMode, clientBuffer.readableBytes > 0,
                TLSHandshakeObserver.looksLikeTLSRecord(clientBuffer) != true
            {
                // Sent before the 220, so read by the server before TLS: the CVE-2011-0411 injection.
                emit(.anomaly(SMTPAnomaly(.plaintextAfterSTARTTLS, "\(clientBuffer.readableBytes) client octets pipelined after STARTTLS")))
                clientBuffer.clear()
            }
            emit(.tlsStarted(implicit: false))
            tlsStartedByReply = true
            clientWentPlaintext = false
            clientMode = .tlsProbe
            serverMode = .tlsProbe
            tlsObserver = TLSHandshakeObserver()
            sawEHLOReply = false
            pipeliningAdvertised = false
            processClient()
        case .saslChallenge(let challenge):
            guard let authID = answered.saslAuthID, case .awaitingReply(authID, .auth) = clientMode else { return }
            sasl?.receiveChallenge(challenge)
            clientMode = .saslResponse(authID: authID)
            processClient()
        case .messageFailed:
            if case .bdatChunk(let id, _) = answered, bdatMessageOpen { finishMessage(commandID: id, complete: true) }
        case .dataRefused, .tlsRefused, .saslEnded, .closing, .none:
            stopAwaiting(answered, after: reply)
        }
    }

    /// A reply that ends the wait of a DATA, STARTTLS or AUTH without the turn it could have made:
    /// what the client sent meanwhile is read as commands.
    private mutating func stopAwaiting(_ answered: AwaitedReply, after reply: SMTPReply) {
        switch answered {
        case .command(let id, .data):
            guard case .awaitingReply(id, .data) = clientMode else { return }
            clientMode = .command
        case .command(_, .starttls):
            emit(.anomaly(SMTPAnomaly(.starttlsStripped, "STARTTLS answered \(reply.code) \(reply.lines.first ?? "")")))
            if case .awaitingReply = clientMode { clientMode = .command }
        case .command(let id, .auth), .saslResponse(let id):
            guard case .awaitingReply(id, .auth) = clientMode else { return }
            clientMode = .command
            sasl = nil
        default:
            return
        }
        processClient()
    }

    // MARK: Following the server on an ambiguous end of data

    /// The content just passed a lenient end-of-data sequence. Run a second reading in which the
    /// message ended there, feed both the same input, and keep the one the replies agree with.
    private mutating func forkLenientReading(dataCommandID id: Int) {
        guard forksAllowed, alternatives.isEmpty else { return }
        var lenient = self
        lenient.events = []
        lenient.heldFrom = nil
        lenient.forksAllowed = false
        lenient.discord = 0
        lenient.emit(.anomaly(SMTPAnomaly(.smugglingSuspected, "the server's replies show it ended the message at a non-standard end-of-data sequence (content octet \(messageOctets)); the transactions the server saw after it are recorded")))
        lenient.finishMessage(commandID: id, complete: messageComplete)
        lenient.pushPending(.endOfData(id: id))
        lenient.clientMode = .command
        alternatives = [lenient]
        heldFrom = events.count
        discord = 0
        octetsSinceFork = 0
        // The lenient reading goes on with the bytes left in the buffer.
        alternatives[0].processClient()
    }

    private mutating func forEachAlternative(_ body: (inout SMTPInspector) -> Void) {
        guard !alternatives.isEmpty else { return }
        body(&alternatives[0])
    }

    private mutating func decideAlternativeIfDue() {
        guard !alternatives.isEmpty else { return }
        let gap = discord - alternatives[0].discord
        if octetsSinceFork > limits.maxSmugglingRetainedOctets || gap >= 2 || gap <= -2 {
            decideAlternative()
        }
    }

    private mutating func decideAlternative() {
        guard var lenient = alternatives.first else { return }
        alternatives = []
        let committed = Array(events[..<(heldFrom ?? events.count)])
        if lenient.discord < discord {
            lenient.events = committed + lenient.events
            lenient.heldFrom = nil
            lenient.discord += discord
            lenient.forksAllowed = true
            self = lenient
        } else {
            heldFrom = nil
        }
    }

    // MARK: Events

    private mutating func emit(_ kind: ConversationEvent.Kind) {
        events.append(ConversationEvent(time: now, kind: kind))
    }

    private mutating func emitOnce(_ kind: SMTPAnomalyKind, _ detail: String) {
        guard reportedAnomalies.insert(kind).inserted else { return }
        emit(.anomaly(SMTPAnomaly(kind, detail)))
    }
}

extension ByteBufferView {
    fileprivate func lastRange(of text: String) -> Range<Int>? {
        let needle = Array(text.utf8)
        guard count >= needle.count else { return nil }
        var index = endIndex - needle.count
        while index >= startIndex {
            if self[index..<(index + needle.count)].elementsEqual(needle) { return index..<(index + needle.count) }
            index -= 1
        }
        return nil
    }
}
