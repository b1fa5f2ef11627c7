/// A point in time with microsecond resolution, as captures and transcripts carry it.
///
/// Kept as an integer so that arithmetic on capture timestamps is exact and no `Date`
/// (and so no Foundation) is needed in the pure modules.
public struct Timestamp: Sendable, Hashable, Comparable {
    public var microsecondsSinceEpoch: Int64

    public init(microsecondsSinceEpoch: Int64) {
        self.microsecondsSinceEpoch = microsecondsSinceEpoch
    }

    public init(seconds: Int64, microseconds: Int64) {
        self.microsecondsSinceEpoch = seconds &* 1_000_000 &+ microseconds
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.microsecondsSinceEpoch < rhs.microsecondsSinceEpoch
    }

    /// Microseconds from `earlier` to `self`; negative when `self` is earlier.
    public func microseconds(since earlier: Timestamp) -> Int64 {
        microsecondsSinceEpoch &- earlier.microsecondsSinceEpoch
    }
}
