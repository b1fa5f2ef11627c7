import SMTPCore
import SMTPTranscript

/// One refusal that kept mail from some recipients: a failure reply (RFC 5321 §4.2.1, 4yz/5yz) to a
/// command of the session, or a command that got no reply before the session ended.
///
/// Failures are per recipient: a refused RCPT in a transaction that was delivered to the other
/// recipients is a partial delivery, not a failed message. A MAIL, DATA or end-of-data refusal lists
/// every recipient it affected. Refusals that only follow from an earlier one (503 "need MAIL command"
/// after a refused MAIL, 554 "no valid recipients" after every RCPT was refused) are not listed again.
public struct DeliveryFailure: Sendable, Equatable {
    public var sessionID: String
    public var client: SessionRecord.Endpoint?
    public var server: SessionRecord.Endpoint?
    /// The session's start, microseconds since the Unix epoch.
    public var sessionStart: Int64
    /// When the refused command was sent, microseconds since the session's start, when known.
    public var sentAt: Int64?
    public var stage: SMTPStage
    /// The command as a report shows it (never an AUTH payload).
    public var command: String
    /// `nil` when no reply came before the session ended.
    public var reply: SessionRecord.Reply?
    /// A server line without a reply code that answered in its place (Yahoo's "4.7.0 [IPTS04]
    /// ... temporarily deferred" before closing): what the server said, as it said it.
    public var answerWithoutCode: String?
    public var cause: FailureCause
    /// The server's wait before the refusal, in microseconds, when known.
    public var wait: Int64?
    /// The reverse-path of the transaction ("" for `<>`), when there was one.
    public var mailFrom: String?
    /// Recipients this failure kept the message from (at most `maximumRecipientsListed`).
    public var recipients: [String]
    /// How many more recipients were affected than `recipients` lists.
    public var moreRecipients: Int
    /// Recipients of the transaction in all, and how many of them the server accepted.
    public var totalRecipients: Int
    public var acceptedRecipients: Int
    /// The message went to the accepted recipients: this failure is a partial delivery.
    public var isPartialDelivery: Bool

    /// A temporary (4yz) failure: the sender should retry.
    public var isTemporary: Bool {
        guard let reply else { return answerWithoutCode?.hasPrefix("5.") != true }
        return ReplyCode(reply.code).isTransientNegative
    }

    /// Recipient lists in a failure are cut here.
    public static let maximumRecipientsListed = 10

    /// The failures of one session, in the order they happened.
    public static func extract(from record: SessionRecord) -> [DeliveryFailure] {
        let pairs = ReplyPairing.pair(record)
        return extract(from: record, pairs: pairs)
    }

    static func extract(from record: SessionRecord, pairs: [CommandReplyPair]) -> [DeliveryFailure] {
        var failures: [DeliveryFailure] = []
        let timing = CommandTiming(record: record, pairs: pairs)

        func add(
            stage: SMTPStage,
            command: String,
            reply: SessionRecord.Reply?,
            timed pair: CommandReplyPair?,
            transaction: SessionRecord.Transaction?,
            affected: [String?],
            cause: FailureCause? = nil
        ) {
            var classified = cause ?? reply.map {
                FailureClassifier.classify(stage: stage.rawValue, code: $0.code, enhanced: $0.enhanced, text: $0.text)
            } ?? .timeout
            var command = command
            if let reply, let verdict = Self.refusingRule(stage: stage, reply: reply, transaction: transaction, record: record) {
                // The proxy's rule refused, not the server: name the rule and where it is written.
                classified = .ruleRefusal
                command += " (rule \(verdict.rule), \(verdict.file)\(verdict.line.map { ":\($0)" } ?? ""))"
            } else if reply?.code == 421, let unreachable = record.anomalies.first(where: { $0.kind == "upstream_unreachable" }) {
                // The proxy's own 421: the upstream could not be reached, and the anomaly says why
                // (connection refused, a DNS failure, a timeout); the server was not overloaded.
                classified = .upstreamUnreachable
                command += "; " + (unreachable.detail ?? "upstream unreachable")
            }
            let accepted = transaction?.rcptTo.filter { $0.reply.map { ReplyCode($0.code).isPositiveCompletion } ?? false }.count ?? 0
            let delivered = transaction?.outcome == .delivered || (transaction?.data?.reply).map { ReplyCode($0.code).isPositiveCompletion } == true
            let names = affected.map { $0 ?? "(address not captured)" }
            failures.append(DeliveryFailure(
                sessionID: record.sessionID,
                client: record.client,
                server: record.server,
                sessionStart: record.start.microsecondsSinceEpoch,
                sentAt: pair?.sentAt,
                stage: stage,
                command: command,
                reply: reply,
                cause: classified,
                wait: pair?.wait,
                mailFrom: transaction?.mailFrom?.address,
                recipients: Array(names.prefix(maximumRecipientsListed)),
                moreRecipients: max(0, names.count - maximumRecipientsListed),
                totalRecipients: transaction?.rcptTo.count ?? 0,
                acceptedRecipients: accepted,
                isPartialDelivery: delivered && accepted > 0
            ))
        }

        if let greeting = record.greeting, ReplyCode(greeting.code).isNegative {
            let pair = pairs.first { $0.stage == .connect && !$0.isUnsolicited }
            add(stage: .connect, command: "(connection opened)", reply: greeting, timed: pair, transaction: nil, affected: [])
        }
        if record.transactions.isEmpty,
            let helo = pairs.last(where: { $0.stage == .helo && $0.reply != nil }),
            let reply = helo.reply, ReplyCode(reply.code).isNegative
        {
            add(stage: .helo, command: helo.command ?? "HELO", reply: reply, timed: helo, transaction: nil, affected: [])
        }
        if let auth = record.auth, auth.result == .failure || auth.code.map({ ReplyCode($0).isNegative }) == true {
            let pair = pairs.last { $0.stage == .auth && $0.reply.map { ReplyCode($0.code).isNegative } == true }
            let reply = pair?.reply ?? auth.code.map { SessionRecord.Reply(code: $0, text: "") }
            // Which login was refused is what an administrator looks up first (never the password).
            let user = auth.user.map { " (user \($0))" } ?? ""
            add(stage: .auth, command: "AUTH \(auth.mechanism)\(user)", reply: reply, timed: pair, transaction: nil, affected: [])
        }

        for (index, transaction) in record.transactions.enumerated() {
            let addresses = transaction.rcptTo.map(\.address)
            if let mail = transaction.mailFrom, let reply = mail.reply, ReplyCode(reply.code).isNegative {
                add(
                    stage: .mail, command: Self.mailCommand(mail), reply: reply, timed: timing.mail(index),
                    transaction: transaction, affected: addresses
                )
                continue
            }
            var eligible: [String?] = []
            for (position, recipient) in transaction.rcptTo.enumerated() {
                guard let reply = recipient.reply, ReplyCode(reply.code).isNegative else {
                    eligible.append(recipient.address)
                    continue
                }
                add(
                    stage: .rcpt, command: Self.rcptCommand(recipient), reply: reply,
                    timed: timing.rcpt(transaction: index, position: position),
                    transaction: transaction, affected: [recipient.address]
                )
            }
            guard let data = transaction.data, eligible.count > 0 || transaction.rcptTo.isEmpty else { continue }
            if transaction.isBrokenOff, !pairs.contains(where: { $0.reply?.code == 421 }) {
                // (A 421 that ended the session is the failure itself: see `addSessionEnd`.)
                add(
                    stage: .endOfData, command: Self.brokenOff(record), reply: nil, timed: nil,
                    transaction: transaction, affected: eligible, cause: .brokenOff
                )
                continue
            }
            if let reply = data.initialReply, ReplyCode(reply.code).isNegative {
                add(
                    stage: data.command == .bdat ? .bdat : .data, command: data.command.rawValue, reply: reply,
                    timed: timing.data(index), transaction: transaction, affected: eligible
                )
            } else if data.reply == nil, data.size != nil,
                let answer = Self.answerWithoutCode(record, after: timing.endOfData(index)?.sentAt ?? 0)
            {
                // The end of data was sent and the server answered with a line that has no reply
                // code but reads as a refusal: that, not an unanswered end of data, is the failure.
                let size = data.size.map { " after \($0) octets" } ?? ""
                add(
                    stage: .endOfData, command: "<CRLF>.<CRLF>\(size)", reply: nil, timed: nil,
                    transaction: transaction, affected: eligible,
                    cause: FailureClassifier.textCause(answer) ?? .nonStandardReply
                )
                failures[failures.count - 1].answerWithoutCode = answer
            } else if let reply = data.reply, ReplyCode(reply.code).isNegative {
                let stage: SMTPStage = data.command == .bdat ? .bdat : .endOfData
                let size = data.size.map { " after \($0) octets" } ?? ""
                let command = data.command == .bdat ? "BDAT ... LAST (\(data.chunks) chunks\(size))" : "<CRLF>.<CRLF>\(size)"
                add(
                    stage: stage, command: command, reply: reply, timed: timing.endOfData(index),
                    transaction: transaction, affected: eligible
                )
            }
        }

        addSessionEnd(record: record, pairs: pairs, failures: failures, add: add)
        return failures
    }

    /// A 421 that ended the session, or a command the server never answered before a timeout.
    private static func addSessionEnd(
        record: SessionRecord,
        pairs: [CommandReplyPair],
        failures: [DeliveryFailure],
        add: (SMTPStage, String, SessionRecord.Reply?, CommandReplyPair?, SessionRecord.Transaction?, [String?], FailureCause?) -> Void
    ) {
        guard failures.allSatisfy({ $0.reply?.code != 421 }) else { return }
        let open = record.transactions.last.flatMap { transaction -> SessionRecord.Transaction? in
            switch transaction.outcome {
            case .aborted, .unknown: transaction
            case .delivered, .rejected, .tempfailed, .discarded, .quarantined: nil
            }
        }
        let affected = open?.rcptTo.filter { $0.reply.map { ReplyCode($0.code).isPositiveCompletion } ?? true }.map(\.address) ?? []
        // After its messages ended, a client that idles until the server's 421 (or an idle
        // timeout) lost no mail: that ending is listed with the server closes, not here.
        guard open != nil || record.transactions.isEmpty else { return }
        if let closing = pairs.last(where: { $0.reply?.code == 421 }), closing.stage != .connect {
            let command = closing.command ?? "(none pending: the server was waiting for the client)"
            add(closing.stage, command, closing.reply, closing, open, affected, nil)
            return
        }
        // Only a session the summary counts as timed out, with a message it kept from being sent
        // (a delivered message followed by an idle connection is no failure).
        let timedOut = record.outcome == .timeout && open?.isBrokenOff != true
        if timedOut, open != nil || record.transactions.isEmpty, let last = pairs.last, last.reply == nil, let command = last.command {
            add(last.stage, command, nil, last, open, affected, .timeout)
        }
    }

    /// The enforced rule verdict that made this refusal: a reject, tempfail or disconnect at the
    /// refused command's stage whose reply (when the verdict says it) has the refusal's code.
    static func refusingRule(stage: SMTPStage, reply: SessionRecord.Reply, transaction: SessionRecord.Transaction?, record: SessionRecord) -> SessionRecord.RuleVerdict? {
        guard ReplyCode(reply.code).isNegative else { return nil }
        let verdicts = (transaction?.rules ?? []) + record.rules
        return verdicts.first { verdict in
            guard verdict.enforced, ["reject", "tempfail", "disconnect"].contains(verdict.action) else { return false }
            let ruleStage: [SMTPStage] = switch verdict.stage {
            case "message": [.endOfData, .bdat]
            case "data": [.data, .endOfData, .bdat]
            default: SMTPStage(rawValue: verdict.stage).map { [$0] } ?? []
            }
            guard ruleStage.contains(stage) else { return false }
            return verdict.detail.map { $0.contains(String(reply.code)) } ?? true
        }
    }

    /// A server line without a reply code that starts with a failure's enhanced status code
    /// (RFC 3463: 4.x.x or 5.x.x), sent at or after `t`: kept by the inspector as a
    /// `malformed_reply` anomaly.
    static func answerWithoutCode(_ record: SessionRecord, after t: Int64) -> String? {
        record.anomalies.first { anomaly in
            guard anomaly.kind == "malformed_reply", anomaly.t >= t, let detail = anomaly.detail else { return false }
            let token = detail.prefix { $0 != " " }
            guard let status = EnhancedStatusCode(String(token)) else { return false }
            return status.statusClass == 4 || status.statusClass == 5
        }?.detail
    }

    /// What ended a message before its end of data, in the words of the record's close.
    static func brokenOff(_ record: SessionRecord) -> String {
        let octets = record.events.last { $0.octets != nil }?.octets
        var text = "(no end of data"
        if let octets { text += " after \(octets) octets of content" }
        switch (record.close?.reason, record.close?.by) {
        case (.rst?, let by?): text += ": the \(by.rawValue) reset the connection"
        case (.fin?, let by?): text += ": the \(by.rawValue) closed the connection"
        case (.timeout?, _): text += ": the connection went idle"
        default: text += ": the session ended"
        }
        return text + ")"
    }

    static func mailCommand(_ mail: SessionRecord.MailFrom) -> String {
        "MAIL FROM:<\(mail.address ?? "?")>" + parameters(mail.params)
    }

    static func rcptCommand(_ recipient: SessionRecord.Recipient) -> String {
        "RCPT TO:<\(recipient.address ?? "?")>" + parameters(recipient.params)
    }

    private static func parameters(_ params: [SessionRecord.Parameter]) -> String {
        params.map { " " + $0.keyword + ($0.value.map { "=" + $0 } ?? "") }.joined()
    }
}

/// Finds the event pair of a command the record's structure holds, by counting: the ith MAIL pair is
/// the ith transaction's MAIL when the counts agree. When they do not (a capture gap), no time is given
/// rather than a wrong one.
struct CommandTiming {
    private var mailPairs: [CommandReplyPair]?
    private var rcptPairs: [[CommandReplyPair]]?
    private var dataPairs: [CommandReplyPair?]?
    private var endPairs: [CommandReplyPair?]?

    init(record: SessionRecord, pairs: [CommandReplyPair]) {
        let answered = pairs.filter { !$0.isUnsolicited }
        let transactions = record.transactions
        let mails = answered.filter { $0.stage == .mail }
        if mails.count == transactions.count, transactions.allSatisfy({ $0.mailFrom != nil }) {
            mailPairs = mails
        }
        let rcpts = answered.filter { $0.stage == .rcpt }
        if rcpts.count == transactions.reduce(0, { $0 + $1.rcptTo.count }) {
            var remaining = rcpts[...]
            rcptPairs = transactions.map { transaction in
                let slice = Array(remaining.prefix(transaction.rcptTo.count))
                remaining = remaining.dropFirst(transaction.rcptTo.count)
                return slice
            }
        }
        let datas = answered.filter { $0.stage == .data }
        let usesData = transactions.map { $0.data?.command == .data }
        if datas.count == usesData.filter({ $0 }).count {
            var iterator = datas.makeIterator()
            dataPairs = usesData.map { $0 ? iterator.next() : nil }
        }
        let ends = answered.filter { $0.stage == .endOfData }
        let reachedEnd = transactions.map { $0.data?.command == .data && $0.data?.reply != nil }
        if ends.count == reachedEnd.filter({ $0 }).count {
            var iterator = ends.makeIterator()
            endPairs = reachedEnd.map { $0 ? iterator.next() : nil }
        }
    }

    func mail(_ transaction: Int) -> CommandReplyPair? { mailPairs?[transaction] }

    func rcpt(transaction: Int, position: Int) -> CommandReplyPair? {
        guard let list = rcptPairs?[transaction], position < list.count else { return nil }
        return list[position]
    }

    func data(_ transaction: Int) -> CommandReplyPair? { dataPairs?[transaction] ?? nil }

    func endOfData(_ transaction: Int) -> CommandReplyPair? { endPairs?[transaction] ?? nil }
}
