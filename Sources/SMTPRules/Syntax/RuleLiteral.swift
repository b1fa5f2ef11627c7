/// How bare words read as values: numbers, sizes (1024-based), enhanced status codes.
enum RuleLiteral {
    /// A decimal number of at most 18 digits, or a size `25KB`/`25MB`/`25GB` (1024-based, so
    /// `1KB` is 1024 octets). nil when the word is neither or overflows.
    static func integer(_ word: String) -> Int? {
        let utf8 = Array(word.utf8)
        var digits = 0
        var value = 0
        while digits < utf8.count, utf8[digits] >= 0x30, utf8[digits] <= 0x39 {
            guard digits < 18 else { return nil }
            value = value * 10 + Int(utf8[digits] - 0x30)
            digits += 1
        }
        guard digits > 0 else { return nil }
        let unit = String(decoding: utf8[digits...], as: UTF8.self).uppercased()
        let multiplier: Int
        switch unit {
        case "": multiplier = 1
        case "B": multiplier = 1
        case "KB": multiplier = 1 << 10
        case "MB": multiplier = 1 << 20
        case "GB": multiplier = 1 << 30
        default: return nil
        }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// An identifier: a letter or `_`, then letters, digits, `_` and `.`.
    static func isIdentifier(_ word: String) -> Bool {
        guard let first = word.utf8.first, first == UInt8(ascii: "_") || (first | 0x20 >= 0x61 && first | 0x20 <= 0x7A) else {
            return false
        }
        return word.utf8.allSatisfy {
            $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A)
        }
    }
}
