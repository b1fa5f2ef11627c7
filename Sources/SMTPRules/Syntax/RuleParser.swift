/// Recursive-descent parser for the rule language (rules/README.md). One function per grammar rule, the
/// grammar in a comment above it. Errors carry positions; after an error the parser skips to the next
/// `rule`, `list` or `example` and goes on, so one run reports every independent mistake.
struct RuleParser {
    struct Failure: Error {
        var position: RulePosition
        var message: String
        var hint: String?
    }

    static let actionWords: [String] = [
        "accept", "reject", "tempfail", "disconnect", "discard", "quarantine", "set", "bcc", "redirect",
        "add_header", "set_header", "remove_header", "prefix_subject", "tag", "log",
    ]
    static let topLevelWords: Set<String> = ["rule", "list", "limit", "example"]

    private let tokens: [RuleToken]
    private var index = 0
    private let maxDepth: Int
    private(set) var failures: [Failure] = []

    init(tokens: [RuleToken], maxDepth: Int) {
        self.tokens = tokens
        self.maxDepth = maxDepth
    }

    /// Parses a whole file.
    static func parse(_ text: String, limits: RuleLimits) -> (RuleFileSyntax, [Failure]) {
        let (tokens, lexErrors) = RuleLexer.tokenize(text)
        var parser = RuleParser(tokens: tokens, maxDepth: limits.maxExpressionDepth)
        let file = parser.parseFile()
        let failures = lexErrors.map { Failure(position: $0.0, message: $0.1, hint: $0.2) } + parser.failures
        return (file, failures)
    }

    // MARK: - Tokens

    private var current: RuleToken { tokens[index] }

    private func peek(_ offset: Int = 1) -> RuleToken {
        tokens[min(index + offset, tokens.count - 1)]
    }

    private mutating func advance() -> RuleToken {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    private func isWord(_ word: String) -> Bool { current.word == word }

    private mutating func consumeWord(_ word: String) -> Bool {
        guard isWord(word) else { return false }
        _ = advance()
        return true
    }

    private func fail(_ message: String, hint: String? = nil, at position: RulePosition? = nil) -> Failure {
        Failure(position: position ?? current.position, message: message, hint: hint)
    }

    private mutating func expectString(_ what: String) throws(Failure) -> Located<RuleStringLiteral> {
        guard case .string(let literal) = current.kind else {
            throw fail("expected \(what) in double quotes, found \(current.spelling)")
        }
        let position = advance().position
        return Located(value: literal, position: position)
    }

    private mutating func expectPlainString(_ what: String) throws(Failure) -> Located<String> {
        let literal = try expectString(what)
        if literal.value.isInterpolated {
            throw fail("\(what) cannot use ${...} interpolation", hint: "write a literal \\$ if you mean a dollar sign", at: literal.position)
        }
        return Located(value: literal.value.text, position: literal.position)
    }

    private mutating func skipToTopLevel() {
        while current.kind != .end {
            if let word = current.word, Self.topLevelWords.contains(word) { return }
            _ = advance()
        }
    }

    // MARK: - File

    /// `file = *(list / rule / example)`
    mutating func parseFile() -> RuleFileSyntax {
        var file = RuleFileSyntax()
        while current.kind != .end {
            do throws(Failure) {
                switch current.word {
                case "list": file.lists.append(try parseList())
                case "limit": file.limits.append(try parseLimit())
                case "rule": file.rules.append(try parseRule())
                case "example": file.examples.append(try parseExample())
                default:
                    let hint = current.word.flatMap { Suggest.closest(to: $0, in: ["rule", "list", "limit", "example"]) }.map { "did you mean '\($0)'?" }
                        ?? "a file holds 'list', 'limit', 'rule' and 'example' blocks"
                    throw fail("expected 'rule', 'list', 'limit' or 'example', found \(current.spelling)", hint: hint)
                }
            } catch {
                failures.append(error)
                if current.word.map(Self.topLevelWords.contains) == true, error.position == current.position {
                    _ = advance()
                }
                skipToTopLevel()
            }
        }
        return file
    }

    /// `list = "list" name ("=" "[" [entry *("," entry) [","]] "]" / "from" string)`
    private mutating func parseList() throws(Failure) -> ListSyntax {
        _ = advance()
        guard let name = current.word, RuleLiteral.isIdentifier(name) else {
            throw fail("expected a list name after 'list', found \(current.spelling)")
        }
        let namePosition = advance().position
        if consumeWord("from") {
            let path = try expectPlainString("a list file name")
            return ListSyntax(name: Located(value: name, position: namePosition), body: .file(path))
        }
        guard current.kind == .assign else {
            throw fail("expected '=' or 'from' after the list name, found \(current.spelling)", hint: "list name = [\"a\", \"b\"] or list name from \"file.txt\"")
        }
        _ = advance()
        let (entries, _) = try parseInlineList()
        return ListSyntax(name: Located(value: name, position: namePosition), body: .inline(entries))
    }

    /// `limit = "limit" string "counts" word "per" field "over" word "max" word`
    private mutating func parseLimit() throws(Failure) -> LimitSyntax {
        let start = advance().position
        let name = try expectPlainString("a limit name")
        let example = "limit \"user-hourly\" counts messages per auth.user over 1h max 200"
        func clause(_ keyword: String, _ what: String) throws(Failure) -> Located<String> {
            guard consumeWord(keyword) else {
                throw fail("expected '\(keyword)' and \(what) in the limit, found \(current.spelling)", hint: example)
            }
            guard let word = current.word else {
                throw fail("expected \(what) after '\(keyword)', found \(current.spelling)", hint: example)
            }
            let position = advance().position
            return Located(value: word, position: position)
        }
        let counts = try clause("counts", "what it counts (messages, recipients, sessions or bytes)")
        guard consumeWord("per") else {
            throw fail("expected 'per' and a field in the limit, found \(current.spelling)", hint: example)
        }
        let per = try parseField()
        let window = try clause("over", "a window such as 10m, 1h or 7d")
        let max = try clause("max", "the budget (a number)")
        return LimitSyntax(name: name, counts: counts, per: per, window: window, max: max, position: start)
    }

    private mutating func parseInlineList() throws(Failure) -> ([ListEntrySyntax], RulePosition) {
        guard current.kind == .leftBracket else {
            throw fail("expected '[' to start a list, found \(current.spelling)")
        }
        let open = advance().position
        var entries: [ListEntrySyntax] = []
        while current.kind != .rightBracket {
            switch current.kind {
            case .string(let literal):
                if literal.isInterpolated {
                    throw fail("list entries cannot use ${...} interpolation")
                }
                entries.append(ListEntrySyntax(text: literal.text, isQuoted: true, position: current.position))
            case .word(let word):
                entries.append(ListEntrySyntax(text: word, isQuoted: false, position: current.position))
            default:
                throw fail("expected a list entry or ']', found \(current.spelling)", hint: "entries are strings, numbers, sizes, IP addresses or CIDR prefixes, separated by commas")
            }
            _ = advance()
            if current.kind == .comma {
                _ = advance()
            } else if current.kind != .rightBracket {
                throw fail("expected ',' or ']' in the list, found \(current.spelling)")
            }
        }
        _ = advance()
        return (entries, open)
    }

    // MARK: - Rules

    /// `rule = "rule" string "on" stage *(when / mode / action)`
    private mutating func parseRule() throws(Failure) -> RuleSyntax {
        let start = advance().position
        let name = try expectPlainString("a rule name")
        guard consumeWord("on") else {
            throw fail("expected 'on' and a stage after the rule name, found \(current.spelling)", hint: "rule \"name\" on mail")
        }
        guard let stageWord = current.word else {
            throw fail("expected a stage after 'on', found \(current.spelling)")
        }
        guard let stage = RuleStage(rawValue: stageWord) else {
            let suggestion = Suggest.closest(to: stageWord, in: RuleStage.allCases.map(\.rawValue))
            throw fail("unknown stage '\(stageWord)'",
                       hint: suggestion.map { "did you mean '\($0)'?" } ?? "stages: \(RuleStage.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let stagePosition = advance().position
        var rule = RuleSyntax(name: name, stage: Located(value: stage, position: stagePosition), position: start)
        while let word = current.word, !Self.topLevelWords.contains(word) {
            switch word {
            case "when":
                _ = advance()
                rule.conditions.append(try parseOr(depth: 1))
            case "mode":
                _ = advance()
                if consumeWord("monitor") {
                    rule.monitor = true
                } else if consumeWord("enforce") {
                    rule.monitor = false
                } else {
                    throw fail("expected 'monitor' or 'enforce' after 'mode', found \(current.spelling)")
                }
            default:
                rule.actions.append(try parseAction())
            }
        }
        if current.kind != .end, current.word == nil {
            throw fail("expected 'when', 'mode' or an action, found \(current.spelling)")
        }
        if rule.actions.isEmpty {
            throw fail("rule \"\(name.value)\" has no action", hint: "add an action such as reject, tag or log", at: start)
        }
        return rule
    }

    /// `action = "accept" / ("reject" / "tempfail") code [enhanced] string / "disconnect" [code [enhanced] [string]]
    ///         / "discard" / "quarantine" string / "set" ("mail_from" / "rcpt") string / ("bcc" / "redirect"
    ///         / "remove_header" / "prefix_subject" / "tag" / "log") string / ("add_header" / "set_header") string string`
    private mutating func parseAction() throws(Failure) -> ActionSyntax {
        let token = current
        guard let word = token.word else {
            throw fail("expected an action, found \(token.spelling)")
        }
        let position = token.position
        switch word {
        case "accept":
            _ = advance()
            return ActionSyntax(kind: .accept, position: position)
        case "discard":
            _ = advance()
            return ActionSyntax(kind: .discard, position: position)
        case "reject", "tempfail":
            _ = advance()
            guard let code = parseCode() else {
                throw fail("expected a reply code after '\(word)', found \(current.spelling)", hint: word == "reject" ? "reject 550 5.7.1 \"text\"" : "tempfail 451 4.7.1 \"text\"")
            }
            let enhanced = parseEnhanced()
            let text = try expectString("the reply text")
            return ActionSyntax(kind: word == "reject" ? .reject(code: code, enhanced: enhanced, text: text) : .tempfail(code: code, enhanced: enhanced, text: text), position: position)
        case "disconnect":
            _ = advance()
            let code = parseCode()
            let enhanced = code == nil ? nil : parseEnhanced()
            var text: Located<RuleStringLiteral>?
            if case .string = current.kind { text = try expectString("the reply text") }
            return ActionSyntax(kind: .disconnect(code: code, enhanced: enhanced, text: text), position: position)
        case "quarantine":
            _ = advance()
            return ActionSyntax(kind: .quarantine(try expectString("a quarantine reason")), position: position)
        case "set":
            _ = advance()
            if consumeWord("mail_from") { return ActionSyntax(kind: .setMailFrom(try expectString("the new sender")), position: position) }
            if consumeWord("rcpt") { return ActionSyntax(kind: .setRcpt(try expectString("the new recipient")), position: position) }
            throw fail("expected 'mail_from' or 'rcpt' after 'set', found \(current.spelling)", hint: "set mail_from \"...\" or set rcpt \"...\"")
        case "bcc", "redirect", "remove_header", "prefix_subject", "tag", "log":
            _ = advance()
            let argument = try expectString(word == "remove_header" ? "a header name" : "an argument")
            let kind: ActionSyntax.Kind
            switch word {
            case "bcc": kind = .bcc(argument)
            case "redirect": kind = .redirect(argument)
            case "remove_header": kind = .removeHeader(name: argument)
            case "prefix_subject": kind = .prefixSubject(argument)
            case "tag": kind = .tag(argument)
            default: kind = .log(argument)
            }
            return ActionSyntax(kind: kind, position: position)
        case "add_header", "set_header":
            _ = advance()
            let name = try expectString("a header name")
            let value = try expectString("a header value")
            return ActionSyntax(kind: word == "add_header" ? .addHeader(name: name, value: value) : .setHeader(name: name, value: value), position: position)
        default:
            var hint = Suggest.closest(to: word, in: Self.actionWords + ["when", "mode"]).map { "did you mean '\($0)'?" }
            if word == "set_mail_from" || word == "set_rcpt" { hint = "write 'set \(word.dropFirst(4))'" }
            if RuleField.lookup(word) != nil || word == "and" || word == "or" {
                hint = "a condition follows 'when'; join conditions with 'and' / 'or'"
            }
            throw fail("unknown action '\(word)'", hint: hint ?? "actions: \(Self.actionWords.joined(separator: ", "))")
        }
    }

    private mutating func parseCode() -> Located<Int>? {
        guard let word = current.word, word.utf8.count == 3, word.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let code = Int(word) else {
            return nil
        }
        let position = advance().position
        return Located(value: code, position: position)
    }

    private mutating func parseEnhanced() -> Located<String>? {
        guard let word = current.word, word.contains("."), word.utf8.first.map({ $0 >= 0x30 && $0 <= 0x39 }) == true else {
            return nil
        }
        let position = advance().position
        return Located(value: word, position: position)
    }

    // MARK: - Expressions

    private mutating func checkDepth(_ depth: Int) throws(Failure) {
        if depth > maxDepth {
            throw fail("the condition nests deeper than \(maxDepth) levels", hint: "split it into several rules")
        }
    }

    /// `or-expr = and-expr *("or" and-expr)`
    private mutating func parseOr(depth: Int) throws(Failure) -> ExpressionSyntax {
        try checkDepth(depth)
        var terms = [try parseAnd(depth: depth + 1)]
        while consumeWord("or") {
            terms.append(try parseAnd(depth: depth + 1))
        }
        return terms.count == 1 ? terms[0] : .or(terms)
    }

    /// `and-expr = not-expr *("and" not-expr)`
    private mutating func parseAnd(depth: Int) throws(Failure) -> ExpressionSyntax {
        try checkDepth(depth)
        var terms = [try parseNot(depth: depth + 1)]
        while consumeWord("and") {
            terms.append(try parseNot(depth: depth + 1))
        }
        return terms.count == 1 ? terms[0] : .and(terms)
    }

    /// `not-expr = "not" not-expr / primary`
    private mutating func parseNot(depth: Int) throws(Failure) -> ExpressionSyntax {
        try checkDepth(depth)
        if isWord("not") {
            let position = advance().position
            return .not(try parseNot(depth: depth + 1), position)
        }
        return try parsePrimary(depth: depth + 1)
    }

    /// `primary = "(" or-expr ")" / [quantifier] field [[not] operator operand]`
    private mutating func parsePrimary(depth: Int) throws(Failure) -> ExpressionSyntax {
        try checkDepth(depth)
        if current.kind == .leftParen {
            _ = advance()
            let inner = try parseOr(depth: depth + 1)
            guard current.kind == .rightParen else {
                throw fail("expected ')', found \(current.spelling)")
            }
            _ = advance()
            return inner
        }
        var quantifier: QuantifierSyntax?
        if let word = current.word, let q = QuantifierSyntax(rawValue: word) {
            quantifier = q
            _ = advance()
        }
        let field = try parseField()
        var negated = false
        if isWord("not"), let next = peek().word, ["in", "matches", "contains", "starts_with", "ends_with"].contains(next) {
            _ = advance()
            negated = true
        }
        let opToken = current
        let op: OperatorSyntax
        switch opToken.kind {
        case .comparison(let symbol):
            op = OperatorSyntax(rawValue: symbol.rawValue) ?? .equal
        case .word(let word):
            guard let named = OperatorSyntax(rawValue: word), !["==", "!=", "<", "<=", ">", ">="].contains(word) else {
                if quantifier != nil || negated {
                    throw fail("expected an operator after the field, found \(opToken.spelling)")
                }
                return .truth(quantifier: nil, field: field)
            }
            op = named
        case .assign:
            throw fail("'=' is not a comparison", hint: "write '==' to compare")
        default:
            if quantifier != nil || negated {
                throw fail("expected an operator after the field, found \(opToken.spelling)")
            }
            return .truth(quantifier: nil, field: field)
        }
        _ = advance()
        let operand = try parseOperand(for: op)
        return .comparison(quantifier: quantifier, field: field, negated: negated, op: Located(value: op, position: opToken.position), operand: operand)
    }

    /// `field = name ["(" string ")"]`
    private mutating func parseField() throws(Failure) -> FieldSyntax {
        let token = current
        guard let word = token.word else {
            throw fail("expected a field, found \(token.spelling)", hint: "a condition starts with a field such as mail_from.domain")
        }
        guard RuleLiteral.isIdentifier(word), !Self.actionWords.contains(word) || RuleField.lookup(word) != nil else {
            throw fail("expected a field, found \(token.spelling)", hint: "a condition starts with a field such as mail_from.domain, then an operator and a value")
        }
        _ = advance()
        var argument: String?
        if current.kind == .leftParen {
            _ = advance()
            argument = try expectPlainString("the argument of \(word)(...)").value
            guard current.kind == .rightParen else {
                throw fail("expected ')' after the argument, found \(current.spelling)")
            }
            _ = advance()
        }
        return FieldSyntax(name: word, argument: argument, position: token.position)
    }

    /// `operand = string / regex / word / "none" / "true" / "false" / list-name / "[" entries "]" / field`
    private mutating func parseOperand(for op: OperatorSyntax) throws(Failure) -> OperandSyntax {
        let token = current
        switch token.kind {
        case .regex(let pattern, let flags):
            _ = advance()
            return .regex(pattern: pattern, flags: flags, position: token.position, patternPosition: token.innerPosition)
        case .string(let literal):
            if op == .matches {
                throw fail("'matches' takes a regex, not a string", hint: "write /pattern/flags")
            }
            if literal.isInterpolated {
                throw fail("strings in conditions cannot use ${...} interpolation", hint: "compare with the field itself, e.g. mail_from.local == auth.user; a literal $ is \\$")
            }
            _ = advance()
            return .string(literal, token.position)
        case .leftBracket:
            let (entries, position) = try parseInlineList()
            return .inlineList(entries, position)
        case .word(let word):
            if op == .matches {
                throw fail("'matches' takes a regex like /pattern/flags, found \(token.spelling)")
            }
            switch word {
            case "none":
                _ = advance()
                return .none(token.position)
            case "true", "false":
                _ = advance()
                return .boolean(word == "true", token.position)
            default:
                break
            }
            if RuleLiteral.isIdentifier(word) {
                if op == .in {
                    _ = advance()
                    return .listName(word, token.position)
                }
                return .field(try parseField())
            }
            _ = advance()
            return .word(word, token.position)
        default:
            throw fail("expected a value after '\(op.rawValue)', found \(token.spelling)")
        }
    }

    // MARK: - Examples

    static let sessionWords: Set<String> = [
        "client", "server", "helo", "tls", "auth", "mail_from", "mail_param", "rcpt", "subject", "from", "header",
        "message_id", "body", "attachment", "size", "count",
    ]

    /// `example = "example" string *("session" *session-item / "expect" *expect-item)`
    private mutating func parseExample() throws(Failure) -> ExampleSyntax {
        let start = advance().position
        let name = try expectPlainString("an example name")
        var example = ExampleSyntax(name: name, position: start)
        while let word = current.word, !Self.topLevelWords.contains(word) {
            if consumeWord("session") {
                while let item = current.word, Self.sessionWords.contains(item) {
                    example.session.append(try parseSessionItem())
                }
            } else if consumeWord("expect") {
                while let item = current.word, item != "session", item != "expect", !Self.topLevelWords.contains(item) {
                    example.expectations.append(try parseExpectation())
                }
            } else {
                let hint = Suggest.closest(to: word, in: Array(Self.sessionWords) + ["session", "expect"]).map { "did you mean '\($0)'?" }
                throw fail("expected 'session' or 'expect' in the example, found \(current.spelling)", hint: hint)
            }
        }
        if current.kind != .end, current.word == nil {
            throw fail("expected 'session' or 'expect', found \(current.spelling)")
        }
        if example.expectations.isEmpty {
            throw fail("example \"\(name.value)\" has no 'expect'", hint: "expect delivered, expect reject 550 at mail by \"rule\", expect tag \"x\", ...", at: start)
        }
        return example
    }

    /// A string or a bare word (IP addresses may be written bare).
    private mutating func expectValue(_ what: String) throws(Failure) -> Located<String> {
        if let word = current.word {
            let position = advance().position
            return Located(value: word, position: position)
        }
        return try expectPlainString(what)
    }

    private mutating func expectInteger(_ what: String) throws(Failure) -> Int {
        guard let word = current.word, let value = RuleLiteral.integer(word) else {
            throw fail("expected \(what) (a number or a size like 25MB), found \(current.spelling)")
        }
        _ = advance()
        return value
    }

    private var atString: Bool {
        if case .string = current.kind { return true }
        return false
    }

    private mutating func parseSessionItem() throws(Failure) -> ExampleSyntax.SessionItem {
        let word = advance().word ?? ""
        switch word {
        case "client", "server":
            let address = try expectValue("an IP address")
            let port = consumeWord("port") ? try expectInteger("a port") : nil
            return word == "client" ? .client(address.value, address.position, port: port) : .server(address.value, address.position, port: port)
        case "helo": return .helo(try expectValue("a HELO name").value)
        case "tls": return .tls(version: atString ? try expectPlainString("a TLS version").value : nil)
        case "auth":
            let user = try expectPlainString("a user name").value
            return .auth(user: user, mechanism: atString ? try expectPlainString("a mechanism").value : nil)
        case "mail_from": return .mailFrom(try expectPlainString("a sender address").value)
        case "mail_param":
            let keyword = try expectPlainString("a parameter keyword").value
            return .mailParameter(keyword, atString ? try expectPlainString("a parameter value").value : nil)
        case "rcpt": return .rcpt(try expectPlainString("a recipient address").value)
        case "subject": return .subject(try expectPlainString("a subject").value)
        case "from": return .from(try expectPlainString("a From address").value)
        case "header":
            let name = try expectPlainString("a header name").value
            return .header(name, try expectPlainString("a header value").value)
        case "message_id": return .messageID(try expectPlainString("a Message-ID").value)
        case "body": return .body(try expectPlainString("the body text").value)
        case "attachment":
            let name = try expectPlainString("a file name").value
            var type: String?
            var size: Int?
            if atString {
                type = try expectPlainString("a content type").value
                if let word = current.word, RuleLiteral.integer(word) != nil { size = try expectInteger("a size") }
            }
            return .attachment(name: name, type: type, size: size)
        case "count":
            let limit = try expectPlainString("a limit name").value
            return .limitCount(limit, try expectInteger("the limit's count"))
        default:
            return .size(try expectInteger("a message size"))
        }
    }

    static let terminalWords: Set<String> = ["reject", "tempfail", "disconnect", "discard", "quarantine"]
    static let effectWords: Set<String> = ["tag", "log", "bcc", "redirect", "remove_header", "prefix_subject", "add_header", "set_header", "set"]

    private mutating func parseExpectation() throws(Failure) -> ExampleSyntax.Expectation {
        let start = current.position
        let firstIndex = index
        let negated = consumeWord("no")
        guard let word = current.word else {
            throw fail("expected an expectation, found \(current.spelling)")
        }
        _ = advance()
        var kind: ExampleSyntax.Expectation.Kind
        switch word {
        case "delivered", "accept":
            kind = .delivered
        case _ where Self.terminalWords.contains(word):
            var code: Int?
            var detail: String?
            var stage: RuleStage?
            var rule: String?
            if let c = parseCode() { code = c.value }
            if word == "quarantine", atString { detail = try expectPlainString("a quarantine reason").value }
            if consumeWord("at") {
                guard let stageWord = current.word, let s = RuleStage(rawValue: stageWord) else {
                    throw fail("expected a stage after 'at', found \(current.spelling)")
                }
                _ = advance()
                stage = s
            }
            if consumeWord("by") { rule = try expectPlainString("a rule name").value }
            kind = .terminal(action: word, code: code, detail: detail, stage: stage, rule: rule)
        case "set":
            guard let target = current.word, target == "mail_from" || target == "rcpt" else {
                throw fail("expected 'mail_from' or 'rcpt' after 'set', found \(current.spelling)")
            }
            _ = advance()
            kind = .effect(action: "set_\(target)", values: [try expectPlainString("an address").value])
        case "add_header", "set_header":
            let name = try expectPlainString("a header name").value
            kind = .effect(action: word, values: [name, try expectPlainString("a header value").value])
        case _ where Self.effectWords.contains(word):
            kind = .effect(action: word, values: [try expectPlainString("a value").value])
        case "matched":
            let rule = try expectPlainString("a rule name").value
            kind = .matched(rule: rule, action: atString ? try expectPlainString("an action name").value : nil)
        default:
            let choices = ["delivered", "matched", "no"] + Array(Self.terminalWords) + Array(Self.effectWords)
            throw fail("unknown expectation '\(word)'",
                       hint: Suggest.closest(to: word, in: choices).map { "did you mean '\($0)'?" } ?? "expect delivered, reject, tempfail, disconnect, discard, quarantine, tag, bcc, matched, ...",
                       at: tokens[firstIndex].position)
        }
        if negated, case .delivered = kind {
            throw fail("'no delivered' is not an expectation", hint: "expect reject / tempfail / ... instead", at: start)
        }
        let text = tokens[firstIndex..<index].map(\.textForm).joined(separator: " ")
        return ExampleSyntax.Expectation(kind: kind, negated: negated, position: start, text: text)
    }
}

extension RuleToken {
    /// The token as it would be written, for echoing an expectation back.
    var textForm: String {
        switch kind {
        case .word(let word): word
        case .string(let literal): "\"\(literal.text)\""
        default: spelling
        }
    }
}
