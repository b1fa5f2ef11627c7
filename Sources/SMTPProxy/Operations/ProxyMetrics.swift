import CoreMetrics
import SMTPTranscript

/// The proxy's metrics through swift-metrics (exposed by `MetricsServer` as Prometheus text).
///
/// Names follow Prometheus conventions (`_total` counters, `_seconds` durations); every label
/// value comes from a closed set (outcomes, reply classes, rule actions), so series stay bounded.
public final class ProxyMetrics: Sendable {
    private let factory: any MetricsFactory
    private let activeConnections: Meter
    private let upstreamReplyTime: CoreMetrics.Timer

    /// `factory` defaults to the bootstrapped `MetricsSystem`; tests pass their own.
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        activeConnections = Meter(label: "smtpscope_active_connections", factory: factory)
        upstreamReplyTime = CoreMetrics.Timer(label: "smtpscope_upstream_reply_seconds", factory: factory)
    }

    func connectionOpened() { activeConnections.increment() }
    func connectionClosed() { activeConnections.decrement() }

    /// A connection closed before a session: over a limit, or a bad PROXY protocol header.
    func connectionRefused(reason: String) {
        count("smtpscope_connections_refused_total", ["reason": reason])
    }

    /// The outcome of one part of a SIGHUP reload (`tls`, `rules`).
    public func reloaded(_ part: String, succeeded: Bool) {
        count("smtpscope_reloads_total", ["part": part, "result": succeeded ? "success" : "failure"])
    }

    /// A finished session's record.
    public func observe(_ record: SessionRecord) {
        observe(SessionMeasurements(record: record))
    }

    func observe(_ measurements: SessionMeasurements) {
        count("smtpscope_sessions_total", ["outcome": measurements.sessionOutcome])
        for outcome in measurements.transactionOutcomes {
            count("smtpscope_messages_total", ["outcome": outcome])
        }
        count("smtpscope_bytes_total", ["from": "client"], by: measurements.clientOctets)
        count("smtpscope_bytes_total", ["from": "server"], by: measurements.serverOctets)
        for (reply, number) in measurements.replies {
            count("smtpscope_replies_total", ["leg": reply.leg, "class": reply.codeClass], by: number)
        }
        for (verdict, number) in measurements.verdicts {
            count("smtpscope_rule_verdicts_total", ["action": verdict.action, "enforced": "\(verdict.enforced)"], by: number)
        }
        for microseconds in measurements.upstreamReplyLatencies {
            upstreamReplyTime.recordMicroseconds(microseconds)
        }
    }

    /// A sender limit counted `amount` (messages, recipients, sessions or octets). Labelled by the
    /// limit's name only, never by its key: names come from the rules, keys from clients.
    public func limitCounted(_ limit: String, amount: Int) {
        count("smtpscope_limit_counted_total", ["limit": limit], by: amount)
    }

    /// A stage was decided while a session's key was over the limit (whatever the rules then did:
    /// `smtpscope_rule_verdicts_total` says that).
    public func limitOver(_ limit: String) {
        count("smtpscope_limit_over_total", ["limit": limit])
    }

    private func count(_ label: String, _ dimensions: KeyValuePairs<String, String>, by amount: Int = 1) {
        guard amount > 0 else { return }
        Counter(label: label, dimensions: dimensions.map { ($0.key, $0.value) }, factory: factory).increment(by: amount)
    }
}
