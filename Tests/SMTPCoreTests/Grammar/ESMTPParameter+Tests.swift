import SMTPCore
import Testing

@Suite("ESMTPParameter")
struct ESMTPParameterTests {
    private func parameters(_ line: String) throws -> [ESMTPParameter] {
        switch try CommandParser.parse(line).get() {
        case .mail(_, let parameters), .rcpt(_, let parameters): return parameters
        default: return []
        }
    }

    /// RFC 1870 §5 and hostile-input case 11: an overflowing SIZE is 552 5.3.4, a non-numeric one 501 5.5.4.
    @Test("SIZE is judged as a receiver must", arguments: [
        ("MAIL FROM:<a@b> SIZE=1000", NumericParameter.valid(1000)),
        ("MAIL FROM:<a@b> size=0", .valid(0)),
        ("MAIL FROM:<a@b> SIZE=00012", .valid(12)),
        ("MAIL FROM:<a@b> SIZE=18446744073709551615", .valid(UInt64.max)),
        ("MAIL FROM:<a@b> SIZE=18446744073709551616", .overflow),
        ("MAIL FROM:<a@b> SIZE=99999999999999999999", .overflow),
        ("MAIL FROM:<a@b> SIZE=abc", .invalid),
        ("MAIL FROM:<a@b> SIZE=-1", .invalid),
        ("MAIL FROM:<a@b> SIZE=+1", .invalid),
        ("MAIL FROM:<a@b> SIZE=1e3", .invalid),
        ("MAIL FROM:<a@b> SIZE", .invalid),
        ("MAIL FROM:<a@b>", .absent),
        ("MAIL FROM:<a@b> BODY=8BITMIME", .absent),
    ])
    func size(line: String, expected: NumericParameter) throws {
        #expect(try parameters(line).size == expected)
    }

    @Test("numeric values are 1*DIGIT in 64 bits", arguments: [
        (nil, NumericParameter.invalid), ("", .invalid), ("0", .valid(0)), ("42", .valid(42)), (" 1", .invalid), ("1 ", .invalid),
        ("１", .invalid), ("٣", .invalid), ("99999999999999999999999999999999", .overflow),
    ] as [(String?, NumericParameter)])
    func numericParsing(text: String?, expected: NumericParameter) {
        #expect(NumericParameter(parsing: text) == expected)
    }

    @Test("keywords are upper-cased, values kept as sent")
    func keywordCase() throws {
        let list = try parameters("MAIL FROM:<a@b> size=12 body=8bitmime SMTPUTF8 ret=HDRS envid=QQ314159")
        #expect(list == [
            ESMTPParameter(keyword: "SIZE", value: "12"),
            ESMTPParameter(keyword: "BODY", value: "8bitmime"),
            ESMTPParameter(keyword: "SMTPUTF8", value: nil),
            ESMTPParameter(keyword: "RET", value: "HDRS"),
            ESMTPParameter(keyword: "ENVID", value: "QQ314159"),
        ])
        #expect(list.map(\.keyword) == ["SIZE", "BODY", "SMTPUTF8", "RET", "ENVID"])
        #expect(ESMTPParameter(keyword: "size", value: "1").keyword == "SIZE")
    }

    @Test("lookup is case-insensitive")
    func lookup() throws {
        let list = try parameters("MAIL FROM:<a@b> BODY=8BITMIME SMTPUTF8")
        #expect(list.first("body")?.value == "8BITMIME")
        #expect(list.contains(keyword: "smtputf8"))
        #expect(!list.contains(keyword: "SIZE"))
        #expect(list.first("SMTPUTF8")?.value == nil)
    }

    @Test("RCPT parameters", arguments: [
        ("RCPT TO:<c@d> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d", [ESMTPParameter(keyword: "NOTIFY", value: "SUCCESS,FAILURE"), ESMTPParameter(keyword: "ORCPT", value: "rfc822;c@d")]),
        ("RCPT TO:<c@d>  NOTIFY=NEVER", [ESMTPParameter(keyword: "NOTIFY", value: "NEVER")]),
        ("RCPT TO:<c@d>\tX-A=1", [ESMTPParameter(keyword: "X-A", value: "1")]),
        ("RCPT TO:<c@d> X=é", [ESMTPParameter(keyword: "X", value: "é")]),
    ])
    func rcptParameters(line: String, expected: [ESMTPParameter]) throws {
        #expect(try parameters(line) == expected)
    }

    @Test("malformed parameters make the command fail with 501 5.5.4", arguments: [
        "MAIL FROM:<a@b> SIZE=", "MAIL FROM:<a@b> =x", "MAIL FROM:<a@b> -A", "MAIL FROM:<a@b> A_B=1", "MAIL FROM:<a@b> A=B=C",
        "MAIL FROM:<a@b> A=\u{1}", "MAIL FROM:<a@b> A=\u{7F}", "RCPT TO:<c@d> NOTIFY=", "RCPT TO:<c@d> É=1",
    ])
    func malformed(line: String) {
        guard case .failure(let error) = CommandParser.parse(line) else {
            Issue.record("parsed")
            return
        }
        #expect(error.code == 501)
        #expect(error.enhanced == EnhancedStatusCode(statusClass: 5, subject: 5, detail: 4))
    }
}
