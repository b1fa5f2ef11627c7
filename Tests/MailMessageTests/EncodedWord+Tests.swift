import Testing

@testable import MailMessage

@Suite struct EncodedWordTests {
    static let decodeCases: [(String, String)] = [
        ("plain text", "plain text"),
        ("=?utf-8?B?w6nDqMOg?=", "éèà"),
        ("=?UTF-8?Q?caf=C3=A9_au_lait?=", "café au lait"),
        ("=?iso-8859-1?q?J=F6rg?=", "Jörg"),
        ("=?ISO-8859-15?Q?=A4uro?=", "€uro"),
        ("=?windows-1252?Q?=93quoted=94?=", "\u{201C}quoted\u{201D}"),
        ("=?us-ascii?Q?plain?=", "plain"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        ("=?utf-8?q?a?=\t  =?utf-8?q?b?=", "ab"),
        ("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"),
        ("Re: =?utf-8?B?w6k=?= done", "Re: é done"),
        // A character split across two adjacent words of the same charset.
        ("=?utf-8?B?4oI=?= =?utf-8?B?rA==?=", "€"),
        ("=?utf-8*en?Q?hi?=", "hi"),
        // Missing padding is tolerated.
        ("=?utf-8?B?w6k?=", "é"),
        // Malformed: left as written.
        ("=?utf-8?X?abc?=", "=?utf-8?X?abc?="),
        ("=?utf-8?Q?unterminated", "=?utf-8?Q?unterminated"),
        ("=??Q?x?=", "=??Q?x?="),
        ("a =? b", "a =? b"),
        // Unknown charset: UTF-8 with replacement characters, never a failure.
        ("=?x-unknown?B?w6k=?=", "é"),
        ("=?utf-8?B?/w==?=", "\u{FFFD}"),
    ]

    @Test(arguments: decodeCases)
    func decodesEncodedWords(input: String, expected: String) {
        #expect(EncodedWord.decode(input) == expected)
    }

    @Test func decodesOtherCharsetsThroughFoundation() {
        #expect(EncodedWord.decode("=?iso-8859-2?Q?=A1?=") == "Ą")
        #expect(EncodedWord.decode("=?shift_jis?B?gqA=?=") == "あ")
    }

    @Test func reportsMalformedWords() {
        #expect(EncodedWord.decodeReportingMalformed("=?utf-8?Z?x?=").malformed)
        #expect(!EncodedWord.decodeReportingMalformed("=?utf-8?Q?x?=").malformed)
        #expect(!EncodedWord.decodeReportingMalformed("no words").malformed)
    }

    static let encodeCases = [
        "Grüße aus Köln", "plain", "€", String(repeating: "日本語のテキスト", count: 12), "=?looks encoded?=", "tab\tand é",
    ]

    @Test(arguments: encodeCases)
    func encodedTextDecodesBackToItself(text: String) {
        let encoded = EncodedWord.encode(text)
        #expect(EncodedWord.decode(encoded) == text)
        #expect(encoded.utf8.allSatisfy { $0 < 0x7F })
        for word in encoded.split(separator: " ") where word.hasPrefix("=?") {
            #expect(word.utf8.count <= 75)
        }
    }

    @Test func leavesPrintableASCIIUnchanged() {
        #expect(EncodedWord.encode("Hello, world") == "Hello, world")
    }
}
