/// Follows one SASL exchange (RFC 4954) far enough to learn the authentication identity, and keeps
/// nothing else: passwords, digests and tokens are decoded only transiently and never stored.
///
/// - PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`: the user is authcid.
/// - LOGIN (draft-murchison-sasl-login): the server asks "Username:" then "Password:"; the response
///   to the first is the user.
/// - CRAM-MD5 (RFC 2195): the response is `user SP digest`.
/// - XOAUTH2: `user=USER ^A auth=Bearer TOKEN ^A ^A`.
/// - OAUTHBEARER (RFC 7628): the GS2 header `n,a=USER,`.
public struct SASLExchange: Sendable, Hashable {
    public let mechanism: String
    /// The identity, once a response revealed it.
    public private(set) var user: String?
    private var responses = 0
    private var lastChallengeAskedForPassword = false

    public init(mechanism: String) {
        self.mechanism = mechanism.uppercased()
    }

    /// A 334 challenge from the server (base64 text after the code).
    public mutating func receiveChallenge(_ base64Text: String) {
        let decoded = Base64.decode(base64Text).map { String(decoding: $0, as: UTF8.self).lowercased() } ?? ""
        lastChallengeAskedForPassword = decoded.hasPrefix("password")
    }

    /// A client response (initial response or continuation line).
    public mutating func receiveResponse(_ response: SASLResponse) {
        defer { responses += 1 }
        guard user == nil, !response.isCancellation, let decoded = Base64.decode(response.base64Text) else { return }
        switch mechanism {
        case "PLAIN":
            let fields = decoded.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            if fields.count >= 2 { user = Self.text(fields[1]) }
        case "LOGIN":
            if !lastChallengeAskedForPassword && responses == 0 { user = Self.text(decoded[...]) }
        case "CRAM-MD5":
            if let space = decoded.lastIndex(of: UInt8(ascii: " ")) { user = Self.text(decoded[..<space]) }
        case "XOAUTH2":
            for field in decoded.split(separator: 1) where field.starts(with: Array("user=".utf8)) {
                user = Self.text(field.dropFirst(5))
            }
        case "OAUTHBEARER":
            for field in decoded.split(separator: UInt8(ascii: ",")) where field.starts(with: Array("a=".utf8)) {
                user = Self.text(field.dropFirst(2))
            }
        default:
            break
        }
    }

    private static func text(_ bytes: ArraySlice<UInt8>) -> String? {
        guard !bytes.isEmpty, bytes.count <= 512, !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }
}
