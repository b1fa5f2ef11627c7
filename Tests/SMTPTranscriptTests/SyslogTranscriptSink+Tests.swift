import Glibc
import NIOConcurrencyHelpers
import Testing
@testable import SMTPTranscript

/// The sink against a real TCP listener on 127.0.0.1 that plays the collector: it accepts and reads
/// octet-counted frames (RFC 6587 §3.4.1).
@Suite(.serialized) struct SyslogTranscriptSinkTests {
    @Test func recordsArriveInOrderAsOneFrameEach() throws {
        let collector = try LoopbackCollector()
        defer { collector.stop() }
        let sink = SyslogTranscriptSink(target: collector.target, hostname: "mx1", processID: "7")
        for record in Fixtures.all {
            try sink.write(record)
            try sink.flush()
        }
        let messages = try collector.receive(Fixtures.all.count)
        #expect(messages.count == Fixtures.all.count)
        for (message, record) in zip(messages, Fixtures.all) {
            var expected: [UInt8] = []
            SyslogMessage(record: record, hostname: "mx1", processID: "7").appendMessage(into: &expected)
            #expect(message == expected)
        }
        try sink.close()
        #expect(sink.droppedCount == 0)
    }

    @Test func nothingConnectsBeforeTheFirstRecord() throws {
        let collector = try LoopbackCollector()
        defer { collector.stop() }
        let sink = SyslogTranscriptSink(target: collector.target)
        try sink.flush()
        #expect(!collector.hasPendingConnection())
        try sink.write(Fixtures.minimal)
        try sink.flush()
        #expect(try collector.receive(1).count == 1)
        try sink.close()
    }

    @Test func recordsWaitForACollectorThatIsNotThereYet() throws {
        let port = try LoopbackCollector.unusedPort()
        let notices = Notices()
        let sink = SyslogTranscriptSink(target: SyslogTarget(host: "127.0.0.1", port: port), retryInterval: 0) { text in
            notices.withLock { $0.append(text) }
        }
        for record in Fixtures.all {
            try sink.write(record)
            try sink.flush()
        }
        #expect(sink.heldCount == Fixtures.all.count)
        #expect(notices.withLock { $0.count } == 1, "one notice per outage")
        #expect(notices.withLock { $0.first?.contains("unreachable") } == true)

        let collector = try LoopbackCollector(port: port)
        defer { collector.stop() }
        try sink.flush()
        #expect(sink.heldCount == 0)
        let messages = try collector.receive(Fixtures.all.count)
        #expect(messages.map(jsonOf) == Fixtures.all.map(SessionRecordEncoder.jsonLine))
        #expect(notices.withLock { $0.last?.contains("reachable again; sending \(Fixtures.all.count) held records") } == true)
        try sink.close()
    }

    @Test func aRestartedCollectorIsReconnectedToBeforeTheNextRecord() throws {
        let first = try LoopbackCollector()
        let sink = SyslogTranscriptSink(target: first.target, retryInterval: 0)
        try sink.write(Fixtures.minimal)
        try sink.flush()
        #expect(try first.receive(1).count == 1)
        let port = first.target.port
        first.stop()

        let second = try LoopbackCollector(port: port)
        defer { second.stop() }
        try sink.write(Fixtures.awkward)
        try sink.flush()
        #expect(try second.receive(1).map(jsonOf) == [SessionRecordEncoder.jsonLine(Fixtures.awkward)])
        try sink.close()
    }

    @Test func aFullBacklogDropsNewRecordsAndCountsThem() throws {
        let port = try LoopbackCollector.unusedPort()
        let one = SyslogMessage(record: Fixtures.minimal, hostname: "h", processID: "1").frame.count
        let sink = SyslogTranscriptSink(target: SyslogTarget(host: "127.0.0.1", port: port), hostname: "h", processID: "1",
                                        backlogLimit: one * 2, retryInterval: 3600)
        try sink.write(Fixtures.minimal)
        try sink.flush()
        try sink.write(Fixtures.minimal)
        var failures: [TranscriptFileError] = []
        for _ in 0..<3 {
            do {
                try sink.write(Fixtures.minimal)
            } catch {
                failures.append(error)
            }
        }
        #expect(failures.count == 3)
        #expect(failures.last?.path == "syslog+tcp://127.0.0.1:\(port)")
        #expect(failures.last?.reason.contains("3 dropped in all") == true)
        #expect(sink.heldCount == 2)
        #expect(sink.droppedCount == 3)
        // close() tries once more, ignoring the retry interval; nobody listens, so the two are lost.
        #expect(throws: TranscriptFileError.self) { try sink.close() }
        #expect(sink.droppedCount == 5)
    }

    @Test func aRecordLargerThanTheBacklogStillGoesWhenNothingElseWaits() throws {
        let collector = try LoopbackCollector()
        defer { collector.stop() }
        let sink = SyslogTranscriptSink(target: collector.target, backlogLimit: 16)
        try sink.write(Fixtures.deliveredProxy)
        try sink.flush()
        #expect(try collector.receive(1).map(jsonOf) == [SessionRecordEncoder.jsonLine(Fixtures.deliveredProxy)])
        try sink.close()
    }

    @Test func closeDeliversWhatIsHeld() throws {
        let port = try LoopbackCollector.unusedPort()
        let sink = SyslogTranscriptSink(target: SyslogTarget(host: "127.0.0.1", port: port), retryInterval: 3600)
        try sink.write(Fixtures.minimal)
        try sink.flush()
        #expect(sink.heldCount == 1)
        let collector = try LoopbackCollector(port: port)
        defer { collector.stop() }
        try sink.write(Fixtures.awkward)
        try sink.flush()
        #expect(sink.heldCount == 2, "the retry interval has not passed")
        try sink.close()
        #expect(try collector.receive(2).map(jsonOf) == [Fixtures.minimal, Fixtures.awkward].map(SessionRecordEncoder.jsonLine))
    }

    @Test func aCollectorThatStopsReadingCannotHoldTheWriterOrShutdown() throws {
        // Listening but never accepting: the kernel completes the handshake, then the socket buffers
        // fill and a blocking send would wait forever without SO_SNDTIMEO.
        let collector = try LoopbackCollector()
        defer { collector.stop() }
        var record = Fixtures.minimal
        let line = String(repeating: "x", count: 8000)
        record.events = (0..<4000).map { .init(t: Int64($0), from: .client, to: .server, text: line) }
        let sink = SyslogTranscriptSink(target: collector.target, sendTimeout: 0.5, retryInterval: 3600)
        try sink.write(record)
        try sink.flush()
        #expect(sink.heldCount == 1, "the record cut short is kept whole for the next connection")
        #expect(throws: TranscriptFileError.self) { try sink.close() }
        #expect(sink.droppedCount == 1)
    }

    @Test(.enabled(if: LoopbackCollector.ipv6LoopbackAvailable, "this host has no ::1"))
    func anIPv6CollectorInBrackets() throws {
        let collector = try LoopbackCollector(ipv6: true)
        defer { collector.stop() }
        let target = try #require(try? SyslogTarget.parse("syslog+tcp://[::1]:\(collector.target.port)").get())
        let sink = SyslogTranscriptSink(target: target)
        try sink.write(Fixtures.minimal)
        try sink.flush()
        #expect(try collector.receive(1).count == 1)
        try sink.close()
    }

    private func jsonOf(_ message: [UInt8]) -> String {
        // "<PRI>1 TIMESTAMP HOST APP PROCID MSGID - " then the JSON: seven spaces precede it.
        var spaces = 0
        var index = 0
        while index < message.count, spaces < 7 {
            if message[index] == UInt8(ascii: " ") { spaces += 1 }
            index += 1
        }
        return String(decoding: message[index...], as: UTF8.self)
    }
}

final class Notices: Sendable {
    private let texts = NIOLockedValueBox<[String]>([])

    func withLock<T>(_ body: (inout [String]) -> T) -> T {
        texts.withLockedValue { body(&$0) }
    }
}

/// A listening TCP socket on loopback that accepts one connection at a time and splits what it
/// reads into octet-counted frames.
final class LoopbackCollector {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let target: SyslogTarget
    private var listener: Int32
    private var connection: Int32 = -1
    private var buffer: [UInt8] = []

    init(port: Int = 0, ipv6: Bool = false) throws {
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var bound: Int32
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            address.sin6_addr = in6addr_loopback
            bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
            bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard bound == 0, listen(fd, 8) == 0 else {
            let code = errno
            close(fd)
            throw Failure(description: "bind/listen: \(String(cString: strerror(code)))")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let boundPort = withUnsafePointer(to: &storage) { pointer -> Int in
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
        listener = fd
        target = SyslogTarget(host: ipv6 ? "::1" : "127.0.0.1", port: boundPort)
    }

    static var ipv6LoopbackAvailable: Bool {
        guard let probe = try? LoopbackCollector(ipv6: true) else { return false }
        probe.stop()
        return true
    }

    /// A loopback port nothing listens on (bound, then released).
    static func unusedPort() throws -> Int {
        let probe = try LoopbackCollector()
        probe.stop()
        return probe.target.port
    }

    func hasPendingConnection() -> Bool {
        var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, 200) > 0
    }

    /// The next `count` frames' messages, waiting up to 20 s in all.
    func receive(_ count: Int) throws -> [[UInt8]] {
        var messages: [[UInt8]] = []
        var waited = 0
        while messages.count < count {
            if let message = nextFrame() {
                messages.append(message)
                continue
            }
            guard waited < 20_000 else { throw Failure(description: "only \(messages.count) of \(count) frames arrived") }
            if connection < 0 {
                var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                if poll(&poller, 1, 100) > 0 { connection = accept(listener, nil, nil) }
                waited += 100
                continue
            }
            var poller = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else {
                waited += 100
                continue
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let read = recv(connection, &chunk, chunk.count, 0)
            if read <= 0 {
                close(connection)
                connection = -1
                continue
            }
            buffer.append(contentsOf: chunk[..<read])
        }
        return messages
    }

    private func nextFrame() -> [UInt8]? {
        guard let space = buffer.firstIndex(of: UInt8(ascii: " ")),
              let length = Int(String(decoding: buffer[..<space], as: UTF8.self)),
              buffer.count >= space + 1 + length else { return nil }
        let message = Array(buffer[(space + 1)..<(space + 1 + length)])
        buffer.removeFirst(space + 1 + length)
        return message
    }

    func stop() {
        if connection >= 0 { close(connection) }
        if listener >= 0 { close(listener) }
        connection = -1
        listener = -1
    }
}
