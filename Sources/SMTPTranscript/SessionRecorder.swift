import MailMessage
import NIOCore
import SMTPCore

/// Builds a `SessionRecord` from the SMTP core's events: transactions and their outcomes, the
/// event list, message summaries, TLS and AUTH facts (README "Transcript schema").
///
/// The same recorder serves every source of events, so a session reads the same whether it was
/// relayed or captured.
public struct SessionRecorder: Sendable {
    public struct Options: Sendable {
        /// Events kept per session; later ones are counted in an anomaly, not kept.
        public var maxEvents: Int = 10_000
        public var messageLimits = MessageLimits()
        /// With `--redact-users`: replaces AUTH identities by a keyed hash.
        public var userRedactor: UserRedactor?
        /// Keep each whole message's reading (`messageSummaries`) for rules that judge messages:
        /// every header field and the decoded text, which a record does not keep.
        public var keepsMessageSummaries = false
        /// Octets of header fields and text kept that way per session; a message past it keeps
        /// only what its record says, and rules that read more are not judged on it.
        public var maxKeptMessageOctets = 16 * 1024 * 1024
        /// False when the caller writes the events itself (`appendEvent`): the proxy has four legs
        /// to show, where a capture has two. The cap and its anomaly stay the recorder's.
        public var keepsDialogue = true

        public init() {}
    }

    private var record: SessionRecord
    private let options: Options
    private var transactionForCommand: [Int: Int] = [:]
    private var recipientForCommand: [Int: Int] = [:]
    private var currentTransaction: Int?
    /// The transaction whose MAIL the server accepted and that has not ended yet: what the
    /// server considers open, which decides where later commands belong.
    private var openTransaction: Int?
    private var message: MessageInspector?
    /// The summary of the current message from a caller that read it itself (`adoptMessageSummary`).
    private var adoptedSummary: MessageSummary?
    private var pendingContentOctets = 0
    private var droppedEvents = 0
    private var incomplete = false
    private var quitSeen = false
    /// The server answered QUIT with 221: the session ended normally, whatever the TCP teardown.
    private var quitAnswered = false
    private var starttlsRefused = false
    private var authFailed: Int?
    /// Transactions whose message the client never finished.
    private var abandoned = Set<Int>()
    /// The current message's content stopped reaching the recorder part way (`messageTruncated`).
    private var truncatedMessage = false
    /// The code of the last reply to the client, and whether any was a 421: how the server ended
    /// the session, whatever the events keep.
    private var lastReplyCode: Int?
    private var sent421 = false
    /// Rule verdicts by the command they decided (`nil`: the session's), and the proxy's own
    /// settlements and rewrites by command: placed at `finish`, when every command's transaction is
    /// known (the commands after a refused MAIL belong to the transaction still open).
    private var verdicts: [(command: Int?, list: [SessionRecord.RuleVerdict])] = []
    private var settlements: [Int: SessionRecord.TransactionOutcome] = [:]
    private var rewrittenMailFrom: [Int: String] = [:]
    /// Stages whose verdicts go in the record's top-level `rules`; the others are a transaction's.
    static let sessionStages: Set<String> = ["connect", "helo", "auth"]
    /// Whole messages' readings by transaction index (`Options.keepsMessageSummaries`).
    public private(set) var messageSummaries: [Int: MessageSummary] = [:]
    private var keptMessageOctets = 0

    public init(
        sessionID: String,
        source: SessionRecord.Source,
        start: Timestamp,
        client: SessionRecord.Endpoint?,
        server: SessionRecord.Endpoint?,
        options: Options = Options()
    ) {
        self.record = SessionRecord(sessionID: sessionID, source: source, start: start, client: client, server: server)
        self.options = options
    }

    // MARK: Facts from the transport

    public mutating func noteClientOctets(_ count: Int) { record.bytes.client += count }
    public mutating func noteServerOctets(_ count: Int) { record.bytes.server += count }

    /// The capture lost bytes that matter, or began mid-session.
    public mutating func markIncomplete() { incomplete = true }

    public mutating func noteTLSMode(_ mode: SessionRecord.TLS.Mode) { record.tls.mode = mode }

    /// The caller reads the current message itself (the proxy does, for its `message` rules) and
    /// hands over its reading with `adoptMessageSummary` before the message's end: the content is
    /// not read a second time.
    public mutating func messageReadElsewhere() {
        message = nil
    }

    /// The caller's reading of the current message, used at its end as the recorder's own would be
    /// (its body text, which rules read, never reaches the record).
    public mutating func adoptMessageSummary(_ summary: MessageSummary) {
        adoptedSummary = summary
    }

    /// The current message's content stops here (proxy mode: a size limit or a forbidden octet
    /// ended the transaction, and the rest was not read). The record keeps what the header
    /// said, but no digest, which would name a message nobody sent, and no MIME findings, which
    /// the cut would cause.
    public mutating func messageTruncated() {
        truncatedMessage = true
    }

    public mutating func noteAnomaly(_ kind: String, _ detail: String?, at time: Timestamp) {
        record.anomalies.append(SessionRecord.Anomaly(kind: kind, t: relative(time), detail: detail))
    }

    private mutating func keep(_ summary: MessageSummary, for index: Int) {
        guard options.keepsMessageSummaries else { return }
        let octets = summary.bodyText.utf8.count + summary.header.fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
        guard keptMessageOctets + octets <= options.maxKeptMessageOctets else { return }
        keptMessageOctets += octets
        var kept = summary
        kept.anomalies = []
        messageSummaries[index] = kept
    }

    // MARK: Events from the core

    public mutating func record(_ event: ConversationEvent) {
        let t = relative(event.time)
        if case .messageContent = event.kind {} else { flushContentEvent(at: t) }
        switch event.kind {
        case .command(let id, let command, let line):
            appendEvent(t, .client, .server, line)
            handleCommand(id: id, command)
        case .invalidCommand(let id, _, let line):
            appendEvent(t, .client, .server, line)
            if let current = currentTransaction { transactionForCommand[id] = current }
        case .saslResponse:
            appendEvent(t, .client, .server, "[redacted]")
        case .authIdentity(_, let mechanism, let user):
            let shown = options.userRedactor?.redact(user) ?? user
            if record.auth == nil { record.auth = SessionRecord.Auth(mechanism: mechanism) }
            record.auth?.user = shown
        case .reply(let reply, let answered):
            for line in Self.transcriptLines(of: reply, answering: answered) {
                appendEvent(t, .server, .client, line)
            }
            lastReplyCode = reply.code
            if reply.replyCode == .serviceNotAvailable { sent421 = true }
            handleReply(reply, answering: answered)
        case .messageBegin(let commandID, let kind):
            message = MessageInspector(limits: options.messageLimits)
            truncatedMessage = false
            adoptedSummary = nil
            guard let index = transactionIndex(forCommand: commandID) else { break }
            if record.transactions[index].data == nil {
                record.transactions[index].data = SessionRecord.DataTransfer(command: kind == .data ? .data : .bdat)
            }
        case .messageContent(let content):
            pendingContentOctets += content.readableBytes
            message?.receive(content)
        case .messageEnd(let commandID, let octets, let complete, _):
            flushContentEvent(at: t)
            let index = transactionIndex(forCommand: commandID)
            if var summary = message?.finish() ?? adoptedSummary {
                if let index { record.transactions[index].message = Self.message(from: summary) }
                if truncatedMessage {
                    if let index { record.transactions[index].message?.sha256 = nil }
                    summary.anomalies = []
                } else if complete, let index {
                    keep(summary, for: index)
                }
                // A missing Date or From is ordinary in submitted mail and says nothing about the
                // session; the other findings (header hygiene, limits, bare line ends) are kept.
                for anomaly in summary.anomalies.lazy.filter({ $0.kind != "missing_header" }).prefix(20) {
                    record.anomalies.append(SessionRecord.Anomaly(kind: anomaly.kind, t: t, detail: anomaly.detail))
                }
                summary.anomalies = []
            }
            message = nil
            adoptedSummary = nil
            truncatedMessage = false
            if let index {
                record.transactions[index].data?.size = complete ? octets : nil
                // A digest of the part the capture kept would name a message that was never sent.
                if !complete { record.transactions[index].message?.sha256 = nil }
            }
            if !complete { incomplete = true }
        case .messageAbandoned(let commandID, _):
            flushContentEvent(at: t)
            if let summary = message?.finish(), let index = transactionIndex(forCommand: commandID) {
                record.transactions[index].message = Self.message(from: summary)
                if truncatedMessage { record.transactions[index].message?.sha256 = nil }
            }
            message = nil
            truncatedMessage = false
            if let index = transactionIndex(forCommand: commandID) { abandoned.insert(index) }
        case .tlsStarted(let implicit):
            record.tls.mode = implicit ? .implicit : .starttls
        case .tlsSummary(let summary):
            if record.tls.mode == .none { record.tls.mode = .implicit }
            record.tls.version = summary.version
            record.tls.cipher = summary.cipher
            record.tls.sni = summary.sni
            record.tls.established = summary.established
            if let failure = summary.failure { record.tls.failure = failure }
        case .anomaly(let anomaly):
            record.anomalies.append(SessionRecord.Anomaly(kind: anomaly.kind.rawValue, t: t, detail: anomaly.detail))
            if anomaly.kind == .captureGap { incomplete = true }
        }
    }

    private mutating func handleCommand(id: Int, _ command: SMTPCommand) {
        switch command {
        case .helo(let name), .ehlo(let name), .lhlo(let name):
            if record.tls.mode == .none || record.tls.established == nil {
                record.helo = SessionRecord.Helo(verb: command.verb, name: name)
            }
            closeTransaction()
        case .mail(let path, let parameters):
            currentTransaction = nil
            record.transactions.append(SessionRecord.Transaction(
                mailFrom: SessionRecord.MailFrom(address: path.address, params: Self.parameters(parameters))
            ))
            currentTransaction = record.transactions.count - 1
            transactionForCommand[id] = currentTransaction
        case .rcpt(let path, let parameters):
            guard let index = transactionIndex(forCommand: id) else { break }
            record.transactions[index].rcptTo.append(SessionRecord.Recipient(address: path.address, params: Self.parameters(parameters)))
            recipientForCommand[id] = record.transactions[index].rcptTo.count - 1
        case .data:
            guard let index = transactionIndex(forCommand: id) else { break }
            record.transactions[index].data = SessionRecord.DataTransfer(command: .data)
        case .bdat:
            guard let index = transactionIndex(forCommand: id) else { break }
            if record.transactions[index].data == nil {
                record.transactions[index].data = SessionRecord.DataTransfer(command: .bdat)
            }
            record.transactions[index].data?.chunks += 1
        case .rset:
            closeTransaction()
        case .quit:
            quitSeen = true
            closeTransaction()
        case .auth(let mechanism, _):
            let user = record.auth?.mechanism == mechanism ? record.auth?.user : nil
            record.auth = SessionRecord.Auth(mechanism: mechanism, user: user)
        case .starttls:
            // A STARTTLS inside TLS (implicit, or a second one) changes nothing; its refusal neither.
            if record.tls.established != true { record.tls.mode = .starttls }
        default:
            break
        }
    }

    private mutating func handleReply(_ reply: SMTPReply, answering answered: AwaitedReply) {
        let recorded = Self.reply(reply)
        switch answered {
        case .greeting:
            record.greeting = recorded
        case .command(let id, let command):
            switch command {
            case .ehlo, .lhlo:
                if reply.code == 250 { record.extensions = reply.ehloExtensions }
            case .mail:
                guard let index = transactionForCommand[id] else { break }
                record.transactions[index].mailFrom?.reply = recorded
                if reply.codeClass == 2 {
                    openTransaction = index
                } else if let open = openTransaction, open != index {
                    // "503 sender already given": the server kept its open transaction, so the
                    // commands that followed this MAIL belong to that one.
                    rehome(from: index, to: open, after: id)
                }
            case .rcpt:
                if let index = transactionForCommand[id], let recipient = recipientForCommand[id] {
                    record.transactions[index].rcptTo[recipient].reply = recorded
                }
            case .data:
                if reply.code != 354, let index = transactionForCommand[id] {
                    record.transactions[index].data?.initialReply = recorded
                }
            case .bdat(_, let last):
                if let index = transactionForCommand[id], last || reply.codeClass >= 4 {
                    record.transactions[index].data?.reply = recorded
                }
            case .auth:
                settleAuth(reply)
            case .quit:
                if reply.code == 221 { quitAnswered = true }
            case .starttls:
                if reply.code != 220, record.tls.established != true {
                    starttlsRefused = true
                    record.tls.established = false
                    record.tls.failure = "STARTTLS refused: \(reply.code) \(reply.textWithoutEnhancedCode)"
                }
            default:
                break
            }
        case .endOfData(let id):
            if let index = transactionForCommand[id] {
                record.transactions[index].data?.reply = recorded
                endTransaction(index)
            }
        case .bdatChunk(let id, let last):
            if let index = transactionForCommand[id], last || reply.codeClass >= 4 {
                record.transactions[index].data?.reply = recorded
                endTransaction(index)
            }
        case .saslResponse:
            settleAuth(reply)
        case .invalidCommand(let id, let verb):
            // A DATA or BDAT the server refused as malformed still stops the transaction at DATA.
            guard let verb, verb == "DATA" || verb == "BDAT", let index = transactionForCommand[id] else { break }
            if record.transactions[index].data == nil {
                record.transactions[index].data = SessionRecord.DataTransfer(command: verb == "DATA" ? .data : .bdat)
            }
            if record.transactions[index].data?.reply == nil { record.transactions[index].data?.initialReply = recorded }
        case .unknown:
            break
        }
    }

    private mutating func settleAuth(_ reply: SMTPReply) {
        // Only 235 or a refusal ends an exchange (RFC 4954 §4); any other code paired here is the
        // reply to a later command after the capture lost the real one.
        guard reply.code == 235 || reply.codeClass >= 4 else { return }
        if record.auth == nil { record.auth = SessionRecord.Auth(mechanism: "UNKNOWN") }
        record.auth?.code = reply.code
        record.auth?.result = reply.codeClass == 2 ? .success : .failure
        authFailed = reply.codeClass == 2 ? nil : reply.code
    }

    /// The transaction a command belongs to: the current one; or, when the capture may have lost the
    /// MAIL that opened it (a mid-session start or a gap), a new one whose sender is unknown.
    /// Out-of-sequence commands in a fully seen session open none: the server refuses them (503),
    /// and the events keep them.
    private mutating func transactionIndex(forCommand id: Int) -> Int? {
        if let index = transactionForCommand[id] { return index }
        if let current = currentTransaction {
            transactionForCommand[id] = current
            return current
        }
        guard incomplete else { return nil }
        record.transactions.append(SessionRecord.Transaction(mailFrom: SessionRecord.MailFrom(address: nil)))
        currentTransaction = record.transactions.count - 1
        transactionForCommand[id] = currentTransaction
        return record.transactions.count - 1
    }

    private mutating func closeTransaction() {
        currentTransaction = nil
        openTransaction = nil
    }

    /// The end of a message ends its transaction (RFC 5321 §4.1.1.4), unless later commands already
    /// opened the next one.
    private mutating func endTransaction(_ index: Int) {
        if currentTransaction == index { currentTransaction = nil }
        if openTransaction == index { openTransaction = nil }
    }

    /// Moves the recipients and data of a transaction whose MAIL was refused to the transaction the
    /// server still had open.
    private mutating func rehome(from refused: Int, to open: Int, after mailID: Int) {
        let moved = record.transactions[refused].rcptTo
        let offset = record.transactions[open].rcptTo.count
        record.transactions[open].rcptTo.append(contentsOf: moved)
        record.transactions[refused].rcptTo = []
        if let data = record.transactions[refused].data {
            record.transactions[open].data = data
            record.transactions[refused].data = nil
        }
        for (command, index) in transactionForCommand where index == refused && command != mailID {
            transactionForCommand[command] = open
            if let recipient = recipientForCommand[command] { recipientForCommand[command] = recipient + offset }
        }
        if currentTransaction == refused { currentTransaction = open }
    }

    // MARK: Ending

    /// Settles outcomes and returns the finished record.
    public mutating func finish(at time: Timestamp, close: SessionRecord.Close?) -> SessionRecord {
        flushContentEvent(at: relative(time))
        record.end = time
        var close = close
        // After the 221 to QUIT, an RST is only how the connection was torn down (smtp-source
        // and several MTAs always close that way): the session ended with QUIT. A QUIT the server
        // never answered ended nothing if the server had already closed.
        if quitAnswered || (quitSeen && close?.reason != .rst && close?.by != .server) {
            close = SessionRecord.Close(by: .client, reason: .quit)
        }
        record.close = close
        let serverSaidGoodbye = lastReplyCode.map { ReplyCode($0) == .serviceNotAvailable || ReplyCode($0) == .closing } ?? false
        if close == nil && !quitSeen && !serverSaidGoodbye {
            // The capture ended before the session did.
            incomplete = true
        }
        for index in record.transactions.indices {
            let transaction = record.transactions[index]
            if abandoned.contains(index), transaction.data?.reply == nil, transaction.mailFrom?.reply.map({ $0.code / 100 == 2 }) != false {
                record.transactions[index].outcome = .aborted
            } else {
                record.transactions[index].outcome = Self.outcome(of: transaction, sessionClose: close)
            }
        }
        placeAnnotations()
        if droppedEvents > 0 {
            record.anomalies.append(SessionRecord.Anomaly(kind: "events_truncated", t: relative(time), detail: "\(droppedEvents) events beyond \(options.maxEvents) not kept"))
        }
        record.outcome = sessionOutcome()
        return record
    }

    // MARK: What the proxy adds

    /// What the rules decided about command `command` (`nil` at `connect`).
    public mutating func attach(_ verdicts: [SessionRecord.RuleVerdict], decidingCommand command: Int?) {
        self.verdicts.append((command, verdicts))
    }

    /// A rule settled (discarded, quarantined) the transaction of command `command` instead of
    /// delivery: its outcome says so, whatever the replies were.
    public mutating func settleTransaction(ofCommand command: Int, as outcome: SessionRecord.TransactionOutcome) {
        settlements[command] = outcome
    }

    /// A rule rewrote the reverse-path of MAIL command `command` upstream (`rewritten_to`).
    public mutating func noteMailFromRewritten(_ address: String, command: Int) {
        rewrittenMailFrom[command] = address
    }

    /// An event the caller saw (`Options.keepsDialogue` false), under the recorder's cap.
    public mutating func appendEvent(at time: Timestamp, from: SessionRecord.Party, to: SessionRecord.Party, text: String, octets: Int? = nil) {
        appendEvent(relative(time), from, to, text, octets: octets, own: false)
    }

    private mutating func placeAnnotations() {
        for (command, list) in verdicts {
            for verdict in list {
                if !Self.sessionStages.contains(verdict.stage), let index = command.flatMap({ transactionForCommand[$0] }) {
                    record.transactions[index].rules.append(verdict)
                } else {
                    record.rules.append(verdict)
                }
            }
        }
        for (command, outcome) in settlements {
            if let index = transactionForCommand[command] { record.transactions[index].outcome = outcome }
        }
        for (command, address) in rewrittenMailFrom {
            if let index = transactionForCommand[command] { record.transactions[index].mailFrom?.rewrittenTo = address }
        }
    }

    static func outcome(of transaction: SessionRecord.Transaction, sessionClose: SessionRecord.Close?) -> SessionRecord.TransactionOutcome {
        func negative(_ reply: SessionRecord.Reply?) -> SessionRecord.TransactionOutcome? {
            guard let reply else { return nil }
            switch reply.code / 100 {
            case 4: return .tempfailed
            case 5: return .rejected
            default: return nil
            }
        }
        if let reply = transaction.mailFrom?.reply, let failed = negative(reply) { return failed }
        if let reply = transaction.data?.reply {
            return negative(reply) ?? .delivered
        }
        // Every recipient refused: that stopped the transaction, and a refusal of DATA that
        // follows (554 no valid recipients) is only its consequence.
        let recipientReplies = transaction.rcptTo.map(\.reply)
        if !recipientReplies.isEmpty, recipientReplies.allSatisfy({ $0 != nil }),
            recipientReplies.allSatisfy({ ($0?.code ?? 0) >= 400 })
        {
            return recipientReplies.contains { ($0?.code ?? 0) / 100 == 4 } ? .tempfailed : .rejected
        }
        if let failed = negative(transaction.data?.initialReply) { return failed }
        if let data = transaction.data {
            // Content was sent (or started) but the deciding reply is missing.
            if data.size != nil || data.chunks > 0 { return .unknown }
            return sessionClose == nil ? .unknown : .aborted
        }
        if transaction.mailFrom?.address == nil || transaction.mailFrom?.reply == nil
            || recipientReplies.contains(where: { $0 == nil })
        {
            return .unknown
        }
        return .aborted
    }

    private func sessionOutcome() -> SessionRecord.SessionOutcome {
        if incomplete { return .incomplete }
        if starttlsRefused || record.tls.established == false || (record.tls.failure != nil && record.tls.mode != .none) {
            return .tlsFailed
        }
        // Inside TLS the QUIT and 221 are invisible, and TLS stacks often end a finished session
        // with an RST after close_notify: an established encrypted session that closed is
        // complete, whoever closed first; `close` still says how.
        if record.tls.mode != .none, record.tls.established == true, record.close != nil {
            return .completed
        }
        let serverSent421 = sent421
        // An RST after the server's 421 tears down a session the server had already ended.
        if record.close?.reason == .rst, !serverSent421 { return .reset }
        if serverSent421 || (record.close?.by == .server && record.close?.reason != .quit && !quitSeen) {
            return .serverClosed
        }
        if record.close?.reason == .timeout { return .timeout }
        let outcomes = record.transactions.map(\.outcome)
        let delivered = outcomes.contains(.delivered)
        if let authFailed, !delivered { return authFailed / 100 == 5 ? .rejected : .tempfail }
        if !delivered {
            if outcomes.contains(.rejected) { return .rejected }
            if outcomes.contains(.tempfailed) { return .tempfail }
        }
        if record.greeting.map({ $0.code / 100 == 5 }) == true { return .rejected }
        if record.greeting.map({ $0.code / 100 == 4 }) == true { return .tempfail }
        return .completed
    }

    // MARK: Helpers

    private func relative(_ time: Timestamp) -> Int64 {
        max(0, time.microseconds(since: record.start))
    }

    /// `own`: an event of the recorder's own two-party dialogue, kept unless the caller writes them.
    private mutating func appendEvent(_ t: Int64, _ from: SessionRecord.Party, _ to: SessionRecord.Party, _ text: String, octets: Int? = nil, own: Bool = true) {
        if own && !options.keepsDialogue { return }
        guard record.events.count < options.maxEvents else {
            droppedEvents += 1
            return
        }
        record.events.append(SessionRecord.Event(t: t, from: from, to: to, text: text, octets: octets))
    }

    private mutating func flushContentEvent(at t: Int64) {
        guard pendingContentOctets > 0 else { return }
        appendEvent(t, .client, .server, "[message content: \(pendingContentOctets) octets]", octets: pendingContentOctets)
        pendingContentOctets = 0
    }

    static func reply(_ reply: SMTPReply) -> SessionRecord.Reply {
        SessionRecord.Reply(code: reply.code, enhanced: reply.enhancedStatusCode?.description, text: reply.textWithoutEnhancedCode)
    }

    /// Reply lines as they appear on the wire; SASL challenges are never written out.
    static func transcriptLines(of reply: SMTPReply, answering answered: AwaitedReply) -> [String] {
        if reply.code == 334 {
            switch answered {
            case .command(_, .auth), .saslResponse: return ["334 [redacted]"]
            default: break
            }
        }
        var lines = reply.wireLines
        if reply.droppedLines > 0 { lines.append("[\(reply.droppedLines) more reply lines not kept]") }
        return lines
    }

    static func parameters(_ parameters: [ESMTPParameter]) -> [SessionRecord.Parameter] {
        parameters.map { SessionRecord.Parameter(keyword: $0.keyword, value: $0.value) }
    }

    static func message(from summary: MessageSummary) -> SessionRecord.Message {
        SessionRecord.Message(
            messageID: summary.messageID,
            subject: summary.subject,
            from: summary.from.map(\.address),
            to: summary.to.map(\.address),
            cc: summary.cc.map(\.address),
            date: summary.date,
            size: summary.size,
            sha256: summary.sha256,
            attachments: summary.attachments
        )
    }
}
