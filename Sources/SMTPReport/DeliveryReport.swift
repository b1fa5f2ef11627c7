import SMTPCore
import SMTPTranscript

/// The troubleshooting summary of README "The report": what was delivered, what failed, at which stage,
/// with which reply (RFC 5321 §4.2) and enhanced status code (RFC 3463), why, and what to do; stalls
/// and the slowest replies; TLS failures and downgrades; resets, timeouts and server closes; capture
/// damage; anomalies.
///
/// Sessions are added one at a time. Counts are exact; detailed lists keep at most
/// `ReportOptions.maxListed` entries each, so memory does not grow with the input.
public struct DeliveryReport: Sendable {
    public let options: ReportOptions

    // Input.
    var files = 0
    var skippedRecords = 0
    /// TCP flows of a capture that carried data but were not recognised as SMTP.
    var unrecognisedFlows = 0
    /// Captures that ended mid-packet, as said by the reader.
    var truncations: [String] = []
    var sessions = 0
    var sources: [SessionRecord.Source: Int] = [:]
    var firstStart: Int64?
    var lastEnd: Int64?

    // Outcomes.
    var sessionOutcomes: [SessionRecord.SessionOutcome: Int] = [:]
    var transactionOutcomes: [SessionRecord.TransactionOutcome: Int] = [:]
    var partialDeliveries = 0
    var recipientsAccepted = 0
    var recipientsRefusedPermanently = 0
    var recipientsRefusedTemporarily = 0

    // Failures, by cause.
    var failures: [FailureCause: BoundedList<DeliveryFailure>] = [:]
    var temporaryFailures: [FailureCause: Int] = [:]

    // Timing.
    var stalls: BoundedList<Stall>
    var slowest: [Stall] = []
    var repliesTimed = 0

    // TLS.
    var tlsModes: [SessionRecord.TLS.Mode: Int] = [:]
    var tlsEstablished = 0
    var tlsVersions: BoundedCounter
    var tlsFailures: BoundedList<SessionNote>
    var tlsDowngrades: BoundedList<SessionNote>

    // Endings and capture damage.
    var endings: BoundedList<SessionNote>
    var captureProblems: BoundedList<SessionNote>
    var captureCounts: [String: Int] = [:]
    var anomalies: BoundedCounter
    /// Sessions where the server followed a non-standard end of data (`smuggling_suspected`).
    var smuggling: BoundedList<SessionNote>
    /// Encrypted sessions whose mail, if any, went inside TLS where no transaction can be seen.
    var mailInsideTLS = 0

    /// A slow or unanswered command.
    struct Stall: Sendable {
        var session: SessionReference
        var pair: CommandReplyPair
        /// Microseconds waited; up to the session's end when no reply came.
        var wait: Int64
        var answered: Bool

        init(session: SessionReference, pair: CommandReplyPair, wait: Int64, answered: Bool) {
            var pair = pair
            pair.command = pair.command.map { ReportText.clip($0, lines: 1) }
            if let text = pair.reply?.text { pair.reply?.text = ReportText.clip(text, lines: 1) }
            self.session = session
            self.pair = pair
            self.wait = wait
            self.answered = answered
        }
    }

    /// Which session, for a list entry.
    struct SessionReference: Sendable {
        var id: String
        var client: SessionRecord.Endpoint?
        var server: SessionRecord.Endpoint?
        var start: Int64

        init(_ record: SessionRecord) {
            id = record.sessionID
            client = record.client
            server = record.server
            start = record.start.microsecondsSinceEpoch
        }
    }

    /// A session and what is notable about it, as words.
    struct SessionNote: Sendable {
        var session: SessionReference
        /// Microseconds since the session's start, when the note has a moment.
        var t: Int64?
        var text: String

        init(session: SessionReference, t: Int64?, text: String) {
            self.session = session
            self.t = t
            self.text = ReportText.clip(text, lines: 1)
        }
    }

    /// Anomaly kinds that mean the capture, not the peers, lost or garbled something.
    static let captureAnomalyKinds = ["capture_gap", "ambiguous_retransmission", "unparsed_bytes", "one_sided_capture"]
    /// Anomaly kinds that mean STARTTLS was defeated or abused.
    static let downgradeAnomalyKinds = ["starttls_stripped", "plaintext_after_starttls"]

    public init(options: ReportOptions = .init()) {
        self.options = options
        stalls = BoundedList(capacity: options.maxListed)
        tlsVersions = BoundedCounter(capacity: options.maxDistinctNames)
        tlsFailures = BoundedList(capacity: options.maxListed)
        tlsDowngrades = BoundedList(capacity: options.maxListed)
        endings = BoundedList(capacity: options.maxListed)
        captureProblems = BoundedList(capacity: options.maxListed)
        anomalies = BoundedCounter(capacity: options.maxDistinctNames)
        smuggling = BoundedList(capacity: options.maxListed)
    }

    /// A capture file that ended mid-packet: what was before the cut was read, and a message cut
    /// there is incomplete.
    public mutating func noteTruncation(_ text: String) {
        if truncations.count < options.maxListed { truncations.append(text) }
    }

    /// Flows of a capture that were not read as SMTP: said with the `--ports` hint, so a session on
    /// an unexpected port is not lost without a word.
    public mutating func noteUnrecognisedFlows(_ count: Int) {
        unrecognisedFlows += max(0, count)
    }

    /// Counts one input file (transcript or capture) for the header.
    public mutating func noteFile() {
        files += 1
    }

    /// Counts records that could not be read (for example malformed transcript lines).
    public mutating func noteSkippedRecords(_ count: Int) {
        skippedRecords += max(0, count)
    }

    public mutating func add(_ session: SessionRecord) {
        let reference = SessionReference(session)
        sessions += 1
        sources[session.source, default: 0] += 1
        sessionOutcomes[session.outcome, default: 0] += 1
        let start = session.start.microsecondsSinceEpoch
        let end = session.end?.microsecondsSinceEpoch ?? (start &+ (session.events.last?.t ?? 0))
        firstStart = min(firstStart ?? start, start)
        lastEnd = max(lastEnd ?? end, end)

        addTransactions(session)
        let pairs = ReplyPairing.pair(session)
        for var failure in DeliveryFailure.extract(from: session, pairs: pairs) {
            failure.command = ReportText.clip(failure.command, lines: 1)
            if let text = failure.reply?.text {
                failure.reply?.text = ReportText.clip(text, lines: options.maxReplyLines)
            }
            failures[failure.cause, default: BoundedList(capacity: options.maxListed)].append(failure)
            if failure.isTemporary { temporaryFailures[failure.cause, default: 0] += 1 }
        }
        addTiming(pairs, session: reference, sessionLength: session.end.map { $0.microseconds(since: session.start) })
        addTLS(session, reference)
        addEnding(session, reference, pairs: pairs)
        addCaptureProblems(session, reference)
        for anomaly in session.anomalies {
            anomalies.add(anomaly.kind)
            if anomaly.kind == "smuggling_suspected" {
                smuggling.append(SessionNote(session: reference, t: anomaly.t, text: Self.describe(anomaly)))
            }
        }
        if session.transactions.isEmpty, session.tls.established == true, session.tls.mode != .none {
            mailInsideTLS += 1
        }
    }

    private mutating func addTransactions(_ session: SessionRecord) {
        for transaction in session.transactions {
            transactionOutcomes[transaction.outcome, default: 0] += 1
            var refused = 0
            for recipient in transaction.rcptTo {
                guard let reply = recipient.reply else { continue }
                if ReplyCode(reply.code).isPositiveCompletion {
                    recipientsAccepted += 1
                } else if ReplyCode(reply.code).isTransientNegative {
                    recipientsRefusedTemporarily += 1
                    refused += 1
                } else if ReplyCode(reply.code).isNegative {
                    recipientsRefusedPermanently += 1
                    refused += 1
                }
            }
            if transaction.outcome == .delivered, refused > 0 { partialDeliveries += 1 }
        }
    }

    private mutating func addTiming(_ pairs: [CommandReplyPair], session: SessionReference, sessionLength: Int64?) {
        for pair in pairs where !pair.isUnsolicited {
            if let wait = pair.wait {
                repliesTimed += 1
                let stall = Stall(session: session, pair: pair, wait: wait, answered: true)
                if wait >= options.stallThreshold { stalls.append(stall) }
                rememberIfSlow(stall)
            } else if let sessionLength, sessionLength &- pair.sentAt >= options.stallThreshold {
                stalls.append(Stall(session: session, pair: pair, wait: sessionLength &- pair.sentAt, answered: false))
            }
        }
    }

    /// Keeps the `slowestReplies` longest waits, longest first; ties keep the earlier one.
    private mutating func rememberIfSlow(_ stall: Stall) {
        let limit = options.slowestReplies
        guard limit > 0 else { return }
        if slowest.count == limit, let last = slowest.last, last.wait >= stall.wait { return }
        let position = slowest.firstIndex { $0.wait < stall.wait } ?? slowest.count
        slowest.insert(stall, at: position)
        if slowest.count > limit { slowest.removeLast() }
    }

    private mutating func addTLS(_ session: SessionRecord, _ reference: SessionReference) {
        let tls = session.tls
        tlsModes[tls.mode, default: 0] += 1
        if tls.established == true { tlsEstablished += 1 }
        if let version = tls.version { tlsVersions.add(version) }
        if tls.failure != nil || session.outcome == .tlsFailed {
            var text = "\(tls.mode.rawValue) handshake failed"
            if let failure = tls.failure { text += ": \(failure)" }
            if let sni = tls.sni { text += " (SNI \(sni))" }
            tlsFailures.append(SessionNote(session: reference, t: nil, text: text))
        }
        for anomaly in session.anomalies where Self.downgradeAnomalyKinds.contains(anomaly.kind) {
            tlsDowngrades.append(SessionNote(session: reference, t: anomaly.t, text: Self.describe(anomaly)))
        }
    }

    private mutating func addEnding(_ session: SessionRecord, _ reference: SessionReference, pairs: [CommandReplyPair]) {
        switch session.outcome {
        case .reset, .timeout, .serverClosed: break
        case .incomplete, .tlsFailed, .rejected, .tempfail, .completed: return
        }
        var text = session.outcome.rawValue
        if let close = session.close {
            text += ": \(close.reason.rawValue)"
            if let by = close.by { text += " by \(by.rawValue)" }
        }
        if let last = pairs.last(where: { !$0.isUnsolicited && $0.command != nil }) {
            if last.reply != nil {
                text += "; last command \(last.command ?? "")"
            } else if let answer = DeliveryFailure.answerWithoutCode(session, after: last.sentAt) {
                text += "; \(last.command ?? "") answered without a reply code: \(answer)"
            } else {
                text += "; \(last.command ?? "") unanswered"
            }
        }
        if let reply = pairs.last(where: { $0.reply != nil })?.reply {
            text += "; last reply \(reply.code)\(reply.enhanced.map { " " + $0 } ?? "")"
        }
        if session.transactions.last?.isBrokenOff == true, !pairs.contains(where: { $0.reply?.code == 421 }) {
            text += "; the message was broken off before its end of data"
        }
        endings.append(SessionNote(session: reference, t: nil, text: text))
    }

    private mutating func addCaptureProblems(_ session: SessionRecord, _ reference: SessionReference) {
        var listed = false
        for anomaly in session.anomalies where Self.captureAnomalyKinds.contains(anomaly.kind) {
            captureCounts[anomaly.kind, default: 0] += 1
            captureProblems.append(SessionNote(session: reference, t: anomaly.t, text: Self.describe(anomaly)))
            listed = true
        }
        if session.outcome == .incomplete {
            captureCounts["incomplete", default: 0] += 1
            if !listed {
                captureProblems.append(SessionNote(session: reference, t: nil, text: "session incomplete: the capture lost bytes that matter"))
            }
        }
    }

    private static func describe(_ anomaly: SessionRecord.Anomaly) -> String {
        anomaly.kind + (anomaly.detail.map { ": " + $0 } ?? "")
    }
}
