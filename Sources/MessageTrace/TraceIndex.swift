/// An index of session records: SQLite (`SQLiteTraceIndex`) or PostgreSQL. Every method blocks,
/// so the proxy calls them only from `TraceIndexWriter`'s thread.
public protocol TraceIndex: AnyObject {
    /// Adds the sessions in one transaction; a session id already there is left as it is, so adding
    /// the same records twice changes nothing. Returns how many were new.
    @discardableResult
    func add(_ sessions: [IndexedSession]) throws -> Int

    /// Sessions matching the query, newest first, at most `query.limit`.
    func search(_ query: TraceQuery) throws -> [TraceHit]

    /// Deletes sessions that started before `cutoff` (microseconds since the epoch), `batch` at a
    /// time, each batch its own short transaction so searches are never locked out. Returns the count.
    @discardableResult
    func deleteSessions(startedBefore cutoff: Int64, batch: Int) throws -> Int

    /// How many octets of a transcript file have been indexed from the file itself (0 if none), so
    /// that catching up reads only what was appended since.
    func indexedOctets(ofFile path: String) throws -> Int64
    func setIndexedOctets(_ octets: Int64, ofFile path: String) throws

    func sessionCount() throws -> Int

    /// Counts per outcome and per refusal cause and rule, over sessions that started in
    /// [since, until) (microseconds since the epoch; nil: unbounded); with a bucket width
    /// (microseconds), also the transactions per bucket.
    func stats(since: Int64?, until: Int64?, bucket: Int64?) throws -> TraceStats
}

/// One session found: its record's JSON line, and which of its transactions matched (nil: all).
public struct TraceHit: Sendable, Equatable {
    public var sessionID: String
    public var start: Int64
    public var line: String
    public var matchingPositions: [Int]?

    public init(sessionID: String, start: Int64, line: String, matchingPositions: [Int]?) {
        self.sessionID = sessionID
        self.start = start
        self.line = line
        self.matchingPositions = matchingPositions
    }
}

/// The index cannot be opened, written or read; `description` says which and why, in words.
public struct TraceIndexError: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
