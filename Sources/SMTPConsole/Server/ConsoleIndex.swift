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
        let index: any TraceIndex

        init(_ index: any TraceIndex) {
            self.index = index
        }
    }

    private let guarded: Guarded

    public init(_ index: any TraceIndex) {
        guarded = Guarded(index)
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable (any TraceIndex) throws -> T) async throws -> T {
        let guarded = self.guarded
        return try await NIOThreadPool.singleton.runIfActive {
            try guarded.lock.withLock { try body(guarded.index) }
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

    public func stats(since: Int64?, until: Int64?) async throws -> TraceStats {
        try await run { try $0.stats(since: since, until: until) }
    }
}
