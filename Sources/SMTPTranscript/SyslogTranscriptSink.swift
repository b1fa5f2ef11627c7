#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Sends each record to a syslog collector over TCP as one RFC 5424 message framed by RFC 6587
/// octet counting (`proxy --transcripts syslog+tcp://HOST:PORT`; the format is `SyslogMessage`).
///
/// Blocking POSIX socket I/O, called on the transcript writer's own thread, never on an event loop.
///
/// - **Lazy connection.** Nothing connects until the first record; the host name is resolved again
///   on every connection, so a collector that moves (a container restarted elsewhere) is found.
/// - **Collector down or restarted.** Records wait, in order, in an in-memory backlog of at most
///   `backlogLimit` octets of frames (`defaultBacklogLimit`, 64 MiB). Before each delivery the
///   socket is checked for the collector's FIN or RST (a collector never sends anything), so a
///   collector that restarted between two records is reconnected to before a record is written into
///   the dead connection. A failed connection is retried with the next record once `retryInterval`
///   has passed, and once more on `close()`. When the backlog is full, the new record is dropped:
///   `write` throws a `TranscriptFileError` that counts the drops, and the writer reports it.
/// - **Stalled collector.** Connecting, and sending one record, give up after `sendTimeout`
///   (SO_SNDTIMEO and a deadline per frame), so a collector that stops reading cannot hold the
///   writer, or shutdown, for much longer than that. A frame cut short by a failure is sent again,
///   whole, on the next connection.
/// - **Shutdown.** `close()` makes one last attempt to deliver the backlog; what is still held is
///   lost and reported in the error it throws.
///
/// Plain TCP syslog cannot confirm delivery: a record written just before a collector dies may sit
/// in the kernel's buffers and be lost with the connection (RFC 6587 §4 has no acknowledgements).
public final class SyslogTranscriptSink: TranscriptSink {
    /// 64 MiB of framed records.
    public static let defaultBacklogLimit = 64 << 20
    /// Seconds a connection attempt or one send may block.
    public static let defaultSendTimeout: Double = 10
    /// Seconds between connection attempts while the collector is unreachable.
    public static let defaultRetryInterval: Double = 1

    public let target: SyslogTarget
    public let backlogLimit: Int
    private let hostname: String
    private let processID: String
    private let sendTimeout: Double
    private let retryInterval: Double
    private let notice: (@Sendable (String) -> Void)?

    private var descriptor: Int32 = -1
    /// Frames not yet sent, oldest first, from `backlogHead` on.
    private var backlog: [[UInt8]] = []
    private var backlogHead = 0
    private var backlogBytes = 0
    private var nextAttempt: Double = 0
    /// Set while the collector is unreachable: what happened, and how many records were dropped since.
    private var outage: (reason: String, dropped: Int)?
    private var droppedTotal = 0

    /// Records dropped since start: backlog full, or still held at `close()`.
    public var droppedCount: Int { droppedTotal }
    /// Records waiting for the collector.
    public var heldCount: Int { backlog.count - backlogHead }

    /// Does not connect; the first record does. `notice` hears about outages and recoveries (for
    /// the log); it is called on the writer's thread.
    public init(
        target: SyslogTarget,
        hostname: String = SyslogTranscriptSink.localHostname(),
        processID: String = String(getpid()),
        backlogLimit: Int = SyslogTranscriptSink.defaultBacklogLimit,
        sendTimeout: Double = SyslogTranscriptSink.defaultSendTimeout,
        retryInterval: Double = SyslogTranscriptSink.defaultRetryInterval,
        notice: (@Sendable (String) -> Void)? = nil
    ) {
        precondition(backlogLimit > 0, "backlogLimit must be positive")
        precondition(sendTimeout > 0, "sendTimeout must be positive")
        self.target = target
        self.hostname = hostname
        self.processID = processID
        self.backlogLimit = backlogLimit
        self.sendTimeout = sendTimeout
        self.retryInterval = max(0, retryInterval)
        self.notice = notice
    }

    deinit {
        if descriptor >= 0 { _ = posixClose(descriptor) }
    }

    /// The machine's host name for the HOSTNAME field; "-" (NILVALUE) when it has none.
    public static func localHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "-" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "-" : name
    }

    public func write(_ record: SessionRecord) throws(TranscriptFileError) {
        let frame = SyslogMessage(record: record, hostname: hostname, processID: processID).frame
        if heldCount > 0, backlogBytes + frame.count > backlogLimit {
            deliver(force: false)
        }
        // One record larger than the whole backlog is still taken when nothing else waits.
        if heldCount > 0, backlogBytes + frame.count > backlogLimit {
            droppedTotal += 1
            outage?.dropped += 1
            throw TranscriptFileError(
                operation: .write,
                path: target.description,
                errno: 0,
                reason: "the collector is unreachable (\(outage?.reason ?? "not accepting records")) and "
                    + "\(heldCount) records (\(backlogBytes) octets, the limit) are already held; "
                    + "session \(record.sessionID) dropped, \(droppedTotal) dropped in all"
            )
        }
        backlog.append(frame)
        backlogBytes += frame.count
    }

    public func flush() throws(TranscriptFileError) {
        deliver(force: false)
    }

    public func close() throws(TranscriptFileError) {
        deliver(force: true)
        disconnect()
        let lost = heldCount
        guard lost > 0 else { return }
        backlog.removeAll()
        backlogHead = 0
        backlogBytes = 0
        droppedTotal += lost
        throw TranscriptFileError(
            operation: .close,
            path: target.description,
            errno: 0,
            reason: "the collector is unreachable (\(outage?.reason ?? "not accepting records")); "
                + "\(lost) held records lost at shutdown, \(droppedTotal) dropped in all"
        )
    }

    // MARK: - Delivery

    /// Sends held frames in order until none is left or the collector fails; `force` ignores the
    /// retry interval.
    private func deliver(force: Bool) {
        while heldCount > 0 {
            if descriptor >= 0, peerHasClosed() {
                disconnect()
            }
            if descriptor < 0 {
                guard force || Self.monotonicSeconds() >= nextAttempt else { return }
                if let failure = connect() {
                    unreachable(failure)
                    return
                }
                recovered()
            }
            if let failure = send(backlog[backlogHead]) {
                disconnect()
                unreachable("send: \(failure)")
                return
            }
            backlogBytes -= backlog[backlogHead].count
            backlog[backlogHead] = []
            backlogHead += 1
            if backlogHead == backlog.count {
                backlog.removeAll(keepingCapacity: true)
                backlogHead = 0
            } else if backlogHead >= 1024, backlogHead * 2 >= backlog.count {
                backlog.removeFirst(backlogHead)
                backlogHead = 0
            }
        }
    }

    private func unreachable(_ reason: String) {
        nextAttempt = Self.monotonicSeconds() + retryInterval
        if outage == nil {
            notice?("syslog collector \(target) unreachable (\(reason)); holding up to \(backlogLimit) octets of records and retrying")
        }
        outage = (reason, outage?.dropped ?? 0)
    }

    private func recovered() {
        guard let previous = outage else { return }
        outage = nil
        let dropped = previous.dropped > 0 ? "; \(previous.dropped) records were dropped while it was unreachable" : ""
        notice?("syslog collector \(target) reachable again; sending \(heldCount) held records\(dropped)")
    }

    // MARK: - Socket

    /// Connects to the first address of the target that answers; nil on success, else why not.
    private func connect() -> String? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard status == 0, let first = list else {
            return "cannot resolve \(target.host): \(String(cString: gai_strerror(status)))"
        }
        defer { freeaddrinfo(first) }
        var failure = "no address for \(target.host)"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let address = entry {
            entry = address.pointee.ai_next
            let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype | Int32(SOCK_CLOEXEC_FLAG), address.pointee.ai_protocol)
            guard fd >= 0 else {
                failure = "socket: \(String(cString: strerror(errno)))"
                continue
            }
            // SO_SNDTIMEO bounds connect(2) on Linux as well as send(2).
            var timeout = timeval(tv_sec: Int(sendTimeout), tv_usec: Int((sendTimeout - sendTimeout.rounded(.down)) * 1_000_000))
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            if posixConnect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 {
                descriptor = fd
                return nil
            }
            let code = errno
            failure = code == EINPROGRESS || code == EAGAIN ? "connect: timed out after \(sendTimeout) s"
                : "connect: \(String(cString: strerror(code)))"
            _ = posixClose(fd)
        }
        return failure
    }

    /// True when the collector closed or reset the connection. A collector never sends, so any
    /// readable state means the end; stray octets are read and ignored.
    private func peerHasClosed() -> Bool {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN) | Int16(POLLRDHUP_FLAG), revents: 0)
        guard poll(&poller, 1, 0) > 0 else { return false }
        if poller.revents & (Int16(POLLERR) | Int16(POLLHUP) | Int16(POLLNVAL) | Int16(POLLRDHUP_FLAG)) != 0 {
            return true
        }
        var scratch = [UInt8](repeating: 0, count: 4096)
        let count = recv(descriptor, &scratch, scratch.count, Int32(MSG_DONTWAIT))
        return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    }

    /// Writes the whole frame within `sendTimeout`; nil on success, else the error. SO_SNDTIMEO
    /// bounds each send(2), and a collector that reads a trickle would restart it every time, so the
    /// frame as a whole has the same deadline.
    private func send(_ frame: [UInt8]) -> String? {
        let deadline = Self.monotonicSeconds() + sendTimeout
        return frame.withUnsafeBytes { raw -> String? in
            guard let base = raw.baseAddress else { return nil }
            var offset = 0
            while offset < raw.count {
                if offset > 0, Self.monotonicSeconds() >= deadline {
                    return "timed out after \(sendTimeout) s with \(offset) of \(raw.count) octets sent"
                }
                let sent = posixSend(descriptor, base + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if sent < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    return code == EAGAIN || code == EWOULDBLOCK ? "timed out after \(sendTimeout) s" : String(cString: strerror(code))
                }
                offset += sent
            }
            return nil
        }
    }

    private func disconnect() {
        guard descriptor >= 0 else { return }
        _ = posixClose(descriptor)
        descriptor = -1
    }

    private static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1_000_000_000
    }
}

@available(*, unavailable)
extension SyslogTranscriptSink: Sendable {}

// The methods named `close`, `connect` and `send` above shadow the C functions inside the class.
@inline(__always) private func posixClose(_ fd: Int32) -> Int32 { close(fd) }
@inline(__always) private func posixConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t) -> Int32 {
    connect(fd, address, length)
}
@inline(__always) private func posixSend(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int, _ flags: Int32) -> Int {
    send(fd, buffer, count, flags)
}

#if canImport(Glibc)
private let SOCK_CLOEXEC_FLAG = Int32(SOCK_CLOEXEC.rawValue)
/// <bits/poll.h> defines POLLRDHUP (Linux 2.6.17) only under _GNU_SOURCE, which Swift does not set.
private let POLLRDHUP_FLAG: Int32 = 0x2000
#else
private let SOCK_CLOEXEC_FLAG: Int32 = 0
private let POLLRDHUP_FLAG: Int32 = 0
#endif
