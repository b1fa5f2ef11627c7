import Testing

@testable import MailMessage

@Suite struct ContentTransferDecoderTests {
    /// Feeds `lines` (a trailing nil terminator means none) one octet at a time and whole; both must agree.
    func decode(_ encoding: ContentTransferDecoder.Encoding, _ content: String) -> [UInt8] {
        var results: [[UInt8]] = []
        for drip in [false, true] {
            var decoder = ContentTransferDecoder(encoding: encoding)
            var sink = OctetCollector()
            let lines = content.split(separator: "\n", omittingEmptySubsequences: false)
            for (index, line) in lines.enumerated() {
                let octets = Array(line.utf8)
                if drip {
                    for octet in octets { decoder.decode([octet], into: &sink) }
                } else {
                    decoder.decode(octets, into: &sink)
                }
                if index < lines.count - 1 { decoder.lineBreak(.crlf, into: &sink) }
            }
            decoder.finish(into: &sink)
            results.append(sink.octets)
        }
        #expect(results[0] == results[1])
        return results[0]
    }

    static let base64Cases: [(String, String)] = [
        ("SGVsbG8=", "Hello"),
        ("SGVs\nbG8=", "Hello"),
        ("SGVsbG8", "Hello"),  // missing padding
        ("SG Vs*bG8=", "Hello"),  // junk ignored
        ("SGVsbG8=SGk=", "HelloHi"),  // concatenated
        ("", ""),
    ]

    @Test(arguments: base64Cases)
    func decodesBase64Leniently(encoded: String, expected: String) {
        #expect(decode(.base64, encoded) == Array(expected.utf8))
    }

    static let quotedPrintableCases: [(String, String)] = [
        ("caf=C3=A9", "café"),
        ("soft =\nbreak", "soft break"),
        ("soft =  \nbreak with padding", "soft break with padding"),
        ("trailing spaces   \nnext", "trailing spaces\r\nnext"),
        ("lower =c3=a9", "lower é"),
        ("bad =ZZ escape", "bad =ZZ escape"),
        ("half =A", "half =A"),
        ("ends with =", "ends with "),
        ("a = b", "a = b"),
    ]

    @Test(arguments: quotedPrintableCases)
    func decodesQuotedPrintable(encoded: String, expected: String) {
        #expect(decode(.quotedPrintable, encoded) == Array(expected.utf8))
    }

    @Test func identityKeepsLineBreaks() {
        #expect(decode(.identity, "a\nb") == Array("a\r\nb".utf8))
    }

    @Test func encodingNamesAreCaseInsensitive() {
        #expect(ContentTransferDecoder.Encoding(fieldValue: " BASE64 ") == .base64)
        #expect(ContentTransferDecoder.Encoding(fieldValue: "Quoted-Printable") == .quotedPrintable)
        #expect(ContentTransferDecoder.Encoding(fieldValue: "x-uuencode") == .identity)
        #expect(ContentTransferDecoder.Encoding(fieldValue: nil) == .identity)
    }

    @Test func flagsInvalidInput() {
        var decoder = ContentTransferDecoder(encoding: .base64)
        var sink = OctetCollector()
        decoder.decode(Array("QUJD!".utf8), into: &sink)
        decoder.finish(into: &sink)
        #expect(decoder.sawInvalidInput)
        #expect(sink.octets == Array("ABC".utf8))
    }
}
