import MessageTrace
import NIOConcurrencyHelpers
import NIOPosix
import SMTPTranscript

/// The console's view of the message trace: the index's blocking calls, run one at a time on
/// NIO's thread pool, never on an event loop. One at a time because a `TraceIndex` is not
/// promised to be safe from several threads (PostgreSQL's is one connection).
public final class ConsoleIndex: Sendable {
    /// The lock is the only way to the index, which makes the unchecked `Sendable` true.
    private final class Guarded: @unchecked Sendable {
        let lock = NIOLock()
        let open: @Sendable () throws -> any TraceIndex
        var index: (any TraceIndex)?

        init(open: @escaping @Sendable () throws -> any TraceIndex) {
            self.open = open
        }
    }

    private let guarded: Guarded

    /// An index already open.
    public convenience init(_ index: any TraceIndex) {
        // Reached only through `Guarded`'s lock, like every index this type holds.
        nonisolated(unsafe) let opened = index
        self.init { opened }
    }

    /// Opened at the first request, and again after a failure to open: beside the proxy, the
    /// index may not exist until the proxy's index writer has made it.
    public init(open: @escaping @Sendable () throws -> any TraceIndex) {
        guarded = Guarded(open: open)
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable (any TraceIndex) throws -> T) async throws -> T {
        let guarded = self.guarded
        return try await NIOThreadPool.singleton.runIfActive {
            try guarded.lock.withLock {
                let index = try guarded.index ?? guarded.open()
                guarded.index = index
                return try body(index)
            }
        }
    }

    public func search(_ query: TraceQuery) async throws -> [TraceHit] {
        try await run { try $0.search(query) }
    }

    /// One session's stored line, or nil.
    public func session(_ id: String) async throws -> String? {
        var query = TraceQuery(limit: 1)
        query.session = id
        return try await search(query).first?.line
    }

    public func stats(since: Int64?, until: Int64?, bucket: Int64?) async throws -> TraceStats {
        try await run { try $0.stats(since: since, until: until, bucket: bucket) }
    }
}
