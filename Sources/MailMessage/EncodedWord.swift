/// RFC 2047 encoded words: `=?charset?B?…?=` and `=?charset?Q?…?=` in header text.
///
/// Decoding is lenient, as mail readers are: an encoded word is decoded wherever it appears, not only
/// where RFC 2047 §5 allows it; whitespace between adjacent encoded words is dropped (§6.2); adjacent
/// words in the same charset are joined before conversion, so a character split between two words
/// survives; anything malformed is left as written. It never fails.
public enum EncodedWord {
    /// Decodes every encoded word in `text`.
    public static func decode(_ text: String) -> String {
        decodeReportingMalformed(text).text
    }

    /// Encodes `text` for a header field body: returned unchanged if it is printable US-ASCII (and holds
    /// nothing that would read as an encoded word), otherwise as UTF-8 `B` encoded words of at most
    /// 75 characters (RFC 2047 §2) separated by spaces, never splitting a character.
    public static func encode(_ text: String) -> String {
        let needsEncoding = text.utf8.contains { $0 >= 0x7F || ($0 < 0x20 && $0 != ASCII.tab) }
            || text.contains("=?")
        guard needsEncoding else { return text }
        return encodedWords(text)
    }

    /// `text` as UTF-8 `B` encoded words whatever it holds, e.g. ASCII too long for one line, since
    /// encoded words may be folded between (RFC 2047 §2).
    static func encodedWords(_ text: String) -> String {
        // 75 - "=?UTF-8?B?".count - "?=".count = 63 base64 characters, so at most 45 octets a word.
        let maxOctetsPerWord = 45
        var words: [String] = []
        var current: [UInt8] = []
        for scalar in text.unicodeScalars {
            let octets = Array(String(scalar).utf8)
            if current.count + octets.count > maxOctetsPerWord {
                words.append("=?UTF-8?B?" + base64Encoded(current) + "?=")
                current.removeAll(keepingCapacity: true)
            }
            current.append(contentsOf: octets)
        }
        if !current.isEmpty {
            words.append("=?UTF-8?B?" + base64Encoded(current) + "?=")
        }
        return words.joined(separator: " ")
    }

    /// Decodes, and says whether something started like an encoded word but was not one.
    static func decodeReportingMalformed(_ text: String) -> (text: String, malformed: Bool) {
        let input = Array(text.utf8)
        guard input.count >= 2, containsEncodedWordStart(input) else { return (text, false) }
        var output = ""
        var malformed = false
        var literalStart = 0
        var index = 0
        // The last decoded word's charset and octets not yet converted, so the next adjacent word in
        // the same charset can continue it.
        var pendingCharset: String?
        var pendingOctets: [UInt8] = []

        func flushPending() {
            if let charset = pendingCharset {
                output += Charset(name: charset).decode(pendingOctets)
            }
            pendingCharset = nil
            pendingOctets.removeAll(keepingCapacity: true)
        }

        while index + 1 < input.count {
            guard input[index] == ASCII.equals, input[index + 1] == 0x3F else {
                index += 1
                continue
            }
            guard let word = parseWord(input, at: index) else {
                malformed = true
                index += 2
                continue
            }
            let literal = input[literalStart..<index]
            let onlyWhitespace = literal.allSatisfy { ASCII.isWhitespace($0) || $0 == ASCII.cr || $0 == ASCII.lf }
            if pendingCharset != nil, onlyWhitespace {
                // §6.2: whitespace between adjacent encoded words is not displayed.
            } else {
                flushPending()
                output += String(decoding: literal, as: UTF8.self)
            }
            if let charset = pendingCharset, ASCII.lowercased(charset) != ASCII.lowercased(word.charset) {
                flushPending()
            }
            pendingCharset = word.charset
            pendingOctets.append(contentsOf: word.octets)
            index = word.end
            literalStart = word.end
        }
        flushPending()
        output += String(decoding: input[literalStart...], as: UTF8.self)
        return (output, malformed)
    }

    private static func containsEncodedWordStart(_ input: [UInt8]) -> Bool {
        var index = 0
        while index + 1 < input.count {
            if input[index] == ASCII.equals, input[index + 1] == 0x3F { return true }
            index += 1
        }
        return false
    }

    private struct Word {
        var charset: String
        var octets: [UInt8]
        var end: Int
    }

    /// encoded-word = "=?" charset "?" encoding "?" encoded-text "?=" (RFC 2047 §2), with the
    /// RFC 2231 §5 language suffix (`charset*lang`) dropped.
    private static func parseWord(_ input: [UInt8], at start: Int) -> Word? {
        let question: UInt8 = 0x3F
        var index = start + 2
        let charsetStart = index
        while index < input.count, input[index] != question {
            let octet = input[index]
            if octet <= ASCII.space || octet >= 0x7F { return nil }
            index += 1
        }
        guard index < input.count, index > charsetStart else { return nil }
        var charsetOctets = input[charsetStart..<index]
        if let star = charsetOctets.firstIndex(of: 0x2A) {
            charsetOctets = charsetOctets[charsetOctets.startIndex..<star]
        }
        index += 1
        guard index + 1 < input.count, input[index + 1] == question else { return nil }
        let encoding = ASCII.lowercased(input[index])
        guard encoding == 0x62 || encoding == 0x71 else { return nil }
        index += 2
        let textStart = index
        while index < input.count, input[index] != question {
            let octet = input[index]
            if octet <= ASCII.space || octet >= 0x7F { return nil }
            index += 1
        }
        guard index + 1 < input.count, input[index + 1] == ASCII.equals else { return nil }
        let encoded = input[textStart..<index]
        var collector = OctetCollector()
        if encoding == 0x62 {
            var decoder = Base64Decoder()
            for octet in encoded { decoder.decode(octet, into: &collector) }
            decoder.finish(into: &collector)
        } else {
            decodeQ(encoded, into: &collector)
        }
        return Word(
            charset: String(decoding: charsetOctets, as: UTF8.self),
            octets: collector.octets,
            end: index + 2
        )
    }

    /// The "Q" encoding (RFC 2047 §4.2): quoted-printable with `_` for space.
    private static func decodeQ(_ encoded: ArraySlice<UInt8>, into collector: inout OctetCollector) {
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let octet = encoded[index]
            if octet == 0x5F {
                collector.append(ASCII.space)
            } else if octet == ASCII.equals, index + 2 < encoded.endIndex,
                let high = ASCII.hexValue(encoded[index + 1]), let low = ASCII.hexValue(encoded[index + 2])
            {
                collector.append(high << 4 | low)
                index += 2
            } else {
                collector.append(octet)
            }
            index += 1
        }
    }

    static func base64Encoded(_ octets: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((octets.count + 2) / 3 * 4)
        var index = 0
        while index < octets.count {
            let remaining = octets.count - index
            let b0 = UInt32(octets[index])
            let b1 = remaining > 1 ? UInt32(octets[index + 1]) : 0
            let b2 = remaining > 2 ? UInt32(octets[index + 2]) : 0
            let group = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(group >> 18 & 0x3F)])
            out.append(alphabet[Int(group >> 12 & 0x3F)])
            out.append(remaining > 1 ? alphabet[Int(group >> 6 & 0x3F)] : ASCII.equals)
            out.append(remaining > 2 ? alphabet[Int(group & 0x3F)] : ASCII.equals)
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A ``DecodedOctetSink`` that keeps everything; only for inputs already bounded (header text).
struct OctetCollector: DecodedOctetSink {
    var octets: [UInt8] = []

    mutating func append(_ octet: UInt8) {
        octets.append(octet)
    }
}
