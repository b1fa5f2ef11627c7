import Synchronization

/// Sliding-window counters in the process's memory, safe to use from every event loop at once.
///
/// **The window.** Each counter keeps sub-buckets, `bucketsPerWindow` to a window (a minute each for
/// `1h`), not one timestamp per event: a budget of 50 000 messages a day must not cost 50 000
/// entries per sender. A count sums the buckets that overlap the window, the oldest one whole, so
/// an event counts for at least the window and at most one bucket longer (1/60 of it). The error
/// is on the safe side: no window ever holds more than `max`; a sender may wait up to a bucket
/// longer than the exact window would make it.
///
/// **Memory.** Buckets older than the window are dropped whenever a counter is touched, counters
/// with nothing left in their window are swept every `sweepInterval` operations (and, when the store
/// is full, at most once a second), and at most `maxCounters` counters exist: a new key beyond that
/// is not counted (fail open, as a store that is down would be) and `Statistics.untracked` says how
/// often.
public final class MemoryLimitStore: LimitCounterStore {
    public static let bucketsPerWindow: Int64 = 60
    public static let sweepInterval = 4096

    public struct Statistics: Sendable, Hashable {
        /// Counters holding something.
        public var counters: Int
        /// Additions not counted because `maxCounters` counters existed.
        public var untracked: Int
    }

    private struct Bucket {
        var index: Int64
        var amount: Int
    }

    private struct State {
        var counters: [LimitCounter: [Bucket]] = [:]
        var operations = 0
        var untracked = 0
        /// When a full store last swept for room: at most once a second, so a flood of new keys
        /// cannot make every addition walk every counter.
        var lastSweepForRoom: Int64?
    }

    private let state = Mutex(State())
    public let maxCounters: Int

    public init(maxCounters: Int = 200_000) {
        precondition(maxCounters > 0)
        self.maxCounters = maxCounters
    }

    /// A bucket's width in milliseconds: the window over `bucketsPerWindow`, rounded up so the
    /// buckets together cover at least the whole window.
    static func bucketWidth(_ counter: LimitCounter) -> Int64 {
        let window = Int64(max(counter.windowSeconds, 1)) * 1000
        return (window + bucketsPerWindow - 1) / bucketsPerWindow
    }

    /// The oldest bucket that still overlaps the window ending at `now`.
    static func oldestBucket(_ counter: LimitCounter, at now: LimitInstant) -> Int64 {
        max(now.milliseconds, 0) / bucketWidth(counter) - bucketsPerWindow
    }

    public func count(_ counter: LimitCounter, at now: LimitInstant) -> Int {
        let oldest = Self.oldestBucket(counter, at: now)
        let newest = max(now.milliseconds, 0) / Self.bucketWidth(counter)
        return state.withLock { state in
            state.operations += 1
            guard let buckets = state.counters[counter] else { return 0 }
            var total = 0
            for bucket in buckets.reversed() {
                if bucket.index < oldest { break }
                // A bucket after `now` (a replay out of order): not yet in this window.
                if bucket.index <= newest { total = total.addingReportingOverflow(bucket.amount).partialValue }
            }
            return total
        }
    }

    public func add(_ amount: Int, to counter: LimitCounter, at now: LimitInstant) {
        guard amount > 0 else { return }
        let width = Self.bucketWidth(counter)
        let index = max(now.milliseconds, 0) / width
        let oldest = Self.oldestBucket(counter, at: now)
        state.withLock { state in
            state.operations += 1
            if state.operations % Self.sweepInterval == 0 { Self.sweep(&state, at: now) }
            if state.counters[counter] == nil, state.counters.count >= maxCounters {
                if state.lastSweepForRoom.map({ now.milliseconds - $0 >= 1000 || now.milliseconds < $0 }) ?? true {
                    state.lastSweepForRoom = now.milliseconds
                    Self.sweep(&state, at: now)
                }
                if state.counters.count >= maxCounters {
                    state.untracked += 1
                    return
                }
            }
            var buckets = state.counters.removeValue(forKey: counter) ?? []
            if let first = buckets.firstIndex(where: { $0.index >= oldest }) {
                buckets.removeFirst(first)
            } else {
                buckets.removeAll(keepingCapacity: true)
            }
            // Usually the newest bucket; a replay out of order inserts in place.
            var position = buckets.endIndex
            while position > buckets.startIndex, buckets[position - 1].index > index { position -= 1 }
            if position > buckets.startIndex, buckets[position - 1].index == index {
                buckets[position - 1].amount = buckets[position - 1].amount.addingReportingOverflow(amount).partialValue
            } else {
                buckets.insert(Bucket(index: index, amount: amount), at: position)
            }
            state.counters[counter] = buckets
        }
    }

    public func retain(counterIDs ids: Set<String>) {
        state.withLock { state in
            state.counters = state.counters.filter { ids.contains($0.key.id) }
        }
    }

    public var statistics: Statistics {
        state.withLock { Statistics(counters: $0.counters.count, untracked: $0.untracked) }
    }

    /// Drops every counter whose newest bucket left its window.
    private static func sweep(_ state: inout State, at now: LimitInstant) {
        state.counters = state.counters.filter { counter, buckets in
            (buckets.last?.index ?? .min) >= oldestBucket(counter, at: now)
        }
    }
}
