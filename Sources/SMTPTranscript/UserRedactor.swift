import Crypto

/// `--redact-users`: replaces an authentication identity (RFC 4954 §4, the SASL authorization or
/// authentication identity) with a keyed hash, so transcripts still correlate one user's sessions
/// without naming the user: "h:" followed by the first 16 lowercase hex digits (64 bits) of
/// HMAC-SHA256(key, UTF-8 of the name).
///
/// The key is what makes this a redaction rather than an obfuscation: without it, common names
/// could be hashed and compared. Keep it stable to correlate across restarts; rotate it to break
/// correlation. The name is hashed as sent (SASL identities are case-sensitive).
public struct UserRedactor: Sendable {
    /// Shorter keys are refused: below 128 bits a key could be guessed.
    public static let minimumKeyLength = 16
    public static let prefix = "h:"

    // Kept as octets: `SymmetricKey` is not `Sendable` in swift-crypto 3.
    private let keyBytes: [UInt8]

    public init(key: SymmetricKey) {
        precondition(key.bitCount >= Self.minimumKeyLength * 8, "a redaction key needs at least 16 octets")
        self.keyBytes = key.withUnsafeBytes { Array($0) }
    }

    /// A key from a file or setting; `nil` when shorter than `minimumKeyLength` octets.
    public init?(keyBytes: [UInt8]) {
        guard keyBytes.count >= Self.minimumKeyLength else { return nil }
        self.keyBytes = keyBytes
    }

    /// A fresh random 256-bit key: users correlate within one run only.
    public static func withRandomKey() -> UserRedactor {
        UserRedactor(key: SymmetricKey(size: .bits256))
    }

    /// The keyed hash of `user`, e.g. "h:3f9a0c2e81b4d7a6".
    public func redact(_ user: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(user.utf8), using: SymmetricKey(data: keyBytes))
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = Array(Self.prefix.utf8)
        for byte in mac.prefix(8) {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `record` with its `auth.user` redacted.
    public func redact(_ record: SessionRecord) -> SessionRecord {
        guard let user = record.auth?.user else { return record }
        var copy = record
        copy.auth?.user = redact(user)
        return copy
    }
}
