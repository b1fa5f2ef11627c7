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
    /// The senders (folded, `""` the null sender) with the most transactions, and the recipient
    /// domains with the most recipients: `TraceSQL.topCount` of each.
    public var topSenders: [String: Int] = [:]
    public var topRecipientDomains: [String: Int] = [:]

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
        case .sender(let sender, let count):
            topSenders[sender, default: 0] += count
        case .recipientDomain(let domain, let count):
            topRecipientDomains[domain, default: 0] += count
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
    case sender(String, count: Int)
    case recipientDomain(String, count: Int)
}

extension TraceSQL {
    /// The grouped counts of `TraceStats` over sessions that started in [since, until).
    public struct StatsStatements: Sendable {
        /// Session outcomes.
        public var sessions: TraceStatement
        /// Transaction outcomes.
        public var messages: TraceStatement
        /// (deciding reply, deciding rule) of the transactions not delivered, the reply kept only
        /// for rejected and tempfailed ones.
        public var refusals: TraceStatement
        /// The senders (folded) and recipient domains with the most transactions and recipients.
        public var topSenders: TraceStatement
        public var topRecipientDomains: TraceStatement
        /// With a bucket width (microseconds): transactions per bucket of their session's start.
        public var buckets: TraceStatement?
    }

    /// How many senders and recipient domains `topSenders` and `topRecipientDomains` keep.
    public static let topCount = 10

    public static func statsStatements(since: Int64?, until: Int64?, bucket: Int64?, dialect: Dialect) -> StatsStatements {
        func period(_ column: String, _ builder: inout Builder) -> String {
            var conditions: [String] = []
            if let since { conditions.append("\(column) >= \(builder.bind(.integer(since)))") }
            if let until { conditions.append("\(column) < \(builder.bind(.integer(until)))") }
            return conditions.isEmpty ? "1 = 1" : conditions.joined(separator: " AND ")
        }
        func statement(_ make: (inout Builder) -> String) -> TraceStatement {
            var builder = Builder(dialect: dialect)
            let sql = make(&builder)
            return TraceStatement(sql: sql, arguments: builder.arguments)
        }
        return StatsStatements(
            sessions: statement { "SELECT outcome, count(*) FROM session WHERE \(period("start_us", &$0)) GROUP BY outcome" },
            messages: statement { "SELECT outcome, count(*) FROM message WHERE \(period("start_us", &$0)) GROUP BY outcome" },
            refusals: statement { builder in
                """
                SELECT CASE WHEN outcome IN ('rejected', 'tempfailed') THEN deciding_reply END AS reply, deciding_rule, count(*) \
                FROM message WHERE \(period("start_us", &builder)) \
                AND (outcome IN ('rejected', 'tempfailed') OR deciding_rule IS NOT NULL) \
                GROUP BY reply, deciding_rule
                """
            },
            topSenders: statement { builder in
                let condition = period("start_us", &builder)
                return "SELECT sender_key, count(*) AS n FROM message WHERE \(condition) AND sender_key IS NOT NULL "
                    + "GROUP BY sender_key ORDER BY n DESC, sender_key LIMIT \(builder.bind(.integer(Int64(topCount))))"
            },
            topRecipientDomains: statement { builder in
                let condition = period("start_us", &builder)
                return "SELECT domain, count(*) AS n FROM recipient WHERE \(condition) AND domain IS NOT NULL "
                    + "GROUP BY domain ORDER BY n DESC, domain LIMIT \(builder.bind(.integer(Int64(topCount))))"
            },
            buckets: bucket.flatMap { width in
                guard width > 0 else { return nil }
                // The width is bound before the period: its placeholder comes first in the text.
                return statement { builder in
                    let bound = builder.bind(.integer(width))
                    return "SELECT start_us / \(bound) AS bucket, count(*) FROM message WHERE \(period("start_us", &builder)) GROUP BY bucket"
                }
            }
        )
    }
}
