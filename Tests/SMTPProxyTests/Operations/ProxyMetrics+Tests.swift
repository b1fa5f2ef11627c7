import NIOCore
import NIOPosix
import Logging
import Prometheus
import SMTPCore
import SMTPTranscript
import Testing

@testable import SMTPProxy

/// The metrics a session adds, as Prometheus text, and the HTTP endpoint that serves them.
@Suite struct ProxyMetricsTests {
    static func record() -> SessionRecord {
        var transaction = SessionRecord.Transaction(outcome: .delivered)
        transaction.rules = [SessionRecord.RuleVerdict(rule: "a", file: "f", stage: "mail", action: "bcc", enforced: true)]
        return SessionRecord(sessionID: "x", source: .proxy, start: Timestamp(seconds: 0, microseconds: 0), transactions: [transaction], events: SessionMeasurementsTests.events, outcome: .completed, bytes: SessionRecord.ByteCounts(client: 100, server: 40))
    }

    @Test func aSessionIsExposedAsPrometheusText() {
        let registry = PrometheusCollectorRegistry()
        let metrics = ProxyMetrics(factory: PrometheusMetricsFactory(registry: registry))
        metrics.connectionOpened()
        metrics.connectionOpened()
        metrics.connectionClosed()
        metrics.connectionRefused(reason: "proxy_protocol")
        metrics.observe(Self.record())
        metrics.observe(Self.record())
        metrics.reloaded("tls", succeeded: false)
        let text = registry.emitToString()
        for line in [
            #"smtpscope_sessions_total{outcome="completed"} 2"#,
            #"smtpscope_messages_total{outcome="delivered"} 2"#,
            #"smtpscope_bytes_total{from="client"} 200"#,
            #"smtpscope_bytes_total{from="server"} 80"#,
            #"smtpscope_replies_total{leg="upstream",class="2xx"} 10"#,
            #"smtpscope_replies_total{leg="client",class="2xx"} 6"#,
            #"smtpscope_rule_verdicts_total{action="bcc",enforced="true"} 2"#,
            #"smtpscope_upstream_reply_seconds_count 12"#,
            #"smtpscope_active_connections 1"#,
            #"smtpscope_connections_refused_total{reason="proxy_protocol"} 1"#,
            #"smtpscope_reloads_total{part="tls",result="failure"} 1"#,
        ] {
            #expect(text.contains(line), "missing \(line) in:\n\(text)")
        }
        #expect(text.contains("# TYPE smtpscope_upstream_reply_seconds histogram"))
    }

    /// Sends one request and reads the response until the server closes.
    static func get(_ address: SocketAddress, _ request: String) async throws -> String {
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await client.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var received = ByteBuffer()
            for try await var chunk in inbound {
                received.writeBuffer(&chunk)
            }
            return String(buffer: received)
        }
    }

    @Test func theEndpointServesMetricsAndNothingElse() async throws {
        let server = MetricsServer(address: HostPort(host: "127.0.0.1", port: 0), group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test")) {
            Array("smtpscope_sessions_total{outcome=\"completed\"} 1\n".utf8)
        }
        let address = try await server.start()
        let metrics = try await Self.get(address, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(metrics.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(metrics.contains("text/plain; version=0.0.4"))
        #expect(metrics.hasSuffix("smtpscope_sessions_total{outcome=\"completed\"} 1\n"))
        let missing = try await Self.get(address, "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(missing.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        let post = try await Self.get(address, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab")
        #expect(post.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
        await server.stop()
    }

    @Test func aTakenPortIsAnError() async throws {
        let first = MetricsServer(address: HostPort(host: "127.0.0.1", port: 0), group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test")) { [] }
        let address = try await first.start()
        let second = MetricsServer(address: HostPort(host: "127.0.0.1", port: address.port ?? 0), group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test")) { [] }
        await #expect(throws: (any Error).self) { _ = try await second.start() }
        await first.stop()
    }
}
