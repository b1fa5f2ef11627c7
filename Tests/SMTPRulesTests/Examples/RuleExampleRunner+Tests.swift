import Testing
@testable import SMTPRules

struct RuleExampleRunnerTests {
    static let rules = """
        list ours = ["example.com"]
        rule "no-outsiders" on mail when mail_from.domain not in ours reject 550 5.7.1 "no"
        rule "cap" on rcpt when rcpt_count >= 2 tempfail 452 4.5.3 "too many"
        rule "old" on mail when mail_from.domain == "example.com" and mail_from.local == "old" set mail_from "new@example.com"
        rule "ext" on message when any rcpt.domain not in ours bcc "archive@example.com" tag "external"
        rule "big" on message when size > 1MB quarantine "oversize"
        rule "exe" on message when attachment.filename matches /\\.exe$/i reject 554 5.7.1 "no exe"
        rule "shadow" on message mode monitor when subject contains "secret" discard
        rule "hdr" on message when header("X-Tag") == "1" add_header "X-Seen" "yes"
        rule "hello" on helo when helo == "bad.test" disconnect 421 "bye"
        rule "auth" on auth when auth.user == "mallory" reject 535 5.7.8 "no"
        rule "tls" on connect when not tls and client.ip in [198.51.100.0/24] reject 554 "tls only"
        """

    @Test(arguments: [
        ("session mail_from \"a@evil.test\" rcpt \"b@example.com\" expect reject 550 at mail by \"no-outsiders\"", true),
        ("session mail_from \"a@evil.test\" rcpt \"b@example.com\" expect reject 554", false),
        ("session mail_from \"a@evil.test\" rcpt \"b@example.com\" expect reject at rcpt", false),
        ("session mail_from \"a@example.com\" rcpt \"b@example.com\" expect delivered", true),
        ("session mail_from \"a@example.com\" rcpt \"b@example.com\" expect accept no tag \"external\"", true),
        ("session mail_from \"a@example.com\" rcpt \"b@example.com\" rcpt \"c@example.com\" rcpt \"d@example.com\" expect tempfail 452 at rcpt by \"cap\"", true),
        ("session mail_from \"old@example.com\" rcpt \"b@example.com\" expect delivered set mail_from \"new@example.com\"", true),
        ("session mail_from \"a@example.com\" rcpt \"b@other.test\" expect delivered bcc \"archive@example.com\" tag \"external\"", true),
        ("session mail_from \"a@example.com\" rcpt \"b@example.com\" size 2MB expect quarantine \"oversize\" at message by \"big\"", true),
        ("session mail_from \"a@example.com\" rcpt \"b@example.com\" attachment \"x.EXE\" expect reject 554 at message", true),
        ("session mail_from \"a@example.com\" rcpt \"b@example.com\" subject \"top secret\" expect delivered matched \"shadow\" \"discard\"", true),
        ("session mail_from \"a@example.com\" rcpt \"b@example.com\" subject \"top secret\" expect discard", false),
        ("session mail_from \"a@example.com\" rcpt \"b@example.com\" header \"X-Tag\" \"1\" expect add_header \"X-Seen\" \"yes\"", true),
        ("session helo \"bad.test\" mail_from \"a@example.com\" expect disconnect 421 at helo", true),
        ("session helo \"x\" auth \"mallory\" mail_from \"a@example.com\" expect reject 535 at auth by \"auth\"", true),
        ("session client 198.51.100.7 helo \"x\" expect reject at connect", true),
        ("session client 198.51.100.7 tls helo \"x\" mail_from \"a@example.com\" rcpt \"b@example.com\" expect delivered", true),
        ("session client 198.51.100.7 expect no matched \"tls\"", false),
    ])
    func examplesPassOrFail(example: String, passes: Bool) throws {
        let result = compile(Self.rules + "\nexample \"e\"\n  " + example + "\n")
        let run = try #require(result.examples.first, "\(result.diagnostics)")
        #expect(run.passed == passes, "\(run.detail)")
        #expect(result.isValid == passes)
        #expect(run.line == Self.rules.split(separator: "\n").count + 1)
    }

    @Test func failureDetailSaysWhatHappenedAndWhatWasExpected() throws {
        let result = compile(Self.rules + "\nexample \"e\" session mail_from \"a@evil.test\" rcpt \"b@example.com\" expect delivered tag \"x\"")
        let run = try #require(result.examples.first)
        #expect(run.detail == "expected 'delivered'; expected 'tag \"x\"'; got: reject 550 5.7.1 no at mail by \"no-outsiders\"")
        #expect(result.ruleSet == nil)
    }
}
