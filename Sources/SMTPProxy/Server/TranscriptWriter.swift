import NIOCore
import NIOPosix
import SMTPTranscript
import Synchronization

/// Writes finished session records on a thread of its own, so an event loop never waits for a
/// disk (`proxy` writes day- and size-rotated files).
///
/// Records are written in the order sessions end and flushed after each one, so a crash loses at
/// most the record being written.
public final class TranscriptWriter: Sendable {
    private let pool: NIOThreadPool
    /// Touched only on the pool's single thread; the lock makes that checkable, not contended.
    /// (Elsewhere locks are `NIOLockedValueBox`, because ThreadSanitizer cannot see the standard
    /// library's `Mutex` hand over under contention; this one is never contended, and only `Mutex`
    /// takes a sink that is not `Sendable`.)
    private let sink: Mutex<(any TranscriptSink)?>
    private let failures = Atomic<Int>(0)
    private let onError: @Sendable (String) -> Void
    private let observer: (@Sendable (SessionRecord) -> Void)?
    private let written: (@Sendable (SessionRecord) -> Void)?

    /// `sink` nil discards records (for tests that only count sessions). `observer` sees every
    /// record on the writer's thread, before it is written (the `--metrics` counters). `written`
    /// sees each record the sink took, on the same thread, after it was written and flushed (the
    /// message trace's index writer, which must not block: it queues and returns).
    public init(
        sink: sending (any TranscriptSink)?,
        observer: (@Sendable (SessionRecord) -> Void)? = nil,
        written: (@Sendable (SessionRecord) -> Void)? = nil,
        onError: @escaping @Sendable (String) -> Void
    ) {
        self.pool = NIOThreadPool(numberOfThreads: 1)
        self.pool.start()
        self.sink = Mutex(sink)
        self.onError = onError
        self.observer = observer
        self.written = written
    }

    public var failureCount: Int { failures.load(ordering: .relaxed) }

    public func write(_ record: SessionRecord) {
        pool.submit { [self] state in
            guard state == .active else { return }
            observer?(record)
            sink.withLock { sink in
                guard sink != nil else { return }
                do {
                    try sink!.write(record)
                    try sink!.flush()
                    written?(record)
                } catch {
                    let first = failures.add(1, ordering: .relaxed).newValue == 1
                    if first { onError("\(error)") }
                }
            }
        }
    }

    /// Writes what is queued, closes the sink and stops the thread.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            pool.submit { [self] _ in
                sink.withLock { sink in
                    do {
                        try sink?.close()
                    } catch {
                        // Records a sink still held (a syslog backlog) are lost: the exit code says so.
                        failures.add(1, ordering: .relaxed)
                        onError("\(error)")
                    }
                    sink = nil
                }
                continuation.resume()
            }
        }
        try? await pool.shutdownGracefully()
    }
}
