import NIOCore
import SMTPCore
import Testing

/// A client/server byte exchange with timestamps, replayed into an `SMTPInspector`.
struct InspectorScenario: Sendable {
    enum Step: Sendable {
        case client(String, at: Int64)
        case clientBytes([UInt8], at: Int64)
        case server(String, at: Int64)
        case serverBytes([UInt8], at: Int64)
        case gap(SMTPInspector.Side, octets: UInt64?, at: Int64)
        case finish(at: Int64)
    }

    var steps: [Step]
    var startsAtBeginning = true
    var implicitTLS = false
    var limits = SMTPLimits()

    init(startsAtBeginning: Bool = true, implicitTLS: Bool = false, limits: SMTPLimits = SMTPLimits(), _ steps: [Step]) {
        self.steps = steps
        self.startsAtBeginning = startsAtBeginning
        self.implicitTLS = implicitTLS
        self.limits = limits
    }

    /// Milliseconds in the scenario become microseconds on a fixed epoch.
    static func time(_ milliseconds: Int64) -> Timestamp {
        Timestamp(microsecondsSinceEpoch: 1_700_000_000_000_000 + milliseconds * 1000)
    }

    static func milliseconds(_ time: Timestamp) -> Int64 {
        (time.microsecondsSinceEpoch - 1_700_000_000_000_000) / 1000
    }

    /// Replays the scenario, draining events after every input as a consumer would.
    func run(_ feeding: Feeding) -> [ConversationEvent] {
        var inspector = SMTPInspector(limits: limits, startsAtBeginning: startsAtBeginning, implicitTLS: implicitTLS)
        var events: [ConversationEvent] = []
        for step in steps {
            switch step {
            case .client(let text, let at):
                for chunk in feeding.chunks(of: Array(text.utf8)) { inspector.receiveClientBytes(ByteBuffer(bytes: chunk), at: Self.time(at)) }
            case .clientBytes(let bytes, let at):
                for chunk in feeding.chunks(of: bytes) { inspector.receiveClientBytes(ByteBuffer(bytes: chunk), at: Self.time(at)) }
            case .server(let text, let at):
                for chunk in feeding.chunks(of: Array(text.utf8)) { inspector.receiveServerBytes(ByteBuffer(bytes: chunk), at: Self.time(at)) }
            case .serverBytes(let bytes, let at):
                for chunk in feeding.chunks(of: bytes) { inspector.receiveServerBytes(ByteBuffer(bytes: chunk), at: Self.time(at)) }
            case .gap(let side, let octets, let at):
                inspector.receiveGap(from: side, octets: octets, at: Self.time(at))
            case .finish(let at):
                inspector.finish(at: Self.time(at))
            }
            events += inspector.drainEvents()
        }
        return events
    }

    /// The events as lines, consecutive `messageContent` merged into one (chunking is not behaviour).
    func transcript(_ feeding: Feeding = .whole) -> [String] {
        Self.render(run(feeding))
    }

    static func render(_ events: [ConversationEvent]) -> [String] {
        var lines: [String] = []
        var content: [UInt8]?
        var contentTime: Int64 = 0
        func flushContent() {
            if let bytes = content { lines.append("t\(contentTime) content \"\(CoreTestSupport.escaped(bytes))\"") }
            content = nil
        }
        for event in events {
            let t = milliseconds(event.time)
            if case .messageContent(let bytes) = event.kind {
                if content == nil {
                    content = []
                    contentTime = t
                }
                content? += CoreTestSupport.bytes(bytes)
                continue
            }
            flushContent()
            lines.append("t\(t) " + describe(event.kind))
        }
        flushContent()
        return lines
    }

    static func describe(_ kind: ConversationEvent.Kind) -> String {
        switch kind {
        case .command(let id, _, let line): "C#\(id) \(line)"
        case .invalidCommand(let id, let error, let line): "C#\(id) invalid \(error.code) \(line)"
        case .saslResponse(let authID): "sasl response for #\(authID)"
        case .authIdentity(let authID, let mechanism, let user): "identity #\(authID) \(mechanism) \(user)"
        case .reply(let reply, let answered): "R \(reply.code) \(reply.lines.joined(separator: "|")) -> \(describe(answered))"
        case .messageBegin(let id, let kind): "begin #\(id) \(kind)"
        case .messageContent(let bytes): "content \"\(CoreTestSupport.escaped(bytes.readableBytesView))\""
        case .messageEnd(let id, let octets, let complete, _): "end #\(id) \(octets) octets\(complete ? "" : " incomplete")"
        case .messageAbandoned(let id, let octets): "abandoned #\(id) \(octets) octets"
        case .tlsStarted(let implicit): implicit ? "tls started implicit" : "tls started"
        case .tlsSummary: "tls summary"
        case .anomaly(let anomaly): "! \(anomaly.kind.rawValue)"
        }
    }

    static func describe(_ answered: AwaitedReply) -> String {
        switch answered {
        case .greeting: "greeting"
        case .command(let id, let command): "#\(id) \(command.verb)"
        case .invalidCommand(let id, _): "#\(id) invalid"
        case .endOfData(let id): "#\(id) end of data"
        case .bdatChunk(let id, let last): last ? "#\(id) last chunk" : "#\(id) chunk"
        case .saslResponse(let id): "#\(id) sasl response"
        case .unknown: "unknown"
        }
    }

    /// The content of each message, in order, whatever the chunking.
    static func messages(_ events: [ConversationEvent]) -> [[UInt8]] {
        var messages: [[UInt8]] = []
        var current: [UInt8]?
        for event in events {
            switch event.kind {
            case .messageBegin: current = []
            case .messageContent(let bytes): current? += CoreTestSupport.bytes(bytes)
            case .messageEnd:
                messages.append(current ?? [])
                current = nil
            default: break
            }
        }
        return messages
    }

    /// Checks the transcript fed whole, then that every other feeding gives the same transcript.
    func expect(_ expected: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let whole = transcript(.whole)
        #expect(whole == expected, sourceLocation: sourceLocation)
        if whole != expected {
            let missing = expected.filter { !whole.contains($0) }
            let extra = whole.filter { !expected.contains($0) }
            Issue.record("missing \(missing)\nextra \(extra)\ngot:\n\(whole.joined(separator: "\n"))", sourceLocation: sourceLocation)
        }
        expectSameWhateverTheChunking(sourceLocation: sourceLocation)
    }

    func expectSameWhateverTheChunking(sourceLocation: SourceLocation = #_sourceLocation) {
        let whole = transcript(.whole)
        for feeding in Feeding.all.dropFirst() {
            let other = transcript(feeding)
            #expect(other == whole, "\(feeding)", sourceLocation: sourceLocation)
            if other != whole {
                let index = zip(other, whole).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset ?? min(other.count, whole.count)
                Issue.record("\(feeding): first difference at line \(index): \(index < other.count ? other[index] : "-") vs \(index < whole.count ? whole[index] : "-")", sourceLocation: sourceLocation)
                break
            }
        }
    }
}
