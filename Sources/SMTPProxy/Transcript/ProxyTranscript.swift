import NIOCore
import SMTPCore
import SMTPTranscript

/// Builds the `smtpscope.session/1` record of one proxied session from the relay's events.
///
/// `SessionRecorder` settles the facts both modes share (greeting, HELO, transactions, message
/// summaries, AUTH, outcomes) and places the rules' verdicts by the command they decided. The
/// events are written here, into the recorder, because in proxy mode they show both legs:
/// `client → proxy` commands, `proxy → client` replies, `proxy → server` commands and
/// `server → proxy` replies, in the order they happened.
struct ProxyTranscript: Sendable {
    private var recorder: SessionRecorder
    private let start: Timestamp
    private var clientContentOctets = 0
    private var close: SessionRecord.Close?
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
        options.keepsDialogue = false
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
            recorder.appendEvent(at: time, from: .proxy, to: .server, text: "[TLS handshake failed: \(failure)]")
        }
    }

    mutating func record(_ event: RelaySessionStateMachine.RelayEvent, at time: Timestamp) {
        if case .client(.messageContent) = event {} else { flushClientContent(at: time) }
        func append(_ from: SessionRecord.Party, _ to: SessionRecord.Party, _ text: String, octets: Int? = nil) {
            recorder.appendEvent(at: time, from: from, to: to, text: text, octets: octets)
        }
        switch event {
        case .client(let kind):
            switch kind {
            case .command(_, _, let line), .invalidCommand(_, _, let line):
                append(.client, .proxy, line)
            case .saslResponse:
                append(.client, .proxy, "[redacted]")
            case .messageContent(let content):
                clientContentOctets += content.readableBytes
            case .authIdentity, .messageBegin, .messageEnd, .messageAbandoned, .tlsStarted, .tlsSummary, .anomaly, .reply:
                break
            }
            recorder.record(ConversationEvent(time: time, kind: kind))
        case .clientReply(let reply, let answering, _):
            for line in Self.lines(of: reply) { append(.proxy, .client, line) }
            recorder.record(ConversationEvent(time: time, kind: .reply(reply, answering: answering)))
        case .upstreamCommand(let line):
            append(.proxy, .server, line)
        case .upstreamContent(let octets):
            append(.proxy, .server, "[message content: \(octets) octets]", octets: octets)
        case .upstreamReply(let reply):
            for line in Self.lines(of: reply) { append(.server, .proxy, line) }
        case .upstreamTLSStarted:
            append(.proxy, .server, "[TLS established]")
        case .passthroughStarted:
            passthrough = (0, 0)
            append(.proxy, .client, "[TLS passthrough: octets relayed blind between client and server from here]")
            recorder.record(ConversationEvent(time: time, kind: .tlsStarted(implicit: false)))
        case .ruleVerdicts(let list, let command):
            recorder.attach(list, decidingCommand: command)
        case .mailFromRewritten(let path, let command):
            if let command { recorder.noteMailFromRewritten(path.address, command: command) }
        case .transactionSettled(let outcome, let command):
            recorder.settleTransaction(ofCommand: command, as: outcome)
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
        flushClientContent(at: time)
        if let passthrough {
            recorder.appendEvent(at: time, from: .client, to: .server, text: "[TLS passthrough: \(passthrough.client) octets relayed]")
            recorder.appendEvent(at: time, from: .server, to: .client, text: "[TLS passthrough: \(passthrough.server) octets relayed]")
        }
        var record = recorder.finish(at: time, close: close ?? SessionRecord.Close(by: nil, reason: .error))
        if passthrough != nil { record.tls.mode = .passthrough }
        record.upstream = upstream
        record.upstreamTLS = upstreamTLS
        return record
    }

    /// Reply lines as on the wire; a SASL challenge (334) is never written out: it may hold secrets.
    private static func lines(of reply: SMTPReply) -> [String] {
        if reply.code == 334 { return ["334 [redacted]"] }
        var lines = reply.wireLines
        if reply.droppedLines > 0 { lines.append("[\(reply.droppedLines) more reply lines not kept]") }
        return lines
    }

    private mutating func flushClientContent(at time: Timestamp) {
        guard clientContentOctets > 0 else { return }
        recorder.appendEvent(at: time, from: .client, to: .proxy, text: "[message content: \(clientContentOctets) octets]", octets: clientContentOctets)
        clientContentOctets = 0
    }
}
