import NIOCore
import SMTPCore
import MailMessage
import SMTPProxy
import Testing

/// Drives a `RelaySessionStateMachine` with no channel: the test plays the client and a scripted upstream
/// and reads what the machine sent each way.
struct RelayHarness {
    var machine: RelaySessionStateMachine
    var toClient = ""
    var toUpstream = ""
    var connects = 0
    var upstreamClosed = false
    var clientClosed = false
    var clientTLSStarted = false
    var passthroughStarted = false
    var upstreamTLSStarted = false
    var events: [RelaySessionStateMachine.RelayEvent] = []
    /// What the machine asked the channel layer to spool, release, drop or quarantine.
    var spooled = ""
    var released: [[HeaderEdit]] = []
    var drops = 0
    var quarantines: [RelaySessionStateMachine.QuarantineRequest] = []

    init(configuration: RelayConfiguration = RelayConfiguration(), policy: any SessionPolicy = AllowAllPolicy()) {
        machine = RelaySessionStateMachine(configuration: configuration, policy: policy)
        apply(machine.start())
    }

    /// Started, connected and greeted: the client has the 220.
    static func greeted(configuration: RelayConfiguration = RelayConfiguration(), policy: any SessionPolicy = AllowAllPolicy(), upstreamEHLO: String? = nil) -> RelayHarness {
        var harness = RelayHarness(configuration: configuration, policy: policy)
        harness.apply(harness.machine.receiveUpstreamConnected())
        harness.upstream("220 upstream ESMTP\r\n")
        _ = harness.takeClient()
        if let upstreamEHLO {
            harness.client("EHLO client.example\r\n")
            harness.upstream(upstreamEHLO)
            _ = harness.takeClient()
            _ = harness.takeUpstream()
        }
        return harness
    }

    /// After EHLO, MAIL and one accepted RCPT: DATA is answered 354 and content may flow.
    static func inData(configuration: RelayConfiguration = RelayConfiguration()) -> RelayHarness {
        var h = greeted(configuration: configuration, upstreamEHLO: plainEHLO)
        h.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        h.client("DATA\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        h.upstream("354 go ahead\r\n")
        #expect(h.takeClient() == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
        return h
    }

    static let plainEHLO = "250-upstream\r\n250-PIPELINING\r\n250-SIZE 20000000\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"

    mutating func apply(_ actions: [RelaySessionStateMachine.Action]) {
        for action in actions {
            switch action {
            case .sendToClient(let bytes): toClient += String(buffer: bytes)
            case .sendUpstream(let bytes): toUpstream += String(decoding: bytes.readableBytesView, as: UTF8.self)
            case .connectUpstream: connects += 1
            case .startClientTLS: clientTLSStarted = true
            case .startPassthrough: passthroughStarted = true
            case .startUpstreamTLS: upstreamTLSStarted = true
            case .closeUpstream: upstreamClosed = true
            case .closeClient: clientClosed = true
            case .spool(let bytes): spooled += String(buffer: bytes)
            case .releaseSpool(let edits): released.append(edits)
            case .dropSpool: drops += 1
            case .quarantineSpool(let request): quarantines.append(request)
            case .record(let event): events.append(event)
            }
        }
    }

    mutating func client(_ text: String) { clientBytes(Array(text.utf8)) }

    mutating func clientBytes(_ bytes: [UInt8]) {
        apply(machine.receiveClientBytes(ByteBuffer(bytes: bytes)))
    }

    /// The same input one octet at a time.
    mutating func clientDripped(_ text: String) {
        for byte in text.utf8 { clientBytes([byte]) }
    }

    mutating func upstream(_ text: String) {
        apply(machine.receiveUpstreamBytes(ByteBuffer(string: text)))
    }

    mutating func takeClient() -> String {
        defer { toClient = "" }
        return toClient
    }

    mutating func takeUpstream() -> String {
        defer { toUpstream = "" }
        return toUpstream
    }

    /// The command lines recorded as sent upstream, in order.
    var upstreamCommands: [String] {
        events.compactMap { if case .upstreamCommand(let line) = $0 { return line } else { return nil } }
    }

    var anomalies: [String] {
        events.compactMap {
            if case .client(.anomaly(let anomaly)) = $0 { return anomaly.kind.rawValue }
            return nil
        }
    }
}
