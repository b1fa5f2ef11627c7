import NIOCore
import SMTPCore
import SMTPTranscript
import TCPReassembly

/// Turns reassembled TCP flows into SMTP session records (DESIGN §6): picks the flows that carry
/// SMTP, feeds both directions to an `SMTPInspector`, and records each session when its flow ends.
///
/// Pure: it sees flow events, never packets or files, so the same logic serves offline files and
/// live capture, and tests can drive it directly.
public struct CaptureSessionizer: Sendable {
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

    private enum FlowState: Sendable {
        /// Not on an SMTP port: waiting for the first bytes to tell.
        case undecided(opened: Opened, preambleOctets: Int)
        case smtp(Session)
        case ignored
    }

    private struct Opened: Sendable {
        var client: TCPEndpoint
        var server: TCPEndpoint
        var sawHandshake: Bool
        var time: Int64
    }

    private struct Session: Sendable {
        var inspector: SMTPInspector
        var recorder: SessionRecorder
        /// True when the reassembler guessed the roles the wrong way round.
        var swapped: Bool
        var clientOctets = 0
        var serverOctets = 0
    }

    public let options: Options
    private var flows: [FlowID: FlowState] = [:]
    private var sessionIDs: SessionIDGenerator

    /// Sessions recorded so far.
    public private(set) var sessionsRecorded = 0
    public var openSessions: Int { flows.count }

    public init(options: Options = Options(), sessionIDs: SessionIDGenerator = SessionIDGenerator()) {
        self.options = options
        self.sessionIDs = sessionIDs
    }

    public mutating func receive(_ event: FlowEvent, record: (SessionRecord) -> Void) {
        switch event {
        case .opened(let id, let client, let server, let sawHandshake, let time):
            let opened = Opened(client: client, server: server, sawHandshake: sawHandshake, time: time)
            if options.ports.contains(server.port) {
                flows[id] = .smtp(startSession(opened, swapped: false))
            } else if options.ports.contains(client.port) && !sawHandshake {
                // A mid-session capture whose roles were guessed from ports the wrong way round.
                flows[id] = .smtp(startSession(opened, swapped: true))
            } else if options.detectOnOtherPorts {
                flows[id] = .undecided(opened: opened, preambleOctets: 0)
            } else {
                flows[id] = .ignored
            }
        case .data(let id, let direction, let bytes, let time):
            guard let state = flows[id] else { return }
            switch state {
            case .ignored:
                return
            case .undecided(let opened, let preamble):
                guard let (offset, swapped) = Self.findStart(bytes, direction: direction, sawHandshake: opened.sawHandshake) else {
                    let seen = preamble + bytes.readableBytes
                    flows[id] = seen > Self.maxPreambleOctets ? .ignored : .undecided(opened: opened, preambleOctets: seen)
                    return
                }
                var session = startSession(opened, swapped: swapped)
                var bytes = bytes
                bytes.moveReaderIndex(forwardBy: offset)
                let preamble = preamble + offset
                if preamble > 0 {
                    session.recorder.noteAnomaly(
                        SMTPAnomalyKind.unparsedBytes.rawValue,
                        "\(preamble) octets of another protocol (e.g. a SOCKS or HTTP CONNECT tunnel) before SMTP began",
                        at: Timestamp(microsecondsSinceEpoch: time)
                    )
                }
                Self.feed(&session, direction: direction, bytes: bytes, time: time)
                flows[id] = .smtp(session)
            case .smtp(var session):
                flows[id] = .ignored
                Self.feed(&session, direction: direction, bytes: bytes, time: time)
                flows[id] = .smtp(session)
            }
        case .gap(let id, let direction, let missing, let time):
            guard case .smtp(var session) = flows[id] else { return }
            flows[id] = .ignored
            let side = Self.side(direction, swapped: session.swapped)
            session.inspector.receiveGap(from: side, octets: missing, at: Timestamp(microsecondsSinceEpoch: time))
            Self.drain(&session)
            flows[id] = .smtp(session)
        case .conflictingRetransmission(let id, let direction, let time):
            guard case .smtp(var session) = flows[id] else { return }
            flows[id] = .ignored
            let side = Self.side(direction, swapped: session.swapped)
            session.recorder.noteAnomaly(
                SMTPAnomalyKind.ambiguousRetransmission.rawValue,
                "a retransmitted \(side == .client ? "client" : "server") segment carried different bytes; the first copy was kept",
                at: Timestamp(microsecondsSinceEpoch: time)
            )
            flows[id] = .smtp(session)
        case .closed(let id, let reason, let time):
            guard let state = flows.removeValue(forKey: id), case .smtp(var session) = state else { return }
            sessionsRecorded += 1
            record(finish(&session, reason: reason, time: time))
        }
    }

    private mutating func startSession(_ opened: Opened, swapped: Bool) -> Session {
        let client = swapped ? opened.server : opened.client
        let server = swapped ? opened.client : opened.server
        let start = Timestamp(microsecondsSinceEpoch: opened.time)
        let implicitTLS = options.implicitTLSPorts.contains(server.port)
        var recorder = SessionRecorder(
            sessionID: sessionIDs.next(at: start),
            source: .pcap,
            start: start,
            client: SessionRecord.Endpoint(ip: client.address.description, port: Int(client.port)),
            server: SessionRecord.Endpoint(ip: server.address.description, port: Int(server.port)),
            options: options.recorder
        )
        if !opened.sawHandshake {
            recorder.markIncomplete()
            recorder.noteAnomaly(SMTPAnomalyKind.captureGap.rawValue, "the capture starts after the connection was opened", at: start)
        }
        if implicitTLS { recorder.noteTLSMode(.implicit) }
        return Session(
            inspector: SMTPInspector(limits: options.limits, startsAtBeginning: opened.sawHandshake, implicitTLS: implicitTLS),
            recorder: recorder,
            swapped: swapped
        )
    }

    /// Recognises SMTP on a port outside the list: a server greeting ("220 " or "220-") or a client
    /// EHLO/HELO as the first bytes. Returns whether the roles must be swapped, or nil for not SMTP.
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
            if first == UInt8(ascii: "2") || first == UInt8(ascii: "E") || first == UInt8(ascii: "H") || first == UInt8(ascii: "e") || first == UInt8(ascii: "h"),
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
        let greeting = text.hasPrefix("220 ") || text.hasPrefix("220-")
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

    private static func side(_ direction: FlowDirection, swapped: Bool) -> SMTPInspector.Side {
        switch (direction, swapped) {
        case (.clientToServer, false), (.serverToClient, true): .client
        case (.serverToClient, false), (.clientToServer, true): .server
        }
    }

    private static func feed(_ session: inout Session, direction: FlowDirection, bytes: ByteBuffer, time: Int64) {
        let stamp = Timestamp(microsecondsSinceEpoch: time)
        switch side(direction, swapped: session.swapped) {
        case .client:
            session.clientOctets += bytes.readableBytes
            session.recorder.noteClientOctets(bytes.readableBytes)
            session.inspector.receiveClientBytes(bytes, at: stamp)
        case .server:
            session.serverOctets += bytes.readableBytes
            session.recorder.noteServerOctets(bytes.readableBytes)
            session.inspector.receiveServerBytes(bytes, at: stamp)
        }
        drain(&session)
    }

    private static func drain(_ session: inout Session) {
        for event in session.inspector.drainEvents() {
            session.recorder.record(event)
        }
    }

    private func finish(_ session: inout Session, reason: FlowCloseReason, time: Int64) -> SessionRecord {
        let stamp = Timestamp(microsecondsSinceEpoch: time)
        switch reason {
        case .fin(let by):
            let first = Self.side(by, swapped: session.swapped)
            session.inspector.receiveClose(from: first, at: stamp)
            session.inspector.receiveClose(from: first == .client ? .server : .client, at: stamp)
        case .rst(let by):
            session.inspector.receiveClose(from: Self.side(by, swapped: session.swapped), at: stamp)
        case .idle, .endOfCapture:
            break
        }
        session.inspector.finish(at: stamp)
        Self.drain(&session)
        if session.clientOctets == 0 || session.serverOctets == 0 {
            let missing = session.serverOctets == 0 ? "server" : "client"
            session.recorder.noteAnomaly(
                SMTPAnomalyKind.oneSidedCapture.rawValue,
                "no bytes from the \(missing) were captured",
                at: stamp
            )
            session.recorder.markIncomplete()
        }
        let close: SessionRecord.Close?
        switch reason {
        case .fin(let by):
            close = SessionRecord.Close(by: Self.party(by, swapped: session.swapped), reason: .fin)
        case .rst(let by):
            close = SessionRecord.Close(by: Self.party(by, swapped: session.swapped), reason: .rst)
        case .idle:
            close = SessionRecord.Close(by: nil, reason: .timeout)
        case .endOfCapture:
            close = nil
        }
        return session.recorder.finish(at: stamp, close: close)
    }

    private static func party(_ direction: FlowDirection, swapped: Bool) -> SessionRecord.Party {
        side(direction, swapped: swapped) == .client ? .client : .server
    }
}

extension CaptureSessionizer {
    /// Called for every session record as it completes.
    public typealias RecordHandler = (SessionRecord) -> Void
}
