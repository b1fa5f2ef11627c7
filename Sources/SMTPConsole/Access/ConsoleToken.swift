import Crypto

/// The console's access token: every request must prove it knows it, by the login cookie or an
/// `Authorization: Bearer` header. Generated from the system's CSPRNG (`SystemRandomNumberGenerator`
/// is `getrandom(2)` on Linux) unless a file gives one.
public struct ConsoleToken: Sendable {
    public let value: String

    /// Shorter tokens from a file are refused: they could be guessed.
    public static let minimumLength = 16

    private let digest: [UInt8]

    public init?(_ value: String) {
        guard value.count >= Self.minimumLength, value.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else { return nil }
        self.value = value
        digest = Array(SHA256.hash(data: Array(value.utf8)))
    }

    /// 32 random octets as 64 lowercase hex digits.
    public static func generate() -> ConsoleToken {
        var generator = SystemRandomNumberGenerator()
        return ConsoleToken(Hex.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }))!
    }

    /// A token file's contents: the token, with surrounding white space (a final newline) removed.
    public init?(fileContents: String) {
        let trimmed = fileContents.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed()
        self.init(String(trimmed))
    }

    /// Compared in constant time: both sides are hashed first, so neither the position of the
    /// first difference nor the length of the guess shows in the time taken.
    public func matches(_ candidate: String) -> Bool {
        ConstantTime.equal(digest, Array(SHA256.hash(data: Array(candidate.utf8))))
    }
}

enum ConstantTime {
    static func equal(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}

enum Hex {
    static func encode(_ octets: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for octet in octets {
            out.append(digits[Int(octet >> 4)])
            out.append(digits[Int(octet & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
