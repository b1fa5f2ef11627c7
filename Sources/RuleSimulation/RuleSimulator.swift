import MailMessage
import NIOCore
import SMTPCore
import SMTPRules
import SMTPTranscript
import SenderLimits

/// What a rule set would have done to recorded sessions (`pcap --rules` and `rules test`). Nothing
/// is enforced: every verdict says `enforced: false`, and its `mode` says whether the rule would
/// have been enforced in the proxy.
///
/// A session is replayed stage by stage in the order the proxy asks its policy: `connect`, `helo`,
/// `auth`, then for each transaction `mail`, `rcpt` (each recipient), `data` and `message`. The
/// first action that would have been enforced and ends a stage changes the replay the way the proxy
/// would have acted: a refused MAIL ends its transaction, a refused RCPT drops that recipient, a
/// disconnect ends the session.
///
/// Facts come from the record, and at `message` from the reading of the whole message when the
/// caller has it (a capture read with `SessionRecorder.Options.keepsMessageSummaries`): the same
/// builder as the proxy's, so a rule on any header field or on the body is judged alike. A transcript
/// file keeps only Subject, From, To, Cc, Date and Message-ID of a message and not its body: a rule
/// that reads anything else is not evaluated there, and is listed in `SimulatedSession.unjudged`.
///
/// Sender limits replay on the sessions' own times, with `limits` counting what the replay let
/// through and the record shows the server accepted: the caller feeds sessions in the order they
/// started (`rules test` sorts them). A session's `connect` is at its start; a transaction's
/// stages, and what they count, at the time of its MAIL command.
public struct RuleSimulator: Sendable {
    public let rules: RuleSet
    public let limits: LimitLedger?

    public init(rules: RuleSet, limits: LimitLedger? = nil) {
        self.rules = rules
        self.limits = limits
    }

    /// The record with every verdict filled in, and what the rules would have decided. `messages`
    /// are whole messages' readings by transaction index; a rule set that reads `body` needs them
    /// read with their text.
    public func simulate(_ record: SessionRecord, messages: [Int: MessageSummary] = [:]) -> SimulatedSession {
        var simulated = record
        simulated.rules = []
        for index in simulated.transactions.indices { simulated.transactions[index].rules = [] }
        var decisions: [SimulatedDecision] = []
        var unjudged: [UnjudgedRule] = []
        var limitStops: [LimitStop] = []
        let mailTimes = Self.mailTimes(in: record)
        func time(ofTransaction index: Int?) -> Timestamp {
            guard let index, index < mailTimes.count else { return record.start }
            return mailTimes[index]
        }
        func count(_ event: LimitEvent, _ facts: SessionFacts, at stage: RuleStage, transaction: Int?) {
            limits?.record(event, facts: RuleFacts(facts, at: stage), limits: rules.limits, at: Self.instant(time(ofTransaction: transaction)))
        }
        // The proxy's fact builder, moved along by the record's events as the relay moves it live.
        var facts = SessionFacts(clientIP: record.client?.ip, clientPort: record.client?.port, serverIP: record.server?.ip, serverPort: record.server?.port)
        // As the proxy sees it: at `connect` only an implicit-TLS listener has TLS, and its version
        // is not known before the handshake ends; from `helo` on, what the session established.
        if record.tls.mode == .implicit && record.tls.established == true { facts.becameEncrypted() }

        func run(_ stage: RuleStage, _ facts: SessionFacts, transaction: Int?) -> RuleTerminal? {
            guard rules.stages.contains(stage) else { return nil }
            var ruleFacts = RuleFacts(facts, at: stage)
            let read = rules.limits(readAt: stage)
            if let limits, !read.isEmpty { limits.fillCounts(&ruleFacts, for: read, at: Self.instant(time(ofTransaction: transaction))) }
            let outcome = rules.evaluate(stage, ruleFacts)
            for verdict in outcome.verdicts where Self.stops(verdict.action) {
                for reading in verdict.limits where reading.over {
                    limitStops.append(LimitStop(time: time(ofTransaction: transaction), rule: verdict.rule, action: verdict.action, enforced: verdict.enforced, reading: reading))
                }
            }
            for rule in outcome.unjudged where !unjudged.contains(rule) { unjudged.append(rule) }
            let verdicts = outcome.verdicts.map(SessionRecord.RuleVerdict.simulated)
            if let transaction {
                simulated.transactions[transaction].rules += verdicts
            } else {
                simulated.rules += verdicts
            }
            guard let terminal = outcome.terminal, terminal != .accept else { return nil }
            let deciding = outcome.terminalVerdict
            decisions.append(SimulatedDecision(stage: stage, transaction: transaction, rule: deciding?.rule, file: deciding?.file, action: terminal.actionName, detail: deciding?.detail))
            return terminal
        }

        replay: do {
            let connect = run(.connect, facts, transaction: nil)
            if let connect, Self.endsSession(connect) { break replay }
            if connect.map(Self.refuses) != true { count(.sessionOpened, facts, at: .connect, transaction: nil) }
            if facts.tls { facts.negotiatedTLS(version: record.tls.version) }
            // The proxy asks `helo` rules at every HELO and EHLO, with TLS as it stood then: an EHLO
            // before STARTTLS sees none, the one after it sees the handshake's version.
            for greeting in Self.greetings(in: record) {
                if greeting.tls && !facts.tls {
                    facts.startedTLS()
                    facts.negotiatedTLS(version: record.tls.version)
                }
                if let terminal = run(.helo, facts.probing(helo: greeting.name), transaction: nil) {
                    if Self.endsSession(terminal) { break replay }
                    if Self.refuses(terminal) { continue }
                }
                facts.greeted(as: greeting.name)
            }
            if record.tls.established == true && !facts.tls {
                // In a capture the EHLO after STARTTLS is encrypted: the name given before the
                // handshake stands, as clients repeat it.
                facts.becameEncrypted()
            }
            if facts.tls { facts.negotiatedTLS(version: record.tls.version) }
            // `auth` rules judge a successful AUTH only, as the proxy asks them after the 235.
            if let auth = record.auth, auth.result == .success {
                facts.authenticating(mechanism: auth.mechanism, user: auth.user)
                if let terminal = run(.auth, facts, transaction: nil) {
                    if Self.endsSession(terminal) { break replay }
                    if Self.refuses(terminal) { facts.unauthenticated() }
                }
            }
            for (index, transaction) in record.transactions.enumerated() {
                let mailFrom = transaction.mailFrom?.address.map { SMTPPath(address: $0) }
                let parameters = (transaction.mailFrom?.params ?? []).map { ESMTPParameter(keyword: $0.keyword.uppercased(), value: $0.value) }
                if let terminal = run(.mail, facts.probing(mailFrom: mailFrom, parameters: parameters), transaction: index) {
                    if Self.endsSession(terminal) { break replay }
                    if Self.refuses(terminal) { continue }
                }
                facts.beganTransaction(mailFrom: mailFrom, parameters: parameters)
                for recipient in transaction.rcptTo {
                    let path = recipient.address.map { SMTPPath(address: $0) }
                    let probe = facts.probing(recipient: path)
                    let terminal = run(.rcpt, probe, transaction: index)
                    facts.gaveRecipient()
                    if let terminal, Self.endsSession(terminal) { break replay }
                    if let terminal, Self.refuses(terminal) { continue }
                    // The server's own refusal drops the recipient as well; an unknown reply keeps it.
                    if let reply = recipient.reply, reply.code >= 400 { continue }
                    if let path { facts.acceptedRecipient(path) }
                    if let reply = recipient.reply, (200..<300).contains(reply.code), terminal == nil || !Self.settles(terminal) {
                        count(.recipientAccepted, probe, at: .rcpt, transaction: index)
                    }
                }
                guard transaction.data != nil, !facts.recipients.isEmpty || transaction.rcptTo.isEmpty else { continue }
                var settled = false
                if let terminal = run(.data, facts, transaction: index) {
                    if Self.endsSession(terminal) { break replay }
                    if Self.refuses(terminal) { continue }
                    settled = Self.settles(terminal)
                }
                if let message = transaction.message {
                    let read = messages[index].map { RuleMessageFacts($0, size: message.size) } ?? RuleMessageFacts(recorded: message)
                    if let terminal = run(.message, facts.probing(message: read), transaction: index) {
                        if Self.endsSession(terminal) { break replay }
                        if Self.refuses(terminal) { continue }
                        settled = settled || Self.settles(terminal)
                    }
                }
                // Counted as the proxy counts: a message the server accepted, not one a rule
                // discarded or quarantined before it went there.
                if !settled, let data = transaction.data, let reply = data.reply, (200..<300).contains(reply.code) {
                    count(.messageAccepted(octets: data.size ?? transaction.message?.size ?? 0), facts, at: .data, transaction: index)
                }
            }
        }
        return SimulatedSession(record: simulated, decisions: decisions, unjudged: unjudged, limitStops: limitStops)
    }

    /// When each transaction's MAIL command was sent, in order (the session's start for a record
    /// whose dialogue does not show them).
    static func mailTimes(in record: SessionRecord) -> [Timestamp] {
        record.events.compactMap { event in
            guard event.from == .client, event.octets == nil, event.text.utf8.count >= 5,
                event.text.prefix(5).uppercased() == "MAIL "
            else { return nil }
            return Timestamp(microsecondsSinceEpoch: record.start.microsecondsSinceEpoch + event.t)
        }
    }

    static func instant(_ time: Timestamp) -> LimitInstant {
        LimitInstant(milliseconds: time.microsecondsSinceEpoch / 1000)
    }

    /// Actions that stop what a client tried: a budget "stops" a sender with these.
    private static func stops(_ action: String) -> Bool {
        action == "reject" || action == "tempfail" || action == "disconnect"
    }

    private static func settles(_ terminal: RuleTerminal?) -> Bool {
        switch terminal {
        case .discard?, .quarantine?: true
        default: false
        }
    }

    /// The HELO and EHLO names the client sent, in order, each with whether TLS was up when it
    /// came. The client's side of the dialogue is read back through the conversation layer, so a
    /// 220 counts as the start of TLS only when it answers STARTTLS. A record whose events do not
    /// show the greeting (cut short) falls back on the HELO it kept.
    static func greetings(in record: SessionRecord) -> [(name: String, tls: Bool)] {
        var tls = record.tls.mode == .implicit && record.tls.established == true
        var found: [(name: String, tls: Bool)] = []
        var pending = PendingReplies<Void>()
        var assembler = ReplyAssembler()
        var nextID = 1
        var awaitingSASL: Int?
        /// DATA's 354 came (or may still come, for content sent without waiting), or BDAT was sent.
        var contentFollows = false
        var started = false
        for event in record.events {
            if event.from == .client {
                started = true
                if event.octets != nil {
                    if contentFollows { pending.append(.endOfData(id: 0), ()) }
                    contentFollows = false
                    continue
                }
                if let authID = awaitingSASL {
                    pending.append(.saslResponse(id: authID), ())
                    awaitingSASL = nil
                    continue
                }
                defer { nextID += 1 }
                guard case .success(let command) = CommandParser.parse(event.text) else {
                    pending.append(.invalidCommand(id: nextID, verb: nil), ())
                    continue
                }
                switch command {
                case .helo(let name), .ehlo(let name): found.append((name, tls))
                default: break
                }
                // A BDAT is answered once its chunk is read: the chunk is an octets event, and
                // `BDAT 0` has none.
                switch command {
                case .bdat(let size, _):
                    if size == 0 { pending.append(.bdatChunk(id: nextID, last: true), ()) } else { contentFollows = true }
                case .data:
                    contentFollows = true
                    pending.append(.command(id: nextID, command), ())
                default: pending.append(.command(id: nextID, command), ())
                }
            } else if event.to == .client, event.octets == nil {
                if !started {
                    started = true
                    pending.append(.greeting, ())
                }
                guard case .reply(let reply)? = assembler.receive(line: ByteBuffer(string: event.text)),
                    let entry = pending.take()
                else { continue }
                switch ConversationTurn(reply, answering: entry.awaited) {
                case .tlsHandshake: tls = true
                case .dataRefused:
                    // Content sent without waiting for the 354 awaits nothing.
                    contentFollows = false
                    pending.removeFirst { $0.awaited == .endOfData(id: 0) }
                case .saslChallenge: awaitingSASL = entry.awaited.saslAuthID
                default: break
                }
            }
        }
        if found.isEmpty, let helo = record.helo { return [(helo.name, record.tls.established == true)] }
        return found
    }

    private static func endsSession(_ terminal: RuleTerminal) -> Bool {
        if case .disconnect = terminal { return true }
        return false
    }

    /// Whether the command would have been refused (its transaction or recipient goes no further).
    private static func refuses(_ terminal: RuleTerminal) -> Bool {
        switch terminal {
        case .reject, .tempfail, .disconnect: true
        case .accept, .discard, .quarantine: false
        }
    }
}

/// One session as the rules would have left it.
public struct SimulatedSession: Sendable {
    /// The transcript with `rules` filled in at session and transaction level.
    public var record: SessionRecord
    /// Every action that would have been enforced and ended a stage, in order.
    public var decisions: [SimulatedDecision]
    /// Rules that read what the record does not keep, and so were not evaluated on this session.
    public var unjudged: [UnjudgedRule]
    /// Every refusal (enforced or `mode monitor`) by a rule that read a limit over its budget.
    public var limitStops: [LimitStop] = []

    /// Every verdict, session level first.
    public var verdicts: [SessionRecord.RuleVerdict] {
        record.rules + record.transactions.flatMap(\.rules)
    }
}

/// A sender a limit would have stopped, and when.
public struct LimitStop: Sendable, Hashable {
    public var time: Timestamp
    public var rule: String
    public var action: String
    /// false for a `mode monitor` rule: it would only have been recorded.
    public var enforced: Bool
    public var reading: LimitReading
}

/// An action that would have ended a stage.
public struct SimulatedDecision: Sendable, Hashable, CustomStringConvertible {
    public var stage: RuleStage
    /// The transaction's index in the record; nil at `connect`, `helo` and `auth`.
    public var transaction: Int?
    public var rule: String?
    public var file: String?
    public var action: String
    public var detail: String?

    public var description: String {
        var text = "\(action) at \(stage.rawValue)"
        if let transaction { text += " (transaction \(transaction + 1))" }
        if let rule { text += " by \"\(rule)\"" }
        if let detail { text += ": \(detail)" }
        return text
    }
}

extension SessionRecord.RuleVerdict {
    /// A verdict of a replay: never enforced; the mode says what the proxy would have done.
    static func simulated(_ verdict: RuleVerdict) -> SessionRecord.RuleVerdict {
        SessionRecord.RuleVerdict(
            rule: verdict.rule,
            file: verdict.file,
            line: verdict.line,
            stage: verdict.stage.rawValue,
            action: verdict.action,
            enforced: false,
            mode: verdict.enforced ? .enforce : .monitor,
            detail: verdict.detail
        )
    }
}

extension RuleMessageFacts {
    /// The header fields a record keeps of a message (its `message` summary), by lowercased name.
    static let recordedHeaderFields: Set<String> = ["date", "from", "to", "cc", "subject", "message-id"]

    /// The message facts a transcript keeps: the summary fields, as header fields too.
    init(recorded message: SessionRecord.Message) {
        self.init()
        var fields: [(name: String, value: String)] = []
        if let date = message.date { fields.append((name: "Date", value: date)) }
        if !message.from.isEmpty { fields.append((name: "From", value: message.from.joined(separator: ", "))) }
        if !message.to.isEmpty { fields.append((name: "To", value: message.to.joined(separator: ", "))) }
        if !message.cc.isEmpty { fields.append((name: "Cc", value: message.cc.joined(separator: ", "))) }
        if let subject = message.subject { fields.append((name: "Subject", value: subject)) }
        if let messageID = message.messageID { fields.append((name: "Message-ID", value: messageID)) }
        headers = fields
        knownHeaderFields = Self.recordedHeaderFields
        bodyKnown = false
        subject = message.subject
        from = message.from
        messageID = message.messageID
        size = message.size
        attachments = message.attachments
    }
}
