import NIOConcurrencyHelpers
import NIOCore
import SenderLimits

/// Says when the limits' counter store is full: keys it cannot hold are not counted (fail open),
/// which an administrator must hear about rather than find out from a budget that did not hold.
enum LimitStoreWatch {
    /// Checks `store` every minute on `loop`; `warn` gets one line each minute in which new keys
    /// went uncounted.
    @discardableResult
    static func start(_ store: MemoryLimitStore, on loop: any EventLoop, warn: @escaping @Sendable (String) -> Void) -> RepeatedTask {
        let reported = NIOLockedValueBox(0)
        return loop.scheduleRepeatedTask(initialDelay: .seconds(60), delay: .seconds(60)) { _ in
            let statistics = store.statistics
            let previous = reported.withLockedValue { value in
                defer { value = statistics.untracked }
                return value
            }
            guard statistics.untracked > previous else { return }
            warn("limits: the counter store is full (\(statistics.counters) counters, at most \(store.maxCounters)); "
                + "\(statistics.untracked - previous) additions for new keys were not counted in the last minute")
        }
    }
}
