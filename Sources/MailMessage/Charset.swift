/// A MIME charset (RFC 2046 §4.1.2, names from the IANA character-set registry) and its conversion to
/// a Swift `String`.
///
/// The charsets mail actually uses for Western text are converted here without Foundation. Any other
/// name is tried through Foundation (``Charset/decodeWithFoundation(_:ianaName:)``), and failing that,
/// decoded as UTF-8 with replacement characters. Conversion never fails.
enum Charset: Sendable, Equatable {
    case utf8
    case usASCII
    case isoLatin1
    case isoLatin9
    case windows1252
    case other(String)

    init(name: String) {
        let lowered = ASCII.lowercased(ASCII.trimmed(name))
        switch lowered {
        case "utf-8", "utf8", "":
            self = .utf8
        case "us-ascii", "ascii", "ansi_x3.4-1968", "us", "iso646-us":
            self = .usASCII
        case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "iso-ir-100", "cp819", "ibm819":
            self = .isoLatin1
        case "iso-8859-15", "iso8859-15", "iso_8859-15", "latin-9", "latin9":
            self = .isoLatin9
        case "windows-1252", "cp1252", "x-cp1252":
            self = .windows1252
        default:
            self = .other(lowered)
        }
    }

    func decode(_ bytes: some Collection<UInt8>) -> String {
        switch self {
        case .utf8, .usASCII:
            // US-ASCII text with 8-bit octets is mislabelled; UTF-8 is the likeliest truth.
            return String(decoding: bytes, as: UTF8.self)
        case .isoLatin1:
            return Self.decodeSingleByte(bytes) { Unicode.Scalar($0) }
        case .isoLatin9:
            return Self.decodeSingleByte(bytes, Self.latin9Scalar)
        case .windows1252:
            return Self.decodeSingleByte(bytes, Self.windows1252Scalar)
        case .other(let name):
            if let text = Self.decodeWithFoundation(Array(bytes), ianaName: name) {
                return text
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    private static func decodeSingleByte(
        _ bytes: some Collection<UInt8>,
        _ scalar: (UInt8) -> Unicode.Scalar
    ) -> String {
        var view = String.UnicodeScalarView()
        for byte in bytes {
            view.append(scalar(byte))
        }
        return String(view)
    }

    /// ISO 8859-15 differs from ISO 8859-1 in eight positions.
    private static func latin9Scalar(_ byte: UInt8) -> Unicode.Scalar {
        let value: UInt32
        switch byte {
        case 0xA4: value = 0x20AC
        case 0xA6: value = 0x0160
        case 0xA8: value = 0x0161
        case 0xB4: value = 0x017D
        case 0xB8: value = 0x017E
        case 0xBC: value = 0x0152
        case 0xBD: value = 0x0153
        case 0xBE: value = 0x0178
        default: value = UInt32(byte)
        }
        return Unicode.Scalar(value) ?? "\u{FFFD}"
    }

    /// Windows-1252 replaces the C1 controls 0x80–0x9F; the five unassigned positions keep their
    /// C1 code point, as the WHATWG Encoding Standard does.
    private static let windows1252High: [UInt32] = [
        0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
        0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
        0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
        0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
    ]

    private static func windows1252Scalar(_ byte: UInt8) -> Unicode.Scalar {
        guard byte >= 0x80, byte <= 0x9F else { return Unicode.Scalar(byte) }
        return Unicode.Scalar(windows1252High[Int(byte - 0x80)]) ?? "\u{FFFD}"
    }
}
