import SMTPTranscript

/// One `smtpscope trace` search. Every filter given must hold; the envelope and message filters
/// (`from`, `to`, a transaction `status`, `subject`, `messageID`) must hold for one and the same
/// transaction. Results are sessions, newest first.
public struct TraceQuery: Sendable, Equatable {
    public var from: AddressPattern?
    public var to: AddressPattern?
    public var client: ClientRange?
    public var user: String?
    /// Microseconds since the epoch; sessions that started at or after it.
    public var since: Int64?
    /// Microseconds since the epoch; sessions that started before it.
    public var until: Int64?
    public var status: Status?
    public var rule: String?
    /// Found anywhere in the decoded Subject, without regard to case.
    public var subject: String?
    public var messageID: String?
    public var session: String?
    public var limit: Int

    public init(limit: Int = 100) {
        self.limit = limit
    }

    /// True when a filter reads a transaction, so a result lists only the transactions that matched.
    public var filtersTransactions: Bool {
        from != nil || to != nil || subject != nil || messageID != nil || status?.transactionOutcome != nil
    }
}

/// `--from`/`--to`: an address, matched whole and without regard to case, or `*@domain` (also
/// `@domain`) for every address at that domain. Nothing else is a wildcard: `%`, `_` and `*` in an
/// address are matched as themselves.
public enum AddressPattern: Sendable, Equatable {
    case address(String)
    case domain(String)

    public init(parsing text: String) {
        if text.hasPrefix("*@"), text.count > 2 {
            self = .domain(AddressKey.fold(String(text.dropFirst(2))))
        } else if text.hasPrefix("@"), text.count > 1 {
            self = .domain(AddressKey.fold(String(text.dropFirst())))
        } else {
            self = .address(AddressKey.key(text))
        }
    }
}

/// `--client IP|CIDR` as the block's first and last address (see `IPAddressBytes`).
public struct ClientRange: Sendable, Equatable {
    public var low: [UInt8]
    public var high: [UInt8]

    public init?(parsing text: String) {
        guard let range = IPAddressBytes.range(text) else { return nil }
        low = range.low
        high = range.high
    }
}

/// `--status`: a transaction outcome (delivered, rejected, tempfailed, aborted, discarded,
/// quarantined, unknown) or a session outcome (completed, tempfail, reset, timeout, server_closed,
/// tls_failed, incomplete). A transaction outcome is matched on transactions, and also on sessions
/// that had none with the same outcome (`rejected` finds a client refused at connect by a rule).
public struct Status: Sendable, Equatable {
    public var transactionOutcome: String?
    public var sessionOutcome: String?

    public init?(parsing text: String) {
        if let outcome = SessionRecord.TransactionOutcome(rawValue: text) {
            transactionOutcome = outcome.rawValue
            switch outcome {
            case .rejected: sessionOutcome = SessionRecord.SessionOutcome.rejected.rawValue
            case .tempfailed: sessionOutcome = SessionRecord.SessionOutcome.tempfail.rawValue
            default: sessionOutcome = nil
            }
        } else if let outcome = SessionRecord.SessionOutcome(rawValue: text) {
            transactionOutcome = nil
            sessionOutcome = outcome.rawValue
        } else {
            return nil
        }
    }

    public static let names: [String] = {
        var names = SessionRecord.TransactionOutcome.allCases.map(\.rawValue)
        for outcome in SessionRecord.SessionOutcome.allCases where !names.contains(outcome.rawValue) {
            names.append(outcome.rawValue)
        }
        return names
    }()
}

/// `--since`/`--until`/`--retain`: an RFC 3339 time, or an age such as `90d`, `24h`, `30m`, `2w`.
public enum TraceTime {
    /// Microseconds since the epoch; `now` is too.
    public static func parse(_ text: String, now: Int64) -> Int64? {
        if let age = age(text) { return now - age }
        return RFC3339.parse(text)?.microsecondsSinceEpoch
    }

    /// An age in microseconds: digits and one unit of s, m, h, d or w.
    public static func age(_ text: String) -> Int64? {
        guard let unit = text.last, text.count >= 2 else { return nil }
        let digits = text.dropLast()
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), let count = Int64(digits), count < 1 << 32 else { return nil }
        let seconds: Int64
        switch unit {
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3600
        case "d": seconds = 86_400
        case "w": seconds = 604_800
        default: return nil
        }
        return count * seconds * 1_000_000
    }
}
