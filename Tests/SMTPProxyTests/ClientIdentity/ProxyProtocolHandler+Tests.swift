import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import SMTPProxy

/// The channel handler in front of the relay, over real loopback sockets.
@Suite struct ProxyProtocolHandlerTests {
    /// What the handler handed on: the header, and the octets the next handler read.
    final class Handoff: Sendable {
        let state = NIOLockedValueBox<(header: ProxyProtocolHeader?, octets: [UInt8], closed: Bool)>((nil, [], false))
    }

    /// Stands in for the relay: collects what it reads.
    final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let handoff: Handoff

        init(_ handoff: Handoff) { self.handoff = handoff }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = Array(unwrapInboundIn(data).readableBytesView)
            handoff.state.withLockedValue { $0.octets += bytes }
        }
    }

    /// A listener whose connections start with `ProxyProtocolHandler`. The header deadline is far
    /// off except where it is under test: the tests run side by side, and on a loaded machine a
    /// connection has waited over 10 s for its first write (CI, with a benchmark beside it).
    static func listen(_ handoff: Handoff, timeout: TimeAmount = .seconds(120)) async throws -> Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.closeFuture.whenComplete { _ in handoff.state.withLockedValue { $0.closed = true } }
                return channel.eventLoop.makeCompletedFuture {
                    let handler = ProxyProtocolHandler(parser: ProxyProtocolParser(), timeout: timeout, logger: Logger(label: "test")) { context, header in
                        handoff.state.withLockedValue { $0.header = header }
                        try context.pipeline.syncOperations.addHandler(Collector(handoff))
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    /// Sends `chunks` as separate writes.
    static func send(_ chunks: [[UInt8]], to address: SocketAddress) async throws -> Channel {
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(to: address)
            .get()
        for chunk in chunks {
            try await client.writeAndFlush(ByteBuffer(bytes: chunk))
        }
        return client
    }

    static func waitFor(_ handoff: Handoff, _ condition: @escaping @Sendable ((header: ProxyProtocolHeader?, octets: [UInt8], closed: Bool)) -> Bool) async throws {
        // A cap, not a timing check: a loaded machine (CI runs these under ThreadSanitizer) may take
        // seconds to close a connection.
        for _ in 0..<3000 where !handoff.state.withLockedValue({ condition($0) }) {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
    }

    @Test func aHeaderSentOneOctetAtATimeIsHandedOnWithWhatFollows() async throws {
        let handoff = Handoff()
        let server = try await Self.listen(handoff)
        let header = Array("PROXY TCP4 192.0.2.10 198.51.100.5 51234 25\r\n".utf8)
        let client = try await Self.send(header.map { [$0] } + [Array("after".utf8)], to: try #require(server.localAddress))
        try await Self.waitFor(handoff) { $0.octets.count >= 5 }
        let state = handoff.state.withLockedValue { $0 }
        #expect(state.header?.source == ProxyProtocolHeader.Endpoint(ip: "192.0.2.10", port: 51234))
        #expect(state.octets == Array("after".utf8))
        #expect(!state.closed)
        try await client.close()
        try await server.close()
    }

    @Test func octetsInTheHeadersSegmentAreHandedOn() async throws {
        let handoff = Handoff()
        let server = try await Self.listen(handoff)
        let header = ProxyProtocolParser.v2Signature + [0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 10, 198, 51, 100, 5, 0xC8, 0x22, 0x00, 0x19]
        let client = try await Self.send([header + Array("EHLO x\r\n".utf8)], to: try #require(server.localAddress))
        try await Self.waitFor(handoff) { $0.octets.count >= 8 }
        let state = handoff.state.withLockedValue { $0 }
        #expect(state.header?.version == .v2)
        #expect(state.octets == Array("EHLO x\r\n".utf8))
        try await client.close()
        try await server.close()
    }

    @Test(arguments: ["EHLO client.test\r\n", "PROXY TCP4 192.0.2.10 198.51.100.5 99999 25\r\n"])
    func aBadHeaderClosesTheConnectionWithoutHandingOn(opening: String) async throws {
        let handoff = Handoff()
        let server = try await Self.listen(handoff)
        let client = try await Self.send([Array(opening.utf8)], to: try #require(server.localAddress))
        try await Self.waitFor(handoff) { $0.closed }
        let state = handoff.state.withLockedValue { $0 }
        #expect(state.closed)
        #expect(state.header == nil && state.octets.isEmpty)
        try? await client.close()
        try await server.close()
    }

    @Test func anIncompleteHeaderIsClosedAtTheDeadline() async throws {
        let handoff = Handoff()
        let server = try await Self.listen(handoff, timeout: .milliseconds(200))
        // On a loaded machine the deadline may pass before the partial header is even written: the
        // write then fails on the closed connection, which is the behaviour under test too.
        let client = try? await Self.send([Array("PROXY TCP4 ".utf8)], to: try #require(server.localAddress))
        try await Self.waitFor(handoff) { $0.closed }
        #expect(handoff.state.withLockedValue { $0.closed && $0.header == nil })
        try? await client?.close()
        try await server.close()
    }
}

@available(*, unavailable)
extension ProxyProtocolHandlerTests.Collector: Sendable {}
