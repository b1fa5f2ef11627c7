/// A value bound to a statement's placeholder. Searched values only ever reach a database this
/// way, never inside the SQL text, so quotes, `%`, `_` and control characters are plain data.
public enum TraceValue: Sendable, Equatable {
    case text(String)
    case integer(Int64)
    case blob([UInt8])
}

/// A statement with its bound values, in the order of its placeholders.
public struct TraceStatement: Sendable, Equatable {
    public var sql: String
    public var arguments: [TraceValue]
}

/// The searches as SQL, the same for SQLite and PostgreSQL but for placeholders (`?` or `$n`) and
/// the substring function. The SQL text is built only from the constant fragments below; every
/// searched value is an argument. Equality on the folded keys (never LIKE) matches addresses and
/// domains, so no value needs escaping.
public enum TraceSQL {
    public enum Dialect: Sendable {
        case sqlite
        case postgres
    }

    /// Session ids, start times and records, newest first. `subjectTrigrams`: the SQLite index has
    /// the trigram table of subjects (`message_subject`, schema v2) to narrow `--subject` with.
    public static func search(_ query: TraceQuery, dialect: Dialect, subjectTrigrams: Bool = false) -> TraceStatement {
        var builder = Builder(dialect: dialect, subjectTrigrams: subjectTrigrams)
        var conditions: [String] = []
        if let session = query.session {
            conditions.append("s.id = \(builder.bind(.text(session)))")
        }
        if let since = query.since {
            conditions.append("s.start_us >= \(builder.bind(.integer(since)))")
        }
        if let until = query.until {
            conditions.append("s.start_us < \(builder.bind(.integer(until)))")
        }
        if let client = query.client {
            conditions.append("s.client_addr BETWEEN \(builder.bind(.blob(client.low))) AND \(builder.bind(.blob(client.high)))")
        }
        if let user = query.user {
            conditions.append("s.auth_user = \(builder.bind(.text(user)))")
        }
        if let rule = query.rule {
            conditions.append("s.id IN (SELECT v.session_id FROM verdict v WHERE v.rule = \(builder.bind(.text(rule))))")
        }
        if let status = query.status, status.transactionOutcome == nil, let outcome = status.sessionOutcome {
            conditions.append("s.outcome = \(builder.bind(.text(outcome)))")
        }
        if query.filtersTransactions {
            let matching = "s.id IN (" + matchingTransactions(query, &builder, select: "m.session_id") + ")"
            let onlyStatus = query.from == nil && query.to == nil && query.subject == nil && query.messageID == nil
            if onlyStatus, let outcome = query.status?.sessionOutcome {
                // A session refused before any transaction (a connect, helo or auth rule) has its
                // outcome only on the session.
                conditions.append("(\(matching) OR (s.outcome = \(builder.bind(.text(outcome))) AND NOT EXISTS (SELECT 1 FROM message n WHERE n.session_id = s.id)))")
            } else {
                conditions.append(matching)
            }
        }
        var sql = "SELECT s.id, s.start_us, s.record FROM session s"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += " ORDER BY s.start_us DESC, s.id DESC LIMIT \(builder.bind(.integer(Int64(max(query.limit, 0)))))"
        return TraceStatement(sql: sql, arguments: builder.arguments)
    }

    /// The positions of one session's transactions that match the query's transaction filters
    /// (the rows a table shows); nil when the query has none, and every transaction is shown.
    public static func matchingPositions(_ query: TraceQuery, session: String, dialect: Dialect, subjectTrigrams: Bool = false) -> TraceStatement? {
        guard query.filtersTransactions else { return nil }
        var builder = Builder(dialect: dialect, subjectTrigrams: subjectTrigrams)
        var sql = matchingTransactions(query, &builder, select: "DISTINCT m.txn")
        sql += " AND m.session_id = \(builder.bind(.text(session))) ORDER BY m.txn"
        return TraceStatement(sql: sql, arguments: builder.arguments)
    }

    /// `SELECT select FROM message m [JOIN recipient r] WHERE ...`: driven by the recipient index
    /// when `--to` is given, by the message table otherwise.
    private static func matchingTransactions(_ query: TraceQuery, _ builder: inout Builder, select: String) -> String {
        var from = "message m"
        var conditions: [String] = []
        if let to = query.to {
            from = "recipient r JOIN message m ON m.session_id = r.session_id AND m.txn = r.txn"
            switch to {
            case .address(let address): conditions.append("r.address_key = \(builder.bind(.text(address)))")
            case .domain(let domain): conditions.append("r.domain = \(builder.bind(.text(domain)))")
            }
            if let since = query.since { conditions.append("r.start_us >= \(builder.bind(.integer(since)))") }
            if let until = query.until { conditions.append("r.start_us < \(builder.bind(.integer(until)))") }
        } else {
            if let since = query.since { conditions.append("m.start_us >= \(builder.bind(.integer(since)))") }
            if let until = query.until { conditions.append("m.start_us < \(builder.bind(.integer(until)))") }
        }
        switch query.from {
        case .address(let address)?: conditions.append("m.sender_key = \(builder.bind(.text(address)))")
        case .domain(let domain)?: conditions.append("m.sender_domain = \(builder.bind(.text(domain)))")
        case nil: break
        }
        if let outcome = query.status?.transactionOutcome {
            conditions.append("m.outcome = \(builder.bind(.text(outcome)))")
        }
        if let subject = query.subject {
            let folded = AddressKey.fold(subject)
            if builder.subjectTrigrams, let phrase = SubjectTrigrams.phrase(folded) {
                // The trigram index finds the candidates; the substring test below decides.
                conditions.append("m.rowid IN (SELECT rowid FROM message_subject WHERE message_subject MATCH \(builder.bind(.text(phrase))))")
            }
            let needle = builder.bind(.text(folded))
            switch builder.dialect {
            case .sqlite: conditions.append("instr(m.subject_key, \(needle)) > 0")
            case .postgres: conditions.append("strpos(m.subject_key, \(needle)) > 0")
            }
        }
        if let messageID = query.messageID {
            conditions.append("m.message_id = \(builder.bind(.text(MessageIDKey.key(messageID))))")
        }
        if conditions.isEmpty { conditions.append("1 = 1") }
        return "SELECT \(select) FROM \(from) WHERE " + conditions.joined(separator: " AND ")
    }

    /// Numbers placeholders as the dialect writes them and keeps the values in order.
    struct Builder {
        let dialect: Dialect
        var subjectTrigrams = false
        var arguments: [TraceValue] = []

        mutating func bind(_ value: TraceValue) -> String {
            arguments.append(value)
            switch dialect {
            case .sqlite: return "?"
            case .postgres: return "$\(arguments.count)"
            }
        }
    }
}

/// SQLite's FTS5 trigram tokenizer (SQLite 3.34) indexes every three characters of a subject, so a
/// substring of three characters or more is found through the index rather than by reading every
/// subject. A shorter one cannot be: it is found by the scan alone.
enum SubjectTrigrams {
    /// The needle as an FTS5 string (`"..."`, an inner quote doubled), so no character of it is
    /// read as query syntax; nil when it is too short for trigrams.
    static func phrase(_ needle: String) -> String? {
        guard needle.count >= 3 else { return nil }
        return "\"" + needle.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }
}
