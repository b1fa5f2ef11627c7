import Testing
@testable import SenderLimits

/// The sliding window, on instants the test chooses: nothing here sleeps.
struct MemoryLimitStoreTests {
    let hour = LimitCounter(id: "user-hourly", key: "alice", windowSeconds: 3600)
    let start = LimitInstant(seconds: 1_700_000_000)

    @Test func countsWhatWasAddedWithinTheWindow() {
        let store = MemoryLimitStore()
        store.add(1, to: hour, at: start)
        store.add(2, to: hour, at: start.adding(seconds: 600))
        #expect(store.count(hour, at: start.adding(seconds: 601)) == 3)
        #expect(store.count(LimitCounter(id: "user-hourly", key: "bob", windowSeconds: 3600), at: start) == 0)
    }

    @Test func theWindowSlides() {
        let store = MemoryLimitStore()
        store.add(1, to: hour, at: start)
        store.add(1, to: hour, at: start.adding(seconds: 1800))
        // An event counts for the whole window...
        #expect(store.count(hour, at: start.adding(seconds: 3600)) == 2)
        // ...and for at most one bucket (1/60 of the window) longer.
        #expect(store.count(hour, at: start.adding(seconds: 3600 + 60)) == 1)
        #expect(store.count(hour, at: start.adding(seconds: 1800 + 3600 + 60)) == 0)
    }

    /// The window's promise: within any span of the window's length, what is counted is never less
    /// than what was added, so a budget never lets more than its max through.
    @Test func neverUndercountsWithinAnyWindow() {
        let store = MemoryLimitStore()
        let counter = LimitCounter(id: "x", key: "k", windowSeconds: 30)
        var events: [LimitInstant] = []
        var t = start
        for step in 0..<400 {
            t = LimitInstant(milliseconds: t.milliseconds + Int64((step * 7919) % 1700))
            store.add(1, to: counter, at: t)
            events.append(t)
            let exact = events.filter { t.milliseconds - $0.milliseconds <= 30_000 }.count
            let counted = store.count(counter, at: t)
            #expect(counted >= exact)
            // At most one bucket's worth (500 ms) of older events on top.
            #expect(counted <= events.filter { t.milliseconds - $0.milliseconds <= 30_500 }.count)
        }
    }

    @Test func expiredCountersAreSweptSoMemoryStaysBounded() {
        let store = MemoryLimitStore(maxCounters: 10)
        for i in 0..<10 {
            store.add(1, to: LimitCounter(id: "x", key: "k\(i)", windowSeconds: 60), at: start)
        }
        #expect(store.statistics.counters == 10)
        // Full, and nothing expired: a new key is not counted, and says so.
        store.add(1, to: LimitCounter(id: "x", key: "new", windowSeconds: 60), at: start.adding(seconds: 30))
        #expect(store.statistics == .init(counters: 10, untracked: 1))
        // A flood of new keys in the same second does not sweep again for each.
        for i in 0..<100 { store.add(1, to: LimitCounter(id: "x", key: "flood\(i)", windowSeconds: 60), at: start.adding(seconds: 30)) }
        #expect(store.statistics == .init(counters: 10, untracked: 101))
        // Two minutes on the old counters have left their window: the new key gets a place.
        store.add(1, to: LimitCounter(id: "x", key: "later", windowSeconds: 60), at: start.adding(seconds: 120))
        #expect(store.statistics == .init(counters: 1, untracked: 101))
    }

    @Test func retainKeepsOnlyTheNamedCounters() {
        let store = MemoryLimitStore()
        store.add(1, to: hour, at: start)
        store.add(1, to: LimitCounter(id: "gone", key: "alice", windowSeconds: 3600), at: start)
        store.retain(counterIDs: ["user-hourly"])
        #expect(store.statistics.counters == 1)
        #expect(store.count(hour, at: start) == 1)
    }

    @Test func anOutOfOrderAdditionCountsFromItsOwnTime() {
        let store = MemoryLimitStore()
        store.add(1, to: hour, at: start.adding(seconds: 3000))
        store.add(1, to: hour, at: start)
        #expect(store.count(hour, at: start.adding(seconds: 3000)) == 2)
        // Before the later event happened, only the earlier one counts.
        #expect(store.count(hour, at: start.adding(seconds: 10)) == 1)
        #expect(store.count(hour, at: start.adding(seconds: 3000 + 3600 + 120)) == 0)
    }

    @Test func concurrentAdditionsAreAllCounted() async {
        let store = MemoryLimitStore()
        let counter = hour
        let at = start
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<1000 { store.add(1, to: counter, at: at) }
                }
            }
        }
        #expect(store.count(hour, at: start) == 8000)
    }
}
