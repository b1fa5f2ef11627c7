/// Limits and thresholds of a `DeliveryReport`. Every list the report keeps is bounded by these, so
/// memory stays flat however many sessions are added; the counts stay exact.
public struct ReportOptions: Sendable, Equatable {
    /// Entries kept and printed per list (per failure cause, stalls, TLS problems, endings, capture
    /// problems); the rest are counted as "... and N more". Default 20.
    public var maxListed: Int
    /// A server reply slower than this, in microseconds, is a stall. Default 5 s.
    public var stallThreshold: Int64
    /// How many of the slowest server replies to list. Default 10.
    public var slowestReplies: Int
    /// Distinct anomaly kinds and TLS versions counted by name; further names count as "(other)".
    /// Default 64.
    public var maxDistinctNames: Int
    /// Lines of one reply text printed; the rest are summarised. Default 50.
    public var maxReplyLines: Int

    public init(
        maxListed: Int = 20,
        stallThreshold: Int64 = 5_000_000,
        slowestReplies: Int = 10,
        maxDistinctNames: Int = 64,
        maxReplyLines: Int = 50
    ) {
        precondition(maxListed >= 0 && slowestReplies >= 0 && maxDistinctNames >= 1 && maxReplyLines >= 1)
        precondition(stallThreshold >= 0)
        self.maxListed = maxListed
        self.stallThreshold = stallThreshold
        self.slowestReplies = slowestReplies
        self.maxDistinctNames = maxDistinctNames
        self.maxReplyLines = maxReplyLines
    }
}
