#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point in time as counters see it: milliseconds since 1970-01-01T00:00:00Z. Wall time, not a
/// monotonic clock, so a replay can count on a record's own timestamps and several processes
/// agree on a window.
public struct LimitInstant: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    public init(seconds: Int64) {
        self.milliseconds = seconds * 1000
    }

    public static func < (lhs: LimitInstant, rhs: LimitInstant) -> Bool { lhs.milliseconds < rhs.milliseconds }

    public func adding(seconds: Int64) -> LimitInstant { LimitInstant(milliseconds: milliseconds + seconds * 1000) }

    public var description: String { "\(milliseconds) ms" }
}

/// Where counters read the time: the system's clock in the proxy and the policy service, a
/// settable one in tests (which never sleep).
public protocol LimitClock: Sendable {
    func now() -> LimitInstant
}

/// The system's real-time clock.
public struct SystemLimitClock: LimitClock {
    public init() {}

    public func now() -> LimitInstant {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return LimitInstant(milliseconds: Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000)
    }
}
