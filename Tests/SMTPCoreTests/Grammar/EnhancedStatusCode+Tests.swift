import SMTPCore
import Testing

@Suite("EnhancedStatusCode")
struct EnhancedStatusCodeTests {
    /// RFC 3463 §2: `class "." subject "." detail`, class 2, 4 or 5, subject and detail 1 to 3 digits,
    /// followed by a space or the end of the text.
    @Test("codes at the start of reply text", arguments: [
        ("2.0.0", "2.0.0", 5),
        ("2.1.0 Ok", "2.1.0", 5),
        ("5.7.1 Relay access denied", "5.7.1", 5),
        ("4.4.2\tTimeout", "4.4.2", 5),
        ("5.100.999 x", "5.100.999", 9),
        ("2.000.000 x", "2.0.0", 9),
    ] as [(String, String, Int)])
    func parses(text: String, expected: String, length: Int) {
        let parsed = EnhancedStatusCode.parse(prefixOf: Substring(text).utf8)
        #expect(parsed?.0.description == expected)
        #expect(parsed?.1 == length)
    }

    @Test("text that does not start with a code", arguments: [
        "", "Ok", "3.0.0 x", "1.0.0 x", "6.0.0 x", "2.1 x", "2.1.", "2..0 x", "2.1000.0 x", "2.1.0000 x", "2.1.0x", "2.1.0.1",
        " 2.1.0", "22.1.0 x", "2.a.0",
    ])
    func rejects(text: String) {
        #expect(EnhancedStatusCode.parse(prefixOf: Substring(text).utf8) == nil)
    }

    @Test("description is dotted")
    func description() {
        #expect(EnhancedStatusCode(statusClass: 5, subject: 1, detail: 1).description == "5.1.1")
        #expect("\(EnhancedStatusCode(statusClass: 4, subject: 7, detail: 0))" == "4.7.0")
    }

    @Test("parsing works on a substring that does not start at its base's start")
    func substringOffset() {
        let text = "250 2.1.5 Ok"
        let tail = text.dropFirst(4)
        let parsed = EnhancedStatusCode.parse(prefixOf: tail.utf8)
        #expect(parsed?.0 == EnhancedStatusCode(statusClass: 2, subject: 1, detail: 5))
        #expect(parsed?.1 == 5)
    }
}
