import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import SMTPProxy

/// The real sink on a loopback port, spoken to by a raw NIO client.
@Suite struct SMTPSinkTests {
    /// Sends `script` in one write and reads until the connection closes (the script ends in QUIT).
    private func converse(with address: SocketAddress, _ script: String) async throws -> String {
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await client.executeThenClose { inbound, outbound in
            var received = ByteBuffer()
            var iterator = inbound.makeAsyncIterator()
            // Wait for the greeting first, as a client must (RFC 5321 §3.1).
            while !(received.readableBytesView.contains(UInt8(ascii: "\n"))) {
                guard var chunk = try await iterator.next() else { break }
                received.writeBuffer(&chunk)
            }
            try await outbound.write(ByteBuffer(string: script))
            while var chunk = try await iterator.next() {
                received.writeBuffer(&chunk)
            }
            return String(buffer: received)
        }
    }

    private func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "smtpsink-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func storesAcceptedMessagesAndRefusesSmuggling() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sink = SMTPSink(group: MultiThreadedEventLoopGroup.singleton, host: "127.0.0.1", port: 0, storeDirectory: directory)
        let address = try await sink.start()
        #expect(address.port != 0)

        let script = "EHLO client.test\r\nMAIL FROM:<a@example.com> SIZE=30\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n"
            + "Subject: hi\r\n\r\n..stuffed\r\n.\r\n"
            + "MAIL FROM:<x@example.com>\r\nRCPT TO:<y@example.org>\r\nDATA\r\nevil\n.\nMAIL FROM:<s@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nP\r\n.\r\n"
            + "QUIT\r\n"
        let transcript = try await converse(with: address, script)
        let lines = transcript.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "220 localhost ESMTP smtpscope sink")
        #expect(lines.contains("250-CHUNKING"))
        let queued = lines.filter { $0.hasPrefix("250 2.0.0 Ok: queued as ") }
        #expect(queued.count == 1)
        #expect(lines.contains("550 5.5.2 Error: bare <LF> received"))
        #expect(lines.dropLast().last == "221 2.0.0 Bye")

        let queueID = String(queued.first?.dropFirst("250 2.0.0 Ok: queued as ".count) ?? "")
        let stored = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(queueID).eml"))
        #expect(Array(stored) == Array("Subject: hi\r\n\r\n.stuffed\r\n".utf8))
        let envelope = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(queueID).json"))) as? [String: Any]
        #expect(envelope?["mail_from"] as? String == "a@example.com")
        #expect(envelope?["rcpt_to"] as? [String] == ["b@example.org", "c@example.org"])
        #expect(envelope?["size"] as? Int == 25)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(files == ["\(queueID).eml", "\(queueID).json"])

        try await sink.stop()
    }

    @Test func stopAnswersOpenSessionsWith421() async throws {
        let sink = SMTPSink(group: MultiThreadedEventLoopGroup.singleton, host: "127.0.0.1", port: 0, storeDirectory: nil)
        let address = try await sink.start()
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let text = try await client.executeThenClose { inbound, _ in
            var received = ByteBuffer()
            var iterator = inbound.makeAsyncIterator()
            guard var greeting = try await iterator.next() else { return "" }
            received.writeBuffer(&greeting)
            try await sink.stop()
            while var chunk = try await iterator.next() { received.writeBuffer(&chunk) }
            return String(buffer: received)
        }
        #expect(text.hasSuffix("421 4.3.2 localhost Service shutting down\r\n"))
    }
}
