/// Counts of decoded packets by outcome, for the capture-problems section of a report.
public struct PacketDecodeStatistics: Hashable, Sendable {
    /// Packets that yielded a TCP segment.
    public private(set) var tcpSegments: Int = 0
    /// Well-formed packets that are not TCP over IP (ARP, UDP, ICMP, ...).
    public private(set) var notTCP: Int = 0
    /// Skipped packets by reason.
    public private(set) var skipped: [PacketDecodeError: Int] = [:]

    public init() {}

    /// Every packet seen.
    public var total: Int { tcpSegments + notTCP + skipped.values.reduce(0, +) }

    /// Skipped packets whose reason is damage (see `PacketDecodeError.isDamage`).
    public var damaged: Int { skipped.filter { $0.key.isDamage }.values.reduce(0, +) }

    /// Counts one decoding result.
    public mutating func record(_ result: Result<TCPSegment?, PacketDecodeError>) {
        switch result {
        case .success(.some): tcpSegments += 1
        case .success(.none): notTCP += 1
        case .failure(let error): skipped[error, default: 0] += 1
        }
    }
}
