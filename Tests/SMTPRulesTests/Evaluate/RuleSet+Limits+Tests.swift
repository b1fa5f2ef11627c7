import Testing
@testable import SMTPRules

/// `limit` declarations, `over_limit` and `limit_count` (rules/README.md, "Limits"): what the
/// checker refuses, and where the budget's boundary lies.
struct RuleSetLimitsTests {
    static let limits = """
        limit "user-hourly"  counts messages   per auth.user over 1h  max 3
        limit "sender-daily" counts recipients per mail_from over 24h max 3
        limit "ip-sessions"  counts sessions   per client.ip over 10m max 3
        limit "user-bytes"   counts bytes      per auth.user over 1d  max 1KB

        """

    // MARK: - Checking

    static let errorCases: [RuleCheckerTests.Case] = [
        .init(kind: "unknown limit", source: limits + "rule \"t\" on mail when over_limit(\"user-hourli\") tempfail 451 \"x\"", line: 5, at: "over_limit",
              message: "unknown limit 'user-hourli'", hint: "did you mean 'user-hourly'?"),
        .init(kind: "unknown limit in an interpolation", source: limits + "rule \"t\" on mail tag \"${limit_count(nope)}\"", line: 5, at: "nope",
              message: "unknown limit 'nope'"),
        .init(kind: "unclosed limit_count interpolation", source: limits + "rule \"t\" on mail tag \"${limit_count(user-hourly}\"", line: 5, at: "limit_count",
              message: "'${limit_count(' is not closed"),
        .init(kind: "per a many-valued field", source: "limit \"x\" counts messages per rcpt over 1h max 5\nrule \"t\" on mail when over_limit(\"x\") reject 550 \"x\"",
              line: 1, at: "rcpt", message: "'rcpt' has many values when this limit counts (at stage 'data')"),
        .init(kind: "per a field not known at counting time", source: "limit \"x\" counts sessions per mail_from over 1h max 5", line: 1, at: "mail_from",
              message: "'mail_from' is not known when this limit counts (at stage 'connect')"),
        .init(kind: "per a header field", source: "limit \"x\" counts messages per subject over 1h max 5", line: 1, at: "subject",
              message: "'subject' is not known when this limit counts (at stage 'data')"),
        .init(kind: "per an unknown field", source: "limit \"x\" counts messages per auth.usr over 1h max 5", line: 1, at: "auth.usr",
              message: "unknown field 'auth.usr'", hint: "did you mean 'auth.user'?"),
        .init(kind: "unknown unit", source: "limit \"x\" counts mesages per auth.user over 1h max 5", line: 1, at: "mesages",
              message: "a limit counts messages, recipients, sessions, bytes, not 'mesages'", hint: "did you mean 'messages'?"),
        .init(kind: "bad window unit", source: "limit \"x\" counts messages per auth.user over 1w max 5", line: 1, at: "1w", message: "'1w' is not a window"),
        .init(kind: "zero window", source: "limit \"x\" counts messages per auth.user over 0s max 5", line: 1, at: "0s", message: "'0s' is not a window"),
        .init(kind: "window too long", source: "limit \"x\" counts messages per auth.user over 366d max 5", line: 1, at: "366d", message: "'366d' is not a window"),
        .init(kind: "zero budget", source: "limit \"x\" counts messages per auth.user over 1h max 0", line: 1, at: "0", message: "'0' is not a budget",
              hint: "a budget of 0 lets nothing through: write a rule that refuses instead"),
        .init(kind: "budget not a number", source: "limit \"x\" counts messages per auth.user over 1h max ten", line: 1, at: "ten", message: "'ten' is not a budget"),
        .init(kind: "size budget on messages", source: "limit \"x\" counts messages per auth.user over 1h max 5MB", line: 1, at: "5MB", message: "is a size"),
        .init(kind: "duplicate limit", source: "limit \"x\" counts messages per auth.user over 1h max 5\nlimit \"x\" counts sessions per client.ip over 1h max 5",
              line: 2, at: "\"x\"", message: "limit 'x' is already defined"),
        .init(kind: "bad limit name", source: "limit \"a b\" counts messages per auth.user over 1h max 5", line: 1, at: "\"a b\"", message: "'a b' is not a limit name"),
        .init(kind: "limit read before its key is known", source: limits + "rule \"t\" on connect when over_limit(\"user-hourly\") reject 554 \"x\"", line: 5,
              at: "over_limit", message: "limit 'user-hourly' is kept per auth.user, which is not known at stage 'connect'"),
        .init(kind: "missing clause", source: "limit \"x\" counts messages auth.user over 1h max 5", line: 1, at: "auth.user", message: "expected 'per' and a field in the limit"),
        .init(kind: "limit_count compared with a string", source: limits + "rule \"t\" on mail when limit_count(\"user-hourly\") > \"2\" accept", line: 5, at: "\"2\"",
              message: "type mismatch: 'limit_count' is a number"),
    ]

    @Test(arguments: errorCases)
    func limitMistakesPointAtFileLineColumn(_ testCase: RuleCheckerTests.Case) throws {
        let result = compile(testCase.source)
        #expect(result.ruleSet == nil)
        let error = try #require(result.errors.first { $0.message.contains(testCase.message) }, "\(result.diagnostics.map(\.description))")
        #expect(error.line == testCase.line)
        #expect(error.column == testCase.column, "\(error)")
        if let hint = testCase.hint { #expect(error.hint == hint) }
    }

    @Test func aLimitNoRuleReadsIsAWarning() throws {
        let result = compile("limit \"x\" counts messages per auth.user over 1h max 5\nrule \"a\" on mail when tls accept")
        #expect(result.isValid)
        let warning = try #require(result.warnings.first)
        #expect(warning.message == "limit 'x' is never read by a rule")
        #expect((warning.line, warning.column) == (1, 1))
    }

    @Test func declarationsCompile() throws {
        let set = try #require(ruleSet(Self.limits + """
            rule "a" on mail when over_limit("user-hourly") or over_limit("sender-daily") or over_limit("ip-sessions") or over_limit("user-bytes")
              tempfail 451 4.7.1 "over"
            """))
        #expect(set.limits.map(\.name) == ["user-hourly", "sender-daily", "ip-sessions", "user-bytes"])
        #expect(set.limits.map(\.unit) == [.messages, .recipients, .sessions, .bytes])
        #expect(set.limits.map(\.window.seconds) == [3600, 86_400, 600, 86_400])
        #expect(set.limits.map(\.max) == [3, 3, 3, 1024])
        #expect(set.limits(readAt: .mail).count == 4)
        #expect(set.limits(readAt: .rcpt).isEmpty)
    }

    // MARK: - Boundaries

    func evaluate(_ rule: String, at stage: RuleStage, count: Int?, limit: String, edit: (inout RuleFacts) -> Void = { _ in }) throws -> RuleOutcome {
        let set = try #require(ruleSet(Self.limits + rule))
        var facts = sampleFacts(at: stage)
        if let count { facts.limitCounts[limit] = count }
        edit(&facts)
        return set.evaluate(stage, facts)
    }

    /// A budget of N lets exactly N through: replays attempts, counting only what was let through,
    /// as the proxy counts only what the upstream accepted.
    @Test(arguments: [RuleStage.mail, .rcpt, .data])
    func aBudgetOfNLetsExactlyNMessagesThrough(_ stage: RuleStage) throws {
        let set = try #require(ruleSet(Self.limits + "rule \"t\" on \(stage.rawValue) when over_limit(\"user-hourly\") tempfail 451 4.7.1 \"slow down\""))
        var counted = 0
        var refused = 0
        for _ in 0..<6 {
            var facts = sampleFacts(at: stage)
            facts.limitCounts["user-hourly"] = counted
            if set.evaluate(stage, facts).terminal == nil { counted += 1 } else { refused += 1 }
        }
        #expect(counted == 3)
        #expect(refused == 3)
    }

    @Test func recipientsAtRcptCountThisRecipient() throws {
        let rule = "rule \"t\" on rcpt when over_limit(\"sender-daily\") tempfail 452 4.5.3 \"too many\""
        #expect(try evaluate(rule, at: .rcpt, count: 2, limit: "sender-daily").terminal == nil)
        #expect(try evaluate(rule, at: .rcpt, count: 3, limit: "sender-daily").terminal != nil)
    }

    @Test func recipientsAtDataAreCountedAlready() throws {
        let rule = "rule \"t\" on data when over_limit(\"sender-daily\") tempfail 452 4.5.3 \"too many\""
        #expect(try evaluate(rule, at: .data, count: 3, limit: "sender-daily").terminal == nil)
        #expect(try evaluate(rule, at: .data, count: 4, limit: "sender-daily").terminal != nil)
    }

    @Test func sessionsCountThisSessionAtConnectOnly() throws {
        let connect = "rule \"t\" on connect when over_limit(\"ip-sessions\") tempfail 421 4.7.0 \"busy\""
        #expect(try evaluate(connect, at: .connect, count: 2, limit: "ip-sessions").terminal == nil)
        #expect(try evaluate(connect, at: .connect, count: 3, limit: "ip-sessions").terminal != nil)
        let mail = "rule \"t\" on mail when over_limit(\"ip-sessions\") tempfail 451 4.7.0 \"busy\""
        #expect(try evaluate(mail, at: .mail, count: 3, limit: "ip-sessions").terminal == nil)
    }

    @Test func bytesCountTheDeclaredSizeThenTheMessage() throws {
        let mail = "rule \"t\" on mail when over_limit(\"user-bytes\") tempfail 452 4.3.1 \"full\""
        #expect(try evaluate(mail, at: .mail, count: 924, limit: "user-bytes") { $0.mailParameters["SIZE"] = "100" }.terminal == nil)
        #expect(try evaluate(mail, at: .mail, count: 925, limit: "user-bytes") { $0.mailParameters["SIZE"] = "100" }.terminal != nil)
        // Without SIZE a message has at least one octet.
        #expect(try evaluate(mail, at: .mail, count: 1023, limit: "user-bytes") { $0.mailParameters["SIZE"] = nil }.terminal == nil)
        #expect(try evaluate(mail, at: .mail, count: 1024, limit: "user-bytes") { $0.mailParameters["SIZE"] = nil }.terminal != nil)
        let message = "rule \"t\" on message when over_limit(\"user-bytes\") reject 552 5.3.4 \"full\""
        #expect(try evaluate(message, at: .message, count: 0, limit: "user-bytes") { $0.message?.size = 1024 }.terminal == nil)
        #expect(try evaluate(message, at: .message, count: 1, limit: "user-bytes") { $0.message?.size = 1024 }.terminal != nil)
    }

    @Test func aSessionWithoutAKeyIsNeverOver() throws {
        let rule = "rule \"t\" on mail when over_limit(\"user-hourly\") or limit_count(\"user-hourly\") != none tempfail 451 \"x\""
        #expect(try evaluate(rule, at: .mail, count: nil, limit: "user-hourly").terminal == nil)
    }

    @Test func limitCountComparesAndInterpolates() throws {
        let rule = """
            rule "t" on mail when limit_count("user-hourly") >= 2
              tag "sent ${limit_count(user-hourly)} of 3"
            """
        let outcome = try evaluate(rule, at: .mail, count: 2, limit: "user-hourly")
        #expect(outcome.effects == [.tag("sent 2 of 3")])
        #expect(try evaluate(rule, at: .mail, count: 1, limit: "user-hourly").effects.isEmpty)
    }

    @Test func theVerdictNamesTheLimitTheKeyAndTheCount() throws {
        let rule = "rule \"throttle-user\" on mail when over_limit(\"user-hourly\")\n  mode monitor\n  tempfail 451 4.7.1 \"${auth.user} has sent too much mail\""
        let outcome = try evaluate(rule, at: .mail, count: 3, limit: "user-hourly")
        #expect(outcome.terminal == nil)
        let verdict = try #require(outcome.verdicts.first)
        #expect(!verdict.enforced)
        #expect(verdict.detail == "451 4.7.1 alice has sent too much mail; auth.user alice reached user-hourly: 3 messages in 1h")
        let below = try evaluate("rule \"t\" on mail when limit_count(\"user-hourly\") > 0 tag \"busy\"", at: .mail, count: 1, limit: "user-hourly")
        #expect(below.verdicts.first?.detail == "busy; auth.user alice at user-hourly: 1 of 3 messages in 1h")
    }

    @Test func addressKeysAreCaseInsensitive() throws {
        let set = try #require(ruleSet(Self.limits + "rule \"t\" on rcpt when over_limit(\"sender-daily\") tempfail 452 \"x\""))
        let limit = try #require(set.limits.first { $0.name == "sender-daily" })
        var facts = sampleFacts(at: .rcpt)
        facts.mailFrom = "Alice@Example.COM"
        #expect(limit.key(in: facts) == "alice@example.com")
        facts.mailFrom = nil
        #expect(limit.key(in: facts) == nil)
    }

    @Test func examplesCanSetACount() {
        let result = compile(Self.limits + """
            rule "throttle" on mail when over_limit("user-hourly") tempfail 451 4.7.1 "later"
            example "at the budget"
              session auth "alice" mail_from "a@example.com" rcpt "b@example.org" count "user-hourly" 3
              expect tempfail 451 at mail by "throttle"
            example "below the budget"
              session auth "alice" mail_from "a@example.com" rcpt "b@example.org" count "user-hourly" 2
              expect delivered
            """)
        #expect(result.isValid, "\(result.diagnostics) \(result.examples.map(\.detail))")
    }

    @Test func theCounterIdentityIgnoresTheBudget() throws {
        let a = try #require(ruleSet("limit \"x\" counts messages per auth.user over 1h max 5\nrule \"t\" on mail when over_limit(\"x\") accept")?.limits.first)
        let b = try #require(ruleSet("limit \"x\" counts messages per auth.user over 1h max 9\nrule \"t\" on mail when over_limit(\"x\") accept")?.limits.first)
        let c = try #require(ruleSet("limit \"x\" counts messages per auth.user over 2h max 5\nrule \"t\" on mail when over_limit(\"x\") accept")?.limits.first)
        #expect(a.counterID == b.counterID)
        #expect(a.counterID != c.counterID)
    }
}
