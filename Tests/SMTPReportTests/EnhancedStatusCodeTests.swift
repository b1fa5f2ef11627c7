import Testing

@testable import SMTPReport

@Suite struct EnhancedStatusCodeTests {
    @Test(arguments: [
        ("5.1.1", "Bad destination mailbox address"),
        ("4.2.0", "Other or undefined mailbox status"),
        ("2.0.0", "Other undefined status"),
        ("5.1.10", "Recipient address has null MX"),
        ("5.3.4", "Message too big for system"),
        ("5.5.6", "Authentication exchange line is too long"),
        ("4.7.5", "Cryptographic failure"),
        ("5.7.26", "Multiple authentication checks failed"),
        ("5.7.30", "REQUIRETLS support required"),
    ])
    func namesRegisteredCodes(_ code: String, _ meaning: String) {
        #expect(EnhancedStatusCode.meaning(code) == meaning)
    }

    @Test(arguments: ["", "5", "5.1", "5.1.1.1", "6.1.1", "3.0.0", "5.1.1000", "5.x.1", "55.1.1", "5..1", " 5.1.1"])
    func rejectsMalformedCodes(_ code: String) {
        #expect(EnhancedStatusCode.meaning(code) == nil)
        #expect(EnhancedStatusCode.describe(code) == nil)
    }

    @Test func describesClassAndUnregisteredDetails() {
        #expect(EnhancedStatusCode.describe("5.1.1") == "Bad destination mailbox address (permanent failure)")
        #expect(EnhancedStatusCode.describe("4.2.0") == "Other or undefined mailbox status (persistent transient failure)")
        #expect(EnhancedStatusCode.meaning("5.7.606") == nil)
        #expect(EnhancedStatusCode.describe("5.7.606") == "not in the IANA registry; security or policy status, permanent failure")
    }
}

@Suite struct ReplyCodeTests {
    @Test(arguments: [
        (220, "Service ready"),
        (421, "Service not available, closing transmission channel"),
        (535, "Authentication credentials invalid"),
        (552, "Requested mail action aborted: exceeded storage allocation"),
    ])
    func namesStandardCodes(_ code: Int, _ meaning: String) {
        #expect(ReplyCode.meaning(code) == meaning)
    }

    @Test(arguments: [0, 199, 222, 599, 600, -1])
    func knowsNothingOfNonStandardCodes(_ code: Int) {
        #expect(ReplyCode.meaning(code) == nil)
    }
}
