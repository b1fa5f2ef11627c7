/// Counts over a period, for the console's overview and `GET /api/stats`: sessions per outcome,
/// transactions per outcome, and the refused transactions (rejected or tempfailed) by cause (the
/// deciding reply's code and enhanced status code, RFC 3463) and by the smtpscope rule that
/// settled them (refused, discarded or quarantined by the proxy itself).
public struct TraceStats: Sendable, Equatable {
    public var sessions: [String: Int] = [:]
    public var messages: [String: Int] = [:]
    public var refusalsByCause: [String: Int] = [:]
    public var refusalsByRule: [String: Int] = [:]
    /// Transactions per time bucket, when asked for: the bucket's index (start_us / bucket
    /// width) to its count; buckets with none are absent.
    public var messagesPerBucket: [Int64: Int] = [:]

    public init() {}

    /// "550 5.7.1" from a deciding reply "550 5.7.1 Sender domain refused"; "550" when the reply has
    /// no enhanced code. The text is left out: it often names the address, so every refusal would be
    /// a cause of its own.
    public static func cause(ofDecidingReply reply: String) -> String {
        let words = reply.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard let code = words.first else { return reply }
        if words.count > 1, isEnhancedCode(words[1]) { return "\(code) \(words[1])" }
        return String(code)
    }

    private static func isEnhancedCode(_ word: Substring) -> Bool {
        let parts = word.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 3 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
    }

    /// Folds the grouped rows of `TraceSQL.statsStatements` into counts.
    mutating func add(_ row: TraceStatsRow) {
        switch row {
        case .session(let outcome, let count):
            sessions[outcome, default: 0] += count
        case .message(let outcome, let count):
            messages[outcome, default: 0] += count
        case .refusal(let reply, let rule, let count):
            if let reply { refusalsByCause[Self.cause(ofDecidingReply: reply), default: 0] += count }
            if let rule { refusalsByRule[rule, default: 0] += count }
        case .bucket(let bucket, let count):
            messagesPerBucket[bucket, default: 0] += count
        }
    }
}

/// One grouped row of the stats queries.
enum TraceStatsRow {
    case session(outcome: String, count: Int)
    case message(outcome: String, count: Int)
    /// Refused, discarded or quarantined transactions with this deciding reply and rule. Only the
    /// rejected and tempfailed ones have a cause; every one with a rule counts for it.
    case refusal(reply: String?, rule: String?, count: Int)
    case bucket(Int64, count: Int)
}

extension TraceSQL {
    /// The three grouped counts of `TraceStats` over sessions that started in [since, until):
    /// session outcomes; transaction outcomes; and (outcome, deciding reply, deciding rule) of the
    /// transactions that were not delivered, the reply kept only for rejected and tempfailed ones;
    /// with a bucket width (microseconds), a fourth: transactions per bucket of their session's start.
    public static func statsStatements(since: Int64?, until: Int64?, bucket: Int64?, dialect: Dialect) -> [TraceStatement] {
        func period(_ column: String, _ builder: inout Builder) -> String {
            var conditions: [String] = []
            if let since { conditions.append("\(column) >= \(builder.bind(.integer(since)))") }
            if let until { conditions.append("\(column) < \(builder.bind(.integer(until)))") }
            return conditions.isEmpty ? "1 = 1" : conditions.joined(separator: " AND ")
        }
        var sessions = Builder(dialect: dialect)
        let sessionsSQL = "SELECT outcome, count(*) FROM session WHERE \(period("start_us", &sessions)) GROUP BY outcome"
        var messages = Builder(dialect: dialect)
        let messagesSQL = "SELECT outcome, count(*) FROM message WHERE \(period("start_us", &messages)) GROUP BY outcome"
        var refusals = Builder(dialect: dialect)
        let refusalsSQL = """
            SELECT CASE WHEN outcome IN ('rejected', 'tempfailed') THEN deciding_reply END AS reply, deciding_rule, count(*) \
            FROM message WHERE \(period("start_us", &refusals)) \
            AND (outcome IN ('rejected', 'tempfailed') OR deciding_rule IS NOT NULL) \
            GROUP BY reply, deciding_rule
            """
        var statements = [
            TraceStatement(sql: sessionsSQL, arguments: sessions.arguments),
            TraceStatement(sql: messagesSQL, arguments: messages.arguments),
            TraceStatement(sql: refusalsSQL, arguments: refusals.arguments),
        ]
        if let bucket, bucket > 0 {
            var buckets = Builder(dialect: dialect)
            // The width is bound before the period: its placeholder comes first in the text.
            let width = buckets.bind(.integer(bucket))
            let bucketsSQL = "SELECT start_us / \(width) AS bucket, count(*) FROM message WHERE \(period("start_us", &buckets)) GROUP BY bucket"
            statements.append(TraceStatement(sql: bucketsSQL, arguments: buckets.arguments))
        }
        return statements
    }
}
