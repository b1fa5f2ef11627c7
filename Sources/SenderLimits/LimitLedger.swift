import SMTPRules

/// Something that happened which a limit counts, reported once it has happened: refused and
/// tempfailed attempts are never reported, so they never count.
public enum LimitEvent: Sendable, Hashable {
    /// The `connect` rules let the session in.
    case sessionOpened
    /// The upstream accepted a recipient (a 2xx to RCPT); the facts name it.
    case recipientAccepted
    /// The upstream accepted a message (a 2xx to the end of data) of `octets` octets.
    case messageAccepted(octets: Int)

    /// How much the event adds to a limit counting `unit`; nil when it does not count there.
    func amount(for unit: LimitUnit) -> Int? {
        switch (self, unit) {
        case (.sessionOpened, .sessions), (.recipientAccepted, .recipients), (.messageAccepted, .messages): 1
        case (.messageAccepted(let octets), .bytes): octets
        default: nil
        }
    }
}

/// One addition made to a counter, for metrics (per limit, never per key) and logs.
public struct LimitAddition: Sendable, Hashable {
    public var limit: String
    public var amount: Int
}

/// Between the rules and a counter store: fills `RuleFacts.limitCounts` before a stage is evaluated,
/// and adds what happened afterwards. The rules stay pure: only this reads or writes a store.
public struct LimitLedger: Sendable {
    public let store: any LimitCounterStore

    public init(store: any LimitCounterStore) {
        self.store = store
    }

    /// Puts the count of each of `limits` for this session's key into `facts`; a limit whose key
    /// has no value here gets no entry.
    public func fillCounts(_ facts: inout RuleFacts, for limits: [RuleLimit], at now: LimitInstant) {
        for limit in limits {
            guard let key = limit.key(in: facts) else { continue }
            facts.limitCounts[limit.name] = store.count(limit.counter(forKey: key), at: now)
        }
    }

    /// Adds `event` to every limit of `limits` that counts it, under the key `facts` give.
    @discardableResult
    public func record(_ event: LimitEvent, facts: RuleFacts, limits: [RuleLimit], at now: LimitInstant) -> [LimitAddition] {
        var additions: [LimitAddition] = []
        for limit in limits {
            guard let amount = event.amount(for: limit.unit), amount > 0, let key = limit.key(in: facts) else { continue }
            store.add(amount, to: limit.counter(forKey: key), at: now)
            additions.append(LimitAddition(limit: limit.name, amount: amount))
        }
        return additions
    }

    /// After a reload: counters of limits no longer defined (or defined differently) go.
    public func retain(_ limits: [RuleLimit]) {
        store.retain(counterIDs: Set(limits.map(\.counterID)))
    }
}

extension RuleLimit {
    public func counter(forKey key: String) -> LimitCounter {
        LimitCounter(id: counterID, key: key, windowSeconds: window.seconds)
    }
}
