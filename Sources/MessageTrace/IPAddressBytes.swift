#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Client addresses as 16 octets, IPv4 as IPv4-mapped IPv6 (RFC 4291 §2.5.5.2), so that one
/// column serves both families and a CIDR block is the range of octet strings between its first and
/// last address (both databases compare blobs octet by octet).
public enum IPAddressBytes {
    static let mappedPrefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]

    public static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return mappedPrefix + withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// `IP` or `IP/PREFIX` as the first and last 16-octet address of the block; nil when malformed.
    public static func range(_ text: String) -> (low: [UInt8], high: [UInt8])? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = parse(String(parts[0])) else { return nil }
        let isV4 = !text.contains(":")
        var prefix = 128
        if parts.count == 2 {
            guard let given = Int(parts[1]), given >= 0, given <= (isV4 ? 32 : 128), parts[1].allSatisfy(\.isASCII) else { return nil }
            prefix = isV4 ? given + 96 : given
        }
        var low = address
        var high = address
        for bit in prefix..<128 {
            let mask = UInt8(0x80) >> UInt8(bit % 8)
            low[bit / 8] &= ~mask
            high[bit / 8] |= mask
        }
        return (low, high)
    }
}
