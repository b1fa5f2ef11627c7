import Testing

@testable import MailMessage

@Suite struct MIMEParametersTests {
    static let cases: [(input: String, value: String, name: String, expected: String?)] = [
        ("text/plain; charset=us-ascii", "text/plain", "charset", "us-ascii"),
        ("Text/HTML; CHARSET=\"UTF-8\"", "text/html", "charset", "UTF-8"),
        ("multipart/mixed;\tboundary=\"----=_NextPart_000\"", "multipart/mixed", "boundary", "----=_NextPart_000"),
        ("attachment; filename=\"a \\\"q\\\".pdf\"", "attachment", "filename", "a \"q\".pdf"),
        ("attachment; filename=my file.pdf", "attachment", "filename", "my file.pdf"),
        ("text/plain; charset=us-ascii (Plain text)", "text/plain", "charset", "us-ascii"),
        ("text/plain (comment); format=flowed", "text/plain", "format", "flowed"),
        ("attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf", "attachment", "filename", "€ rates.pdf"),
        ("attachment; filename*=iso-8859-1'de'M%FCller.txt", "attachment", "filename", "Müller.txt"),
        (
            "attachment; filename*0=\"long-\"; filename*1=\"name\"; filename*2=.zip", "attachment", "filename",
            "long-name.zip"
        ),
        (
            "attachment; filename*1*=%82%AC.txt; filename*0*=utf-8''%E2", "attachment", "filename", "€.txt"
        ),
        ("attachment; filename=plain.txt; filename*=utf-8''better.txt", "attachment", "filename", "better.txt"),
        ("application/pdf; name=\"=?UTF-8?B?w6kucGRm?=\"", "application/pdf", "name", "é.pdf"),
        ("attachment; junk; filename=ok.txt", "attachment", "filename", "ok.txt"),
        ("attachment; filename=\"unterminated", "attachment", "filename", "unterminated"),
        ("attachment;", "attachment", "filename", nil),
        ("x/y; ;;==\"; =v; filename=ok", "x/y", "filename", "ok"),
        ("", "", "filename", nil),
    ]

    @Test(arguments: cases)
    func parsesValueAndParameter(input: String, value: String, name: String, expected: String?) {
        let parsed = MIMEParameters.parse(input)
        #expect(parsed.value == value)
        #expect(parsed[name] == expected)
    }

    @Test func rfc2231ContinuationsFromSuricataCapture() {
        let value = """
            attachment;\r
             filename*0=smtptest-2021-02-25T13-54-22Z-aefb2fc1308d62f4b6c74769f69b13;\r
             filename*1=ddf80e995fd98ae442f3be499ea928c67f..zip
            """
        #expect(
            MIMEParameters.parse(value)["filename"]
                == "smtptest-2021-02-25T13-54-22Z-aefb2fc1308d62f4b6c74769f69b13ddf80e995fd98ae442f3be499ea928c67f..zip"
        )
    }

    @Test func mediaTypeNeedsTypeAndSubtype() {
        #expect(MIMEParameters.parse("text/plain").mediaType == "text/plain")
        #expect(MIMEParameters.parse("text").mediaType == nil)
        #expect(MIMEParameters.parse("/plain").mediaType == nil)
    }

    @Test func parameterCountIsBounded() {
        let many = "x/y" + (0..<10_000).map { "; p\($0)=v" }.joined()
        #expect(MIMEParameters.parse(many).parameters.count == MIMEParameters.maxParameters)
    }
}
