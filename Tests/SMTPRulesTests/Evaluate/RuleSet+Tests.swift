import SMTPCore
import Testing
@testable import SMTPRules

/// The evaluator: each operator on each field, quantifiers, lists, CIDR, absent values.
struct RuleSetEvaluationTests {
    static let lists = """
        list our_domains = ["example.com", "example.org"]
        list nets = [192.0.2.0/24, 2001:db8::/32]
        list blocked from "blocked.txt"
        list ports = [25, 587]
        """
    static let listFiles = ["blocked.txt": "# HELO names we refuse\n\n  mail.example.com  \nspam.test\n"]

    /// Whether `condition` holds at `stage` on `sampleFacts(at: stage)`.
    static func holds(_ stage: RuleStage, _ condition: String, _ facts: RuleFacts? = nil) -> Bool? {
        let text = lists + "\nrule \"t\" on \(stage.rawValue)\n  when \(condition)\n  tag \"hit\"\n"
        let result = compile(text, lists: listFiles)
        guard let set = result.ruleSet else {
            print(result.errors.map(\.description).joined(separator: "\n"))
            return nil
        }
        return set.evaluate(stage, facts ?? sampleFacts(at: stage)).effects == [.tag("hit")]
    }

    @Test(arguments: [
        // client and session
        (RuleStage.connect, "client.ip == 192.0.2.10", true),
        (.connect, "client.ip == \"192.0.2.10\"", true),
        (.connect, "client.ip != 192.0.2.11", true),
        (.connect, "client.ip in [192.0.2.0/24]", true),
        (.connect, "client.ip in 192.0.2.0/25", true),
        (.connect, "client.ip in [10.0.0.0/8, 2001:db8::/32]", false),
        (.connect, "client.ip not in [10.0.0.0/8]", true),
        (.connect, "client.ip in nets", true),
        (.connect, "client.ip starts_with \"192.0.\"", true),
        (.connect, "server.ip in [2001:db8::/32]", true),
        (.connect, "server.ip in [2001:db9::/32]", false),
        (.connect, "server.ip == 2001:db8:0:0::25", true),
        (.connect, "server.ip in nets", true),
        (.connect, "client.port >= 1024", true),
        (.connect, "client.port < 1024", false),
        (.connect, "server.port == 25", true),
        (.connect, "server.port != 25", false),
        (.connect, "server.port in [25, 587]", true),
        (.connect, "server.port in ports", true),
        (.connect, "server.port <= 24", false),
        (.connect, "server.port > 24", true),
        (.connect, "tls", true),
        (.connect, "not tls", false),
        (.connect, "tls == false", false),
        (.connect, "tls.version == \"TLSv1.3\"", true),
        (.connect, "tls.version starts_with \"TLSv1.\"", true),
        // helo: a domain, compared case-insensitively
        (.helo, "helo == \"mail.example.com\"", true),
        (.helo, "helo ends_with \".example.com\"", true),
        (.helo, "helo matches /^mail\\./", true),
        (.helo, "helo contains \"EXAMPLE\"", true),
        (.helo, "helo in blocked", true),
        (.helo, "helo not in blocked", false),
        // auth
        (.auth, "auth.user == \"alice\"", true),
        (.auth, "auth.user == \"Alice\"", false),
        (.auth, "auth.mechanism == \"plain\"", true),
        (.auth, "auth.user != none", true),
        (.auth, "auth.user == none", false),
        // envelope sender
        (.mail, "mail_from == \"alice@example.com\"", true),
        (.mail, "mail_from.local == \"ALICE\"", true),
        (.mail, "mail_from.domain == \"example.com\"", true),
        (.mail, "mail_from.domain in [\"EXAMPLE.COM\"]", true),
        (.mail, "mail_from.domain in our_domains", true),
        (.mail, "not mail_from.domain in our_domains", false),
        (.mail, "mail_from.local != auth.user", false),
        (.mail, "mail_from.local == auth.user", true),
        (.mail, "mail_param(\"SIZE\") > 10KB", true),
        (.mail, "mail_param(\"SIZE\") < 10KB", false),
        (.mail, "mail_param(\"size\") == \"12345\"", true),
        (.mail, "mail_param(\"SIZE\") == 12345", true),
        (.mail, "mail_param(\"SMTPUTF8\") != none", true),
        (.mail, "mail_param(\"ENVID\") == none", true),
        (.mail, "mail_param(\"BODY\") == \"8BITMIME\"", true),
        // recipients: one at rcpt, all at data and message
        (.rcpt, "rcpt == \"dave@partner.test\"", true),
        (.rcpt, "rcpt.domain == \"partner.test\"", true),
        (.rcpt, "rcpt.local == \"dave\"", true),
        (.rcpt, "rcpt_count == 2", true),
        (.rcpt, "rcpt.domain not in our_domains", true),
        (.data, "rcpt.domain == \"partner.test\"", true),
        (.data, "any rcpt.domain == \"partner.test\"", true),
        (.data, "all rcpt.domain == \"example.com\"", false),
        (.data, "any rcpt.domain not in our_domains", true),
        (.data, "all rcpt.domain in [\"example.com\", \"partner.test\"]", true),
        (.data, "rcpt_count > 1", true),
        (.message, "rcpt == \"bob@example.com\"", true),
        // message
        (.message, "subject contains \"CONFIDENTIAL\"", true),
        (.message, "subject contains \"confidential\"", false),
        (.message, "subject matches /(?i)\\bconfidential\\b/", true),
        (.message, "subject matches /confidential/i", true),
        (.message, "subject matches /confidential/", false),
        (.message, "subject not matches /confidential/", true),
        (.message, "subject starts_with [\"Weekly\", \"Quarterly\"]", true),
        (.message, "subject ends_with \"report\"", true),
        (.message, "header(\"x-spam\") == \"yes\"", true),
        (.message, "header(\"Received\") == \"a\"", true),
        (.message, "headers(\"Received\") == \"b\"", true),
        (.message, "all headers(\"Received\") == \"a\"", false),
        (.message, "header(\"Missing\") == none", true),
        (.message, "header(\"Missing\") != \"x\"", true),
        (.message, "from == \"ALICE@example.com\"", true),
        (.message, "from.domain == \"example.com\"", true),
        (.message, "from.domain in our_domains", true),
        (.message, "from.local == \"alice\"", true),
        (.message, "message_id == \"<1@example.com>\"", true),
        (.message, "size > 25MB", true),
        (.message, "size <= 30MB", true),
        (.message, "size == 31457280", true),
        (.message, "size >= 1GB", false),
        (.message, "body contains \"Password:\"", true),
        (.message, "body matches /(?m)^password: \\S+$/i", true),
        (.message, "attachment.filename matches /\\.(exe|scr)$/i", true),
        (.message, "any attachment.filename matches /\\.(exe|scr)$/", false),
        (.message, "all attachment.filename ends_with \".pdf\"", false),
        (.message, "attachment.content_type == \"APPLICATION/PDF\"", true),
        (.message, "attachment.size > 4KB", true),
        (.message, "all attachment.size < 10KB", true),
        (.message, "all attachment.size < 4KB", false),
        // logic
        (.message, "subject contains \"x\" or size > 1MB", true),
        (.message, "not (size > 1MB)", false),
        (.message, "not size > 1MB", false),
        (.message, "size > 1MB and (tls or helo == \"x\")", true),
        (.message, "size > 1MB and not tls", false),
        (.message, "size < 1MB or size > 2MB and tls", true),
    ])
    func condition(stage: RuleStage, condition: String, expected: Bool) {
        #expect(Self.holds(stage, condition) == expected)
    }

    @Test(arguments: [
        ("auth.user == \"bob\"", false),
        ("auth.user != \"bob\"", true),
        ("auth.user == none", true),
        ("auth.user in [\"bob\"]", false),
        ("auth.user not in [\"bob\"]", true),
        ("auth.user matches /./", false),
        ("auth.user not matches /./", true),
        ("client.port > 0", false),
        ("client.ip in nets", false),
        ("client.ip not in nets", true),
    ])
    func absentValueEqualsNothingAndIsInNothing(condition: String, expected: Bool) {
        #expect(Self.holds(.auth, condition, RuleFacts()) == expected)
    }

    @Test(arguments: [
        ("all attachment.filename ends_with \".pdf\"", true),
        ("any attachment.filename ends_with \".pdf\"", false),
        ("attachment.filename ends_with \".pdf\"", false),
        ("attachment.filename == none", true),
    ])
    func quantifiersOverNoValues(condition: String, expected: Bool) {
        var facts = sampleFacts(at: .message)
        facts.message?.attachments = []
        #expect(Self.holds(.message, condition, facts) == expected)
    }

    @Test func nullReversePathHasEmptyLocalPartAndNoDomain() {
        var facts = sampleFacts(at: .mail)
        facts.mailFrom = ""
        #expect(Self.holds(.mail, "mail_from == \"\"", facts) == true)
        #expect(Self.holds(.mail, "mail_from.domain == none", facts) == true)
        #expect(Self.holds(.mail, "mail_from == none", facts) == false)
    }

    @Test(arguments: [
        ("::ffff:192.0.2.10", "client.ip in [192.0.2.0/24]", true),
        ("2001:db8:ffff::1", "client.ip in [2001:db8::/32]", true),
        ("2001:db9::1", "client.ip in [2001:db8::/32]", false),
        ("fe80::1%eth0", "client.ip in [fe80::/10]", true),
        ("10.1.2.3", "client.ip in [10.1.2.3]", true),
        ("10.1.2.4", "client.ip in [10.1.2.3]", false),
        ("10.255.255.255", "client.ip in [10.0.0.0/8, 172.16.0.0/12]", true),
        ("172.32.0.1", "client.ip in [10.0.0.0/8, 172.16.0.0/12]", false),
        ("not an address", "client.ip in [0.0.0.0/0]", false),
        ("203.0.113.5", "client.ip in [0.0.0.0/0]", true),
        ("::1", "client.ip in [::/0]", true),
    ])
    func cidrMembership(address: String, condition: String, expected: Bool) {
        #expect(Self.holds(.connect, condition, RuleFacts(clientIP: address)) == expected)
    }

    @Test func largeListFromFileIsAHashedSet() throws {
        let domains = (0..<50_000).map { "d\($0).example" }.joined(separator: "\n")
        let nets = (0..<10_000).map { "10.\($0 / 256).\($0 % 256).0/24" }.joined(separator: "\n")
        let set = try #require(ruleSet("""
            list big from "big.txt"
            list nets from "nets.txt"
            rule "a" on mail when mail_from.domain in big tag "domain"
            rule "b" on mail when client.ip in nets tag "net"
            """, lists: ["big.txt": domains, "nets.txt": nets]))
        let outcome = set.evaluate(.mail, RuleFacts(clientIP: "10.39.15.7", mailFrom: "x@D49999.example"))
        #expect(outcome.effects == [.tag("domain"), .tag("net")])
        #expect(set.evaluate(.mail, RuleFacts(clientIP: "10.40.0.1", mailFrom: "x@d50000.example")).effects.isEmpty)
    }
}

/// Actions, outcomes, verdicts, monitor mode and interpolation.
struct RuleSetActionTests {
    @Test func everyNonTerminalActionBecomesAnEffectAndAVerdict() throws {
        let set = try #require(ruleSet("""
            rule "all" on message
              bcc "archive@example.com"
              redirect "quarantine@example.com"
              add_header "X-Policy" "checked ${client.ip}"
              set_header "X-Spam" "no"
              remove_header "X-Internal"
              prefix_subject "[EXT] "
              tag "external"
              log "seen ${mail_from}"
            """))
        let outcome = set.evaluate(.message, sampleFacts(at: .message))
        #expect(outcome.terminal == nil)
        #expect(outcome.effects == [
            .bcc("archive@example.com"), .redirect("quarantine@example.com"), .addHeader(name: "X-Policy", value: "checked 192.0.2.10"),
            .setHeader(name: "X-Spam", value: "no"), .removeHeader(name: "X-Internal"), .prefixSubject("[EXT] "), .tag("external"),
            .log("seen Alice@Example.com"),
        ])
        #expect(outcome.verdicts.map(\.action) == ["bcc", "redirect", "add_header", "set_header", "remove_header", "prefix_subject", "tag", "log"])
        #expect(outcome.verdicts.map(\.detail) == [
            "archive@example.com", "quarantine@example.com", "X-Policy: checked 192.0.2.10", "X-Spam: no", "X-Internal", "[EXT] ", "external",
            "seen Alice@Example.com",
        ])
        #expect(outcome.verdicts.allSatisfy { $0.rule == "all" && $0.file == "t.rules" && $0.line == 1 && $0.stage == .message && $0.enforced })
    }

    @Test func envelopeRewrites() throws {
        let set = try #require(ruleSet("""
            rule "sender" on mail when mail_from.domain == "old.example.com" set mail_from "${mail_from.local}@example.com"
            rule "recipient" on rcpt when rcpt.domain == "old.example.com" set rcpt "${rcpt.local}@example.com"
            """))
        #expect(set.evaluate(.mail, RuleFacts(mailFrom: "bob@OLD.example.com")).effects == [.setMailFrom("bob@example.com")])
        #expect(set.evaluate(.rcpt, RuleFacts(recipient: "carol@old.example.com")).effects == [.setRcpt("carol@example.com")])
    }

    @Test(arguments: [
        ("accept", RuleTerminal.accept, "accept", nil as String?),
        ("reject 550 5.7.1 \"No ${mail_from.domain}\"", .reject(code: 550, enhanced: EnhancedStatusCode(statusClass: 5, subject: 7, detail: 1), text: "No Example.com"),
         "reject", "550 5.7.1 No Example.com"),
        ("reject 554 \"Go away\"", .reject(code: 554, enhanced: nil, text: "Go away"), "reject", "554 Go away"),
        ("tempfail 451 4.7.1 \"Later\"", .tempfail(code: 451, enhanced: EnhancedStatusCode(statusClass: 4, subject: 7, detail: 1), text: "Later"), "tempfail",
         "451 4.7.1 Later"),
        ("disconnect", .disconnect(code: nil, enhanced: nil, text: nil), "disconnect", nil),
        ("disconnect 421 4.7.0 \"Bye\"", .disconnect(code: 421, enhanced: EnhancedStatusCode(statusClass: 4, subject: 7, detail: 0), text: "Bye"), "disconnect",
         "421 4.7.0 Bye"),
        ("discard", .discard, "discard", nil),
        ("quarantine \"oversize ${size}\"", .quarantine(reason: "oversize 31457280"), "quarantine", "oversize 31457280"),
    ])
    func terminalActions(action: String, terminal: RuleTerminal, name: String, detail: String?) throws {
        let set = try #require(ruleSet("rule \"r\" on message when tls \(action)"))
        let outcome = set.evaluate(.message, sampleFacts(at: .message))
        #expect(outcome.terminal == terminal)
        #expect(outcome.terminalVerdict?.rule == "r")
        #expect(outcome.verdicts.map(\.action) == [name])
        #expect(outcome.verdicts.first?.detail == detail)
    }

    @Test func firstEnforcedTerminalEndsTheStageAndTheRuleAppliesAllItsActions() throws {
        let set = try #require(ruleSet("""
            rule "one" on mail when tls tag "one"
            rule "two" on mail when tls
              reject 550 "no"
              log "after the reject, same rule"
            rule "three" on mail when tls tag "three"
            """))
        let outcome = set.evaluate(.mail, sampleFacts(at: .mail))
        #expect(outcome.terminal == .reject(code: 550, enhanced: nil, text: "no"))
        #expect(outcome.effects == [.tag("one"), .log("after the reject, same rule")])
        #expect(outcome.verdicts.map(\.rule) == ["one", "two", "two"])
    }

    @Test func rulesOfOtherStagesDoNotRun() throws {
        let set = try #require(ruleSet("rule \"m\" on mail tag \"m\"\nrule \"r\" on rcpt tag \"r\""))
        #expect(set.evaluate(.mail, sampleFacts(at: .mail)).effects == [.tag("m")])
        #expect(set.evaluate(.helo, sampleFacts(at: .helo)).verdicts.isEmpty)
        #expect(set.stages == [.mail, .rcpt])
        #expect(set.ruleCount == 2)
        #expect(!set.evaluatesMessages)
        #expect(RuleSet.empty.ruleCount == 0)
        #expect(RuleSet.empty.evaluate(.message, RuleFacts()).verdicts.isEmpty)
    }

    @Test func monitorRulesOnlyRecordVerdicts() throws {
        let set = try #require(ruleSet("""
            rule "shadow" on mail mode monitor when tls
              reject 550 "would refuse"
              tag "shadow"
            rule "real" on mail when tls tag "real"
            """))
        let outcome = set.evaluate(.mail, sampleFacts(at: .mail))
        #expect(outcome.terminal == nil)
        #expect(outcome.effects == [.tag("real")])
        #expect(outcome.verdicts.map { "\($0.rule):\($0.action):\($0.enforced)" } == ["shadow:reject:false", "shadow:tag:false", "real:tag:true"])
    }

    @Test func capturesOfTheLastSuccessfulMatch() throws {
        let set = try #require(ruleSet("""
            rule "c" on message
              when subject matches /^(\\w+) (\\w+)/ and body matches /Password: (\\S+)/ and subject matches /(nomatch)?report/
              log "[${1}] [${0}] [${2}]"
            rule "d" on message when subject matches /^(\\w+) (\\w+)/ log "${2}/${1}/${9}"
            """))
        let outcome = set.evaluate(.message, sampleFacts(at: .message))
        #expect(outcome.effects == [.log("[] [report] []"), .log("CONFIDENTIAL/Quarterly/")])
    }

    @Test func interpolatedLineBreaksBecomeSpaces() throws {
        let set = try #require(ruleSet("""
            rule "h" on message add_header "X-From" "${mail_from} ${subject}"
            """))
        var facts = sampleFacts(at: .message)
        facts.mailFrom = "a\r\nRCPT TO:<x@y>@example.com"
        facts.message?.subject = "line1\nline2\0"
        let outcome = set.evaluate(.message, facts)
        #expect(outcome.effects == [.addHeader(name: "X-From", value: "a  RCPT TO:<x@y>@example.com line1 line2 ")])
    }

    @Test func interpolationIsBoundedInLength() throws {
        let set = try #require(ruleSet("rule \"r\" on message when tls reject 550 \"${body}\"\nrule \"t\" on message tag \"${body}\""))
        var facts = sampleFacts(at: .message)
        facts.message?.body = String(repeating: "é", count: 5000)
        let outcome = set.evaluate(.message, facts)
        guard case .reject(_, _, let text) = outcome.terminal else {
            Issue.record("expected a reject")
            return
        }
        #expect(text.utf8.count == RuleLimits.default.maxReplyTextLength)
        if case .tag(let tag) = outcome.effects.first {
            #expect(tag.utf8.count <= RuleLimits.default.maxInterpolatedLength)
        }
    }

    @Test func manyValuedFieldsInterpolateAsAList() throws {
        let set = try #require(ruleSet("rule \"r\" on data log \"to ${rcpt} (${rcpt_count})\""))
        #expect(set.evaluate(.data, sampleFacts(at: .data)).effects == [.log("to bob@example.com, carol@partner.test (2)")])
    }

    @Test func evaluationIsSafeFromManyThreadsAtOnce() async throws {
        let set = try #require(ruleSet("""
            rule "a" on message when attachment.filename matches /\\.exe$/i and body matches /Password: (\\S+)/ log "${1}"
            rule "b" on message when subject matches /(?i)confidential/ tag "c"
            """))
        let facts = sampleFacts(at: .message)
        let results = await withTaskGroup(of: [RuleEffect].self) { group in
            for _ in 0..<16 {
                group.addTask {
                    var last: [RuleEffect] = []
                    for _ in 0..<200 { last = set.evaluate(.message, facts).effects }
                    return last
                }
            }
            var all: [[RuleEffect]] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 16)
        #expect(results.allSatisfy { $0 == [.log("hunter2"), .tag("c")] })
    }
}
