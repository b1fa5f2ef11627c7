import Testing
@testable import SMTPRules

struct RuleParserTests {
    private func parse(_ text: String) -> (RuleFileSyntax, [RuleParser.Failure]) {
        RuleParser.parse(text, limits: .default)
    }

    /// The condition of the first rule, printed with explicit parentheses.
    private func shape(_ condition: String) -> String? {
        let (file, failures) = parse("rule \"r\" on message when \(condition) accept")
        guard failures.isEmpty, let expression = file.rules.first?.conditions.first else { return nil }
        return Self.print(expression)
    }

    static func print(_ expression: ExpressionSyntax) -> String {
        switch expression {
        case .and(let terms): "(" + terms.map(print).joined(separator: " and ") + ")"
        case .or(let terms): "(" + terms.map(print).joined(separator: " or ") + ")"
        case .not(let a, _): "not \(print(a))"
        case .truth(_, let field): field.name
        case .comparison(let quantifier, let field, let negated, let op, let operand):
            [quantifier?.rawValue, field.argument.map { "\(field.name)(\($0))" } ?? field.name, negated ? "not" : nil, op.value.rawValue, describe(operand)]
                .compactMap { $0 }.joined(separator: " ")
        }
    }

    static func describe(_ operand: OperandSyntax) -> String {
        switch operand {
        case .field(let field): "field:\(field.name)"
        case .string(let literal, _): "\"\(literal.text)\""
        case .word(let word, _): "word:\(word)"
        case .none: "none"
        case .boolean(let flag, _): "\(flag)"
        case .listName(let name, _): "list:\(name)"
        case .inlineList(let entries, _): "[\(entries.map(\.text).joined(separator: ","))]"
        case .regex(let pattern, let flags, _, _): "/\(pattern)/\(flags)"
        }
    }

    @Test(arguments: [
        ("a == 1 or b == 2 and c == 3", "(a == word:1 or (b == word:2 and c == word:3))"),
        ("not a in l and b", "(not a in list:l and b)"),
        ("not (a == 1 or tls)", "not (a == word:1 or tls)"),
        ("any rcpt.domain not in our_domains", "any rcpt.domain not in list:our_domains"),
        ("all attachment.filename not matches /x/i", "all attachment.filename not matches /x/i"),
        ("header(\"X-A\") != none", "header(X-A) != none"),
        ("mail_from.local != auth.user", "mail_from.local != field:auth.user"),
        ("size > 25MB", "size > word:25MB"),
        ("client.ip in [10.0.0.0/8, \"192.168.0.0/16\"]", "client.ip in [10.0.0.0/8,192.168.0.0/16]"),
        ("tls == false", "tls == false"),
        ("subject starts_with \"[x]\" or body ends_with \"y\"", "(subject starts_with \"[x]\" or body ends_with \"y\")"),
        ("((tls))", "tls"),
    ])
    func expressionShapes(condition: String, expected: String) {
        #expect(shape(condition) == expected)
    }

    @Test func ruleClausesInAnyOrder() throws {
        let (file, failures) = parse("""
            rule "r" on message
              tag "a"
              when size > 1MB
              mode monitor
              add_header "X-A" "b"
              when tls
            """)
        #expect(failures.isEmpty)
        let rule = try #require(file.rules.first)
        #expect(rule.monitor)
        #expect(rule.conditions.count == 2)
        #expect(rule.actions.map(\.name) == ["tag", "add_header"])
    }

    @Test func everyActionParses() throws {
        let (file, failures) = parse("""
            rule "r" on message
              accept reject 550 5.7.1 "a" tempfail 451 "b" disconnect disconnect 421 4.7.0 "c" discard quarantine "q"
              set mail_from "a@b" set rcpt "c@d" bcc "e@f" redirect "g@h" add_header "X-A" "1" set_header "X-B" "2"
              remove_header "X-C" prefix_subject "[p] " tag "t" log "l"
            """)
        #expect(failures.isEmpty)
        #expect(try #require(file.rules.first).actions.map(\.name) == [
            "accept", "reject", "tempfail", "disconnect", "disconnect", "discard", "quarantine", "set_mail_from", "set_rcpt", "bcc",
            "redirect", "add_header", "set_header", "remove_header", "prefix_subject", "tag", "log",
        ])
    }

    @Test func listsInlineAndFromFile() {
        let (file, failures) = parse("list a = [\"x\", 10.0.0.0/8, 25,]\nlist b from \"b.txt\"")
        #expect(failures.isEmpty)
        #expect(file.lists.map(\.name.value) == ["a", "b"])
        if case .inline(let entries) = file.lists[0].body {
            #expect(entries.map(\.text) == ["x", "10.0.0.0/8", "25"])
        } else {
            Issue.record("expected an inline list")
        }
    }

    @Test func exampleBlock() throws {
        let (file, failures) = parse("""
            example "e"
              session client 203.0.113.9 port 5000 helo "x" tls "TLSv1.3" auth "u" "LOGIN" mail_from "a@b" mail_param "SIZE" "10"
                      rcpt "c@d" rcpt "e@f" subject "s" from "g@h" header "X-A" "v" message_id "<m>" body "text"
                      attachment "a.exe" "application/x-msdownload" 10KB size 2MB
              expect reject 550 at mail by "r"
              expect no tag "x" matched "r" "reject" add_header "X-A" "v" set mail_from "z@y"
            """)
        #expect(failures.isEmpty, "\(failures.map(\.message))")
        let example = try #require(file.examples.first)
        #expect(example.session.count == 15)
        #expect(example.expectations.count == 5)
        #expect(example.expectations[1].negated)
    }

    @Test func recoversAndReportsEveryBrokenRule() {
        let (file, failures) = parse("""
            rule "a" on mial accept
            rule "b" on mail when accept
            rule "c" on mail when tls accept
            rule "d" on mail
            """)
        #expect(failures.map(\.position.line) == [1, 2, 4])
        #expect(file.rules.map(\.name.value) == ["c"])
    }

    @Test func longChainsStayFlat() throws {
        let chain = (0..<20_000).map { _ in "tls" }.joined(separator: " and ")
        let (file, failures) = parse("rule \"r\" on mail when \(chain) accept")
        #expect(failures.isEmpty)
        guard case .and(let terms) = try #require(file.rules.first?.conditions.first) else {
            Issue.record("expected a flat 'and'")
            return
        }
        #expect(terms.count == 20_000)
    }

    @Test func aFileOfGarbageDoesNotRecurse() {
        let (_, failures) = parse(String(repeating: "}", count: 200_000))
        #expect(failures.count == 200_000)
    }

    @Test func nestingIsBounded() {
        let deep = String(repeating: "(", count: 100) + "tls" + String(repeating: ")", count: 100)
        let (_, failures) = parse("rule \"r\" on mail when \(deep) accept")
        #expect(failures.contains { $0.message.contains("nests deeper than") })
    }
}
