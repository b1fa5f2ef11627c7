/// A TLS `ProtocolVersion` (RFC 8446 §4.1.2 `legacy_version`, §4.2.1 `supported_versions`;
/// RFC 6101 for SSL 3.0), named the way transcripts print it: `"TLSv1.2"`.
public struct TLSProtocolVersion: Sendable, Hashable {
    public var rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    public static let sslv2 = TLSProtocolVersion(rawValue: 0x0002)
    public static let sslv3 = TLSProtocolVersion(rawValue: 0x0300)
    public static let tlsv1_0 = TLSProtocolVersion(rawValue: 0x0301)
    public static let tlsv1_1 = TLSProtocolVersion(rawValue: 0x0302)
    public static let tlsv1_2 = TLSProtocolVersion(rawValue: 0x0303)
    public static let tlsv1_3 = TLSProtocolVersion(rawValue: 0x0304)

    /// RFC 8701 reserves `0x?A?A` values (both bytes equal) so that peers keep tolerating unknown
    /// versions; they are noise, not offers.
    public var isGREASE: Bool {
        (rawValue & 0x0F0F) == 0x0A0A && (rawValue >> 8) == (rawValue & 0xFF)
    }

    /// TLS 1.3 and its drafts (`0x7F00 | n`) use the TLS 1.3 record and key schedule rules, so a
    /// ChangeCipherSpec means nothing and the handshake is encrypted after ServerHello.
    public var usesTLS13Handshake: Bool {
        (rawValue >= 0x0304 && rawValue < 0x0400) || (rawValue >> 8) == 0x7F
    }

    /// `"SSLv3"`, `"TLSv1.0"` … `"TLSv1.3"`, `"TLSv1.3-draft-28"`; anything else as `"0x0305"`.
    public var name: String {
        switch rawValue {
        case 0x0002: "SSLv2"
        case 0x0300: "SSLv3"
        case 0x0301: "TLSv1.0"
        case 0x0302: "TLSv1.1"
        case 0x0303: "TLSv1.2"
        case 0x0304: "TLSv1.3"
        case 0x7F00...0x7FFF: "TLSv1.3-draft-\(rawValue & 0xFF)"
        default: TLSHex.format(rawValue)
        }
    }
}

/// Fixed-width upper-case hex for values that have no registered name.
enum TLSHex {
    private static let digits = Array("0123456789ABCDEF".utf8)

    /// `0xC0FF`: always four digits, as IANA writes code points.
    static func format(_ value: UInt16) -> String {
        let bytes: [UInt8] = [
            UInt8(ascii: "0"), UInt8(ascii: "x"),
            digits[Int(value >> 12)], digits[Int((value >> 8) & 0xF)],
            digits[Int((value >> 4) & 0xF)], digits[Int(value & 0xF)],
        ]
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `0x2A`: two digits, for one-octet code points such as alert descriptions.
    static func format(_ value: UInt8) -> String {
        let bytes: [UInt8] = [
            UInt8(ascii: "0"), UInt8(ascii: "x"), digits[Int(value >> 4)], digits[Int(value & 0xF)],
        ]
        return String(decoding: bytes, as: UTF8.self)
    }
}
