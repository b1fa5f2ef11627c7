import SMTPCore
import Testing
@testable import SMTPRules

/// The one fact builder: its transitions, and what each stage reads of it.
struct SessionFactsTests {
    static let alice = SMTPPath(address: "alice@example.com")
    static let bob = SMTPPath(address: "bob@example.org")
    static let carol = SMTPPath(address: "carol@example.net")

    @Test func aStageJudgesItsOwnCommandWhichBecomesAFactOnlyOnceAccepted() {
        var facts = SessionFacts(clientIP: "192.0.2.7", clientPort: 40000)
        let probe = facts.probing(helo: "mx.example.com")
        #expect(RuleFacts(probe, at: .helo).helo == "mx.example.com")
        #expect(facts.helo == nil)
        facts.greeted(as: "mx.example.com")
        let mail = RuleFacts(facts.probing(mailFrom: Self.alice, parameters: [ESMTPParameter(keyword: "SIZE", value: "100")]), at: .mail)
        #expect(mail.mailFrom == "alice@example.com")
        #expect(mail.mailParameters["SIZE"] == .some("100"))
        #expect(facts.mailFrom == nil)
    }

    @Test func rcptCountIsTheRecipientsGivenBeforeAtRcptAndTheAcceptedOnesLater() {
        var facts = SessionFacts()
        facts.greeted(as: "x")
        facts.beganTransaction(mailFrom: Self.alice, parameters: [])
        facts.gaveRecipient()
        facts.acceptedRecipient(Self.bob)
        // The second recipient was refused, by a rule or by the server: it was given, not accepted.
        facts.gaveRecipient()
        let third = RuleFacts(facts.probing(recipient: Self.carol), at: .rcpt)
        #expect(third.recipient == "carol@example.net")
        #expect(third.rcptCount == 2)
        let data = RuleFacts(facts, at: .data)
        #expect(data.recipient == nil)
        #expect(data.recipients == ["bob@example.org"])
        #expect(data.rcptCount == 1)
    }

    @Test func aNewMailStartsAnEmptyEnvelope() {
        var facts = SessionFacts()
        facts.beganTransaction(mailFrom: Self.alice, parameters: [])
        facts.gaveRecipient()
        facts.acceptedRecipient(Self.bob)
        let next = RuleFacts(facts.probing(mailFrom: Self.carol, parameters: []), at: .mail)
        #expect(next.mailFrom == "carol@example.net")
        #expect(next.recipients.isEmpty)
        #expect(next.rcptCount == 0)
    }

    @Test func startTLSForgetsTheGreetingTheIdentityAndTheTransaction() {
        var facts = SessionFacts()
        facts.greeted(as: "before.example")
        facts.authenticating(mechanism: "PLAIN", user: "alice")
        facts.beganTransaction(mailFrom: Self.alice, parameters: [])
        facts.startedTLS()
        facts.negotiatedTLS(version: "TLSv1.3")
        let after = RuleFacts(facts, at: .helo)
        #expect(after.tls)
        #expect(after.tlsVersion == "TLSv1.3")
        #expect(after.helo == nil)
        #expect(after.authUser == nil && after.authMechanism == nil)
        #expect(after.mailFrom == nil)
    }

    @Test func anImplicitTLSConnectionKnowsItsVersionOnlyAfterTheHandshake() {
        var facts = SessionFacts()
        facts.becameEncrypted()
        #expect(RuleFacts(facts, at: .connect).tls)
        #expect(RuleFacts(facts, at: .connect).tlsVersion == nil)
        facts.negotiatedTLS(version: "TLSv1.2")
        #expect(RuleFacts(facts, at: .helo).tlsVersion == "TLSv1.2")
        // A version without TLS is never shown.
        var plain = SessionFacts()
        plain.negotiatedTLS(version: "TLSv1.3")
        #expect(RuleFacts(plain, at: .helo).tlsVersion == nil)
    }

    @Test func aFailedOrRefusedAuthLeavesNoIdentity() {
        var facts = SessionFacts()
        facts.authenticating(mechanism: "LOGIN")
        #expect(RuleFacts(facts, at: .auth).authUser == nil)
        facts.identified(user: "alice")
        #expect(RuleFacts(facts, at: .auth).authUser == "alice")
        facts.unauthenticated()
        let after = RuleFacts(facts, at: .mail)
        #expect(after.authUser == nil && after.authMechanism == nil)
    }

    @Test func messageFactsAreSeenAtTheMessageStageOnly() {
        let facts = SessionFacts().probing(message: RuleMessageFacts(subject: "hi", size: 10))
        #expect(RuleFacts(facts, at: .message).message?.subject == "hi")
        #expect(RuleFacts(facts, at: .data).message == nil)
    }

    /// An `example` block reads the facts as the proxy does: a rewrite changes what goes upstream,
    /// not what later rules read.
    @Test func anExampleSeesTheClientsAddressesAfterARewriteAsTheProxyDoes() throws {
        let rules = """
            rule "legacy" on mail when mail_from.domain == "old.example.com" set mail_from "${mail_from.local}@example.com"
            rule "seen" on message when mail_from == "a@old.example.com" tag "client-address"
            example "e"
              session helo "x" mail_from "a@old.example.com" rcpt "b@example.org" subject "s"
              expect delivered set mail_from "a@example.com" tag "client-address"
            """
        let result = compile(rules)
        let run = try #require(result.examples.first, "\(result.diagnostics)")
        #expect(run.passed, "\(run.detail)")
    }
}
