import SMTPTranscript

/// What one finished session adds to the proxy's metrics, read from its `smtpscope.session/1`
/// record. Pure, so the derivation is tested without a metrics backend.
public struct SessionMeasurements: Sendable, Equatable {
    /// A reply's class: "2xx" ... "5xx" (RFC 5321 §4.2.1), and the leg it went over.
    public struct ReplyClass: Sendable, Hashable {
        /// `client` (proxy → client) or `upstream` (server → proxy).
        public var leg: String
        public var codeClass: String
    }

    /// A rule's verdict: its action and whether it was enforced.
    public struct Verdict: Sendable, Hashable {
        public var action: String
        public var enforced: Bool
    }

    public var sessionOutcome: String
    public var transactionOutcomes: [String]
    public var clientOctets: Int
    public var serverOctets: Int
    public var replies: [ReplyClass: Int]
    public var verdicts: [Verdict: Int]
    /// Microseconds from each command the proxy sent upstream to the upstream's reply to it.
    public var upstreamReplyLatencies: [Int64]

    public init(record: SessionRecord) {
        sessionOutcome = record.outcome.rawValue
        transactionOutcomes = record.transactions.map(\.outcome.rawValue)
        clientOctets = record.bytes.client
        serverOctets = record.bytes.server
        var verdicts: [Verdict: Int] = [:]
        for verdict in record.rules + record.transactions.flatMap(\.rules) {
            verdicts[Verdict(action: verdict.action, enforced: verdict.enforced), default: 0] += 1
        }
        self.verdicts = verdicts
        (replies, upstreamReplyLatencies) = Self.replyMeasurements(record.events)
    }

    /// Pairs upstream replies with the proxy's commands in order (RFC 2920 §3: replies come in
    /// command order). The upstream's greeting answers no command; message content is paired with
    /// the reply to its end of data only after DATA (a BDAT chunk's reply answers the BDAT line).
    static func replyMeasurements(_ events: [SessionRecord.Event]) -> (replies: [ReplyClass: Int], latencies: [Int64]) {
        var replies: [ReplyClass: Int] = [:]
        var latencies: [Int64] = []
        // Send times of commands awaiting a reply; bounded by the record's event limit.
        var pending: [Int64] = []
        var next = 0
        var lastCommandWasDATA = false
        var contentAwaitsReply = false
        for event in events {
            switch (event.from, event.to) {
            case (.proxy, .server):
                if event.octets != nil {
                    // Content after DATA's 354: its end of data gets the next reply.
                    if lastCommandWasDATA {
                        pending.append(event.t)
                        contentAwaitsReply = true
                    }
                    lastCommandWasDATA = false
                } else if event.text == "." && contentAwaitsReply {
                    // The end-of-data line, recorded after the content: the reply clock starts here.
                    pending[pending.count - 1] = event.t
                    contentAwaitsReply = false
                } else if !event.text.hasPrefix("[") || event.text == "[redacted]" {
                    // Notes such as "[TLS established]" are not commands; a redacted SASL line is.
                    pending.append(event.t)
                    lastCommandWasDATA = event.text.uppercased() == "DATA"
                    contentAwaitsReply = false
                }
            case (.server, .proxy):
                guard let codeClass = finalReplyClass(event.text) else { continue }
                replies[ReplyClass(leg: "upstream", codeClass: codeClass), default: 0] += 1
                if next < pending.count {
                    latencies.append(max(0, event.t - pending[next]))
                    next += 1
                }
            case (.proxy, .client):
                if let codeClass = finalReplyClass(event.text) {
                    replies[ReplyClass(leg: "client", codeClass: codeClass), default: 0] += 1
                }
            default:
                continue
            }
        }
        return (replies, latencies)
    }

    /// "2xx" for the last line of a reply (`250 ok`, `250`), nil for a continuation line (`250-`)
    /// or anything that is not a reply line.
    static func finalReplyClass(_ line: String) -> String? {
        let octets = Array(line.utf8.prefix(4))
        guard octets.count >= 3, (UInt8(ascii: "2")...UInt8(ascii: "5")).contains(octets[0]),
              octets[1...2].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              octets.count == 3 || octets[3] == UInt8(ascii: " ") else { return nil }
        return "\(Character(Unicode.Scalar(octets[0])))xx"
    }
}
