import SMTPCore
import Testing

@Suite("SMTPPath")
struct PathTests {
    struct Case: Sendable, CustomStringConvertible {
        var line: String
        var address: String
        var sourceRoute: String? = nil
        var hadAngleBrackets = true
        var valid: Bool
        var localPart: String
        var domain: String?
        var description: String { line }
    }

    /// Hostile-input case 13: odd addresses are parsed as RFC 5321 says, or kept verbatim and flagged.
    static let cases: [Case] = [
        Case(line: "MAIL FROM:<>", address: "", valid: true, localPart: "", domain: nil),
        Case(line: "MAIL FROM:<a@b.example>", address: "a@b.example", valid: true, localPart: "a", domain: "b.example"),
        Case(line: "MAIL FROM:<\"u@b\"@a>", address: "\"u@b\"@a", valid: true, localPart: "\"u@b\"", domain: "a"),
        Case(line: "MAIL FROM:<\"a b\"@c.example>", address: "\"a b\"@c.example", valid: true, localPart: "\"a b\"", domain: "c.example"),
        Case(line: "MAIL FROM:<\"a>b\"@c>", address: "\"a>b\"@c", valid: true, localPart: "\"a>b\"", domain: "c"),
        Case(line: "MAIL FROM:<\"a\\\"b\"@c>", address: "\"a\\\"b\"@c", valid: true, localPart: "\"a\\\"b\"", domain: "c"),
        Case(line: "MAIL FROM:<u@[127.0.0.1]>", address: "u@[127.0.0.1]", valid: true, localPart: "u", domain: "[127.0.0.1]"),
        Case(line: "MAIL FROM:<u@[IPv6:::1]>", address: "u@[IPv6:::1]", valid: true, localPart: "u", domain: "[IPv6:::1]"),
        Case(line: "MAIL FROM:<u@[]>", address: "u@[]", valid: false, localPart: "u", domain: "[]"),
        Case(line: "MAIL FROM:<@a,@b:u@c>", address: "u@c", sourceRoute: "@a,@b", valid: true, localPart: "u", domain: "c"),
        Case(line: "RCPT TO:<@a:u@b>", address: "u@b", sourceRoute: "@a", valid: true, localPart: "u", domain: "b"),
        Case(line: "RCPT TO:<@a,b:u@c>", address: "u@c", sourceRoute: "@a,b", valid: false, localPart: "u", domain: "c"),
        Case(line: "MAIL FROM:<u%b@a>", address: "u%b@a", valid: true, localPart: "u%b", domain: "a"),
        Case(line: "MAIL FROM:<a.b.c@d-e.f>", address: "a.b.c@d-e.f", valid: true, localPart: "a.b.c", domain: "d-e.f"),
        Case(line: "MAIL FROM:<用户@例子.广告>", address: "用户@例子.广告", valid: true, localPart: "用户", domain: "例子.广告"),
        // Missing brackets: accepted leniently (Postfix default), never rewritten, flagged invalid.
        Case(line: "MAIL FROM: a@b", address: "a@b", hadAngleBrackets: false, valid: false, localPart: "a", domain: "b"),
        Case(line: "MAIL FROM:a@b", address: "a@b", hadAngleBrackets: false, valid: false, localPart: "a", domain: "b"),
        Case(line: "RCPT TO:c@d", address: "c@d", hadAngleBrackets: false, valid: false, localPart: "c", domain: "d"),
        // Postmaster without a domain is valid for RCPT only, and only in brackets (RFC 5321 §4.1.1.3).
        Case(line: "RCPT TO:<Postmaster>", address: "Postmaster", valid: true, localPart: "Postmaster", domain: nil),
        Case(line: "RCPT TO:<postMASTER>", address: "postMASTER", valid: true, localPart: "postMASTER", domain: nil),
        Case(line: "RCPT TO:Postmaster", address: "Postmaster", hadAngleBrackets: false, valid: false, localPart: "Postmaster", domain: nil),
        Case(line: "MAIL FROM:<Postmaster>", address: "Postmaster", valid: false, localPart: "Postmaster", domain: nil),
        Case(line: "RCPT TO:<Postmaster@example.com>", address: "Postmaster@example.com", valid: true, localPart: "Postmaster", domain: "example.com"),
        // Malformed mailboxes, kept as sent.
        Case(line: "MAIL FROM:<a..b@c>", address: "a..b@c", valid: false, localPart: "a..b", domain: "c"),
        Case(line: "MAIL FROM:<.a@c>", address: ".a@c", valid: false, localPart: ".a", domain: "c"),
        Case(line: "MAIL FROM:<a@-b>", address: "a@-b", valid: false, localPart: "a", domain: "-b"),
        Case(line: "MAIL FROM:<a@b.>", address: "a@b.", valid: false, localPart: "a", domain: "b."),
        Case(line: "MAIL FROM:<a@>", address: "a@", valid: false, localPart: "a", domain: ""),
        Case(line: "MAIL FROM:<@b>", address: "@b", valid: false, localPart: "", domain: "b"),
        Case(line: "MAIL FROM:<a>", address: "a", valid: false, localPart: "a", domain: nil),
        Case(line: "MAIL FROM:<a b@c>", address: "a b@c", valid: false, localPart: "a b", domain: "c"),
        Case(line: "MAIL FROM:<@a:>", address: "", sourceRoute: "@a", valid: false, localPart: "", domain: nil),
        // Text glued to ">" is malformed.
        Case(line: "MAIL FROM:<a@b>SIZE=1", address: "a@b", valid: false, localPart: "a", domain: "b"),
    ]

    @Test("paths are split and judged as RFC 5321 §4.1.2 says", arguments: cases)
    func parsesPath(_ testCase: Case) throws {
        let path: SMTPPath
        switch try CommandParser.parse(testCase.line).get() {
        case .mail(let from, _): path = from
        case .rcpt(let to, _): path = to
        default:
            Issue.record("not MAIL or RCPT")
            return
        }
        #expect(path.address == testCase.address)
        #expect(path.sourceRoute == testCase.sourceRoute)
        #expect(path.hadAngleBrackets == testCase.hadAngleBrackets)
        #expect(path.isSyntacticallyValid == testCase.valid)
        #expect(path.localPart == testCase.localPart)
        #expect(path.domain == testCase.domain)
        #expect(path.isNull == testCase.address.isEmpty)
    }

    @Test("the null reverse-path is null and ASCII")
    func nullPath() {
        let path = SMTPPath(address: "")
        #expect(path.isNull)
        #expect(path.isASCII)
        #expect(path.wireForm == "<>")
    }

    @Test("non-ASCII addresses need SMTPUTF8", arguments: [("a@b", true), ("用户@例子.广告", false), ("é@b", false)])
    func isASCII(address: String, expected: Bool) {
        #expect(SMTPPath(address: address).isASCII == expected)
    }

    @Test("a source route is kept in the wire form", arguments: [
        (SMTPPath(address: "u@c", sourceRoute: "@a,@b"), "<@a,@b:u@c>"),
        (SMTPPath(address: "u@c"), "<u@c>"),
        (SMTPPath(address: "a@b", hadAngleBrackets: false, isSyntacticallyValid: false), "<a@b>"),
    ])
    func wireForm(path: SMTPPath, expected: String) {
        #expect(path.wireForm == expected)
    }

    @Test("the domain is after the last @ outside quotes", arguments: [
        ("a@b@c", "a@b", "c"),
        ("\"x@y\"@z", "\"x@y\"", "z"),
        ("\"x\\\"@y\"@z", "\"x\\\"@y\"", "z"),
        ("nodomain", "nodomain", nil),
    ] as [(String, String, String?)])
    func domainSplit(address: String, local: String, domain: String?) {
        let path = SMTPPath(address: address)
        #expect(path.localPart == local)
        #expect(path.domain == domain)
    }

    @Test("a missing bracket keeps the parameters after the bare address")
    func bareAddressKeepsParameters() throws {
        let command = try CommandParser.parse("MAIL FROM: a@b SIZE=10").get()
        guard case .mail(let path, let parameters) = command else {
            Issue.record("not MAIL")
            return
        }
        #expect(path.address == "a@b")
        #expect(!path.isSyntacticallyValid)
        #expect(parameters == [ESMTPParameter(keyword: "SIZE", value: "10")])
    }
}
