import Crypto

/// SHA-256 (FIPS 180-4) over every octet of a message, as lowercase hex.
///
/// swift-crypto's `SHA256` is a value type whose BoringSSL context is copied on write
/// (`OpenSSLDigestImpl` checks `isKnownUniquelyReferenced` before every update), so a copy shares no
/// mutable state; it is only not declared `Sendable`. That makes this wrapper safe to send.
struct MessageDigest: @unchecked Sendable {
    private var hasher = SHA256()

    mutating func update(_ octets: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: octets)
    }

    func finalizeHex() -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(SHA256.Digest.byteCount * 2)
        for byte in hasher.finalize() {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
