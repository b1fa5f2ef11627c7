import SMTPCore
import Testing
@testable import SMTPRules

/// The two example files the rule language was specified with, verbatim: they parse, check and behave
/// as their rules say.
struct DesignExampleTests {
    static let senders = #"""
# rules/10-senders.rules
list internal_nets = [10.0.0.0/8, 192.168.0.0/16, 2001:db8::/32]
list our_domains   = ["example.com", "example.org"]

rule "corporate-senders-only" on mail
  when not mail_from.domain in our_domains
  reject 550 5.7.1 "Sender domain ${mail_from.domain} is not permitted here"

rule "auth-outside-office" on mail
  when not client.ip in internal_nets and auth.user == none
  reject 530 5.7.0 "Authentication required"

rule "sender-is-login" on mail
  when auth.user != none and mail_from.local != auth.user
  reject 553 5.7.1 "${auth.user} may not send as ${mail_from}"

rule "recipient-cap" on rcpt
  when rcpt_count >= 50
  tempfail 452 4.5.3 "Too many recipients"

rule "legacy-domain" on mail
  when mail_from.domain == "old.example.com"
  set mail_from "${mail_from.local}@example.com"

"""#

    static let content = #"""
# rules/20-content.rules
rule "archive-external" on message
  when any rcpt.domain not in our_domains
  bcc "archive@example.com"
  tag "external"

rule "confidential" on message
  when subject matches /(?i)\bconfidential\b/
  prefix_subject "[SECURE] "
  add_header "X-Policy" "confidential"

rule "no-executables" on message
  when any attachment.filename matches /\.(exe|scr|js|vbs)$/i
  reject 554 5.7.1 "Executable attachments are not accepted"

rule "big-mail" on message
  when size > 25MB
  quarantine "oversize"

example "outsider is refused"
  session client 203.0.113.9 helo "x" mail_from "a@evil.test" rcpt "b@example.com"
  expect reject 550 at mail by "corporate-senders-only"
"""#

    static func check() -> RuleCheckResult {
        RuleSet.compile([
            RuleSource(path: "rules/10-senders.rules", text: senders),
            RuleSource(path: "rules/20-content.rules", text: content),
        ]) { _ in throw MissingListFile(name: "none") }
    }

    static func set() throws -> RuleSet {
        try #require(check().ruleSet)
    }

    @Test func checksCleanlyAndItsExamplePasses() {
        let result = Self.check()
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(\.description))")
        #expect(result.isValid)
        #expect(result.examples.map(\.name) == ["outsider is refused"])
        #expect(result.examples.allSatisfy { $0.passed })
        #expect(result.ruleSet?.ruleCount == 9)
        #expect(result.ruleSet?.evaluatesMessages == true)
    }

    @Test func corporateSendersOnly() throws {
        let outcome = try Self.set().evaluate(.mail, RuleFacts(clientIP: "10.1.1.1", mailFrom: "a@evil.test"))
        #expect(outcome.terminal == .reject(code: 550, enhanced: EnhancedStatusCode(statusClass: 5, subject: 7, detail: 1),
                                            text: "Sender domain evil.test is not permitted here"))
        #expect(outcome.terminalVerdict?.rule == "corporate-senders-only")
        #expect(outcome.terminalVerdict?.file == "rules/10-senders.rules")
        #expect(outcome.terminalVerdict?.line == 5)
    }

    @Test(arguments: [
        ("10.1.1.1", nil as String?, nil as Int?),
        ("192.168.3.4", nil, nil),
        ("2001:db8::7", nil, nil),
        ("203.0.113.9", nil, 530),
        ("203.0.113.9", "a", nil),
    ])
    func authOutsideOffice(client: String, user: String?, code: Int?) throws {
        let outcome = try Self.set().evaluate(.mail, RuleFacts(clientIP: client, authUser: user, mailFrom: "a@EXAMPLE.com"))
        if let code {
            #expect(outcome.terminal == .reject(code: code, enhanced: EnhancedStatusCode(statusClass: 5, subject: 7, detail: 0), text: "Authentication required"))
        } else {
            #expect(outcome.terminal == nil)
        }
    }

    @Test func senderIsLogin() throws {
        let outcome = try Self.set().evaluate(.mail, RuleFacts(clientIP: "10.0.0.1", authUser: "bob", mailFrom: "alice@example.com"))
        #expect(outcome.terminal == .reject(code: 553, enhanced: EnhancedStatusCode(statusClass: 5, subject: 7, detail: 1), text: "bob may not send as alice@example.com"))
        #expect(try Self.set().evaluate(.mail, RuleFacts(clientIP: "10.0.0.1", authUser: "alice", mailFrom: "Alice@example.com")).terminal == nil)
    }

    @Test func recipientCap() throws {
        #expect(try Self.set().evaluate(.rcpt, RuleFacts(recipient: "x@example.com", rcptCount: 49)).terminal == nil)
        #expect(try Self.set().evaluate(.rcpt, RuleFacts(recipient: "x@example.com", rcptCount: 50)).terminal
            == .tempfail(code: 452, enhanced: EnhancedStatusCode(statusClass: 4, subject: 5, detail: 3), text: "Too many recipients"))
    }

    /// As written, "legacy-domain" comes after "corporate-senders-only", which refuses old.example.com
    /// first; the rewrite itself works when the domain is allowed.
    @Test func legacyDomain() throws {
        let outcome = try Self.set().evaluate(.mail, RuleFacts(clientIP: "10.0.0.1", mailFrom: "joe@old.example.com"))
        #expect(outcome.terminalVerdict?.rule == "corporate-senders-only")
        let alone = try #require(ruleSet(Self.senders.replacingOccurrences(of: "[\"example.com\", \"example.org\"]", with: "[\"example.com\", \"old.example.com\"]")))
        #expect(alone.evaluate(.mail, RuleFacts(clientIP: "10.0.0.1", mailFrom: "joe@old.example.com")).effects == [.setMailFrom("joe@example.com")])
    }

    static func message(recipients: [String], subject: String = "hello", attachments: [RuleAttachment] = [], size: Int = 1000) -> RuleFacts {
        RuleFacts(clientIP: "10.0.0.1", mailFrom: "a@example.com", recipients: recipients, rcptCount: recipients.count,
                  message: RuleMessageFacts(subject: subject, size: size, attachments: attachments))
    }

    @Test func archiveExternal() throws {
        #expect(try Self.set().evaluate(.message, Self.message(recipients: ["b@example.com", "c@partner.test"])).effects
            == [.bcc("archive@example.com"), .tag("external")])
        #expect(try Self.set().evaluate(.message, Self.message(recipients: ["b@example.com", "c@EXAMPLE.ORG"])).effects.isEmpty)
    }

    @Test(arguments: ["Re: CONFIDENTIAL plans", "confidential", "Confidential: q3"])
    func confidential(subject: String) throws {
        #expect(try Self.set().evaluate(.message, Self.message(recipients: ["b@example.com"], subject: subject)).effects
            == [.prefixSubject("[SECURE] "), .addHeader(name: "X-Policy", value: "confidential")])
    }

    @Test func notConfidential() throws {
        #expect(try Self.set().evaluate(.message, Self.message(recipients: ["b@example.com"], subject: "nonconfidentiality")).effects.isEmpty)
    }

    @Test(arguments: [("a.exe", true), ("b.SCR", true), ("c.js", true), ("d.vbs", true), ("e.pdf", false), ("f.exe.txt", false)])
    func noExecutables(filename: String, refused: Bool) throws {
        let outcome = try Self.set().evaluate(.message, Self.message(recipients: ["b@example.com"], attachments: [
            RuleAttachment(filename: "ok.txt", contentType: "text/plain", size: 10), RuleAttachment(filename: filename, contentType: "application/octet-stream", size: 10),
        ]))
        #expect((outcome.terminal == .reject(code: 554, enhanced: EnhancedStatusCode(statusClass: 5, subject: 7, detail: 1), text: "Executable attachments are not accepted")) == refused)
    }

    @Test func bigMail() throws {
        #expect(try Self.set().evaluate(.message, Self.message(recipients: ["b@example.com"], size: 25 << 20)).terminal == nil)
        #expect(try Self.set().evaluate(.message, Self.message(recipients: ["b@example.com"], size: (25 << 20) + 1)).terminal == .quarantine(reason: "oversize"))
    }
}
