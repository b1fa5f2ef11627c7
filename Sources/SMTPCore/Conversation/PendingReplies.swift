import NIOCore

/// The replies still owed, oldest first, each with what it answers and the reader's own `Context`
/// (nothing for a capture's reader, a record's index for the report, the proxy's plan for the reply
/// on its upstream leg).
///
/// Bounded: past `capacity` the oldest entry is forgotten, so a client that pipelines without end
/// (or a capture that lost every reply) costs a fixed amount of memory.
public struct PendingReplies<Context: Sendable>: Sendable, Sequence {
    public struct Entry: Sendable {
        public var awaited: AwaitedReply
        public var context: Context

        public init(awaited: AwaitedReply, context: Context) {
            self.awaited = awaited
            self.context = context
        }
    }

    public let capacity: Int
    private var entries: CircularBuffer<Entry>

    public init(capacity: Int = .max) {
        self.capacity = capacity
        self.entries = CircularBuffer(initialCapacity: 16)
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }
    /// The entry the next reply answers.
    public var first: Entry? { entries.first }

    /// Adds an entry awaiting a reply; returns the oldest entry when it had to be forgotten.
    @discardableResult
    public mutating func append(_ awaited: AwaitedReply, _ context: Context) -> Entry? {
        let forgotten = entries.count >= capacity ? entries.removeFirst() : nil
        entries.append(Entry(awaited: awaited, context: context))
        return forgotten
    }

    /// Takes the entry a reply answers: the oldest (RFC 2920 §3), or `nil` when nothing is owed.
    public mutating func take() -> Entry? {
        entries.popFirst()
    }

    /// After a stretch of replies was lost (a capture's gap), skips the entries whose replies went
    /// missing: when the oldest cannot take a positive `code` but a later one can, everything before
    /// that one is dropped. Returns how many were skipped. A failure code fits anything, so it never
    /// realigns.
    @discardableResult
    public mutating func realign(toReplyCode code: Int) -> Int {
        guard code / 100 < 4, let head = entries.first, !head.awaited.accepts(code),
            let index = entries.firstIndex(where: { $0.awaited.accepts(code) })
        else { return 0 }
        let skipped = entries.distance(from: entries.startIndex, to: index)
        entries.removeFirst(skipped)
        return skipped
    }

    /// Forgets the first entry that matches: a reply it will never get (content that was not sent
    /// after all, a chunk cut short by the client's close).
    public mutating func removeFirst(where matches: (Entry) -> Bool) {
        guard let index = entries.firstIndex(where: matches) else { return }
        entries.remove(at: index)
    }

    public mutating func removeAll() { entries.removeAll() }

    /// The entries, oldest first.
    public func makeIterator() -> CircularBuffer<Entry>.Iterator { entries.makeIterator() }
}
