import Testing
@testable import SMTPRules

/// `readsMessageBody`: the proxy keeps decoded body text only for a rule set that can read it.
struct RuleSetReadsBodyTests {
    @Test(arguments: [
        ("when body contains \"invoice\"\n  tag \"t\"", true),
        ("when subject == \"x\" and not (size > 10 or body matches /viagra/)\n  tag \"t\"", true),
        ("when subject != body\n  tag \"t\"", true),
        ("log \"first words: ${body}\"", true),
        ("when subject contains \"x\"\n  reject 550 5.7.1 \"no ${subject}\"", false),
        ("when headers(\"Received\") contains \"body\" and attachment.filename ends_with \".exe\"\n  set_header \"X-Body\" \"${from}\"", false),
    ])
    func aMessageRuleReadsTheBodyOnlyWhereItNamesIt(rule: String, reads: Bool) throws {
        let set = try #require(ruleSet("rule \"r\" on message\n  \(rule)\n"))
        #expect(set.evaluatesMessages)
        #expect(set.readsMessageBody == reads)
    }

    @Test func theShippedRulesSpoolMessagesWithoutReadingTheBody() throws {
        let result = RuleSet.load(directory: ShippedRulesTests.directory)
        let set = try #require(result.ruleSet)
        #expect(set.evaluatesMessages)
        #expect(!set.readsMessageBody)
    }
}
