import Testing
@testable import SMTPRules

struct RuleRegexTests {
    @Test func capturesAreReturned() throws {
        let regex = try RuleRegex(pattern: "(a)(x)?(b+)", flags: "", caseless: false, limits: .default)
        guard case .matched(let groups) = regex.firstMatch(in: "zzabbb") else {
            Issue.record("expected a match")
            return
        }
        #expect(groups == ["abbb", "a", nil, "bbb"])
    }

    @Test(arguments: [
        ("confidential", "i", "CONFIDENTIAL", true), ("^b", "m", "a\nb", true), ("^b", "", "a\nb", false), ("a.b", "s", "a\nb", true),
        ("a b", "x", "ab", true), ("\\w+$", "u", "Grüße", true), ("^\\w+$", "", "Grüße", false), ("é", "i", "É", true),
    ])
    func flags(pattern: String, flags: String, subject: String, matches: Bool) throws {
        let regex = try RuleRegex(pattern: pattern, flags: flags, caseless: false, limits: .default)
        if case .matched = regex.firstMatch(in: subject) { #expect(matches) } else { #expect(!matches) }
    }

    @Test func catastrophicBacktrackingHitsTheLimitAndCountsAsNoMatch() throws {
        let regex = try RuleRegex(pattern: "^(a+)+$", flags: "", caseless: false, limits: .default)
        let subject = String(repeating: "a", count: 5000) + "!"
        guard case .limitExceeded = regex.firstMatch(in: subject) else {
            Issue.record("expected the match limit to stop the match")
            return
        }
        let set = try #require(ruleSet("rule \"r\" on message when body matches /^(a+)+$/ tag \"hit\""))
        var facts = sampleFacts(at: .message)
        facts.message?.body = subject
        #expect(set.evaluate(.message, facts).effects.isEmpty)
    }

    @Test func deepRecursionHitsTheDepthLimitInTheInterpreterToo() throws {
        var limits = RuleLimits()
        limits.regexDepthLimit = 50
        let regex = try RuleRegex(pattern: "^(?:(a)|b)*$", flags: "", caseless: false, limits: limits)
        // Whatever the engine, a limit hit must come back as a value, not a crash or a hang.
        switch regex.firstMatch(in: String(repeating: "ab", count: 50_000) + "c") {
        case .noMatch, .limitExceeded: break
        case .matched: Issue.record("must not match")
        }
    }

    @Test func compileErrorsCarryTheOffset() {
        do {
            _ = try RuleRegex(pattern: "abc)", flags: "", caseless: false, limits: .default)
            Issue.record("expected an error")
        } catch {
            #expect(error.offset == 3)
            #expect(error.message.contains("unmatched closing parenthesis"))
        }
    }

    @Test func backslashCIsRefused() {
        #expect(throws: RuleRegex.CompileError.self) { try RuleRegex(pattern: "a\\Cb", flags: "", caseless: false, limits: .default) }
    }
}
