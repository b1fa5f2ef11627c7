import SMTPCore
import Testing

@Suite struct EnhancedStatusCodeRegistryTests {
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
        #expect(EnhancedStatusCode(code)?.meaning == meaning)
    }

    @Test(arguments: ["", "5", "5.1", "5.1.1.1", "6.1.1", "3.0.0", "5.1.1000", "5.x.1", "55.1.1", "5..1", " 5.1.1", "5.1.1 "])
    func rejectsMalformedCodes(_ code: String) {
        #expect(EnhancedStatusCode(code) == nil)
    }

    @Test func explainsClassAndUnregisteredDetails() {
        #expect(EnhancedStatusCode("5.1.1")?.explanation == "Bad destination mailbox address (permanent failure)")
        #expect(EnhancedStatusCode("4.2.0")?.explanation == "Other or undefined mailbox status (persistent transient failure)")
        #expect(EnhancedStatusCode("5.7.606")?.meaning == nil)
        #expect(EnhancedStatusCode("5.7.606")?.explanation == "not in the IANA registry; security or policy status, permanent failure")
    }
}
