/// Octet classes of RFC 5234 Appendix B.1 and RFC 5322 §3.2, used by the byte-level parsers.
enum ASCII {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let space: UInt8 = 0x20
    static let tab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A
    static let hyphen: UInt8 = 0x2D
    static let equals: UInt8 = 0x3D

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
    }

    /// WSP (RFC 5234).
    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == space || byte == tab
    }

    /// ftext (RFC 5322 §3.6.8): printable US-ASCII except colon.
    @inline(__always)
    static func isFieldNameCharacter(_ byte: UInt8) -> Bool {
        byte >= 33 && byte <= 126 && byte != colon
    }

    /// The value of a hexadecimal digit of either case, or nil.
    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }

    static func lowercased(_ text: String) -> String {
        String(decoding: text.utf8.map(lowercased), as: UTF8.self)
    }

    /// Removes WSP, CR and LF from both ends.
    static func trimmed(_ text: Substring) -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }
        guard let start = text.firstIndex(where: { !isSpace($0) }) else { return text[text.endIndex...] }
        guard let last = text.lastIndex(where: { !isSpace($0) }) else { return text[text.endIndex...] }
        return text[start...last]
    }

    static func trimmed(_ text: String) -> String {
        String(trimmed(text[...]))
    }
}
