import NIOCore
import SMTPCore
import Testing

@Suite("CommandParser")
struct CommandParserTests {
    // MARK: Verbs

    static let verbs: [(String, SMTPCommand)] = [
        ("HELO client.example", .helo(domain: "client.example")),
        ("helo client.example", .helo(domain: "client.example")),
        ("EHLO client.example", .ehlo(domain: "client.example")),
        ("eHlO [192.0.2.1]", .ehlo(domain: "[192.0.2.1]")),
        ("LHLO lmtp.example", .lhlo(domain: "lmtp.example")),
        ("lhlo lmtp.example", .lhlo(domain: "lmtp.example")),
        ("DATA", .data),
        ("data", .data),
        ("RSET", .rset),
        ("rset", .rset),
        ("NOOP", .noop),
        ("noop anything goes", .noop),
        ("QUIT", .quit),
        ("quit", .quit),
        ("QUIT  ", .quit),
        ("QUIT\t", .quit),
        ("STARTTLS", .starttls),
        ("StartTLS", .starttls),
        ("VRFY postmaster", .vrfy("postmaster")),
        ("vrfy <u@example.com>", .vrfy("<u@example.com>")),
        ("EXPN staff", .expn("staff")),
        ("HELP", .help(nil)),
        ("help MAIL", .help("MAIL")),
        ("BDAT 10", .bdat(size: 10, last: false)),
        ("bdat 10 last", .bdat(size: 10, last: true)),
        ("BDAT 10 LAST", .bdat(size: 10, last: true)),
        ("BDAT 0 LAST", .bdat(size: 0, last: true)),
        ("BDAT 0", .bdat(size: 0, last: false)),
        ("BDAT 18446744073709551615", .bdat(size: UInt64.max, last: false)),
        ("AUTH PLAIN", .auth(mechanism: "PLAIN", initialResponse: nil)),
        ("auth login", .auth(mechanism: "LOGIN", initialResponse: nil)),
        ("AUTH CRAM-MD5", .auth(mechanism: "CRAM-MD5", initialResponse: nil)),
        ("AUTH PLAIN =", .auth(mechanism: "PLAIN", initialResponse: SASLResponse(base64Text: "="))),
        ("XCLIENT NAME=spike.porcupine.org ADDR=168.100.189.2", .xclient("NAME=spike.porcupine.org ADDR=168.100.189.2")),
        ("XFORWARD PROTO=ESMTP", .xforward("PROTO=ESMTP")),
        ("X-EXPS GSSAPI", .unknown(verb: "X-EXPS", arguments: "GSSAPI")),
        ("xtest", .unknown(verb: "xtest", arguments: "")),
        ("TURN", .unknown(verb: "TURN", arguments: "")),
        ("MAIL FROM:<a@b.example>", .mail(from: SMTPPath(address: "a@b.example"), parameters: [])),
        ("mail from:<a@b.example>", .mail(from: SMTPPath(address: "a@b.example"), parameters: [])),
        ("Mail From:<>", .mail(from: SMTPPath(address: ""), parameters: [])),
        ("RCPT TO:<c@d.example>", .rcpt(to: SMTPPath(address: "c@d.example"), parameters: [])),
        ("rcpt to:<c@d.example>", .rcpt(to: SMTPPath(address: "c@d.example"), parameters: [])),
        (
            "MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME",
            .mail(from: SMTPPath(address: "a@b.example"), parameters: [ESMTPParameter(keyword: "SIZE", value: "1000"), ESMTPParameter(keyword: "BODY", value: "8BITMIME")])
        ),
    ]

    @Test("every verb parses, whatever its case", arguments: verbs)
    func parsesVerb(line: String, expected: SMTPCommand) {
        #expect(CommandParser.parse(line) == .success(expected))
        #expect(CommandParser.parse(line: Array(line.utf8)) == .success(expected))
    }

    @Test("the verb property is RFC 5321's spelling", arguments: verbs)
    func verbIsUpperCase(line: String, expected: SMTPCommand) throws {
        let command = try CommandParser.parse(line).get()
        let typed = line.split(separator: " ").first.map(String.init) ?? line
        #expect(command.verb == typed.trimmingCharacters(in: " \t").uppercased())
    }

    // MARK: Syntax errors

    struct Failure: Sendable, CustomStringConvertible {
        var line: String
        var code: Int
        var enhanced: String
        var verb: String?
        var description: String { line }
    }

    static let failures: [Failure] = [
        Failure(line: "", code: 500, enhanced: "5.5.2", verb: nil),
        Failure(line: "   ", code: 500, enhanced: "5.5.2", verb: nil),
        Failure(line: "@@@", code: 500, enhanced: "5.5.2", verb: nil),
        Failure(line: "MAIL: x", code: 500, enhanced: "5.5.2", verb: nil),
        Failure(line: "DATA now", code: 501, enhanced: "5.5.4", verb: "DATA"),
        Failure(line: "RSET now", code: 501, enhanced: "5.5.4", verb: "RSET"),
        Failure(line: "QUIT now", code: 501, enhanced: "5.5.4", verb: "QUIT"),
        Failure(line: "STARTTLS now", code: 501, enhanced: "5.5.4", verb: "STARTTLS"),
        Failure(line: "HELO", code: 501, enhanced: "5.5.4", verb: "HELO"),
        Failure(line: "EHLO", code: 501, enhanced: "5.5.4", verb: "EHLO"),
        Failure(line: "EHLO   ", code: 501, enhanced: "5.5.4", verb: "EHLO"),
        Failure(line: "LHLO", code: 501, enhanced: "5.5.4", verb: "LHLO"),
        Failure(line: "VRFY", code: 501, enhanced: "5.5.4", verb: "VRFY"),
        Failure(line: "EXPN", code: 501, enhanced: "5.5.4", verb: "EXPN"),
        Failure(line: "MAIL", code: 501, enhanced: "5.5.4", verb: "MAIL"),
        Failure(line: "MAIL TO:<a@b>", code: 501, enhanced: "5.5.4", verb: "MAIL"),
        Failure(line: "MAIL FROM", code: 501, enhanced: "5.5.4", verb: "MAIL"),
        Failure(line: "MAIL FROM:", code: 501, enhanced: "5.1.7", verb: "MAIL"),
        Failure(line: "MAIL FROM:<a@b", code: 501, enhanced: "5.1.7", verb: "MAIL"),
        Failure(line: "MAIL FROM:<a@b> SIZE=", code: 501, enhanced: "5.5.4", verb: "MAIL"),
        Failure(line: "MAIL FROM:<a@b> =1", code: 501, enhanced: "5.5.4", verb: "MAIL"),
        Failure(line: "MAIL FROM:<a@b> -X=1", code: 501, enhanced: "5.5.4", verb: "MAIL"),
        Failure(line: "MAIL FROM:<a@b> A=B=C", code: 501, enhanced: "5.5.4", verb: "MAIL"),
        Failure(line: "MAIL FROM:<a@b> X=a\u{7F}", code: 501, enhanced: "5.5.4", verb: "MAIL"),
        Failure(line: "RCPT", code: 501, enhanced: "5.5.4", verb: "RCPT"),
        Failure(line: "RCPT FROM:<a@b>", code: 501, enhanced: "5.5.4", verb: "RCPT"),
        Failure(line: "RCPT TO:", code: 501, enhanced: "5.1.3", verb: "RCPT"),
        Failure(line: "RCPT TO:<>", code: 501, enhanced: "5.1.3", verb: "RCPT"),
        Failure(line: "RCPT TO:<c@d> NOTIFY=", code: 501, enhanced: "5.5.4", verb: "RCPT"),
        Failure(line: "BDAT", code: 501, enhanced: "5.5.4", verb: "BDAT"),
        Failure(line: "BDAT -1", code: 501, enhanced: "5.5.4", verb: "BDAT"),
        Failure(line: "BDAT +1", code: 501, enhanced: "5.5.4", verb: "BDAT"),
        Failure(line: "BDAT abc", code: 501, enhanced: "5.5.4", verb: "BDAT"),
        Failure(line: "BDAT 10 NOW", code: 501, enhanced: "5.5.4", verb: "BDAT"),
        Failure(line: "BDAT 10 LAST x", code: 501, enhanced: "5.5.4", verb: "BDAT"),
        Failure(line: "BDAT LAST", code: 501, enhanced: "5.5.4", verb: "BDAT"),
        Failure(line: "BDAT 18446744073709551616", code: 501, enhanced: "5.5.4", verb: "BDAT"),
        Failure(line: "BDAT 99999999999999999999 LAST", code: 501, enhanced: "5.5.4", verb: "BDAT"),
        Failure(line: "AUTH", code: 501, enhanced: "5.5.4", verb: "AUTH"),
        Failure(line: "AUTH PL@IN", code: 501, enhanced: "5.5.4", verb: "AUTH"),
        Failure(line: "AUTH PLAIN a b", code: 501, enhanced: "5.5.4", verb: "AUTH"),
        Failure(line: "AUTH ABCDEFGHIJKLMNOPQRSTU", code: 501, enhanced: "5.5.4", verb: "AUTH"),
    ]

    @Test("malformed commands fail with the reply a server gives", arguments: failures)
    func refusesMalformedCommand(_ failure: Failure) {
        guard case .failure(let error) = CommandParser.parse(failure.line) else {
            Issue.record("\(failure.line) parsed")
            return
        }
        #expect(error.code == failure.code)
        #expect(error.enhanced.description == failure.enhanced)
        #expect(error.verb == failure.verb)
    }

    @Test("a twenty-character mechanism is the longest accepted (RFC 4422 §3.1)")
    func mechanismLengthBoundary() {
        #expect(CommandParser.parse("AUTH ABCDEFGHIJKLMNOPQRST") == .success(.auth(mechanism: "ABCDEFGHIJKLMNOPQRST", initialResponse: nil)))
    }

    // MARK: Bytes that are not text

    @Test(
        "a NUL anywhere in a command is refused with 501 5.5.2, never stripped",
        arguments: ["NOOP\0", "\0NOOP", "MAIL FROM:<a\0@b>", "DA\0TA", "AUTH PLAIN AHVzZXIA\0"]
    )
    func refusesNUL(_ line: String) {
        guard case .failure(let error) = CommandParser.parse(line: Array(line.utf8)) else {
            Issue.record("a line with NUL parsed")
            return
        }
        #expect(error.code == 501)
        #expect(error.enhanced == EnhancedStatusCode(statusClass: 5, subject: 5, detail: 2))
    }

    @Test(
        "invalid UTF-8 in a command is refused with 500 5.5.2",
        arguments: [
            Array("MAIL FROM:<".utf8) + [0xFF] + Array("@b>".utf8),
            Array("EHLO ".utf8) + [0xC3],
            [0xC0, 0x80] + Array("DATA".utf8),
            Array("RCPT TO:<".utf8) + [0xED, 0xA0, 0x80] + Array("@b>".utf8),
        ]
    )
    func refusesInvalidUTF8(_ line: [UInt8]) {
        guard case .failure(let error) = CommandParser.parse(line: line) else {
            Issue.record("invalid UTF-8 parsed")
            return
        }
        #expect(error.code == 500)
        #expect(error.enhanced == EnhancedStatusCode(statusClass: 5, subject: 5, detail: 2))
    }

    @Test("a NUL is reported before invalid UTF-8")
    func nulWinsOverInvalidUTF8() {
        let result = CommandParser.parse(line: [0xFF, 0x00])
        #expect((try? result.get()) == nil)
        if case .failure(let error) = result { #expect(error.code == 501) }
    }

    @Test("the byte and text entry points agree on UTF-8 lines")
    func byteAndTextEntryPointsAgree() {
        let line = "MAIL FROM:<用户@例子.广告> SMTPUTF8"
        #expect(CommandParser.parse(line: Array(line.utf8)) == CommandParser.parse(line))
        let buffer = ByteBuffer(string: line)
        #expect(CommandParser.parse(line: buffer.readableBytesView) == CommandParser.parse(line))
    }

    // MARK: AUTH secrets

    static let secretResponse = CoreTestSupport.base64("\u{0}someone\u{0}hunter2-very-secret")

    @Test("AUTH with an initial response keeps it for relaying but never shows it")
    func authInitialResponseIsRedacted() throws {
        let command = try CommandParser.parse("AUTH PLAIN \(Self.secretResponse)").get()
        #expect(command == .auth(mechanism: "PLAIN", initialResponse: SASLResponse(base64Text: Self.secretResponse)))
        #expect(command.redactedLine == "AUTH PLAIN [redacted]")
        #expect(command.wireLine == "AUTH PLAIN \(Self.secretResponse)")
        for shown in [String(describing: command), String(reflecting: command), "\(CommandParser.parse("AUTH PLAIN \(Self.secretResponse)"))"] {
            #expect(!shown.contains(Self.secretResponse), "\(shown)")
            #expect(!shown.contains("hunter2"))
        }
        var dumped = ""
        dump(command, to: &dumped)
        #expect(!dumped.contains(Self.secretResponse))
    }

    @Test("AUTH without an initial response is shown as sent")
    func authWithoutInitialResponse() throws {
        let command = try CommandParser.parse("AUTH LOGIN").get()
        #expect(command.redactedLine == "AUTH LOGIN")
        #expect(command.wireLine == "AUTH LOGIN")
    }

    @Test("the empty initial response \"=\" is redacted as well")
    func emptyInitialResponseIsRedacted() throws {
        let command = try CommandParser.parse("AUTH EXTERNAL =").get()
        #expect(command.redactedLine == "AUTH EXTERNAL [redacted]")
    }

    // MARK: Round trip

    @Test("parsing a command's wire line gives the command back", arguments: verbs)
    func roundTrip(line: String, expected: SMTPCommand) {
        #expect(CommandParser.parse(expected.wireLine) == .success(expected))
    }

    static let canonicalLines = [
        "HELO a.example", "EHLO a.example", "LHLO a.example", "MAIL FROM:<>", "MAIL FROM:<a@b.example> SIZE=12 SMTPUTF8",
        "RCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d.example", "RCPT TO:<@a,@b:u@c>", "RCPT TO:<Postmaster>",
        "MAIL FROM:<\"u@b\"@a>", "MAIL FROM:<u@[127.0.0.1]>", "DATA", "BDAT 5", "BDAT 5 LAST", "RSET", "NOOP", "QUIT",
        "VRFY x", "EXPN x", "HELP", "HELP DATA", "STARTTLS", "AUTH PLAIN", "AUTH PLAIN dGVzdA==", "XCLIENT NAME=x",
        "XFORWARD HELO=x", "X-UNKNOWN a b",
    ]

    @Test("canonical lines are reproduced octet for octet", arguments: canonicalLines)
    func canonicalWireLine(_ line: String) throws {
        let command = try CommandParser.parse(line).get()
        #expect(command.wireLine == line)
        #expect(CommandParser.parse(command.wireLine) == .success(command))
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var view = Substring(self)
        while let first = view.first, set.contains(first) { view = view.dropFirst() }
        while let last = view.last, set.contains(last) { view = view.dropLast() }
        return String(view)
    }
}
