import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Hands out the sink's queue IDs (the "queued as ID" of RFC 5321 §4.2.2's 250 after end of data).
///
/// An ID is the sink's start time in microseconds and a per-sink sequence number, both in upper-case
/// hex, so IDs sort by arrival and two sinks started at different times never collide in one store.
final class SinkQueueIDGenerator: Sendable {
    private let prefix: String
    private let sequence = Atomic<UInt64>(0)

    init() {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let micros = UInt64(now.tv_sec) &* 1_000_000 &+ UInt64(now.tv_nsec / 1000)
        prefix = Self.hex(micros, width: 14)
    }

    func next() -> String {
        let number = sequence.add(1, ordering: .relaxed).newValue
        return prefix + Self.hex(number, width: 6)
    }

    private static func hex(_ value: UInt64, width: Int) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
