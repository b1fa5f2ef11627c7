import MessageTrace
import SMTPCore
import SMTPTranscript

/// The Overview page: over a chosen period, messages over time, sessions and messages by
/// outcome, the refusals by cause and by rule, the top senders and recipient domains, as
/// server-drawn bar charts.
public enum OverviewPage {
    /// The periods offered, each with the width of its time chart's bars.
    public enum Period: String, Sendable, CaseIterable {
        case hour = "1h"
        case day = "24h"
        case week = "7d"
        case month = "30d"

        static let minute: Int64 = 60_000_000

        public var length: Int64 { TraceTime.age(rawValue) ?? 0 }

        /// 60 to 96 bars: a minute each over an hour, a quarter of an hour over a day, two hours
        /// over a week, twelve hours over thirty days.
        public var bucket: Int64 {
            switch self {
            case .hour: return Self.minute
            case .day: return 15 * Self.minute
            case .week: return 120 * Self.minute
            case .month: return 720 * Self.minute
            }
        }

        var bucketName: String {
            switch self {
            case .hour: return "minute"
            case .day: return "15 minutes"
            case .week: return "2 hours"
            case .month: return "12 hours"
            }
        }
    }

    public static func render(_ stats: TraceStats, period: Period, now: Int64, csrf: String) -> HTML {
        var choices: [HTML] = []
        for choice in Period.allCases {
            choices.append(choice == period
                ? "<strong>\(choice.rawValue)</strong>"
                : "<a href=\"/overview?period=\(choice.rawValue)\">\(choice.rawValue)</a>")
        }
        // The chart starts at the bucket holding the period's first moment and ends with now's.
        let start = now - period.length
        let count = Int((now / period.bucket) - (start / period.bucket)) + 1
        let timeline = Charts.timeline(stats.messagesPerBucket, start: start, bucket: period.bucket, count: count,
                                       title: "Messages per \(period.bucketName)") { minuteText($0) }
        func bars(_ counts: [String: Int], kind: (String) -> String) -> [Charts.Bar] {
            counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { Charts.Bar(label: $0.key, value: $0.value, kind: kind($0.key)) }
        }
        let total = stats.messages.values.reduce(0, +)
        return Page.document(title: "Overview", csrf: csrf, body: """
            <h1>Overview</h1>
            <p class="periods">Period: \(HTML.joined(choices, separator: " · ")) (sessions that started since \(minuteText(start)), UTC)</p>
            <section class="chart-box"><h2>Messages per \(period.bucketName)</h2><p class="note">\(total) messages (transactions) in the period.</p>\(timeline)</section>
            <div class="charts">\
            <section class="chart-box"><h2>Sessions by outcome</h2>\(Charts.bars(bars(stats.sessions) { "o-\($0)" }, title: "Sessions by outcome"))</section>\
            <section class="chart-box"><h2>Messages by outcome</h2>\(Charts.bars(bars(stats.messages) { "o-\($0)" }, title: "Messages by outcome"))</section>\
            <section class="chart-box"><h2>Refusals by cause</h2>\
            <p class="note">Rejected and tempfailed messages by the deciding reply's code (RFC 3463 enhanced code when given).</p>\
            \(Charts.bars(bars(stats.refusalsByCause) { $0.hasPrefix("4") ? "r4xx" : "r5xx" }, title: "Refusals by cause"))</section>\
            <section class="chart-box"><h2>Refusals by rule</h2>\
            <p class="note">Messages an smtpscope rule rejected, tempfailed, discarded or quarantined.</p>\
            \(Charts.bars(bars(stats.refusalsByRule) { _ in "rule" }, title: "Refusals by rule"))</section>\
            <section class="chart-box"><h2>Top senders</h2><p class="note">Messages per sender (MAIL FROM, without regard to case).</p>\
            \(Charts.bars(bars(Dictionary(uniqueKeysWithValues: stats.topSenders.map { ($0.key.isEmpty ? "<>" : $0.key, $0.value) })) { _ in "" }, title: "Top senders"))</section>\
            <section class="chart-box"><h2>Top recipient domains</h2><p class="note">Recipients (RCPT TO) per domain.</p>\
            \(Charts.bars(bars(stats.topRecipientDomains) { _ in "" }, title: "Top recipient domains"))</section></div>
            """)
    }

    /// "2026-01-10T12:00Z".
    static func minuteText(_ microseconds: Int64) -> String {
        String(RFC3339.format(Timestamp(microsecondsSinceEpoch: microseconds)).prefix(16)) + "Z"
    }
}
