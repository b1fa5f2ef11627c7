import Testing
@testable import SMTPCore

struct ServiceExtensionsTests {
    static let postfix = SMTPReply(code: 250, lines: [
        "mx.example.com", "PIPELINING", "SIZE 10240000", "VRFY", "ETRN", "STARTTLS", "AUTH PLAIN login",
        "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING", "XCLIENT NAME ADDR PROTO HELO",
    ])

    @Test func keywordsAreCaseInsensitiveAndKeepTheirParameters() {
        let offered = ServiceExtensions(Self.postfix)
        #expect(offered.offers(.pipelining) && offered.offers(.chunking) && offered.offers(.startTLS))
        #expect(offered.offers(ServiceExtension("etrn")))
        #expect(offered.parameters(of: .xclient) == "NAME ADDR PROTO HELO")
        #expect(offered.parameters(of: .pipelining) == nil)
        #expect(offered.authMechanisms == ["PLAIN", "LOGIN"])
        #expect(offered.sizeLimit == 10_240_000)
        #expect(!offered.offers(ServiceExtension("BINARYMIME")))
    }

    /// RFC 1870 §4: SIZE without a number, or SIZE 0, declares no fixed limit.
    @Test(arguments: [["SIZE"], ["SIZE 0"], ["SIZE lots"], ["PIPELINING"]])
    func sizeWithoutAFixedLimit(lines: [String]) {
        #expect(ServiceExtensions(ehloLines: lines).sizeLimit == nil)
    }

    @Test func aHELOReplyOrAKeywordGivenTwice() {
        #expect(ServiceExtensions(SMTPReply(code: 250, lines: ["mx.example.com"])).isEmpty)
        #expect(ServiceExtensions(ehloLines: ["SIZE 100", "size 5"]).sizeLimit == 100)
        #expect(ServiceExtensions(ehloLines: ["AUTH"]).authMechanisms.isEmpty)
        #expect(ServiceExtensions(ehloLines: ["AUTH"]).offers(.auth))
    }
}
