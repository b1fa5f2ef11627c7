import SMTPCore
import SMTPTranscript
import TCPReassembly

/// One thing a session's recorder must do, as the inspection half of `CaptureSessionizer` found it.
/// Steps are applied in the order they were made, so a recorder sees exactly the calls it would
/// have seen had inspection called it directly.
enum SessionStep: Sendable {
    /// A new session.
    case start(FlowID, SessionStart)
    case clientOctets(FlowID, Int)
    case serverOctets(FlowID, Int)
    case anomaly(FlowID, kind: String, detail: String, time: Timestamp)
    case markIncomplete(FlowID)
    /// The inspector's events, in order.
    case events(FlowID, [ConversationEvent])
    /// The flow ended: finish the record and hand it out.
    case finish(FlowID, time: Timestamp, close: SessionRecord.Close?)

    /// Events the step carries and the message content octets they hold on to (slices of capture
    /// buffers), for bounding how much a queue of steps keeps alive.
    var weight: (events: Int, octets: Int) {
        guard case .events(_, let events) = self else { return (1, 0) }
        var octets = 0
        for event in events {
            if case .messageContent(let content) = event.kind { octets += content.readableBytes }
        }
        return (events.count, octets)
    }
}

/// What is known of a session when its flow opens.
struct SessionStart: Sendable {
    var client: TCPEndpoint
    var server: TCPEndpoint
    var time: Timestamp
    /// False when the capture began after the connection was opened.
    var sawHandshake: Bool
    var implicitTLS: Bool
}

/// The recording half of `CaptureSessionizer`: a `SessionRecorder` per open session, driven by
/// `SessionStep`s. Session ids are drawn here, in the order the sessions started.
struct SessionRecording: Sendable {
    private let options: SessionRecorder.Options
    private var sessionIDs: SessionIDGenerator
    private var recorders: [FlowID: SessionRecorder] = [:]

    init(options: SessionRecorder.Options, sessionIDs: SessionIDGenerator) {
        self.options = options
        self.sessionIDs = sessionIDs
    }

    mutating func apply(_ step: SessionStep, record: (CapturedSession) -> Void) {
        // Recorders are large values: they are changed where they sit in the dictionary
        // (`values[index]`), never moved out into an optional and back.
        switch step {
        case .start(let id, let start):
            recorders[id] = makeRecorder(start)
        case .clientOctets(let id, let octets):
            guard let index = recorders.index(forKey: id) else { return }
            recorders.values[index].noteClientOctets(octets)
        case .serverOctets(let id, let octets):
            guard let index = recorders.index(forKey: id) else { return }
            recorders.values[index].noteServerOctets(octets)
        case .anomaly(let id, let kind, let detail, let time):
            guard let index = recorders.index(forKey: id) else { return }
            recorders.values[index].noteAnomaly(kind, detail, at: time)
        case .markIncomplete(let id):
            guard let index = recorders.index(forKey: id) else { return }
            recorders.values[index].markIncomplete()
        case .events(let id, let events):
            guard let index = recorders.index(forKey: id) else { return }
            for event in events { recorders.values[index].record(event) }
        case .finish(let id, let time, let close):
            guard var recorder = recorders.removeValue(forKey: id) else { return }
            record(CapturedSession(record: recorder.finish(at: time, close: close), messages: recorder.messageSummaries))
        }
    }

    private mutating func makeRecorder(_ start: SessionStart) -> SessionRecorder {
        var recorder = SessionRecorder(
            sessionID: sessionIDs.next(at: start.time),
            source: .pcap,
            start: start.time,
            client: SessionRecord.Endpoint(ip: start.client.address.description, port: Int(start.client.port)),
            server: SessionRecord.Endpoint(ip: start.server.address.description, port: Int(start.server.port)),
            options: options
        )
        if !start.sawHandshake {
            recorder.markIncomplete()
            recorder.noteAnomaly(SMTPAnomalyKind.captureGap.rawValue, "the capture starts after the connection was opened", at: start.time)
        }
        // An implicit-TLS port's mode comes with the handshake the inspector saw (its TLS
        // summary): a plaintext session on that port is not TLS.
        return recorder
    }
}
