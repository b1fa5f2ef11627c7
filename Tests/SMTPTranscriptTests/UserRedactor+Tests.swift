import Crypto
import Testing
@testable import SMTPTranscript

@Suite struct UserRedactorTests {
    static let key: [UInt8] = Array("0123456789abcdef0123456789abcdef".utf8)

    @Test func redactionIsTheKeyedHashPrefix() throws {
        let redactor = try #require(UserRedactor(keyBytes: Self.key))
        // HMAC-SHA256("0123456789abcdef0123456789abcdef", "alice"), first 8 octets, from Python's hmac module.
        #expect(redactor.redact("alice") == "h:" + Self.expectedAlice)
    }

    static let expectedAlice = "433deb45467e4e53"

    @Test func sameKeyCorrelatesDifferentKeyDoesNot() throws {
        let a = try #require(UserRedactor(keyBytes: Self.key))
        let b = try #require(UserRedactor(keyBytes: Self.key))
        let other = try #require(UserRedactor(keyBytes: Array(repeating: 7, count: 16)))
        #expect(a.redact("alice") == b.redact("alice"))
        #expect(a.redact("alice") != a.redact("Alice"))
        #expect(a.redact("alice") != other.redact("alice"))
        #expect(a.redact("").hasPrefix("h:"))
        #expect(a.redact("alice").utf8.count == 18)
    }

    @Test func shortKeysAreRefused() {
        #expect(UserRedactor(keyBytes: Array(repeating: 1, count: 15)) == nil)
        #expect(UserRedactor(keyBytes: []) == nil)
    }

    @Test func recordRedactionReplacesOnlyTheUser() throws {
        let redactor = UserRedactor.withRandomKey()
        let redacted = redactor.redact(Fixtures.deliveredProxy)
        var expected = Fixtures.deliveredProxy
        expected.auth?.user = redactor.redact("alice")
        #expect(redacted == expected)
        #expect(!SessionRecordEncoder.jsonLine(redacted).contains("alice\""))
        #expect(redactor.redact(Fixtures.minimal) == Fixtures.minimal)
    }
}
