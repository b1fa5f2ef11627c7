import Dispatch
import Foundation
import SMTPTranscript
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Feeds the proxy's records to the index on a thread of its own, in batches, so that no session
/// ever waits for a database.
///
/// `enqueue` never blocks: it appends to a bounded queue. When the index cannot be opened or
/// written (disk full, locked, PostgreSQL down) the writer says so once, keeps the batch it holds
/// and retries with a growing delay; records past the queue's bound are dropped from the queue and
/// picked up again from the transcript files, which stay the record of truth, once the index is
/// back. At start-up it first catches up with what the files hold that the index lacks.
public final class TraceIndexWriter: Sendable {
    public struct Configuration: Sendable {
        /// Records held while the index is slow or down; past it they are left to the catch-up.
        public var capacity = 20_000
        public var batchSize = 500
        /// Seconds before the first retry; doubled up to `maximumRetryDelay`.
        public var retryDelay = 0.5
        public var maximumRetryDelay = 15.0
        /// Sessions older than this (microseconds) are deleted, at start-up and hourly.
        public var retention: Int64?
        /// The transcript files to catch up from, oldest first (empty for standard output or syslog).
        public var transcriptFiles: @Sendable () -> [String] = { [] }

        public init() {}
    }

    /// What the writer reports, for the log and `/metrics`.
    public enum Event: Sendable {
        /// The index failed; `first` is true for the first failure after it last worked.
        case failed(String, first: Bool)
        case recovered
        case indexed(Int)
        /// Records left out of the queue, to be read again from the files.
        case dropped(Int)
        case caughtUp(TranscriptFileIndexing.Counts, files: Int)
        case retained(deleted: Int)
    }

    private struct State {
        var pending: [SessionRecord] = []
        var head = 0
        var closing = false
        var missed = false
    }

    private let configuration: Configuration
    private let open: @Sendable () throws -> any TraceIndex
    private let onEvent: @Sendable (Event) -> Void
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    public init(
        configuration: Configuration = Configuration(),
        open: @escaping @Sendable () throws -> any TraceIndex,
        onEvent: @escaping @Sendable (Event) -> Void
    ) {
        self.configuration = configuration
        self.open = open
        self.onEvent = onEvent
        let thread = Thread { [self] in run() }
        thread.start()
    }

    /// Called on the transcript writer's thread for each record written; never blocks.
    public func enqueue(_ record: SessionRecord) {
        let dropped = state.withLock { state -> Bool in
            guard state.pending.count - state.head < configuration.capacity, !state.closing else {
                state.missed = true
                return true
            }
            state.pending.append(record)
            return false
        }
        if dropped { onEvent(.dropped(1)) } else { wake.signal() }
    }

    /// Writes what is queued, waiting up to `timeout` seconds for an index that is down; what is
    /// left is in the transcript files for the next start-up's catch-up.
    public func close(timeout: Double) -> Bool {
        state.withLock { $0.closing = true }
        wake.signal()
        return finished.wait(timeout: .now() + timeout) == .success
    }

    private func take() -> (batch: [SessionRecord], closing: Bool, missed: Bool) {
        state.withLock { state in
            let end = min(state.pending.count, state.head + configuration.batchSize)
            let batch = Array(state.pending[state.head..<end])
            state.head = end
            if state.head == state.pending.count {
                state.pending.removeAll(keepingCapacity: state.pending.count <= 4096)
                state.head = 0
            }
            let missed = state.missed
            state.missed = false
            return (batch, state.closing, missed)
        }
    }

    private var closing: Bool { state.withLock { $0.closing } }

    private func run() {
        var index: (any TraceIndex)?
        var batch: [IndexedSession] = []
        var needsCatchUp = true
        var failing = false
        var delay = configuration.retryDelay
        var nextRetention = DispatchTime.now()
        while true {
            if batch.isEmpty {
                let taken = take()
                if taken.missed { needsCatchUp = true }
                batch = taken.batch.map { IndexedSession($0, line: SessionRecordEncoder.jsonLine($0)) }
                if batch.isEmpty && !needsCatchUp && taken.closing { break }
            }
            do {
                if index == nil { index = try open() }
                guard let index else { continue }
                if needsCatchUp {
                    let files = configuration.transcriptFiles()
                    var counts = TranscriptFileIndexing.Counts()
                    for file in files {
                        counts += try TranscriptFileIndexing.index(file: file, into: index, resume: true)
                    }
                    needsCatchUp = false
                    onEvent(.caughtUp(counts, files: files.count))
                }
                if !batch.isEmpty {
                    try index.add(batch)
                    onEvent(.indexed(batch.count))
                    batch.removeAll()
                }
                if let retention = configuration.retention, DispatchTime.now() >= nextRetention {
                    let cutoff = Self.now() - retention
                    let deleted = try index.deleteSessions(startedBefore: cutoff, batch: 500)
                    onEvent(.retained(deleted: deleted))
                    nextRetention = .now() + 3600
                }
                if failing {
                    failing = false
                    onEvent(.recovered)
                }
                delay = configuration.retryDelay
            } catch {
                onEvent(.failed("\(error)", first: !failing))
                failing = true
                // A fresh connection or file handle on the next try.
                index = nil
                if closing { break }
                _ = wake.wait(timeout: .now() + delay)
                delay = min(delay * 2, configuration.maximumRetryDelay)
                continue
            }
            if batch.isEmpty && state.withLock({ $0.pending.count - $0.head == 0 && !$0.missed && !$0.closing }) {
                _ = wake.wait(timeout: .now() + 1)
            }
        }
        finished.signal()
    }

    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1000
    }
}
