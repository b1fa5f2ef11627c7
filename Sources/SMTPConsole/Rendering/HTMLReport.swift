import MessageTrace
import SMTPTranscript

/// `smtpscope pcap --report-format html`: one self-contained HTML file to attach to a ticket. The
/// counts as the console's Overview draws them, the troubleshooting report's text, and a ladder
/// for each session that did not go through (up to `maximumLadders`). No script at all: the
/// stylesheet is inline, and the file's own Content-Security-Policy forbids any script, so
/// a value from mail that escaped its escaping still could not run when the file is opened.
public struct HTMLReport: Sendable {
    public static let maximumLadders = 50

    var stats = TraceStats()
    var sessions = 0
    var failing: [SessionRecord] = []
    var failingCount = 0

    public init() {}

    /// A session "did not go through" when it did not end `completed`, or a message in it was not
    /// delivered (refused, tempfailed, aborted, lost in the capture).
    public static func isFailing(_ record: SessionRecord) -> Bool {
        record.outcome != .completed || record.transactions.contains { $0.outcome != .delivered }
    }

    public mutating func add(_ record: SessionRecord) {
        sessions += 1
        stats.sessions[record.outcome.rawValue, default: 0] += 1
        // The index's own reading of each transaction: the same deciding reply and rule.
        for message in IndexedSession(record, line: "").messages {
            stats.messages[message.outcome, default: 0] += 1
            let refused = message.outcome == "rejected" || message.outcome == "tempfailed"
            if refused, let reply = message.decidingReply {
                stats.refusalsByCause[TraceStats.cause(ofDecidingReply: reply), default: 0] += 1
            }
            if let rule = message.decidingRule { stats.refusalsByRule[rule, default: 0] += 1 }
        }
        guard Self.isFailing(record) else { return }
        failingCount += 1
        if failing.count < Self.maximumLadders { failing.append(record) }
    }

    /// The whole file; `text` is the troubleshooting report as `--report` prints it.
    public func render(text: String) -> HTML {
        func bars(_ counts: [String: Int], kind: (String) -> String) -> HTML {
            Charts.bars(counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { Charts.Bar(label: $0.key, value: $0.value, kind: kind($0.key)) }, title: "counts")
        }
        var ladders: HTML = .empty
        for record in failing {
            let row = SessionRow(record)
            ladders += """
                <section class="failing"><h3>Session <span class="id">\(record.sessionID)</span>: \
                <span class="outcome o-\(record.outcome.rawValue)">\(record.outcome.rawValue)</span></h3>\
                <p>\(row.start), client \(row.client), from \(row.senders.isEmpty ? "(no MAIL)" : row.senders)\
                \(row.recipients.isEmpty ? "" : " to " + row.recipients)</p>\
                \(LadderSVG.render(Ladder(record), title: "Dialogue of session \(record.sessionID)"))</section>
                """
        }
        let more: HTML = failingCount > failing.count
            ? "<p class=\"note\">\(failingCount - failing.count) more sessions did not go through; their ladders are left out (the text report lists them).</p>"
            : .empty
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">\
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">\
            <title>smtpscope report</title><style>\(HTML(trustedStyle: ConsoleStyle.source))</style></head>
            <body><header><span class="brand">smtpscope</span> report</header><main>
            <h1>Troubleshooting report</h1>
            <p class="summary">\(sessions) session\(sessions == 1 ? "" : "s"); \(failingCount) did not go through.</p>
            <div class="charts">\
            <section class="chart-box"><h2>Sessions by outcome</h2>\(bars(stats.sessions) { "o-\($0)" })</section>\
            <section class="chart-box"><h2>Messages by outcome</h2>\(bars(stats.messages) { "o-\($0)" })</section>\
            <section class="chart-box"><h2>Refusals by cause</h2>\(bars(stats.refusalsByCause) { $0.hasPrefix("4") ? "r4xx" : "r5xx" })</section>\
            </div>
            <h2>Sessions that did not go through</h2>\(SessionPage.legend)\(ladders)\(more)
            <h2>The report</h2><pre class="report">\(text)</pre>
            </main></body></html>

            """
    }
}
