import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SMTPRules
import SMTPTranscript
import Testing

@testable import SMTPProxy

/// The whole proxy in one process: real sockets on loopback, the built-in sink as the upstream,
/// two event loops, and sessions that overlap a rules reload, a certificate reload and the drain.
///
/// These are the tests CI runs under ThreadSanitizer (`swift test --sanitize=thread --filter
/// ProxyServerEndToEnd`): every cross-thread path of the relay (accept on one loop, sessions on
/// both, the transcript writer's thread, SIGHUP replacements from another task) is exercised.
@Suite(.serialized) struct ProxyServerEndToEnd {
    /// Collects finished records on the writer's thread.
    final class CollectingSink: TranscriptSink, Sendable {
        let records = NIOLockedValueBox<[SessionRecord]>([])
        func write(_ record: SessionRecord) throws(TranscriptFileError) { records.withLockedValue { $0.append(record) } }
        func flush() throws(TranscriptFileError) {}
        func close() throws(TranscriptFileError) {}
    }

    /// A running proxy in front of a storing sink.
    struct Fixture {
        var group: MultiThreadedEventLoopGroup
        var sink: SMTPSink
        var store: String
        var proxy: ProxyServer
        var writer: TranscriptWriter
        var collected: CollectingSink
        var plain: SocketAddress
        var smtps: SocketAddress

        static func start() async throws -> Fixture {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
            let store = NSTemporaryDirectory() + "smtpscope-e2e-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
            let sink = SMTPSink(group: group, host: "127.0.0.1", port: 0, storeDirectory: store)
            let upstream = try await sink.start()

            var relay = RelayConfiguration()
            relay.clientTLS = .offer
            relay.upstreamTLS = .off
            relay.hostname = "proxy.test"
            var configuration = ProxyServerConfiguration(
                listen: [HostPort(host: "127.0.0.1", port: 0)],
                upstream: HostPort(host: "127.0.0.1", port: upstream.port ?? 0),
                relay: relay
            )
            configuration.implicitTLSListen = [HostPort(host: "127.0.0.1", port: 0)]
            configuration.clientTLSContext = try ProxyTLS.ephemeralClientLegContext(hostname: "proxy.test")
            let collected = CollectingSink()
            let writer = TranscriptWriter(sink: collected) { message in Issue.record("transcript write failed: \(message)") }
            let proxy = ProxyServer(configuration: configuration, group: group, transcripts: writer)
            let listeners = try await proxy.startListeners()
            let plain = try #require(listeners.first { !$0.implicitTLS }?.address)
            let smtps = try #require(listeners.first { $0.implicitTLS }?.address)
            return Fixture(group: group, sink: sink, store: store, proxy: proxy, writer: writer, collected: collected, plain: plain, smtps: smtps)
        }

        func stop() async throws {
            await proxy.drain(deadline: 5)
            await writer.close()
            try await sink.stop()
            try await group.shutdownGracefully()
        }

        /// Message-IDs of the messages the sink stored.
        func storedMessageIDs() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: store).filter { $0.hasSuffix(".eml") }.compactMap { name in
                let text = try String(contentsOfFile: "\(store)/\(name)", encoding: .utf8)
                return text.split(separator: "\r\n").first { $0.hasPrefix("Message-ID: ") }.map { String($0.dropFirst("Message-ID: ".count)) }
            }
        }
    }

    /// One client conversation: sends each step and waits for the number of final replies it
    /// expects, as an RFC 2920 client would; returns the reply codes in order.
    static func converse(with address: SocketAddress, tls: Bool, group: any EventLoopGroup, steps: [(String, Int)], abandonAfter: Int? = nil) async throws -> [Int] {
        let clientTLS: NIOSSLContext? = tls ? try {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return try NIOSSLContext(configuration: configuration)
        }() : nil
        let client = try await ClientBootstrap(group: group)
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let clientTLS {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: clientTLS, serverHostname: nil))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await client.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var pending = ""
            var codes: [Int] = []
            func readReplies(_ count: Int) async throws {
                var seen = 0
                while seen < count {
                    if let end = pending.range(of: "\r\n") {
                        let line = pending[..<end.lowerBound]
                        pending = String(pending[end.upperBound...])
                        // A final line is "ddd " or a bare "ddd" (RFC 5321 §4.2).
                        if line.count >= 3, line.count == 3 || line[line.index(line.startIndex, offsetBy: 3)] == " " {
                            codes.append(Int(line.prefix(3)) ?? 0)
                            seen += 1
                        }
                        continue
                    }
                    guard let chunk = try await iterator.next() else { return }
                    pending += String(buffer: chunk)
                }
            }
            try await readReplies(1)
            for (index, (text, replies)) in steps.enumerated() {
                if index == abandonAfter {
                    try await outbound.write(ByteBuffer(string: String(text.prefix(text.count / 2))))
                    return codes
                }
                try await outbound.write(ByteBuffer(string: text))
                try await readReplies(replies)
            }
            return codes
        }
    }

    static func message(_ id: String) -> [(String, Int)] {
        [
            ("MAIL FROM:<sender@example.com>\r\nRCPT TO:<rcpt@example.org>\r\nDATA\r\n", 3),
            ("From: <sender@example.com>\r\nDate: Sun, 29 Nov 2026 12:00:00 +0000\r\nMessage-ID: \(id)\r\nSubject: e2e\r\n\r\n..a stuffed line\r\nbody\r\n.\r\n", 1),
        ]
    }

    static func session(_ number: Int) -> [(String, Int)] {
        [("EHLO client\(number).test\r\n", 1)]
            + message("<\(number).1@e2e.test>") + [("RSET\r\n", 1)] + message("<\(number).2@e2e.test>")
            + [("QUIT\r\n", 1)]
    }

    @Test func overlappingSessionsThroughReloadsAndDrain() async throws {
        let fixture = try await Fixture.start()
        let rulesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../rules").standardized.path
        let loaded = RuleSet.load(directory: rulesDirectory)
        let rules = try #require(loaded.ruleSet)
        let sessions = 24

        let results = try await withThrowingTaskGroup(of: (Int, [Int]).self) { group in
            for number in 0..<sessions {
                group.addTask {
                    let address = number % 3 == 0 ? fixture.smtps : fixture.plain
                    let codes = try await Self.converse(with: address, tls: number % 3 == 0, group: fixture.group, steps: Self.session(number), abandonAfter: number % 8 == 7 ? 2 : nil)
                    return (number, codes)
                }
                if number == sessions / 3 {
                    // SIGHUP's two replacements, from another task while sessions run.
                    fixture.proxy.replacePolicy(RulesPolicy(rules: rules))
                    fixture.proxy.replaceClientTLSContext(try ProxyTLS.ephemeralClientLegContext(hostname: "proxy.test"))
                }
            }
            var results: [Int: [Int]] = [:]
            for try await (number, codes) in group { results[number] = codes }
            return results
        }

        var expectedIDs: [String] = []
        for number in 0..<sessions {
            let codes = try #require(results[number])
            if number % 8 == 7 {
                // Vanished halfway through its first message's content.
                #expect(codes == [220, 250, 250, 250, 354], "session \(number)")
            } else {
                #expect(codes == [220, 250, 250, 250, 354, 250, 250, 250, 250, 354, 250, 221], "session \(number)")
                expectedIDs += ["<\(number).1@e2e.test>", "<\(number).2@e2e.test>"]
            }
        }
        try await fixture.stop()
        defer { try? FileManager.default.removeItem(atPath: fixture.store) }

        #expect(try fixture.storedMessageIDs().sorted() == expectedIDs.sorted())
        let records = fixture.collected.records.withLockedValue { $0 }
        #expect(records.count == sessions)
        #expect(Set(records.map(\.sessionID)).count == sessions)
        #expect(records.filter { $0.tls.mode == .implicit }.count == sessions / 3)
    }

    /// What a raw client channel has read so far.
    final class Received: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let text = NIOLockedValueBox("")
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            text.withLockedValue { $0 += String(buffer: bytes) }
        }
    }

    @Test func drainAnswersIdleSessionsWith421AndWritesTheirRecords() async throws {
        let fixture = try await Fixture.start()
        // Idle sessions: greeted, then silent until the drain deadline closes them.
        let idle = try await withThrowingTaskGroup(of: (Channel, Received).self) { group in
            for _ in 0..<10 {
                group.addTask {
                    let received = Received()
                    let channel = try await ClientBootstrap(group: fixture.group)
                        .channelInitializer { $0.pipeline.addHandler(received) }
                        .connect(to: fixture.plain).get()
                    return (channel, received)
                }
            }
            var clients: [(Channel, Received)] = []
            for try await client in group { clients.append(client) }
            return clients
        }
        // Greeted, not only accepted: a connection the listener's close catches before its session
        // starts never becomes a session (NIO closes it unanswered).
        let greeted = { idle.allSatisfy { $0.1.text.withLockedValue { $0.hasPrefix("220 ") } } }
        for _ in 0..<3000 where !greeted() { try await Task.sleep(nanoseconds: 10_000_000) }
        try #require(greeted())
        await fixture.proxy.drain(deadline: 1)
        for (channel, _) in idle { try await channel.closeFuture.get() }
        try await fixture.stop()
        try? FileManager.default.removeItem(atPath: fixture.store)
        for (_, received) in idle {
            #expect(received.text.withLockedValue { $0 }.hasSuffix("\r\n421 4.3.2 proxy.test Service shutting down\r\n"))
        }
        let records = fixture.collected.records.withLockedValue { $0 }
        #expect(records.count == idle.count)
        #expect(records.allSatisfy { $0.close == SessionRecord.Close(by: .proxy, reason: .fin) })
    }
}
