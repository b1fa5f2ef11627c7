import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPTranscript
import Testing

@testable import SMTPProxy

#if canImport(Glibc)
import Glibc
#endif

/// A transparent proxy on loopback, reached with no firewall rule in between: the connection's
/// destination is the proxy itself, so it is refused as a routing loop and never relayed.
@Suite struct TransparentProxyServerTests {
    final class CollectingSink: TranscriptSink, Sendable {
        let records = NIOLockedValueBox<[SessionRecord]>([])
        func write(_ record: SessionRecord) throws(TranscriptFileError) { records.withLockedValue { $0.append(record) } }
        func flush() throws(TranscriptFileError) {}
        func close() throws(TranscriptFileError) {}
    }

    /// A blocking loopback client with a receive timeout, so a wrong server fails the test instead
    /// of hanging it.
    struct Client {
        let fd: CInt

        init(port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            try #require(fd >= 0)
            var timeout = timeval(tv_sec: 20, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            try #require(connected == 0)
        }

        /// Octets up to and including the next CRLF ("" at end of stream or on timeout).
        func readLine() -> String {
            var line: [UInt8] = []
            var octet: UInt8 = 0
            while recv(fd, &octet, 1, 0) == 1 {
                line.append(octet)
                if line.suffix(2) == [13, 10] { break }
            }
            return String(decoding: line, as: UTF8.self)
        }

        func send(_ text: String) {
            _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        }

        func close() { _ = Glibc.close(fd) }
    }

    @Test func aClientConnectingStraightToTheProxyGets554AndARecordWithTheLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var relay = RelayConfiguration()
        relay.hostname = "gw.test"
        var configuration = ProxyServerConfiguration(listen: [HostPort(host: "127.0.0.1", port: 0)], upstream: HostPort(host: "127.0.0.1", port: 0), relay: relay)
        configuration.transparent = TransparentConfiguration()
        let collected = CollectingSink()
        let writer = TranscriptWriter(sink: collected) { message in Issue.record("transcript write failed: \(message)") }
        let proxy = ProxyServer(configuration: configuration, group: group, transcripts: writer)
        let address = try #require(try await proxy.start().first)
        let port = try #require(address.port)

        let client = try Client(port: port)
        #expect(client.readLine().hasPrefix("554 5.4.6 gw.test "))
        client.send("EHLO client.test\r\n")
        #expect(client.readLine().hasPrefix("503 5.5.1 "))
        client.send("QUIT\r\n")
        #expect(client.readLine().hasPrefix("221 2.0.0 "))
        #expect(client.readLine() == "")
        client.close()

        await proxy.drain(deadline: 5)
        await writer.close()
        try await group.shutdownGracefully()

        let record = try #require(collected.records.withLockedValue { $0 }.first)
        #expect(record.server == SessionRecord.Endpoint(ip: "127.0.0.1", port: port))
        #expect(record.upstream == nil)
        #expect(record.greeting?.code == 554)
        #expect(record.anomalies.map(\.kind) == ["proxy_loop"])
        #expect(record.close == SessionRecord.Close(by: .client, reason: .quit))
        #expect(record.helo?.name == "client.test")
    }

    @Test func contradictoryListenersDoNotStart() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var configuration = ProxyServerConfiguration(listen: [HostPort(host: "127.0.0.1", port: 0)], upstream: HostPort(host: "127.0.0.1", port: 0), relay: RelayConfiguration())
        configuration.transparent = TransparentConfiguration()
        configuration.proxyProtocol = true
        let writer = TranscriptWriter(sink: nil) { _ in }
        let proxy = ProxyServer(configuration: configuration, group: group, transcripts: writer)
        await #expect(throws: ProxyServer.StartError.self) { try await proxy.start() }
        await writer.close()
        try await group.shutdownGracefully()
    }
}
