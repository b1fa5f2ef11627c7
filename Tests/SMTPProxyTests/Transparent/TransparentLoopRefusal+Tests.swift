import NIOCore
import SMTPCore
import SMTPTranscript
import Testing

@testable import SMTPProxy

/// The session of a client refused as a routing loop (RFC 5321 §3.1, RFC 3463 5.4.6).
@Suite struct TransparentLoopRefusalTests {
    static func line(_ text: String) -> LineFramer.Frame {
        .line(ByteBuffer(string: text), .crlf)
    }

    static func replies(_ outputs: [LoopRefusal.Output]) -> [String] {
        outputs.compactMap {
            if case .reply(let reply, _) = $0 { return "\(reply.code) \(reply.lines.first ?? "")" }
            return nil
        }
    }

    static func closes(_ outputs: [LoopRefusal.Output]) -> [String] {
        outputs.compactMap {
            if case .close(let by, let reason) = $0 { return "\(by.rawValue) \(reason.rawValue)" }
            return nil
        }
    }

    static func anomalies(_ outputs: [LoopRefusal.Output]) -> [SMTPAnomaly] {
        outputs.compactMap {
            if case .record(.anomaly(let anomaly)) = $0 { return anomaly }
            return nil
        }
    }

    @Test func greetsWith554RoutingLoopAndRecordsTheAnomaly() throws {
        var refusal = LoopRefusal(hostname: "gw.test", detail: "destination 192.0.2.1:10025 is this host")
        let outputs = refusal.start()
        let greeting = try #require(Self.replies(outputs).first)
        #expect(greeting.hasPrefix("554 5.4.6 gw.test "))
        #expect(Self.anomalies(outputs) == [SMTPAnomaly(.proxyLoop, "destination 192.0.2.1:10025 is this host")])
        #expect(SMTPAnomalyKind.proxyLoop.rawValue == "proxy_loop")
        #expect(!refusal.isClosed)
    }

    @Test func answers503UntilQuitThen221AndCloses() {
        var refusal = LoopRefusal(hostname: "gw.test", detail: "loop")
        _ = refusal.start()
        for command in ["EHLO client.test", "MAIL FROM:<a@example.org>", "NOOP", "bogus"] {
            let outputs = refusal.receive(Self.line(command))
            #expect(Self.replies(outputs).map { String($0.prefix(9)) } == ["503 5.5.1"], "\(command)")
            #expect(Self.closes(outputs).isEmpty)
        }
        let quit = refusal.receive(Self.line("QUIT"))
        #expect(Self.replies(quit) == ["221 2.0.0 gw.test Bye"])
        #expect(Self.closes(quit) == ["client QUIT"])
        #expect(refusal.isClosed)
        #expect(refusal.receive(Self.line("NOOP")).isEmpty)
        #expect(refusal.receiveClientClosed().isEmpty)
    }

    @Test func endsAfterTheHardErrorLimitWith421() {
        var refusal = LoopRefusal(hostname: "gw.test", detail: "loop")
        _ = refusal.start()
        var last: [LoopRefusal.Output] = []
        for _ in 0..<LoopRefusal.maxCommands {
            #expect(!refusal.isClosed)
            last = refusal.receive(Self.line("NOOP"))
        }
        #expect(Self.replies(last).first?.hasPrefix("421 4.7.0") == true)
        #expect(Self.closes(last) == ["proxy error"])
        #expect(refusal.isClosed)
    }

    @Test func anOverlongLineIsRecordedByItsLengthOnly() {
        var refusal = LoopRefusal(hostname: "gw.test", detail: "loop")
        _ = refusal.start()
        let outputs = refusal.receive(.overlong(prefix: ByteBuffer(string: "XXXX"), totalOctets: 5000))
        let recorded: [String] = outputs.compactMap {
            if case .record(.invalidCommand(_, _, let line)) = $0 { return line }
            return nil
        }
        #expect(recorded == ["[5000 octets]"])
        #expect(Self.replies(outputs).map { String($0.prefix(3)) } == ["503"])
    }

    @Test func aMalformedAuthLineNeverReachesTheTranscript() {
        var refusal = LoopRefusal(hostname: "gw.test", detail: "loop")
        _ = refusal.start()
        let outputs = refusal.receive(Self.line("AUTH"))
        for output in outputs {
            if case .record(.invalidCommand(_, _, let line)) = output { #expect(line == "AUTH [redacted]") }
            if case .record(.command(_, _, let line)) = output { #expect(!line.contains("secret")) }
        }
        let plain = refusal.receive(Self.line("AUTH PLAIN c2VjcmV0"))
        for output in plain {
            if case .record(.command(_, _, let line)) = output { #expect(!line.contains("c2VjcmV0")) }
            if case .record(.invalidCommand(_, _, let line)) = output { #expect(!line.contains("c2VjcmV0")) }
        }
    }

    @Test func aSilentClientIsClosedWith421OnTimeout() {
        var refusal = LoopRefusal(hostname: "gw.test", detail: "loop")
        _ = refusal.start()
        let outputs = refusal.receiveTimeout()
        #expect(Self.replies(outputs).first?.hasPrefix("421 4.4.2") == true)
        #expect(Self.closes(outputs) == ["proxy timeout"])
        #expect(refusal.receiveTimeout().isEmpty)
    }

    @Test func aClientThatHangsUpClosesTheSessionOnce() {
        var refusal = LoopRefusal(hostname: "gw.test", detail: "loop")
        _ = refusal.start()
        #expect(Self.closes(refusal.receiveClientClosed()) == ["client FIN"])
        #expect(refusal.receiveClientClosed().isEmpty)
    }
}
