// The only file of MailMessage that imports Foundation: converting charsets beyond the Western ones in
// Charset.swift needs tables this module does not carry.
import Foundation

extension Charset {
    /// Converts with Foundation's IANA charset support, or returns nil if Foundation does not know the
    /// name or the octets are invalid in it.
    static func decodeWithFoundation(_ bytes: [UInt8], ianaName: String) -> String? {
        guard let encoding = String.Encoding(ianaName: ianaName) else { return nil }
        return String(bytes: bytes, encoding: encoding)
    }
}
