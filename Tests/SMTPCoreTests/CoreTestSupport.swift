import NIOCore
import SMTPCore

/// Small helpers shared by the SMTPCore tests (bytes in and out of `ByteBuffer`, a seeded random
/// source for reproducible split points).
enum CoreTestSupport {
    static func buffer(_ text: String) -> ByteBuffer {
        ByteBuffer(string: text)
    }

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        ByteBuffer(bytes: bytes)
    }

    static func bytes(_ buffer: ByteBuffer) -> [UInt8] {
        Array(buffer.readableBytesView)
    }

    static func string(_ buffer: ByteBuffer) -> String {
        String(decoding: buffer.readableBytesView, as: UTF8.self)
    }

    /// Control characters spelled out, so that failures print readably.
    static func escaped(_ bytes: some Sequence<UInt8>) -> String {
        var result = ""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\r"): result += "\\r"
            case UInt8(ascii: "\n"): result += "\\n"
            case 0: result += "\\0"
            case UInt8(ascii: "\\"): result += "\\\\"
            case 0x20..<0x7F: result.unicodeScalars.append(Unicode.Scalar(byte))
            default: result += "\\x" + String(byte, radix: 16)
            }
        }
        return result
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
            let value = (UInt32(chunk[0]) << 16) | (UInt32(chunk.count > 1 ? chunk[1] : 0) << 8) | UInt32(chunk.count > 2 ? chunk[2] : 0)
            output.append(alphabet[Int((value >> 18) & 63)])
            output.append(alphabet[Int((value >> 12) & 63)])
            output.append(chunk.count > 1 ? alphabet[Int((value >> 6) & 63)] : UInt8(ascii: "="))
            output.append(chunk.count > 2 ? alphabet[Int(value & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func base64(_ text: String) -> String { base64(Array(text.utf8)) }
}

/// SplitMix64: a tiny deterministic generator, so random split points are the same on every run.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// How a test feeds a byte sequence to a streaming parser.
enum Feeding: Sendable, CustomStringConvertible {
    case whole
    case oneByteAtATime
    case randomSplits(seed: UInt64)

    /// The chunks `bytes` is cut into.
    func chunks(of bytes: [UInt8]) -> [[UInt8]] {
        switch self {
        case .whole:
            return bytes.isEmpty ? [] : [bytes]
        case .oneByteAtATime:
            return bytes.map { [$0] }
        case .randomSplits(let seed):
            var generator = SeededGenerator(seed: seed &+ UInt64(bytes.count))
            var result: [[UInt8]] = []
            var index = 0
            while index < bytes.count {
                let length = Int.random(in: 1...max(1, min(bytes.count - index, 7)), using: &generator)
                result.append(Array(bytes[index..<(index + length)]))
                index += length
            }
            return result
        }
    }

    var description: String {
        switch self {
        case .whole: "whole"
        case .oneByteAtATime: "one byte at a time"
        case .randomSplits(let seed): "random splits, seed \(seed)"
        }
    }

    static let all: [Feeding] = [.whole, .oneByteAtATime] + (1...12).map { .randomSplits(seed: UInt64($0)) }
}
