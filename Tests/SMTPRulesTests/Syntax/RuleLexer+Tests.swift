import Testing
@testable import SMTPRules

struct RuleLexerTests {
    private func kinds(_ text: String) -> [RuleToken.Kind] {
        RuleLexer.tokenize(text).tokens.map(\.kind).dropLast()
    }

    @Test(arguments: [
        ("rule \"x\" on mail", [RuleToken.Kind.word("rule"), .string(RuleStringLiteral(parts: [.text("x")])), .word("on"), .word("mail")]),
        ("a == b != c <= d >= e < f > g = h", [.word("a"), .comparison(.equal), .word("b"), .comparison(.notEqual), .word("c"), .comparison(.lessOrEqual),
                                               .word("d"), .comparison(.greaterOrEqual), .word("e"), .comparison(.less), .word("f"), .comparison(.greater),
                                               .word("g"), .assign, .word("h")]),
        ("[10.0.0.0/8, 2001:db8::/32, ::1]", [.leftBracket, .word("10.0.0.0/8"), .comma, .word("2001:db8::/32"), .comma, .word("::1"), .rightBracket]),
        ("header(\"X-A\") # comment\n25MB", [.word("header"), .leftParen, .string(RuleStringLiteral(parts: [.text("X-A")])), .rightParen, .word("25MB")]),
        ("subject matches /a\\/b(c)/i", [.word("subject"), .word("matches"), .regex(pattern: "a\\/b(c)", flags: "i")]),
        ("reject 550 5.7.1 \"t\"", [.word("reject"), .word("550"), .word("5.7.1"), .string(RuleStringLiteral(parts: [.text("t")]))]),
    ])
    func tokensOf(text: String, expected: [RuleToken.Kind]) {
        #expect(kinds(text) == expected)
        #expect(RuleLexer.tokenize(text).errors.isEmpty)
    }

    @Test func positionsAreLineAndColumnInScalars() {
        let tokens = RuleLexer.tokenize("rule \"ü\" on\n  mail # x\n\tmode").tokens
        #expect(tokens.map(\.position) == [
            RulePosition(line: 1, column: 1), RulePosition(line: 1, column: 6), RulePosition(line: 1, column: 10),
            RulePosition(line: 2, column: 3), RulePosition(line: 3, column: 2), RulePosition(line: 3, column: 6),
        ])
    }

    @Test func stringEscapesAndInterpolation() {
        let tokens = RuleLexer.tokenize(#""a\"b\\c\$d ${mail_from.domain} ${1}\n""#).tokens
        #expect(tokens[0].kind == .string(RuleStringLiteral(parts: [
            .text("a\"b\\c$d "), .field("mail_from.domain", RulePosition(line: 1, column: 15)), .text(" "),
            .capture(1, RulePosition(line: 1, column: 35)), .text("\n"),
        ])))
    }

    @Test func regexPatternPositionIsAfterTheSlash() {
        let token = RuleLexer.tokenize("x matches  /ab/").tokens[2]
        #expect(token.position == RulePosition(line: 1, column: 12))
        #expect(token.innerPosition == RulePosition(line: 1, column: 13))
    }

    @Test(arguments: [
        ("\"abc", 1, 1, "unterminated string"),
        ("x matches /ab", 1, 11, "unterminated regex"),
        ("a / b", 1, 3, "a regex must follow 'matches'"),
        ("ok\n  'x'", 2, 3, "unexpected '''"),
        ("\"a\\qb\"", 1, 3, "unknown escape"),
        ("\"${mail_from\"", 1, 4, "interpolation '${' is not closed"),
        ("\u{01}", 1, 1, "unexpected control character 0x1"),
    ])
    func lexicalErrorsHavePositions(text: String, line: Int, column: Int, message: String) throws {
        let errors = RuleLexer.tokenize(text).errors
        let first = try #require(errors.first)
        #expect(first.0 == RulePosition(line: line, column: column))
        #expect(first.1.contains(message))
    }
}
