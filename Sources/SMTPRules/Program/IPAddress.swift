/// An IPv4 (RFC 791) or IPv6 (RFC 4291 §2.2 text forms) address as 128 bits. IPv4 is held as an
/// IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2), so `::ffff:10.1.2.3` and `10.1.2.3` are one address.
struct IPAddress: Sendable, Hashable {
    var high: UInt64
    var low: UInt64

    static let mappedPrefix: UInt64 = 0x0000_FFFF_0000_0000

    var isIPv4: Bool { high == 0 && low & 0xFFFF_FFFF_0000_0000 == Self.mappedPrefix }

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    init(ipv4: UInt32) {
        high = 0
        low = Self.mappedPrefix | UInt64(ipv4)
    }

    /// Parses dotted-quad IPv4 or any RFC 4291 IPv6 text form (with `::` and a trailing dotted quad);
    /// a zone (`%eth0`) and brackets are ignored.
    init?(_ text: some StringProtocol) {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        // RFC 5321 §4.1.3's `IPv6:` tag, in any case, without lowercasing (rules parse an address at
        // every stage of every session).
        if text.utf8.count > 5, text.utf8.prefix(5).lazy.map({ (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }).elementsEqual("ipv6:".utf8) { text = text.dropFirst(5) }
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }
        guard !text.isEmpty, text.utf8.count <= 45 else { return nil }
        if !text.utf8.contains(UInt8(ascii: ":")) {
            guard let v4 = Self.parseIPv4(text) else { return nil }
            self.init(ipv4: v4)
            return
        }
        guard let groups = Self.parseIPv6(text) else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (i, group) in groups.enumerated() {
            if i < 4 { high = high << 16 | UInt64(group) } else { low = low << 16 | UInt64(group) }
        }
        self.init(high: high, low: low)
    }

    static func parseIPv4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.utf8.count), part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let octet = UInt32(part), octet <= 255
            else { return nil }
            // A leading zero reads as octal in some tools; refuse it rather than guess.
            if part.utf8.count > 1, part.utf8.first == 0x30 { return nil }
            value = value << 8 | octet
        }
        return value
    }

    private static func parseIPv6(_ text: Substring) -> [UInt16]? {
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        let pieces = splitOnDoubleColon(text)
        guard pieces.count <= 2 else { return nil }
        if pieces.count == 2 { sawGap = true }
        func groups(_ piece: String, allowIPv4: Bool) -> [UInt16]? {
            if piece.isEmpty { return [] }
            var result: [UInt16] = []
            let fields = piece.split(separator: ":", omittingEmptySubsequences: false)
            for (i, field) in fields.enumerated() {
                if allowIPv4, i == fields.count - 1, field.utf8.contains(UInt8(ascii: ".")) {
                    guard let v4 = parseIPv4(field) else { return nil }
                    result.append(UInt16(v4 >> 16))
                    result.append(UInt16(v4 & 0xFFFF))
                } else {
                    guard (1...4).contains(field.utf8.count), let group = UInt16(field, radix: 16) else { return nil }
                    result.append(group)
                }
            }
            return result
        }
        guard let first = groups(pieces[0], allowIPv4: !sawGap) else { return nil }
        head = first
        if sawGap {
            guard let second = groups(pieces[1], allowIPv4: true) else { return nil }
            tail = second
            guard head.count + tail.count <= 7 else { return nil }
            return head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        return head.count == 8 ? head : nil
    }

    /// `text` split at each "::".
    private static func splitOnDoubleColon(_ text: Substring) -> [String] {
        var pieces: [String] = []
        var current: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: ":"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: ":") {
                pieces.append(String(decoding: current, as: UTF8.self))
                current.removeAll()
                i += 2
            } else {
                current.append(bytes[i])
                i += 1
            }
        }
        pieces.append(String(decoding: current, as: UTF8.self))
        return pieces
    }

    /// The address with all bits after `prefixLength` (counted in the 128-bit form) cleared.
    func masked(to prefixLength: Int) -> IPAddress {
        if prefixLength >= 128 { return self }
        if prefixLength <= 0 { return IPAddress(high: 0, low: 0) }
        if prefixLength <= 64 {
            let mask: UInt64 = prefixLength == 64 ? ~0 : ~(~0 >> UInt64(prefixLength))
            return IPAddress(high: high & mask, low: 0)
        }
        let bits = prefixLength - 64
        let mask: UInt64 = ~(~0 >> UInt64(bits))
        return IPAddress(high: high, low: low & mask)
    }
}

/// A CIDR prefix (RFC 4632 §3.1; RFC 4291 §2.3): `10.0.0.0/8`, `2001:db8::/32`, or one address.
struct IPPrefix: Sendable, Hashable {
    var address: IPAddress
    /// In the 128-bit form: an IPv4 /8 is 104.
    var length: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        let maxLength = address.isIPv4 && !parts[0].contains(":") ? 32 : 128
        var length = maxLength
        if parts.count == 2 {
            guard (1...3).contains(parts[1].utf8.count), parts[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let value = Int(parts[1]), value <= maxLength
            else { return nil }
            length = value
        }
        let full = maxLength == 32 ? length + 96 : length
        self.address = address.masked(to: full)
        self.length = full
        // `10.0.0.1/8` has host bits set; accept it as 10.0.0.0/8, the way most tools do.
    }
}

/// A set of CIDR prefixes, looked up with one hash probe per distinct prefix length (at most 129),
/// not a scan of the entries.
struct IPPrefixSet: Sendable {
    private var byLength: [Int: Set<IPAddress>] = [:]
    private var lengths: [Int] = []

    init(_ prefixes: [IPPrefix]) {
        for prefix in prefixes {
            byLength[prefix.length, default: []].insert(prefix.address)
        }
        lengths = byLength.keys.sorted(by: >)
    }

    var isEmpty: Bool { lengths.isEmpty }

    func contains(_ address: IPAddress) -> Bool {
        for length in lengths where byLength[length]?.contains(address.masked(to: length)) == true {
            return true
        }
        return false
    }
}
