/// Bounds on the memory and state that reassembly may hold, with documented defaults.
///
/// Worst-case memory is about `maxQueuedOctetsTotal` plus, per open flow, a few hundred bytes of state
/// and two retransmission-check windows (`maxRetainedOctetsPerDirection`, also charged to the total).
public struct ReassemblyLimits: Hashable, Sendable {
    /// Out-of-order octets queued per direction before skipping forward over the hole. Default 1 MiB.
    public var maxQueuedOctetsPerDirection: Int
    /// Out-of-order segments queued per direction (tiny segments cost more than their octets).
    /// Default 4096.
    public var maxQueuedSegmentsPerDirection: Int
    /// Queued plus retained octets across all flows; past it, the flow being fed skips forward.
    /// Default 256 MiB.
    public var maxBufferedOctetsTotal: Int
    /// Most recently delivered octets kept per direction to compare retransmissions with; 0 turns the
    /// check off for delivered data (queued data is always compared). Default 8 KiB.
    public var maxRetainedOctetsPerDirection: Int
    /// Segments further than this from the next expected sequence number (either way) are dropped as
    /// out of window: a jump this large is damage or spoofing rather than loss. Default 32 MiB.
    public var maxSequenceJump: UInt32
    /// Flows tracked at once; the least recently active flow is closed (`.idle`) to make room.
    /// Default 100 000.
    public var maxFlows: Int
    /// Capture time without a segment after which `expireIdleFlows` closes a flow, in microseconds.
    /// Default 300 s.
    public var idleTimeout: Int64

    public init(
        maxQueuedOctetsPerDirection: Int = 1 << 20,
        maxQueuedSegmentsPerDirection: Int = 4096,
        maxBufferedOctetsTotal: Int = 256 << 20,
        maxRetainedOctetsPerDirection: Int = 8 << 10,
        maxSequenceJump: UInt32 = 32 << 20,
        maxFlows: Int = 100_000,
        idleTimeout: Int64 = 300_000_000
    ) {
        precondition(maxQueuedOctetsPerDirection >= 0 && maxQueuedSegmentsPerDirection >= 0)
        precondition(maxBufferedOctetsTotal >= 0 && maxRetainedOctetsPerDirection >= 0)
        precondition(maxSequenceJump > 0 && maxSequenceJump < 1 << 31, "serial arithmetic needs < 2^31")
        precondition(maxFlows >= 1 && idleTimeout > 0)
        self.maxQueuedOctetsPerDirection = maxQueuedOctetsPerDirection
        self.maxQueuedSegmentsPerDirection = maxQueuedSegmentsPerDirection
        self.maxBufferedOctetsTotal = maxBufferedOctetsTotal
        self.maxRetainedOctetsPerDirection = maxRetainedOctetsPerDirection
        self.maxSequenceJump = maxSequenceJump
        self.maxFlows = maxFlows
        self.idleTimeout = idleTimeout
    }
}

/// Counts kept by the reassembler, for the capture-problems section of a report.
public struct ReassemblyStatistics: Hashable, Sendable {
    public internal(set) var flowsOpened = 0
    /// Flows closed early because the table was full.
    public internal(set) var flowsEvicted = 0
    /// Segments without payload or SYN that matched no flow (the tail of a closed connection).
    public internal(set) var segmentsWithoutFlow = 0
    /// Segments dropped for being further than `maxSequenceJump` from the expected sequence number.
    public internal(set) var segmentsOutOfWindow = 0
    /// Segments whose bytes had all been delivered already.
    public internal(set) var retransmittedSegments = 0
    /// Keep-alive probes (one octet just before the next expected one) ignored.
    public internal(set) var keepAlives = 0
    public internal(set) var gaps = 0
    /// Total size of the gaps whose size is known.
    public internal(set) var gapOctets: UInt64 = 0
    public internal(set) var conflictingRetransmissions = 0
    /// Times a cap (per direction or total) forced a skip forward.
    public internal(set) var capSkips = 0

    public init() {}
}
