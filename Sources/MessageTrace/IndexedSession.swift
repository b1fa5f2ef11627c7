import SMTPCore
import SMTPTranscript

/// What the index keeps of one session record: the facts the searches use, in the forms they are
/// matched in, and the record's JSON line exactly as the transcript had it (what `trace --format
/// jsonl` prints). Pure: the same record always gives the same rows, whichever database holds them.
public struct IndexedSession: Sendable, Equatable {
    public var sessionID: String
    /// The session's start, microseconds since the Unix epoch (UTC).
    public var start: Int64
    public var clientIP: String?
    /// `clientIP` as 16 octets (IPv4 as an IPv4-mapped IPv6 address), so that a CIDR is a range.
    public var clientAddress: [UInt8]?
    public var clientPort: Int?
    /// The AUTH identity as recorded (already a keyed hash under `--redact-users`).
    public var user: String?
    public var outcome: String
    public var messages: [Message]
    /// The names of every rule with a verdict in the session, session-level or per transaction.
    public var rules: [String]
    public var line: String

    /// One transaction: the envelope, the message's header facts and how it ended.
    public struct Message: Sendable, Equatable {
        public var position: Int
        public var sender: String?
        public var senderKey: String?
        public var senderDomain: String?
        public var outcome: String
        public var subject: String?
        public var subjectKey: String?
        public var messageID: String?
        /// The reply that settled the transaction ("550 5.1.1 text"), when the record has one.
        public var decidingReply: String?
        /// The rule whose enforced action refused, discarded or quarantined the message.
        public var decidingRule: String?
        public var recipients: [Recipient]
    }

    public struct Recipient: Sendable, Equatable {
        public var address: String?
        public var addressKey: String?
        public var domain: String?
        public var replyCode: Int?
    }
}

extension IndexedSession {
    /// `line` is the record's JSON line as it stands in the transcript (no trailing newline).
    public init(_ record: SessionRecord, line: String) {
        sessionID = record.sessionID
        start = record.start.microsecondsSinceEpoch
        clientIP = record.client?.ip
        clientAddress = record.client.flatMap { IPAddressBytes.parse($0.ip) }
        clientPort = record.client?.port
        user = record.auth?.user
        outcome = record.outcome.rawValue
        self.line = line
        messages = record.transactions.enumerated().map { position, transaction in
            Message(position, transaction, sessionRules: record.rules)
        }
        var names: [String] = []
        for verdict in record.rules + record.transactions.flatMap(\.rules) where !names.contains(verdict.rule) {
            names.append(verdict.rule)
        }
        rules = names
    }
}

extension IndexedSession.Message {
    init(_ position: Int, _ transaction: SessionRecord.Transaction, sessionRules: [SessionRecord.RuleVerdict]) {
        self.position = position
        sender = transaction.mailFrom?.address
        senderKey = sender.map(AddressKey.key)
        senderDomain = sender.flatMap(AddressKey.domain)
        outcome = transaction.outcome.rawValue
        subject = transaction.message?.subject
        subjectKey = subject.map(AddressKey.fold)
        messageID = transaction.message?.messageID.map(MessageIDKey.key)
        decidingReply = Self.decidingReply(transaction).map(Self.render)
        decidingRule = Self.decidingRule(transaction)
        recipients = transaction.rcptTo.map { recipient in
            IndexedSession.Recipient(
                address: recipient.address,
                addressKey: recipient.address.map(AddressKey.key),
                domain: recipient.address.flatMap(AddressKey.domain),
                replyCode: recipient.reply?.code
            )
        }
    }

    /// The reply that decided the outcome: for a message that got as far as its end of data, that
    /// reply; else the refusal of DATA, of MAIL, or (every recipient refused) of the last RCPT.
    static func decidingReply(_ transaction: SessionRecord.Transaction) -> SessionRecord.Reply? {
        switch transaction.outcome {
        case .delivered, .discarded, .quarantined:
            return transaction.data?.reply
        case .rejected, .tempfailed:
            let refusals = [transaction.data?.reply, transaction.data?.initialReply, transaction.mailFrom?.reply]
            if let refusal = refusals.compactMap({ $0 }).first(where: { $0.code >= 400 }) { return refusal }
            return transaction.rcptTo.compactMap(\.reply).last(where: { $0.code >= 400 })
        case .aborted, .unknown:
            return nil
        }
    }

    /// The first enforced verdict that ended the message: smtpscope's own refusal, not the upstream's.
    static func decidingRule(_ transaction: SessionRecord.Transaction) -> String? {
        let settling: Set<String> = ["reject", "tempfail", "disconnect", "discard", "quarantine"]
        return transaction.rules.first { $0.enforced && settling.contains($0.action) }?.rule
    }

    static func render(_ reply: SessionRecord.Reply) -> String {
        var text = String(reply.code)
        if let enhanced = reply.enhanced { text += " " + enhanced }
        let firstLine = reply.text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        if !firstLine.isEmpty { text += " " + firstLine }
        return text
    }
}

/// How addresses are matched: as the record has them, but without regard to case (domains are
/// case-insensitive, RFC 5321 §2.4, and no mail system an auditor meets treats local parts
/// otherwise). Folding happens here, in Swift, for the stored keys and the searched values alike,
/// so SQLite and PostgreSQL match the same way.
public enum AddressKey {
    public static func fold(_ text: String) -> String {
        text.lowercased()
    }

    public static func key(_ address: String) -> String {
        fold(address)
    }

    /// The part after the last "@", folded; nil for the null reverse-path or an address without one.
    public static func domain(_ address: String) -> String? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        let domain = address[address.index(after: at)...]
        return domain.isEmpty ? nil : fold(String(domain))
    }
}

/// Message-IDs are matched without their angle brackets and surrounding space, so `--message-id`
/// finds `<id@host>` given as `id@host` or `<id@host>`.
public enum MessageIDKey {
    public static func key(_ text: String) -> String {
        var id = Substring(text)
        while let first = id.first, first == " " || first == "\t" { id = id.dropFirst() }
        while let last = id.last, last == " " || last == "\t" { id = id.dropLast() }
        if id.hasPrefix("<") && id.hasSuffix(">") && id.count >= 2 { id = id.dropFirst().dropLast() }
        return String(id)
    }
}
