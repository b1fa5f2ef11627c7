import NIOCore
import SMTPCore
import SMTPTranscript

/// Builds the `smtpscope.session/1` record of one proxied session from the relay's events.
///
/// `SessionRecorder` settles the facts both modes share (greeting, HELO, transactions, message
/// summaries, AUTH, outcomes). The `events` list is kept here, because in proxy mode it holds both
/// legs: `client → proxy` commands, `proxy → client` replies, `proxy → server` commands and
/// `server → proxy` replies, in the order they happened.
struct ProxyTranscript: Sendable {
    /// Events kept per session; later ones are counted in an anomaly, not kept.
    static let maxEvents = 10_000
    /// Stages whose rule verdicts go in the record's top-level `rules`.
    static let sessionStages: Set<String> = ["connect", "helo", "auth"]

    private var recorder: SessionRecorder
    private let start: Timestamp
    private var events: [SessionRecord.Event] = []
    private var droppedEvents = 0
    private var clientContentOctets = 0
    private var close: SessionRecord.Close?
    private var verdicts: [SessionRecord.RuleVerdict] = []
    private var transactionOrdinal = -1
    private var verdictsByTransaction: [Int: [SessionRecord.RuleVerdict]] = [:]
    private var sessionVerdicts: [SessionRecord.RuleVerdict] = []
    private var settlements: [Int: SessionRecord.TransactionOutcome] = [:]
    private var rewrittenMailFrom: [Int: String] = [:]
    let sessionID: String
    let client: SessionRecord.Endpoint?
    private var upstreamTLS: SessionRecord.UpstreamTLS?
    /// `--client-tls passthrough` started: the octets relayed blind since, from each side.
    private var passthrough: (client: Int, server: Int)?
    var upstream: SessionRecord.Endpoint?

    init(sessionID: String, start: Timestamp, client: SessionRecord.Endpoint?, server: SessionRecord.Endpoint?, options: SessionRecorder.Options = SessionRecorder.Options()) {
        var options = options
        // Records never carry body text; only `message` rules read it, from the relay's own reading.
        options.messageLimits.maxBodyTextOctets = 0
        self.recorder = SessionRecorder(sessionID: sessionID, source: .proxy, start: start, client: client, server: server, options: options)
        self.start = start
        self.sessionID = sessionID
        self.client = client
    }

    mutating func noteClientOctets(_ count: Int) {
        recorder.noteClientOctets(count)
        passthrough?.client += count
    }

    mutating func noteServerOctets(_ count: Int) {
        recorder.noteServerOctets(count)
        passthrough?.server += count
    }

    /// The client leg's TLS as NIOSSL negotiated it or, under passthrough, as the end-to-end
    /// handshake went by.
    mutating func noteClientTLS(_ summary: TLSSummary, at time: Timestamp) {
        recorder.record(ConversationEvent(time: time, kind: .tlsSummary(summary)))
    }

    /// The upstream leg's TLS as NIOSSL negotiated it (or failed to), for `upstream_tls`. A failed
    /// handshake is an event too: the record says what the upstream leg carried.
    mutating func noteUpstreamTLS(_ tls: SessionRecord.UpstreamTLS, at time: Timestamp) {
        upstreamTLS = tls
        if let failure = tls.failure {
            append(max(0, time.microseconds(since: start)), .proxy, .server, "[TLS handshake failed: \(failure)]")
        }
    }

    mutating func record(_ event: RelaySessionStateMachine.RelayEvent, at time: Timestamp) {
        let t = max(0, time.microseconds(since: start))
        if case .client(.messageContent) = event {} else { flushClientContent(at: t) }
        switch event {
        case .client(let kind):
            switch kind {
            case .command(_, let command, let line):
                append(t, .client, .proxy, line)
                if case .mail = command { transactionOrdinal += 1 }
            case .invalidCommand(_, _, let line):
                append(t, .client, .proxy, line)
            case .saslResponse:
                append(t, .client, .proxy, "[redacted]")
            case .messageContent(let content):
                clientContentOctets += content.readableBytes
            case .authIdentity, .messageBegin, .messageEnd, .messageAbandoned, .tlsStarted, .tlsSummary, .anomaly, .reply:
                break
            }
            recorder.record(ConversationEvent(time: time, kind: kind))
        case .clientReply(let reply, let answering, _):
            for line in Self.lines(of: reply) { append(t, .proxy, .client, line) }
            recorder.record(ConversationEvent(time: time, kind: .reply(reply, answering: answering)))
        case .upstreamCommand(let line):
            append(t, .proxy, .server, line)
        case .upstreamContent(let octets):
            append(t, .proxy, .server, "[message content: \(octets) octets]", octets: octets)
        case .upstreamReply(let reply):
            for line in Self.lines(of: reply) { append(t, .server, .proxy, line) }
        case .upstreamTLSStarted:
            append(t, .proxy, .server, "[TLS established]")
        case .passthroughStarted:
            passthrough = (0, 0)
            append(t, .proxy, .client, "[TLS passthrough: octets relayed blind between client and server from here]")
            recorder.record(ConversationEvent(time: time, kind: .tlsStarted(implicit: false)))
        case .ruleVerdicts(let list):
            // connect, helo and auth rules belong to the session; the others to the transaction
            // the last MAIL opened.
            sessionVerdicts += list.filter { Self.sessionStages.contains($0.stage) }
            let transactional = list.filter { !Self.sessionStages.contains($0.stage) }
            if !transactional.isEmpty { verdictsByTransaction[transactionOrdinal, default: []] += transactional }
        case .mailFromRewritten(let path):
            rewrittenMailFrom[transactionOrdinal] = path.address
        case .transactionSettled(let outcome):
            settlements[transactionOrdinal] = outcome
        case .close(let by, let reason):
            if close == nil { close = SessionRecord.Close(by: by, reason: reason) }
        case .xclientRefused:
            // The refusal is in the events already, as the upstream's reply; this is for the log.
            break
        case .messageReadByRelay:
            recorder.messageReadElsewhere()
        case .messageRead(let summary):
            recorder.adoptMessageSummary(summary)
        case .messageTruncated:
            recorder.messageTruncated()
        }
    }

    mutating func finish(at time: Timestamp) -> SessionRecord {
        flushClientContent(at: max(0, time.microseconds(since: start)))
        if let passthrough {
            let t = max(0, time.microseconds(since: start))
            append(t, .client, .server, "[TLS passthrough: \(passthrough.client) octets relayed]")
            append(t, .server, .client, "[TLS passthrough: \(passthrough.server) octets relayed]")
        }
        var record = recorder.finish(at: time, close: close ?? SessionRecord.Close(by: nil, reason: .error))
        record.events = events
        if passthrough != nil { record.tls.mode = .passthrough }
        record.upstream = upstream
        record.upstreamTLS = upstreamTLS
        record.rules = sessionVerdicts
        for (index, list) in verdictsByTransaction where index >= 0 && index < record.transactions.count {
            record.transactions[index].rules = list
        }
        for (index, outcome) in settlements where index >= 0 && index < record.transactions.count {
            record.transactions[index].outcome = outcome
        }
        for (index, address) in rewrittenMailFrom where index >= 0 && index < record.transactions.count {
            record.transactions[index].mailFrom?.rewrittenTo = address
        }
        if droppedEvents > 0 {
            record.anomalies.append(SessionRecord.Anomaly(kind: "events_truncated", t: max(0, time.microseconds(since: start)), detail: "\(droppedEvents) events beyond \(Self.maxEvents) not kept"))
        }
        return record
    }

    /// Reply lines as on the wire; a SASL challenge (334) is never written out: it may hold secrets.
    private static func lines(of reply: SMTPReply) -> [String] {
        if reply.code == 334 { return ["334 [redacted]"] }
        var lines = reply.wireLines
        if reply.droppedLines > 0 { lines.append("[\(reply.droppedLines) more reply lines not kept]") }
        return lines
    }

    private mutating func flushClientContent(at t: Int64) {
        guard clientContentOctets > 0 else { return }
        append(t, .client, .proxy, "[message content: \(clientContentOctets) octets]", octets: clientContentOctets)
        clientContentOctets = 0
    }

    private mutating func append(_ t: Int64, _ from: SessionRecord.Party, _ to: SessionRecord.Party, _ text: String, octets: Int? = nil) {
        guard events.count < Self.maxEvents else {
            droppedEvents += 1
            return
        }
        events.append(SessionRecord.Event(t: t, from: from, to: to, text: text, octets: octets))
    }
}
