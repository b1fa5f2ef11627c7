/// Shared pieces of the fuzz harnesses (README, "Fuzzing and sanitizers"). Each harness is a plain
/// function over octets: the libFuzzer executables call it from `LLVMFuzzerTestOneInput`, and the unit
/// tests call the same function on every seed and on every crash kept in
/// `Tests/FuzzCorpus/TARGET/regressions`.

/// An invariant a harness found broken. The fuzzer turns it into a crash (so libFuzzer keeps the
/// input); a test reports it.
public struct FuzzInvariantViolation: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

public enum FuzzInput {
    /// Chunks are separated by this marker, as in Suricata's `fuzz_applayerparserparse`: the fuzzer
    /// finds it in the seeds and so learns to place chunk boundaries anywhere.
    public static let marker: [UInt8] = [0xF0, 0x0D, 0xCA, 0xFE]

    /// `input` split on ``marker``; empty chunks are kept, since an empty read is a case too.
    public static func chunks(_ input: [UInt8]) -> [ArraySlice<UInt8>] {
        var chunks: [ArraySlice<UInt8>] = []
        var start = input.startIndex
        var index = input.startIndex
        while index + marker.count <= input.endIndex {
            if input[index] == marker[0], input[index..<(index + marker.count)].elementsEqual(marker) {
                chunks.append(input[start..<index])
                index += marker.count
                start = index
            } else {
                index += 1
            }
        }
        chunks.append(input[start...])
        return chunks
    }

    /// Seeds are written with this helper: the chunks joined by ``marker``.
    public static func joined(_ chunks: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for (index, chunk) in chunks.enumerated() {
            if index > 0 { out += marker }
            out += chunk
        }
        return out
    }
}

/// Line-end checks shared by the SMTP harnesses.
public enum LineEnds {
    /// The offset of the first CR not followed by LF or LF not preceded by CR, if any.
    /// `previousWasCR` carries the state across pieces of one stream.
    public static func firstBareLineEnd(_ octets: some Collection<UInt8>, previousWasCR: inout Bool) -> Int? {
        var offset = 0
        for octet in octets {
            if previousWasCR, octet != 10 { return offset - 1 }
            if octet == 10, !previousWasCR { return offset }
            previousWasCR = octet == 13
            offset += 1
        }
        return nil
    }

    public static func isCanonical(_ octets: some Collection<UInt8>) -> Bool {
        var previousWasCR = false
        return firstBareLineEnd(octets, previousWasCR: &previousWasCR) == nil && !previousWasCR
    }
}

extension Array where Element == UInt8 {
    /// A short printable rendering for violation messages.
    public var shown: String {
        let text = prefix(120).map { octet -> String in
            switch octet {
            case 13: "\\r"
            case 10: "\\n"
            case 32..<127: String(UnicodeScalar(octet))
            default: "\\x" + String(octet, radix: 16)
            }
        }.joined()
        return count > 120 ? text + "..." : text
    }
}
