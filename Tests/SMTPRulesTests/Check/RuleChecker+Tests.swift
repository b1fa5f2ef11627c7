import Testing
@testable import SMTPRules

struct RuleCheckerTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var kind: String
        var source: String
        /// The 1-based line and a text on it where the error must point.
        var line: Int
        var at: String
        var message: String
        var hint: String? = nil
        var lists: [String: String] = [:]
        var file: String = "t.rules"

        var testDescription: String { kind }

        /// The column of `at` on `line` of `source` (or of the list file), 1-based in scalars.
        var column: Int {
            let text = file == "t.rules" ? source : (lists[file] ?? "")
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            guard line - 1 < lines.count, let range = lines[line - 1].range(of: at) else { return -1 }
            return lines[line - 1][..<range.lowerBound].unicodeScalars.count + 1
        }
    }

    static let cases: [Case] = [
        Case(kind: "syntax: missing 'on'", source: "rule \"a\" mail accept", line: 1, at: "mail", message: "expected 'on'"),
        Case(kind: "syntax: unterminated string", source: "rule \"a on mail accept", line: 1, at: "\"a", message: "unterminated string"),
        Case(kind: "syntax: '=' for '=='", source: "rule \"a\" on helo\n  when helo = \"x\" accept", line: 2, at: "=", message: "'=' is not a comparison", hint: "write '==' to compare"),
        Case(kind: "unknown stage", source: "rule \"a\" on mial accept", line: 1, at: "mial", message: "unknown stage 'mial'", hint: "did you mean 'mail'?"),
        Case(kind: "unknown field", source: "rule \"a\" on mail\n  when mail_frm.domain == \"x\"\n  accept", line: 2, at: "mail_frm", message: "unknown field 'mail_frm.domain'",
             hint: "did you mean 'mail_from.domain'?"),
        Case(kind: "unquoted string", source: "rule \"a\" on helo when helo == mail.example.com accept", line: 1, at: "mail.example.com", message: "unknown field",
             hint: "strings are written in double quotes: \"mail.example.com\""),
        Case(kind: "unknown action", source: "rule \"a\" on mail when tls\n  rejct 550 \"x\"", line: 2, at: "rejct", message: "unknown action 'rejct'", hint: "did you mean 'reject'?"),
        Case(kind: "unknown list", source: "list our_domains = [\"a\"]\nrule \"a\" on mail when mail_from.domain in our_domanis accept", line: 2, at: "our_domanis",
             message: "unknown list 'our_domanis'", hint: "did you mean 'our_domains'?"),
        Case(kind: "field not known at the stage", source: "rule \"a\" on rcpt when subject contains \"x\" accept", line: 1, at: "subject",
             message: "field 'subject' is not known at stage 'rcpt'", hint: "it is known from stage 'message' on; use 'on message' or later"),
        Case(kind: "field in interpolation not known at the stage", source: "rule \"a\" on mail tag \"${subject}\"", line: 1, at: "subject}", message: "not known at stage 'mail'"),
        Case(kind: "unknown field in interpolation", source: "rule \"a\" on mail reject 550 \"no ${mail_frm}\"", line: 1, at: "mail_frm", message: "unknown field 'mail_frm'"),
        Case(kind: "action not available at the stage", source: "rule \"a\" on rcpt when tls set mail_from \"a@b\"", line: 1, at: "set", message: "'set mail_from' is not available at stage 'rcpt'",
             hint: "it works on: mail"),
        Case(kind: "header action before message", source: "rule \"a\" on data add_header \"X-A\" \"b\"", line: 1, at: "add_header", message: "'add_header' is not available at stage 'data'"),
        Case(kind: "quarantine before message", source: "rule \"a\" on rcpt quarantine \"q\"", line: 1, at: "quarantine", message: "not available at stage 'rcpt'"),
        Case(kind: "bad regex", source: "rule \"a\" on message when subject matches /ab(c/ accept", line: 1, at: "/ accept", message: "bad regex: missing closing parenthesis"),
        Case(kind: "bad regex in the middle", source: "rule \"a\" on message when subject matches /a{2,1}b/ accept", line: 1, at: "}b/", message: "bad regex: numbers out of order"),
        Case(kind: "bad regex flag", source: "rule \"a\" on message when subject matches /x/q accept", line: 1, at: "q accept", message: "unknown regex flag 'q'"),
        Case(kind: "reject with 4xx", source: "rule \"a\" on mail reject 450 \"x\"", line: 1, at: "450", message: "'reject' needs a 5xx reply code, not 450"),
        Case(kind: "tempfail with 5xx", source: "rule \"a\" on mail tempfail 550 \"x\"", line: 1, at: "550", message: "'tempfail' needs a 4xx reply code, not 550"),
        Case(kind: "reply code out of range", source: "rule \"a\" on mail reject 599 \"x\"", line: 1, at: "599", message: "needs a 5xx reply code"),
        Case(kind: "enhanced class mismatch", source: "rule \"a\" on mail reject 550 4.7.1 \"x\"", line: 1, at: "4.7.1", message: "enhanced code 4.7.1 has class 4 but the reply code is 550",
             hint: "the class must match the reply code's first digit: 5.7.1"),
        Case(kind: "malformed enhanced code", source: "rule \"a\" on mail reject 550 5.7 \"x\"", line: 1, at: "5.7", message: "is not an enhanced status code"),
        Case(kind: "bad CIDR inline", source: "rule \"a\" on connect when client.ip in [10.0.0.0/33] reject 554 \"x\"", line: 1, at: "10.0.0.0/33",
             message: "'10.0.0.0/33' is not an IP address or CIDR prefix"),
        Case(kind: "bad CIDR in a list file", source: "list nets from \"nets.txt\"\nrule \"a\" on connect when client.ip in nets reject 554 \"x\"", line: 3, at: "bogus",
             message: "'bogus' is not an IP address", lists: ["nets.txt": "# office\n10.0.0.0/8\nbogus\n"], file: "nets.txt"),
        Case(kind: "missing list file", source: "list nets from \"missing.txt\"\nrule \"a\" on connect when client.ip in nets accept", line: 1, at: "\"missing.txt\"",
             message: "cannot read list file 'missing.txt'"),
        Case(kind: "duplicate rule name", source: "rule \"a\" on mail when tls accept\nrule \"a\" on helo accept", line: 2, at: "\"a\"", message: "rule \"a\" is already defined"),
        Case(kind: "duplicate list name", source: "list l = [\"a\"]\nlist l = [\"b\"]\nrule \"a\" on helo when helo in l accept", line: 2, at: "l =", message: "list 'l' is already defined"),
        Case(kind: "type: size with a string", source: "rule \"a\" on message when size > \"big\" accept", line: 1, at: "\"big\"", message: "type mismatch: 'size' is a number"),
        Case(kind: "type: string with a number", source: "rule \"a\" on helo when helo == 5 accept", line: 1, at: "5", message: "type mismatch: 'helo'"),
        Case(kind: "type: ordering on text", source: "rule \"a\" on helo when helo > 5 accept", line: 1, at: ">", message: "type mismatch"),
        Case(kind: "type: IP with a bad address", source: "rule \"a\" on connect when client.ip == \"10.0.0\" accept", line: 1, at: "\"10.0.0\"", message: "is not an IP address"),
        Case(kind: "type: == with a CIDR prefix", source: "rule \"a\" on connect when client.ip == 10.0.0.0/8 accept", line: 1, at: "10.0.0.0/8", message: "'==' compares one address"),
        Case(kind: "type: matches with a string", source: "rule \"a\" on message when subject matches \"x\" accept", line: 1, at: "\"x\"", message: "'matches' takes a regex"),
        Case(kind: "type: non-boolean field as condition", source: "rule \"a\" on mail when mail_from accept", line: 1, at: "mail_from", message: "is not a condition by itself"),
        Case(kind: "type: matches on a number", source: "rule \"a\" on message when size matches /1/ accept", line: 1, at: "matches", message: "type mismatch"),
        Case(kind: "type: many-valued field on the right", source: "rule \"a\" on message when subject == from accept", line: 1, at: "from accept", message: "has many values here"),
        Case(kind: "argument missing", source: "rule \"a\" on mail when mail_param == \"x\" accept", line: 1, at: "mail_param", message: "field 'mail_param' needs an argument"),
        Case(kind: "CR/LF in a static string", source: "rule \"a\" on mail when tls reject 550 \"a\\r\\nb\"", line: 1, at: "\"a\\r", message: "contains CR, LF or NUL"),
        Case(kind: "NUL in a header value", source: "rule \"a\" on message add_header \"X-A\" \"a\\0b\"", line: 1, at: "\"a\\0", message: "contains CR, LF or NUL"),
        Case(kind: "bad header name", source: "rule \"a\" on message add_header \"X Bad\" \"v\"", line: 1, at: "\"X Bad\"", message: "is not a header field name"),
        Case(kind: "address with brackets", source: "rule \"a\" on message bcc \"<a@b>\"", line: 1, at: "\"<a@b>\"", message: "without <>"),
        Case(kind: "two terminal actions", source: "rule \"a\" on mail accept reject 550 \"x\"", line: 1, at: "reject", message: "at most one terminal action"),
        Case(kind: "unreachable rule", source: "rule \"a\" on mail reject 550 \"no\"\nrule \"b\" on mail when tls accept", line: 2, at: "rule",
             message: "rule \"b\" is unreachable: rule \"a\" (t.rules:1) always ends stage 'mail' before it"),
        Case(kind: "rule without action", source: "rule \"a\" on mail when tls", line: 1, at: "rule", message: "has no action"),
        Case(kind: "failing example", source: "rule \"a\" on mail when mail_from.domain == \"x.test\" reject 550 \"no\"\nexample \"e\" session mail_from \"a@y.test\" rcpt \"b@c\" expect reject",
             line: 2, at: "example", message: "example \"e\" failed: expected 'reject'; got: delivered"),
    ]

    @Test(arguments: cases)
    func errorPointsAtFileLineColumn(_ testCase: Case) throws {
        let result = compile(testCase.source, lists: testCase.lists)
        #expect(result.ruleSet == nil)
        #expect(!result.isValid)
        let error = try #require(result.errors.first { $0.message.contains(testCase.message) }, "\(result.diagnostics.map(\.description))")
        #expect(error.file == testCase.file)
        #expect(error.line == testCase.line)
        #expect(error.column == testCase.column, "\(error)")
        if let hint = testCase.hint { #expect(error.hint == hint) }
    }

    @Test func descriptionReadsLikeACompilerMessage() throws {
        let result = compile("rule \"a\" on mail\n  when mail_frm.domain == \"x\"\n  accept", path: "rules/10-senders.rules")
        let error = try #require(result.errors.first)
        #expect(error.description == "rules/10-senders.rules:2:8: error: unknown field 'mail_frm.domain'\n  hint: did you mean 'mail_from.domain'?")
    }

    @Test func unusedListIsAWarningNotAnError() {
        let result = compile("list l = [\"a\"]\nrule \"a\" on mail when tls accept")
        #expect(result.isValid)
        #expect(result.warnings.map(\.message) == ["list 'l' is never used"])
    }

    @Test func monitorRuleAfterUnconditionalTerminalIsUnreachableToo() {
        let result = compile("rule \"a\" on mail accept\nrule \"b\" on mail mode monitor when tls reject 550 \"x\"")
        #expect(result.errors.count == 1)
    }

    @Test func unconditionalMonitorRuleDoesNotMakeLaterRulesUnreachable() {
        #expect(compile("rule \"a\" on mail mode monitor reject 550 \"x\"\nrule \"b\" on mail when tls accept").isValid)
    }

    @Test func diagnosticsAreInFileAndLineOrder() {
        let result = RuleSet.compile([
            RuleSource(path: "b.rules", text: "rule \"x\" on mail when tls\n rejct\nrule \"y\" on mial accept"),
            RuleSource(path: "a.rules", text: "rule \"z\" on mail when subjct == \"q\" accept"),
        ]) { _ in "" }
        #expect(result.errors.map { "\($0.file):\($0.line)" } == ["b.rules:2", "b.rules:3", "a.rules:1"])
    }

    @Test func everyErrorIsReportedNotJustTheFirst() {
        let result = compile("""
            rule "a" on rcpt when subject == "x" accept
            rule "b" on mail reject 450 "x"
            rule "c" on message when size > "big" tag "t"
            """)
        #expect(result.errors.map(\.line) == [1, 2, 3])
    }

    @Test func aFileThatIsNotRulesStopsAfterALimitOfErrors() {
        let result = compile(String(repeating: "{ } ; ' ` ~\n", count: 200))
        #expect(result.errors.count == RuleChecker.maxSyntaxErrorsPerFile + 1)
    }

    @Test func limitsAreEnforced() {
        var limits = RuleLimits()
        limits.maxRegexLength = 8
        limits.maxListEntries = 2
        limits.maxFileSize = 200
        let result = RuleSet.compile([
            RuleSource(path: "t.rules", text: "list l = [\"a\", \"b\", \"c\"]\nrule \"a\" on message when subject matches /abcdefghij/ and subject in l accept"),
            RuleSource(path: "big.rules", text: String(repeating: "# padding\n", count: 30)),
        ], limits: limits) { _ in "" }
        let messages = result.errors.map(\.message)
        #expect(messages.contains { $0.contains("longer than 8 octets") })
        #expect(messages.contains { $0.contains("more than 2") })
        #expect(messages.contains { $0.contains("larger than 200 octets") })
    }
}
