/// Low-level JSON text production (RFC 8259) into a byte array: strings, integers and the
/// transcript's fixed six-decimal seconds. Pure and allocation-free beyond the output array.
public enum JSONOutput {
    /// Appends `value` as a JSON string (RFC 8259 §7).
    ///
    /// Swift strings are valid Unicode already, so only escaping is needed: `"` and `\`; the C0
    /// controls (the five with short forms as `\b \f \n \r \t`, the rest as `\u00XX`); DEL and the C1
    /// controls, so that no terminal escape sequence survives into a file someone will `cat`; and
    /// U+2028/U+2029, which are legal JSON but end a line in JavaScript and in some viewers.
    public static func writeString(_ value: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var copy = value
        copy.withUTF8 { appendEscaped($0, into: &out) }
        out.append(UInt8(ascii: "\""))
    }

    private static func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        var runStart = 0
        var i = 0
        let count = utf8.count
        while i < count {
            let byte = utf8[i]
            var escapeLength = 1
            let needsEscape: Bool
            switch byte {
            case 0x00..<0x20, UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x7F:
                needsEscape = true
            case 0xC2:
                // U+0080...U+009F (C1 controls) are C2 80...C2 9F.
                needsEscape = i + 1 < count && utf8[i + 1] < 0xA0
                escapeLength = 2
            case 0xE2:
                // U+2028 / U+2029 are E2 80 A8 / E2 80 A9.
                needsEscape = i + 2 < count && utf8[i + 1] == 0x80 && (utf8[i + 2] == 0xA8 || utf8[i + 2] == 0xA9)
                escapeLength = 3
            default:
                needsEscape = false
            }
            guard needsEscape else {
                i += 1
                continue
            }
            if runStart < i {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i]))
            }
            switch escapeLength {
            case 2:
                appendUnicodeEscape(UInt16(byte & 0x1F) << 6 | UInt16(utf8[i + 1] & 0x3F), into: &out)
            case 3:
                appendUnicodeEscape(0x2028 | UInt16(utf8[i + 2] & 0x01), into: &out)
            default:
                appendASCIIEscape(byte, into: &out)
            }
            i += escapeLength
            runStart = i
        }
        if runStart < count {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<count]))
        }
    }

    private static func appendASCIIEscape(_ byte: UInt8, into out: inout [UInt8]) {
        let short: UInt8?
        switch byte {
        case UInt8(ascii: "\""): short = UInt8(ascii: "\"")
        case UInt8(ascii: "\\"): short = UInt8(ascii: "\\")
        case 0x08: short = UInt8(ascii: "b")
        case 0x0C: short = UInt8(ascii: "f")
        case 0x0A: short = UInt8(ascii: "n")
        case 0x0D: short = UInt8(ascii: "r")
        case 0x09: short = UInt8(ascii: "t")
        default: short = nil
        }
        if let short {
            out.append(UInt8(ascii: "\\"))
            out.append(short)
        } else {
            appendUnicodeEscape(UInt16(byte), into: &out)
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func appendUnicodeEscape(_ unit: UInt16, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "u"))
        out.append(hexDigits[Int(unit >> 12 & 0xF)])
        out.append(hexDigits[Int(unit >> 8 & 0xF)])
        out.append(hexDigits[Int(unit >> 4 & 0xF)])
        out.append(hexDigits[Int(unit & 0xF)])
    }

    /// Appends a decimal integer (never an exponent).
    public static func writeInt(_ value: Int, into out: inout [UInt8]) {
        writeInt64(Int64(value), into: &out)
    }

    public static func writeInt64(_ value: Int64, into out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        writeUnsigned(value.magnitude, minimumDigits: 1, into: &out)
    }

    /// Appends microseconds as seconds with exactly six decimals: 312 -> `0.000312`, -1 -> `-0.000001`.
    static func writeSeconds(microseconds: Int64, into out: inout [UInt8]) {
        if microseconds < 0 { out.append(UInt8(ascii: "-")) }
        let magnitude = microseconds.magnitude
        writeUnsigned(magnitude / 1_000_000, minimumDigits: 1, into: &out)
        out.append(UInt8(ascii: "."))
        writeUnsigned(magnitude % 1_000_000, minimumDigits: 6, into: &out)
    }

    private static func writeUnsigned(_ value: UInt64, minimumDigits: Int, into out: inout [UInt8]) {
        // 20 digits hold UInt64.max.
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &scratch) { raw in
            var position = raw.count
            var rest = value
            repeat {
                position -= 1
                raw[position] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while rest > 0 || raw.count - position < minimumDigits
            out.append(contentsOf: raw[position...])
        }
    }

    public static func writeBool(_ value: Bool, into out: inout [UInt8]) {
        writeRaw(value ? "true" : "false", into: &out)
    }

    public static func writeNull(into out: inout [UInt8]) {
        writeRaw("null", into: &out)
    }

    /// Appends fixed ASCII text (keys with their quotes and colon, punctuation).
    @inline(__always)
    static func writeRaw(_ text: StaticString, into out: inout [UInt8]) {
        text.withUTF8Buffer { out.append(contentsOf: $0) }
    }
}
