/// An IPv4 (RFC 791) or IPv6 (RFC 8200) address as read from a packet header.
///
/// Stored as two 64-bit words so that hashing and comparing flow keys never allocates. Its
/// `description` is the canonical text form: dotted quad for IPv4, RFC 5952 section 4 for IPv6
/// (lower case, leading zeros dropped, the longest run of two or more zero groups shown as `::`,
/// the first such run on a tie, and `::ffff:a.b.c.d` for IPv4-mapped addresses, section 5).
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Which IP version the address belongs to.
    public enum Family: UInt8, Hashable, Sendable, Comparable {
        case v4 = 4
        case v6 = 6

        public static func < (lhs: Family, rhs: Family) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public let family: Family
    /// The upper 64 bits of an IPv6 address; zero for IPv4.
    public let high: UInt64
    /// The lower 64 bits of an IPv6 address, or the IPv4 address in its low 32 bits.
    public let low: UInt64

    /// An IPv4 address from its 32-bit value in host order (`0x7f000001` is 127.0.0.1).
    public init(ipv4: UInt32) {
        self.family = .v4
        self.high = 0
        self.low = UInt64(ipv4)
    }

    /// An IPv4 address from its four octets, most significant first.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.init(ipv4: UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d))
    }

    /// An IPv6 address from its upper and lower 64 bits in host order.
    public init(ipv6High high: UInt64, low: UInt64) {
        self.family = .v6
        self.high = high
        self.low = low
    }

    /// An IPv6 address from its eight 16-bit groups, most significant first.
    ///
    /// - Precondition: `groups.count == 8`.
    public init(ipv6Groups groups: [UInt16]) {
        precondition(groups.count == 8, "an IPv6 address has eight groups")
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<4 {
            high = high << 16 | UInt64(groups[index])
            low = low << 16 | UInt64(groups[index + 4])
        }
        self.init(ipv6High: high, low: low)
    }

    /// The IPv4 value, or nil for an IPv6 address.
    public var ipv4: UInt32? {
        family == .v4 ? UInt32(truncatingIfNeeded: low) : nil
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        (lhs.family, lhs.high, lhs.low) < (rhs.family, rhs.high, rhs.low)
    }

    public var description: String {
        switch family {
        case .v4:
            return Self.dottedQuad(UInt32(truncatingIfNeeded: low))
        case .v6:
            return ipv6Text
        }
    }

    private static func dottedQuad(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    private var ipv6Groups: [UInt16] {
        (0..<8).map { index in
            let word = index < 4 ? high : low
            return UInt16(truncatingIfNeeded: word >> (UInt64(3 - index % 4) * 16))
        }
    }

    // RFC 5952 section 4.
    private var ipv6Text: String {
        // Section 5: IPv4-mapped addresses keep the dotted quad.
        if high == 0, low >> 32 == 0xffff {
            return "::ffff:" + Self.dottedQuad(UInt32(truncatingIfNeeded: low))
        }
        let groups = ipv6Groups
        // Section 4.2.2/4.2.3: shorten the longest run of at least two zero groups, the first on a tie.
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else {
                index += 1
                continue
            }
            var end = index
            while end < 8, groups[end] == 0 { end += 1 }
            if end - index > bestLength {
                bestStart = index
                bestLength = end - index
            }
            index = end
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}
