/// What a limit counts (rules/README.md, "Limits").
public enum LimitUnit: String, Sendable, Hashable, CaseIterable {
    /// Messages the upstream accepted (a 2xx to the end of data).
    case messages
    /// Recipients the upstream accepted (a 2xx to RCPT).
    case recipients
    /// Sessions the rules let in at `connect`.
    case sessions
    /// Octets of the messages the upstream accepted.
    case bytes

    /// The stage whose facts name the key when the counter is incremented: a `per` field must be
    /// known, with one value, by then.
    public var countingStage: RuleStage {
        switch self {
        case .sessions: .connect
        case .recipients: .rcpt
        // Counted at the end of data, from the envelope: the message's own header fields are
        // not kept by every caller (a relayed message streams through), so they are no key.
        case .messages, .bytes: .data
        }
    }

    /// What one command adds to the counter, as `over_limit` counts it at `stage`: the thing the
    /// stage decides about that has not been counted yet.
    func pending(at stage: RuleStage) -> LimitPending {
        switch self {
        case .sessions: stage == .connect ? .one : .nothing
        case .messages: .one
        case .recipients: stage <= .rcpt ? .one : .nothing
        case .bytes: stage == .message ? .messageSize : .declaredSize
        }
    }
}

/// What the command being decided would add to a counter.
enum LimitPending: Sendable, Hashable {
    /// One session, message or recipient.
    case one
    /// Nothing: what the stage decides about is counted already (the session after `connect`,
    /// the recipients at `data` and `message`).
    case nothing
    /// The message's SIZE parameter (RFC 1870) when the client declared one, else one octet.
    case declaredSize
    /// The received message's size.
    case messageSize
}

/// A sliding window: `30s`, `10m`, `1h`, `24h`, `7d`.
public struct LimitWindow: Sendable, Hashable, CustomStringConvertible {
    public var seconds: Int
    /// As written.
    public var description: String

    /// The longest window: a week's budget is common, a year's is not a sliding window any more.
    public static let maxSeconds = 90 * 86_400

    public init?(_ text: String) {
        guard let unit = text.unicodeScalars.last, text.utf8.count >= 2 else { return nil }
        let digits = text.utf8.dropLast()
        guard digits.count <= 9, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let number = Int(String(decoding: digits, as: UTF8.self)) else {
            return nil
        }
        let multiplier: Int
        switch unit {
        case "s": multiplier = 1
        case "m": multiplier = 60
        case "h": multiplier = 3600
        case "d": multiplier = 86_400
        default: return nil
        }
        seconds = number * multiplier
        description = text
    }
}

/// Limit names: they appear in verdicts, in `/metrics` labels and unquoted in `${limit_count(name)}`,
/// so they are plain words.
enum LimitName {
    static let maxLength = 64

    static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A) || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }

    static func isValid(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= maxLength else { return false }
        let startsWell = (first >= 0x30 && first <= 0x39) || (first | 0x20 >= 0x61 && first | 0x20 <= 0x7A)
        return startsWell && name.utf8.allSatisfy(isNameByte)
    }
}

/// A checked `limit` declaration.
public struct RuleLimit: Sendable, Hashable {
    public var name: String
    public var unit: LimitUnit
    /// The `per` field as written: `auth.user`, `mail_param("ENVID")`.
    public var per: String
    let key: FieldAccessor
    /// Addresses, domains and IP addresses compare case-insensitively, so their keys are lowercased.
    let foldsKey: Bool
    public var window: LimitWindow
    public var max: Int
    public var file: String
    public var line: Int
    var column = 1

    /// What must stay the same for a counter to carry over a reload: a changed `max` keeps the
    /// counts, a changed unit, key or window starts afresh.
    public var counterID: String { "\(name)\u{0}\(unit.rawValue)\u{0}\(per)\u{0}\(window.seconds)" }

    /// The counter's key in `facts`: nil when the `per` field has no value (such sessions are not
    /// counted, and `over_limit` is false for them).
    public func key(in facts: RuleFacts) -> String? {
        guard let value = key.values(facts).first?.text else { return nil }
        return foldsKey ? value.lowercased() : value
    }

    /// Whether `over_limit` of this limit is true at `stage` in `facts`.
    public func isOver(_ facts: RuleFacts, at stage: RuleStage) -> Bool {
        LimitProbe(limit: self, stage: stage).isOver(facts)
    }

    /// What a command of `stage` adds to the counter, in `facts`.
    func pending(at stage: RuleStage, _ facts: RuleFacts) -> Int {
        switch unit.pending(at: stage) {
        case .one: 1
        case .nothing: 0
        case .declaredSize:
            facts.mailParameters["SIZE"].flatMap { $0 }.flatMap { Int($0) }.map { Swift.max($0, 1) } ?? 1
        case .messageSize: Swift.max(facts.message?.size ?? 1, 1)
        }
    }

    /// What a rule reading this limit at `stage` saw; nil when the session has no key.
    func reading(_ facts: RuleFacts, at stage: RuleStage) -> LimitReading? {
        guard let key = key(in: facts), let count = facts.limitCounts[name] else { return nil }
        return LimitReading(limit: name, per: per, key: key, count: count, max: max, over: isOver(facts, at: stage), unit: unit, window: window.description)
    }
}

/// A limit as a rule saw it: its key in the session, the count there, and whether it was over.
public struct LimitReading: Sendable, Hashable, CustomStringConvertible {
    public var limit: String
    /// The `per` field.
    public var per: String
    public var key: String
    public var count: Int
    public var max: Int
    /// `over_limit` at the rule's stage.
    public var over: Bool
    public var unit: LimitUnit
    public var window: String

    /// "auth.user alice reached user-hourly: 200 messages in 1h", or, below the budget, "auth.user
    /// alice at user-hourly: 120 of 200 messages in 1h".
    public var description: String {
        over
            ? "\(per) \(key) reached \(limit): \(count) \(unit.rawValue) in \(window)"
            : "\(per) \(key) at \(limit): \(count) of \(max) \(unit.rawValue) in \(window)"
    }
}

/// `over_limit("name")` bound to a stage: the limit, and what that stage's command would add.
struct LimitProbe: Sendable, Hashable {
    var limit: RuleLimit
    var stage: RuleStage

    /// True when the count for this session's key, with what this command would add, is over
    /// `max`: a budget of N lets exactly N through. False for a session without a key.
    func isOver(_ facts: RuleFacts) -> Bool {
        guard let count = facts.limitCounts[limit.name] else { return false }
        let pending = limit.pending(at: stage, facts) + max(facts.limitsInFlight[limit.name] ?? 0, 0)
        let (total, overflow) = count.addingReportingOverflow(pending)
        return overflow || total > limit.max
    }
}
