/// One counter: a limit's counter identity (`RuleLimit.counterID`) and one key's value of it.
public struct LimitCounter: Sendable, Hashable {
    /// Changes when the limit's unit, key field or window changes, so a reload that keeps the
    /// definition keeps the counts.
    public var id: String
    public var key: String
    public var windowSeconds: Int

    public init(id: String, key: String, windowSeconds: Int) {
        self.id = id
        self.key = key
        self.windowSeconds = windowSeconds
    }
}

/// Where sliding-window counts live. Synchronous: the in-memory store answers under a lock, in
/// place; a shared store (PostgreSQL) would answer a session asynchronously (see README, "Limits").
public protocol LimitCounterStore: Sendable {
    /// The amount added to `counter` within its window ending at `now`.
    func count(_ counter: LimitCounter, at now: LimitInstant) -> Int

    /// Adds `amount` at `now`.
    func add(_ amount: Int, to counter: LimitCounter, at now: LimitInstant)

    /// Forgets every counter whose `id` is not in `ids`: a reload dropped or changed its limit.
    func retain(counterIDs ids: Set<String>)
}
