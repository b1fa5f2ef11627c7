import NIOCore
import NIOPosix
import SMTPCore

/// The network side of a release: one connection to the upstream, `SMTPDelivery`'s commands out,
/// its replies in, the content dot-stuffed by SMTPCore's `DataContentWriter`. Bounded in time.
enum SMTPReleaseClient {
    static let timeout: TimeAmount = .seconds(60)

    /// The upstream's reply to the end of data; throws with the refusal or the failure.
    static func deliver(_ content: [UInt8], delivery: SMTPDelivery, to upstream: ConsoleAddress) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(15))
            .connect(host: upstream.host, port: upstream.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let deadline = channel.channel.eventLoop.scheduleTask(in: timeout) { channel.channel.close(promise: nil) }
        defer { deadline.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            var delivery = delivery
            var buffered: [UInt8] = []
            var lines = inbound.makeAsyncIterator()
            let replies = ReplyLines()
            var delivered: String?
            while true {
                // The next line, from what is buffered or what arrives.
                var line: String?
                while line == nil {
                    if let end = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                        var octets = buffered[..<end]
                        if octets.last == UInt8(ascii: "\r") { octets = octets.dropLast() }
                        line = String(decoding: octets, as: UTF8.self)
                        buffered.removeSubrange(...end)
                    } else {
                        guard let more = try await lines.next() else {
                            // Closing without answering QUIT is the server's affair: the message is taken.
                            if let delivered { return delivered }
                            throw QuarantineStore.Problem(description: "\(upstream) closed the connection")
                        }
                        buffered += more.readableBytesView
                        if buffered.count > 64 * 1024 { throw QuarantineStore.Problem(description: "\(upstream) sent an overlong line") }
                    }
                }
                guard let (code, text) = replies.complete(line!) else { continue }
                // The reply to QUIT, whatever it is: the message was taken at the end of data.
                if let delivered { return delivered }
                switch delivery.receive(code: code, text: text) {
                case .send(let command):
                    try await outbound.write(ByteBuffer(string: command + "\r\n"))
                case .sendContent:
                    var writer = DataContentWriter()
                    var output = ByteBuffer()
                    do {
                        try writer.write(ByteBuffer(bytes: content), into: &output)
                        try writer.finish(into: &output)
                    } catch {
                        throw QuarantineStore.Problem(description: "the quarantined message cannot be sent as it is: \(error)")
                    }
                    try await outbound.write(output)
                case .delivered(let reply):
                    delivered = reply
                    try await outbound.write(ByteBuffer(string: "QUIT\r\n"))
                case .failed(let stage, let reply):
                    try? await outbound.write(ByteBuffer(string: "QUIT\r\n"))
                    throw QuarantineStore.Problem(description: "\(upstream) refused \(stage): \(reply)")
                }
            }
        }
    }
}
