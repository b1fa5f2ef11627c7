/// A TLS alert seen in clear text (RFC 8446 §6, RFC 5246 §7.2):
///
///     struct {
///         AlertLevel level;
///         AlertDescription description;
///     } Alert;
///
/// Only alerts sent before a side encrypts can be read; later ones are encrypted records.
public struct TLSAlert: Sendable, Equatable {
    /// `enum { warning(1), fatal(2), (255) } AlertLevel;`
    public enum Level: Sendable, Equatable {
        case warning
        case fatal
        /// A level outside the registry. RFC 8446 §6 treats every alert but close_notify and
        /// user_canceled as fatal, so the observer does too.
        case unknown(UInt8)

        init(code: UInt8) {
            switch code {
            case 1: self = .warning
            case 2: self = .fatal
            default: self = .unknown(code)
            }
        }
    }

    public var level: Level
    /// The `AlertDescription` code point.
    public var descriptionCode: UInt8
    /// The registry name, e.g. `handshake_failure`, or `0x99` when unregistered.
    public var descriptionName: String
    public var sender: TLSPeer

    public init(level: Level, descriptionCode: UInt8, sender: TLSPeer) {
        self.level = level
        self.descriptionCode = descriptionCode
        self.descriptionName = Self.name(of: descriptionCode)
        self.sender = sender
    }

    /// Whether this alert ends the connection: fatal ones, and the closure alerts
    /// close_notify and user_canceled (RFC 8446 §6.1).
    var endsConnection: Bool {
        switch level {
        case .fatal, .unknown: true
        case .warning: descriptionCode == 0 || descriptionCode == 90
        }
    }

    /// Names from the IANA "TLS Alerts" registry.
    static func name(of code: UInt8) -> String {
        switch code {
        case 0: "close_notify"
        case 10: "unexpected_message"
        case 20: "bad_record_mac"
        case 21: "decryption_failed"
        case 22: "record_overflow"
        case 30: "decompression_failure"
        case 40: "handshake_failure"
        case 41: "no_certificate"
        case 42: "bad_certificate"
        case 43: "unsupported_certificate"
        case 44: "certificate_revoked"
        case 45: "certificate_expired"
        case 46: "certificate_unknown"
        case 47: "illegal_parameter"
        case 48: "unknown_ca"
        case 49: "access_denied"
        case 50: "decode_error"
        case 51: "decrypt_error"
        case 52: "too_many_cids_requested"
        case 60: "export_restriction"
        case 70: "protocol_version"
        case 71: "insufficient_security"
        case 80: "internal_error"
        case 86: "inappropriate_fallback"
        case 90: "user_canceled"
        case 100: "no_renegotiation"
        case 109: "missing_extension"
        case 110: "unsupported_extension"
        case 111: "certificate_unobtainable"
        case 112: "unrecognized_name"
        case 113: "bad_certificate_status_response"
        case 114: "bad_certificate_hash_value"
        case 115: "unknown_psk_identity"
        case 116: "certificate_required"
        case 117: "general_error"
        case 120: "no_application_protocol"
        case 121: "ech_required"
        default: TLSHex.format(code)
        }
    }
}
