import MailMessage
import NIOCore
import SMTPCore
import SMTPTranscript
import TCPReassembly

/// Turns reassembled TCP flows into SMTP session records (README, "How pcap mode reads a session"):
/// picks the flows that carry SMTP, feeds both directions to an `SMTPInspector`, and records each
/// session when its flow ends.
///
/// Pure: it sees flow events, never packets or files, so the same logic serves offline files and
/// live capture, and tests can drive it directly.
///
/// The work has two halves that only talk through `SessionStep`s: inspection (flows and their
/// `SMTPInspector`s) and recording (`SessionRecording`). `receive` runs both at once; `CaptureReader`
/// may run them on two threads, with the same steps in the same order and so the same records.
public struct CaptureSessionizer: Sendable {
    public let options: Options
    var inspection: SessionInspection
    var recording: SessionRecording
    private var steps: [SessionStep] = []

    /// Sessions recorded so far.
    public var sessionsRecorded: Int { inspection.sessionsRecorded }
    /// Flows that carried data but were not recognised as SMTP (so not recorded).
    public var unrecognisedFlows: Int { inspection.unrecognisedFlows }
    public var openSessions: Int { inspection.openSessions }

    public init(options: Options = Options(), sessionIDs: SessionIDGenerator = SessionIDGenerator()) {
        self.options = options
        self.inspection = SessionInspection(options: options)
        self.recording = SessionRecording(options: options.recorder, sessionIDs: sessionIDs)
    }

    public mutating func receive(_ event: FlowEvent, session: (CapturedSession) -> Void) {
        inspection.receive(event, into: &steps)
        for step in steps { recording.apply(step, record: session) }
        steps.removeAll(keepingCapacity: true)
    }

    public mutating func receive(_ event: FlowEvent, record: (SessionRecord) -> Void) {
        receive(event, session: { record($0.record) })
    }

    public struct Options: Sendable {
        /// Ports on which a flow is SMTP without looking at its content.
        public var ports: Set<UInt16> = [25, 465, 587, 2525]
        /// Ports where TLS starts at once (RFC 8314).
        public var implicitTLSPorts: Set<UInt16> = [465]
        /// Whether flows on other ports are recognised by their first bytes.
        public var detectOnOtherPorts = true
        public var limits = SMTPLimits()
        public var recorder = SessionRecorder.Options()

        public init() {}
    }

    /// Octets of another protocol (a SOCKS or HTTP CONNECT preamble) looked through for SMTP's
    /// start on a flow outside the SMTP ports.
    static let maxPreambleOctets = 4096
}

/// The inspection half of `CaptureSessionizer`: which flows are SMTP, and an `SMTPInspector` per
/// session. What the recorders must do comes out as `SessionStep`s, in order.
struct SessionInspection: Sendable {
    typealias Options = CaptureSessionizer.Options

    /// A flow that is not (yet) an SMTP session.
    private enum FlowState: Sendable {
        /// Not on an SMTP port: waiting for the first bytes to tell.
        case undecided(opened: Opened, preambleOctets: Int)
        /// Not SMTP, or not looked at; `carriedData` says whether it held any bytes.
        case ignored(carriedData: Bool)
    }

    private struct Opened: Sendable {
        var client: TCPEndpoint
        var server: TCPEndpoint
        var sawHandshake: Bool
        var time: Int64
    }

    private struct Session: Sendable {
        var id: FlowID
        var inspector: SMTPInspector
        /// True when the reassembler guessed the roles the wrong way round.
        var swapped: Bool
        var clientOctets = 0
        var serverOctets = 0
    }

    let options: Options
    /// SMTP sessions by flow, kept apart from the other flows so that each segment's session is
    /// updated in place rather than copied out of an enum and back.
    private var sessions: [FlowID: Session] = [:]
    private var flows: [FlowID: FlowState] = [:]

    /// Sessions ended so far.
    private(set) var sessionsRecorded = 0
    /// Flows with data that were never recognised as SMTP: said in the summary with the `--ports`
    /// hint, so that a session on an unexpected port is not lost without a word.
    private(set) var unrecognisedFlows = 0
    var openSessions: Int { sessions.count + flows.count }

    init(options: Options) {
        self.options = options
    }

    mutating func receive(_ event: FlowEvent, into steps: inout [SessionStep]) {
        switch event {
        case .opened(let id, let client, let server, let sawHandshake, let time):
            let opened = Opened(client: client, server: server, sawHandshake: sawHandshake, time: time)
            if options.ports.contains(server.port) {
                sessions[id] = startSession(id, opened, swapped: false, into: &steps)
            } else if options.ports.contains(client.port) && !sawHandshake {
                // A mid-session capture whose roles were guessed from ports the wrong way round.
                sessions[id] = startSession(id, opened, swapped: true, into: &steps)
            } else if options.detectOnOtherPorts {
                flows[id] = .undecided(opened: opened, preambleOctets: 0)
            } else {
                flows[id] = .ignored(carriedData: false)
            }
        case .data(let id, let direction, let bytes, let time):
            if let index = sessions.index(forKey: id) {
                Self.feed(&sessions.values[index], direction: direction, bytes: bytes, time: time, into: &steps)
                return
            }
            guard let state = flows[id] else { return }
            switch state {
            case .ignored(let carriedData):
                if !carriedData, bytes.readableBytes > 0 { flows[id] = .ignored(carriedData: true) }
                return
            case .undecided(let opened, let preamble):
                guard let (offset, swapped) = CaptureSessionizer.findStart(bytes, direction: direction, sawHandshake: opened.sawHandshake) else {
                    let seen = preamble + bytes.readableBytes
                    flows[id] = seen > CaptureSessionizer.maxPreambleOctets ? .ignored(carriedData: true) : .undecided(opened: opened, preambleOctets: seen)
                    return
                }
                var session = startSession(id, opened, swapped: swapped, into: &steps)
                var bytes = bytes
                bytes.moveReaderIndex(forwardBy: offset)
                let preamble = preamble + offset
                if preamble > 0 {
                    steps.append(.anomaly(
                        id,
                        kind: SMTPAnomalyKind.unparsedBytes.rawValue,
                        detail: "\(preamble) octets of another protocol (e.g. a SOCKS or HTTP CONNECT tunnel) before SMTP began",
                        time: Timestamp(microsecondsSinceEpoch: time)
                    ))
                }
                Self.feed(&session, direction: direction, bytes: bytes, time: time, into: &steps)
                flows[id] = nil
                sessions[id] = session
            }
        case .gap(let id, let direction, let missing, let time):
            guard let index = sessions.index(forKey: id) else { return }
            Self.receiveGap(&sessions.values[index], direction: direction, missing: missing, time: time, into: &steps)
        case .conflictingRetransmission(let id, let direction, let time):
            guard let index = sessions.index(forKey: id) else { return }
            let side = Self.side(direction, swapped: sessions.values[index].swapped)
            steps.append(.anomaly(
                id,
                kind: SMTPAnomalyKind.ambiguousRetransmission.rawValue,
                detail: "a retransmitted \(side == .client ? "client" : "server") segment carried different bytes; the first copy was kept",
                time: Timestamp(microsecondsSinceEpoch: time)
            ))
        case .closed(let id, let reason, let time):
            guard var session = sessions.removeValue(forKey: id) else {
                switch flows.removeValue(forKey: id) {
                case .ignored(carriedData: true):
                    unrecognisedFlows += 1
                case .undecided(_, let preambleOctets) where preambleOctets > 0:
                    unrecognisedFlows += 1
                default:
                    break
                }
                return
            }
            sessionsRecorded += 1
            finish(&session, reason: reason, time: time, into: &steps)
        }
    }

    private mutating func startSession(_ id: FlowID, _ opened: Opened, swapped: Bool, into steps: inout [SessionStep]) -> Session {
        let client = swapped ? opened.server : opened.client
        let server = swapped ? opened.client : opened.server
        let start = Timestamp(microsecondsSinceEpoch: opened.time)
        let implicitTLS = options.implicitTLSPorts.contains(server.port)
        // The recorder itself (session id, address text) is made by the recording half.
        steps.append(.start(id, SessionStart(client: client, server: server, time: start, sawHandshake: opened.sawHandshake, implicitTLS: implicitTLS)))
        return Session(
            id: id,
            inspector: SMTPInspector(limits: options.limits, startsAtBeginning: opened.sawHandshake, implicitTLS: implicitTLS),
            swapped: swapped
        )
    }
}

extension CaptureSessionizer {
    /// Recognises SMTP on a port outside the list: a server greeting (220, or the 421 and 554 of a
    /// server that refuses the session, RFC 5321 §3.1) or a client EHLO/HELO as the first bytes. Returns whether the roles must be swapped, or nil for not SMTP.
    static func recognise(_ bytes: ByteBuffer, direction: FlowDirection, sawHandshake: Bool) -> Bool? {
        recognise(bytes.readableBytesView.prefix(5), direction: direction, sawHandshake: sawHandshake)
    }

    /// Where SMTP starts in a chunk that may begin with the tail of another protocol (a SOCKS5
    /// reply is 10 binary octets followed at once by the greeting): the offset of the first
    /// greeting or hello within the first 512 octets, and whether roles are swapped.
    static func findStart(_ bytes: ByteBuffer, direction: FlowDirection, sawHandshake: Bool) -> (offset: Int, swapped: Bool)? {
        let view = bytes.readableBytesView
        let limit = min(view.count, 512)
        var offset = 0
        while offset + 4 <= limit {
            let start = view.index(view.startIndex, offsetBy: offset)
            let first = view[start]
            if first == UInt8(ascii: "2") || first == UInt8(ascii: "4") || first == UInt8(ascii: "5") || first == UInt8(ascii: "E") || first == UInt8(ascii: "H") || first == UInt8(ascii: "e") || first == UInt8(ascii: "h"),
                let swapped = recognise(view[start...].prefix(5), direction: direction, sawHandshake: sawHandshake)
            {
                return (offset, swapped)
            }
            offset += 1
        }
        return nil
    }

    private static func recognise(_ view: ByteBufferView, direction: FlowDirection, sawHandshake: Bool) -> Bool? {
        let text = String(decoding: view, as: UTF8.self).uppercased()
        let greeting = ["220", "421", "554"].contains { text.hasPrefix($0 + " ") || text.hasPrefix($0 + "-") }
        let hello = text.hasPrefix("EHLO ") || text.hasPrefix("HELO ")
        switch direction {
        case .serverToClient:
            if greeting { return false }
            if hello && !sawHandshake { return true }
        case .clientToServer:
            if hello { return false }
            if greeting && !sawHandshake { return true }
        }
        return nil
    }

}

extension SessionInspection {
    private static func side(_ direction: FlowDirection, swapped: Bool) -> SMTPInspector.Side {
        switch (direction, swapped) {
        case (.clientToServer, false), (.serverToClient, true): .client
        case (.serverToClient, false), (.clientToServer, true): .server
        }
    }

    private static func receiveGap(_ session: inout Session, direction: FlowDirection, missing: UInt64?, time: Int64, into steps: inout [SessionStep]) {
        let side = Self.side(direction, swapped: session.swapped)
        session.inspector.receiveGap(from: side, octets: missing, at: Timestamp(microsecondsSinceEpoch: time))
        drain(&session, into: &steps)
    }

    private static func feed(_ session: inout Session, direction: FlowDirection, bytes: ByteBuffer, time: Int64, into steps: inout [SessionStep]) {
        let stamp = Timestamp(microsecondsSinceEpoch: time)
        switch side(direction, swapped: session.swapped) {
        case .client:
            session.clientOctets += bytes.readableBytes
            steps.append(.clientOctets(session.id, bytes.readableBytes))
            session.inspector.receiveClientBytes(bytes, at: stamp)
        case .server:
            session.serverOctets += bytes.readableBytes
            steps.append(.serverOctets(session.id, bytes.readableBytes))
            session.inspector.receiveServerBytes(bytes, at: stamp)
        }
        drain(&session, into: &steps)
    }

    private static func drain(_ session: inout Session, into steps: inout [SessionStep]) {
        let events = session.inspector.drainEvents()
        if !events.isEmpty { steps.append(.events(session.id, events)) }
    }

    private func finish(_ session: inout Session, reason: FlowCloseReason, time: Int64, into steps: inout [SessionStep]) {
        let stamp = Timestamp(microsecondsSinceEpoch: time)
        switch reason {
        case .fin(let by):
            let first = Self.side(by, swapped: session.swapped)
            session.inspector.receiveClose(from: first, at: stamp)
            session.inspector.receiveClose(from: first == .client ? .server : .client, at: stamp)
        case .rst(let by, let finFrom):
            if let finFrom { session.inspector.receiveClose(from: Self.side(finFrom, swapped: session.swapped), at: stamp) }
            session.inspector.receiveClose(from: Self.side(by, swapped: session.swapped), at: stamp)
        case .idle, .endOfCapture:
            break
        }
        session.inspector.finish(at: stamp)
        Self.drain(&session, into: &steps)
        if session.clientOctets == 0 || session.serverOctets == 0 {
            let missing = session.serverOctets == 0 ? "server" : "client"
            steps.append(.anomaly(session.id, kind: SMTPAnomalyKind.oneSidedCapture.rawValue, detail: "no bytes from the \(missing) were captured", time: stamp))
            steps.append(.markIncomplete(session.id))
        }
        let close: SessionRecord.Close?
        switch reason {
        case .fin(let by):
            close = SessionRecord.Close(by: Self.party(by, swapped: session.swapped), reason: .fin)
        case .rst(_, let finFrom?) where Self.party(finFrom, swapped: session.swapped) == .server:
            // The server closed first (often after a 421); the reset that followed only tore
            // down the connection it had already ended.
            close = SessionRecord.Close(by: .server, reason: .fin)
        case .rst(let by, _):
            close = SessionRecord.Close(by: Self.party(by, swapped: session.swapped), reason: .rst)
        case .idle:
            close = SessionRecord.Close(by: nil, reason: .timeout)
        case .endOfCapture:
            close = nil
        }
        steps.append(.finish(session.id, time: stamp, close: close))
    }

    private static func party(_ direction: FlowDirection, swapped: Bool) -> SessionRecord.Party {
        side(direction, swapped: swapped) == .client ? .client : .server
    }
}

/// A session read from a capture: its record, and the readings of its whole messages that the record
/// does not keep (every header field, the decoded text), when the recorder was asked to keep them
/// (`SessionRecorder.Options.keepsMessageSummaries`).
public struct CapturedSession: Sendable {
    public var record: SessionRecord
    /// By transaction index in `record`.
    public var messages: [Int: MessageSummary]

    public init(record: SessionRecord, messages: [Int: MessageSummary] = [:]) {
        self.record = record
        self.messages = messages
    }
}
