import NIOCore

/// The control bits of a TCP header that reassembly uses (RFC 9293 section 3.1).
public struct TCPFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8

    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
}

/// One decoded TCP segment (RFC 9293 section 3.1): its endpoints, sequence and acknowledgment
/// numbers, control bits and payload.
///
/// The payload is a `ByteBuffer` holding only the segment's data, so reassembly can hand it on (or
/// slices of it) without copying again.
public struct TCPSegment: Hashable, Sendable {
    public var source: TCPEndpoint
    public var destination: TCPEndpoint
    public var sequenceNumber: UInt32
    /// Meaningful only when `flags` contains `.ack`.
    public var acknowledgmentNumber: UInt32
    public var flags: TCPFlags
    public var payload: ByteBuffer

    public init(
        source: TCPEndpoint,
        destination: TCPEndpoint,
        sequenceNumber: UInt32,
        acknowledgmentNumber: UInt32 = 0,
        flags: TCPFlags,
        payload: ByteBuffer = ByteBuffer()
    ) {
        self.source = source
        self.destination = destination
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.payload = payload
    }
}
