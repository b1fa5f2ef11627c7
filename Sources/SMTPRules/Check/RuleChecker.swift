import SMTPCore

/// Turns parsed rules files into a `RuleSet`, reporting every problem with `file:line:col` and a
/// hint (rules/README.md, "Checking"): unknown fields, actions and lists; fields and actions used at
/// a stage where they mean nothing; type errors; bad regexes, reply codes and CIDR prefixes;
/// CR/LF/NUL in static strings, which must never reach the wire; duplicate names; unreachable
/// rules; and, once everything compiles, failing `example` blocks.
struct RuleChecker {
    struct ListEntry {
        var text: String
        var file: String
        var position: RulePosition
    }

    struct ResolvedList {
        var name: String
        var file: String
        var position: RulePosition
        var entries: [ListEntry]
    }

    let limits: RuleLimits
    private(set) var diagnostics: [RuleDiagnostic] = []
    private var lists: [String: ResolvedList] = [:]
    private var usedLists: Set<String> = []
    private var textSets: [String: Set<String>] = [:]
    private var integerSets: [String: Set<Int>] = [:]
    private var prefixSets: [String: IPPrefixSet] = [:]
    /// The `limit` declarations by name (`RuleChecker+Limits.swift`), and those a rule reads.
    var declaredLimits: [String: RuleLimit] = [:]
    var readLimits: Set<String> = []
    private var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    init(limits: RuleLimits) {
        self.limits = limits
    }

    // MARK: - Diagnostics

    mutating func error(_ file: String, _ position: RulePosition, _ message: String, hint: String? = nil) {
        diagnostics.append(RuleDiagnostic(severity: .error, file: file, line: position.line, column: position.column, message: message, hint: hint))
    }

    mutating func warning(_ file: String, _ position: RulePosition, _ message: String, hint: String? = nil) {
        diagnostics.append(RuleDiagnostic(severity: .warning, file: file, line: position.line, column: position.column, message: message, hint: hint))
    }

    // MARK: - Whole set

    /// Syntax errors reported per file: a file that is not a rules file at all should not flood the
    /// terminal.
    static let maxSyntaxErrorsPerFile = 30

    /// `listPath` turns a list file name as written into the path diagnostics show for it.
    static func check(_ sources: [RuleSource], listFile: (String) throws -> String, limits: RuleLimits,
                      listPath: (String) -> String = { $0 }) -> RuleCheckResult {
        var checker = RuleChecker(limits: limits)
        var parsed: [(String, RuleFileSyntax)] = []
        for source in sources {
            if source.text.utf8.count > limits.maxFileSize {
                checker.error(source.path, RulePosition(line: 1, column: 1), "the file is larger than \(limits.maxFileSize) octets",
                              hint: "split it into several files")
                continue
            }
            let (file, failures) = RuleParser.parse(source.text, limits: limits)
            for failure in failures.prefix(maxSyntaxErrorsPerFile) {
                checker.error(source.path, failure.position, failure.message, hint: failure.hint)
            }
            if failures.count > maxSyntaxErrorsPerFile, let last = failures.prefix(maxSyntaxErrorsPerFile).last {
                checker.error(source.path, last.position, "too many syntax errors; \(failures.count - maxSyntaxErrorsPerFile) more not shown",
                              hint: "is this a rules file?")
            }
            parsed.append((source.path, file))
        }
        checker.resolveLists(parsed, listFile: listFile, listPath: listPath)
        let limitDeclarations = checker.resolveLimits(parsed)
        let rules = checker.compileRules(parsed)
        checker.warnUnusedLists()
        checker.warnUnreadLimits(limitDeclarations)
        var examples: [RuleExampleResult] = []
        var ruleSet: RuleSet?
        if !checker.hasErrors {
            let compiled = RuleSet(rules: rules, limits: limitDeclarations)
            var count = 0
            for (path, file) in parsed {
                for example in file.examples {
                    count += 1
                    guard count <= limits.maxExamples else { break }
                    let result = RuleExampleRunner.run(example, file: path, ruleSet: compiled)
                    examples.append(result)
                    if !result.passed {
                        checker.error(path, example.position, "example \"\(example.name.value)\" failed: \(result.detail)")
                    }
                }
            }
            if !checker.hasErrors { ruleSet = compiled }
        }
        let order = Dictionary(sources.enumerated().map { ($1.path, $0) }, uniquingKeysWith: { first, _ in first })
        let diagnostics = checker.diagnostics.enumerated().sorted { a, b in
            let (fa, fb) = (order[a.element.file] ?? Int.max, order[b.element.file] ?? Int.max)
            if fa != fb { return fa < fb }
            if a.element.file != b.element.file { return a.element.file < b.element.file }
            if a.element.line != b.element.line { return a.element.line < b.element.line }
            if a.element.column != b.element.column { return a.element.column < b.element.column }
            return a.offset < b.offset
        }.map(\.element)
        return RuleCheckResult(ruleSet: ruleSet, diagnostics: diagnostics, examples: examples)
    }

    // MARK: - Lists

    private mutating func resolveLists(_ files: [(String, RuleFileSyntax)], listFile: (String) throws -> String, listPath: (String) -> String) {
        for (path, file) in files {
            for list in file.lists {
                if let existing = lists[list.name.value] {
                    error(path, list.name.position, "list '\(list.name.value)' is already defined",
                          hint: "the first definition is at \(existing.file):\(existing.position.line); rename one of them")
                    continue
                }
                var entries: [ListEntry] = []
                switch list.body {
                case .inline(let items):
                    entries = items.map { ListEntry(text: $0.text, file: path, position: $0.position) }
                case .file(let name):
                    entries = readListFile(name, from: path, listFile: listFile, displayPath: listPath(name.value))
                }
                if entries.count > limits.maxListEntries {
                    error(path, list.name.position, "list '\(list.name.value)' has \(entries.count) entries, more than \(limits.maxListEntries)",
                          hint: "split the list or raise the limit")
                    entries.removeAll()
                }
                lists[list.name.value] = ResolvedList(name: list.name.value, file: path, position: list.name.position, entries: entries)
            }
        }
    }

    private mutating func readListFile(_ name: Located<String>, from path: String, listFile: (String) throws -> String, displayPath: String) -> [ListEntry] {
        let text: String
        do {
            text = try listFile(name.value)
        } catch {
            self.error(path, name.position, "cannot read list file '\(name.value)': \(error)",
                       hint: "a relative path is resolved against the rules directory")
            return []
        }
        if text.utf8.count > limits.maxListFileSize {
            error(path, name.position, "list file '\(name.value)' is larger than \(limits.maxListFileSize) octets")
            return []
        }
        var entries: [ListEntry] = []
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let entry = String(line).trimmingASCIISpaces()
            if entry.isEmpty || entry.hasPrefix("#") { continue }
            entries.append(ListEntry(text: entry, file: displayPath, position: RulePosition(line: lineNumber, column: 1)))
            if entries.count > limits.maxListEntries { break }
        }
        return entries
    }

    private mutating func warnUnusedLists() {
        for list in lists.values.sorted(by: { ($0.file, $0.position.line) < ($1.file, $1.position.line) }) where !usedLists.contains(list.name) {
            warning(list.file, list.position, "list '\(list.name)' is never used")
        }
    }

    /// The entries of a named list, or nil (with an error) when there is no such list.
    private mutating func namedList(_ name: String, file: String, at position: RulePosition) -> ResolvedList? {
        guard let list = lists[name] else {
            let suggestion = Suggest.closest(to: name, in: Array(lists.keys))
            error(file, position, "unknown list '\(name)'",
                  hint: suggestion.map { "did you mean '\($0)'?" } ?? "define it with: list \(name) = [...] or list \(name) from \"file\"")
            return nil
        }
        usedLists.insert(name)
        return list
    }

    // MARK: - Rules

    private mutating func compileRules(_ files: [(String, RuleFileSyntax)]) -> [CompiledRule] {
        var compiled: [CompiledRule] = []
        var names: [String: (String, Int)] = [:]
        var stageEnders: [RuleStage: (String, String, Int)] = [:]
        var total = 0
        for (path, file) in files {
            for rule in file.rules {
                total += 1
                if total == limits.maxRules + 1 {
                    error(path, rule.position, "more than \(limits.maxRules) rules", hint: "merge rules with lists, or raise the limit")
                }
                if let first = names[rule.name.value] {
                    error(path, rule.name.position, "rule \"\(rule.name.value)\" is already defined",
                          hint: "the first is at \(first.0):\(first.1); rule names must be unique, as verdicts name them")
                } else {
                    names[rule.name.value] = (path, rule.position.line)
                }
                if let ender = stageEnders[rule.stage.value] {
                    error(path, rule.position, "rule \"\(rule.name.value)\" is unreachable: rule \"\(ender.0)\" (\(ender.1):\(ender.2)) always ends stage '\(rule.stage.value.rawValue)' before it",
                          hint: "remove this rule, or give the earlier rule a 'when'")
                }
                guard let result = compileRule(rule, file: path) else { continue }
                if result.enforced, result.condition == nil, rule.actions.contains(where: \.isTerminal), stageEnders[rule.stage.value] == nil {
                    stageEnders[rule.stage.value] = (rule.name.value, path, rule.position.line)
                }
                compiled.append(result)
            }
        }
        return compiled
    }

    private mutating func compileRule(_ rule: RuleSyntax, file: String) -> CompiledRule? {
        let stage = rule.stage.value
        let errorsBefore = diagnostics.count(where: { $0.severity == .error })
        var conditions: [RuleCondition] = []
        for condition in rule.conditions {
            if let compiled = compileExpression(condition, file: file, stage: stage) { conditions.append(compiled) }
        }
        var actions: [CompiledAction] = []
        var terminal: ActionSyntax?
        for action in rule.actions {
            if action.isTerminal {
                if let terminal {
                    error(file, action.position, "a rule has at most one terminal action; '\(terminal.name)' at line \(terminal.position.line) already ends the stage",
                          hint: "split it into two rules")
                }
                terminal = action
            }
            if let compiled = compileAction(action, file: file, stage: stage) { actions.append(compiled) }
        }
        guard diagnostics.count(where: { $0.severity == .error }) == errorsBefore else { return nil }
        let condition: RuleCondition? = conditions.isEmpty ? nil : conditions.count == 1 ? conditions[0] : .all(conditions)
        return CompiledRule(name: rule.name.value, file: file, line: rule.position.line, stage: stage, enforced: !rule.monitor,
                            condition: condition, actions: actions)
    }

    // MARK: - Fields

    /// Resolves a field reference at `stage`, reporting unknown fields, argument mistakes and fields not
    /// yet known at the stage.
    mutating func resolveField(_ name: String, argument: String?, takesArgumentSyntax: Bool, file: String, at position: RulePosition, stage: RuleStage)
        -> (RuleField, FieldAccessor)?
    {
        guard let field = RuleField.lookup(name) else {
            var hint = Suggest.closest(to: name, in: RuleField.names + ["header", "headers", "mail_param"]).map { "did you mean '\($0)'?" }
            if hint == nil, name.contains(".") || name.contains("@") {
                hint = "strings are written in double quotes: \"\(name)\""
            }
            error(file, position, "unknown field '\(name)'", hint: hint ?? "fields: \(RuleField.names.joined(separator: ", "))")
            return nil
        }
        if field.takesArgument, argument == nil {
            error(file, position, "field '\(name)' needs an argument", hint: "write \(name)(\"\(name == "mail_param" ? "SIZE" : RuleField.limitFields.contains(name) ? "user-hourly" : "X-Mailer")\")")
            return nil
        }
        if !field.takesArgument, argument != nil || takesArgumentSyntax {
            error(file, position, "field '\(name)' takes no argument")
            return nil
        }
        if field.stage > stage {
            error(file, position, "field '\(name)' is not known at stage '\(stage.rawValue)'",
                  hint: "it is known from stage '\(field.stage.rawValue)' on; use 'on \(field.stage.rawValue)' or later")
            return nil
        }
        if RuleField.limitFields.contains(name) {
            return resolveLimitField(field, limit: argument ?? "", file: file, at: position, stage: stage).map { (field, $0) }
        }
        guard let accessor = FieldAccessor(field, argument: argument, stage: stage) else { return nil }
        return (field, accessor)
    }

    // MARK: - Expressions

    private mutating func compileExpression(_ expression: ExpressionSyntax, file: String, stage: RuleStage) -> RuleCondition? {
        switch expression {
        case .and(let terms), .or(let terms):
            // Compile every term, so each one's errors are reported.
            let compiled = terms.map { compileExpression($0, file: file, stage: stage) }
            guard compiled.allSatisfy({ $0 != nil }) else { return nil }
            let conditions = compiled.compactMap { $0 }
            if case .and = expression { return .all(conditions) }
            return .any(conditions)
        case .not(let inner, _):
            return compileExpression(inner, file: file, stage: stage).map { .not($0) }
        case .truth(_, let fieldSyntax):
            guard let (field, accessor) = resolveField(fieldSyntax.name, argument: fieldSyntax.argument, takesArgumentSyntax: false, file: file, at: fieldSyntax.position, stage: stage) else {
                return nil
            }
            guard field.kind == .boolean else {
                error(file, fieldSyntax.position, "field '\(field.name)' is not a condition by itself",
                      hint: "compare it, e.g. \(field.name) == \"...\" or \(field.name) != none")
                return nil
            }
            return .test(RuleTest(field: accessor, quantifier: .single, negated: false, predicate: .isTrue))
        case .comparison(let quantifier, let fieldSyntax, let negated, let op, let operand):
            return compileComparison(quantifier: quantifier, fieldSyntax: fieldSyntax, negated: negated, op: op, operand: operand, file: file, stage: stage)
        }
    }

    private enum WordValue {
        case integer(Int)
        case prefix(IPPrefix, isSingleAddress: Bool)
        case invalid
    }

    private func classify(_ word: String) -> WordValue {
        if let number = RuleLiteral.integer(word) { return .integer(number) }
        if let prefix = IPPrefix(word) { return .prefix(prefix, isSingleAddress: !word.contains("/")) }
        return .invalid
    }

    private mutating func typeError(_ file: String, _ position: RulePosition, field: RuleField, found: String, hint: String? = nil) {
        error(file, position, "type mismatch: '\(field.name)' is \(field.kind.typeName), compared with \(found)", hint: hint)
    }

    private static func isTextual(_ kind: RuleField.Kind) -> Bool {
        kind == .text || kind == .address || kind == .keyword
    }

    private mutating func compileComparison(
        quantifier quantifierSyntax: QuantifierSyntax?, fieldSyntax: FieldSyntax, negated: Bool, op: Located<OperatorSyntax>,
        operand: OperandSyntax, file: String, stage: RuleStage
    ) -> RuleCondition? {
        guard let (field, accessor) = resolveField(fieldSyntax.name, argument: fieldSyntax.argument, takesArgumentSyntax: false, file: file, at: fieldSyntax.position, stage: stage) else {
            return nil
        }
        let quantifier: RuleQuantifier
        switch quantifierSyntax {
        case .any: quantifier = .any
        case .all: quantifier = .all
        case nil: quantifier = field.isMany(at: stage) ? .any : .single
        }
        var negate = negated
        let fold = field.kind.foldsCase
        let numeric = field.kind == .integer || field.numericText
        let predicate: RulePredicate
        func test(_ predicate: RulePredicate) -> RuleCondition {
            .test(RuleTest(field: accessor, quantifier: quantifier, negated: negate, predicate: predicate))
        }
        switch op.value {
        case .equal, .notEqual:
            if op.value == .notEqual { negate.toggle() }
            switch operand {
            case .none:
                predicate = .isNone
            case .boolean(let flag, let position):
                guard field.kind == .boolean else {
                    typeError(file, position, field: field, found: "a boolean")
                    return nil
                }
                predicate = .equalBoolean(flag)
            case .string(let literal, let position):
                switch field.kind {
                case .ip:
                    guard let address = IPAddress(literal.text) else {
                        error(file, position, "'\(literal.text)' is not an IP address", hint: "write an address such as 192.0.2.1 or 2001:db8::1; use 'in' for a CIDR prefix")
                        return nil
                    }
                    predicate = .equalAddress(address)
                case .integer, .boolean:
                    typeError(file, position, field: field, found: "a string", hint: field.kind == .integer ? "write the number without quotes, e.g. 25MB" : "write true or false")
                    return nil
                case .text, .address, .keyword:
                    predicate = .equalText(fold ? literal.text.lowercased() : literal.text, foldCase: fold)
                }
            case .word(let word, let position):
                switch classify(word) {
                case .integer(let number):
                    guard numeric else {
                        typeError(file, position, field: field, found: "a number", hint: Self.isTextual(field.kind) ? "write text in double quotes: \"\(word)\"" : nil)
                        return nil
                    }
                    predicate = .equalInteger(number)
                case .prefix(let prefix, let single):
                    guard field.kind == .ip else {
                        typeError(file, position, field: field, found: "an IP address", hint: "write text in double quotes: \"\(word)\"")
                        return nil
                    }
                    guard single else {
                        error(file, position, "'==' compares one address; '\(word)' is a CIDR prefix", hint: "write: \(field.name) in [\(word)]")
                        return nil
                    }
                    predicate = .equalAddress(prefix.address)
                case .invalid:
                    error(file, position, "'\(word)' is not a value", hint: word.contains("/") ? "bad CIDR prefix" : "strings are written in double quotes")
                    return nil
                }
            case .field(let other):
                guard let rhs = compileFieldOperand(other, lhs: field, op: op.value, file: file, stage: stage) else { return nil }
                predicate = .compareField(.equal, rhs, foldCase: fold || (RuleField.lookup(other.name)?.kind.foldsCase ?? false))
            case .listName(_, let position), .inlineList(_, let position):
                error(file, position, "'\(op.value.rawValue)' compares with one value", hint: "use 'in' for a list")
                return nil
            case .regex(_, _, let position, _):
                error(file, position, "a regex needs 'matches'", hint: "write: \(field.name) matches /.../")
                return nil
            }
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard numeric else {
                typeError(file, op.position, field: field, found: "'\(op.value.rawValue)'", hint: "ordering compares numbers and sizes only")
                return nil
            }
            switch operand {
            case .word(let word, let position):
                guard case .integer(let number) = classify(word) else {
                    typeError(file, position, field: field, found: "'\(word)'", hint: "write a number or a size such as 25MB")
                    return nil
                }
                predicate = .compareInteger(op.value, number)
            case .field(let other):
                guard let rhs = compileFieldOperand(other, lhs: field, op: op.value, file: file, stage: stage) else { return nil }
                predicate = .compareField(op.value, rhs, foldCase: false)
            case .string(let literal, let position):
                typeError(file, position, field: field, found: "a string", hint: "write the number without quotes: \(literal.text)")
                return nil
            default:
                typeError(file, operand.position, field: field, found: "something that is not a number", hint: "write a number or a size such as 25MB")
                return nil
            }
        case .in:
            let entries: [ListEntry]
            var listName: String?
            switch operand {
            case .listName(let name, let position):
                guard let list = namedList(name, file: file, at: position) else { return nil }
                entries = list.entries
                listName = name
            case .inlineList(let items, _):
                entries = items.map { ListEntry(text: $0.text, file: file, position: $0.position) }
            case .word(let word, let position):
                entries = [ListEntry(text: word, file: file, position: position)]
            default:
                error(file, operand.position, "'in' needs a list", hint: "write a list name, [\"a\", \"b\"], or a CIDR prefix such as 10.0.0.0/8")
                return nil
            }
            guard let built = listPredicate(entries, name: listName, field: field) else { return nil }
            predicate = built
        case .matches:
            guard case .regex(let pattern, let flags, _, let patternPosition) = operand else {
                error(file, operand.position, "'matches' needs a regex", hint: "write /pattern/flags")
                return nil
            }
            guard field.kind != .integer, field.kind != .boolean else {
                typeError(file, op.position, field: field, found: "a regex", hint: "'matches' works on text")
                return nil
            }
            guard let regex = compileRegex(pattern, flags: flags, caseless: fold, file: file, at: patternPosition) else { return nil }
            predicate = .matches(regex)
        case .contains, .startsWith, .endsWith:
            guard field.kind != .integer, field.kind != .boolean else {
                typeError(file, op.position, field: field, found: "'\(op.value.rawValue)'", hint: "'\(op.value.rawValue)' works on text")
                return nil
            }
            var needles: [String]
            switch operand {
            case .string(let literal, _):
                needles = [literal.text]
            case .listName(let name, let position):
                guard let list = namedList(name, file: file, at: position) else { return nil }
                needles = list.entries.map(\.text)
            case .inlineList(let items, _):
                needles = items.map(\.text)
            default:
                error(file, operand.position, "'\(op.value.rawValue)' needs a string or a list", hint: "write: \(field.name) \(op.value.rawValue) \"text\"")
                return nil
            }
            if fold { needles = needles.map { $0.lowercased() } }
            switch op.value {
            case .contains: predicate = .contains(needles, foldCase: fold)
            case .startsWith: predicate = .startsWith(needles, foldCase: fold)
            default: predicate = .endsWith(needles, foldCase: fold)
            }
        }
        if case .isNone = predicate, quantifierSyntax != nil {
            warning(file, fieldSyntax.position, "'\(quantifierSyntax?.rawValue ?? "")' has no effect with 'none'", hint: "'\(field.name) == none' is true when the field has no value at all")
        }
        return test(predicate)
    }

    private mutating func compileFieldOperand(_ other: FieldSyntax, lhs: RuleField, op: OperatorSyntax, file: String, stage: RuleStage) -> FieldAccessor? {
        guard let (field, accessor) = resolveField(other.name, argument: other.argument, takesArgumentSyntax: false, file: file, at: other.position, stage: stage) else {
            return nil
        }
        if field.isMany(at: stage) {
            error(file, other.position, "'\(field.name)' has many values here and cannot be the right side of a comparison",
                  hint: "put the many-valued field on the left: any \(field.name) == \(lhs.name)")
            return nil
        }
        let compatible: Bool
        switch (lhs.kind, field.kind) {
        case (.integer, .integer), (.ip, .ip), (.boolean, .boolean): compatible = true
        case (let a, let b) where Self.isTextual(a) && Self.isTextual(b): compatible = op == .equal || op == .notEqual || lhs.numericText
        default: compatible = lhs.numericText && field.kind == .integer
        }
        guard compatible else {
            typeError(file, other.position, field: lhs, found: "'\(field.name)', \(field.kind.typeName)")
            return nil
        }
        return accessor
    }

    /// The membership test for `entries` against `field`: IP prefixes, numbers, or text.
    private mutating func listPredicate(_ entries: [ListEntry], name: String?, field: RuleField) -> RulePredicate? {
        switch field.kind {
        case .ip:
            if let name, let cached = prefixSets[name] { return .inPrefixes(cached) }
            var prefixes: [IPPrefix] = []
            var bad = false
            for entry in entries {
                guard let prefix = IPPrefix(entry.text) else {
                    error(entry.file, entry.position, "'\(entry.text)' is not an IP address or CIDR prefix",
                          hint: "write 192.0.2.0/24 or 2001:db8::/32 (prefix length at most 32 for IPv4, 128 for IPv6)")
                    bad = true
                    continue
                }
                prefixes.append(prefix)
            }
            if bad { return nil }
            let set = IPPrefixSet(prefixes)
            if let name { prefixSets[name] = set }
            return .inPrefixes(set)
        case .integer:
            if let name, let cached = integerSets[name] { return .inIntegers(cached) }
            var set: Set<Int> = []
            var bad = false
            for entry in entries {
                guard let number = RuleLiteral.integer(entry.text) else {
                    error(entry.file, entry.position, "'\(entry.text)' is not a number", hint: "'\(field.name)' is a number")
                    bad = true
                    continue
                }
                set.insert(number)
            }
            if bad { return nil }
            if let name { integerSets[name] = set }
            return .inIntegers(set)
        case .boolean:
            error(entries.first?.file ?? "", entries.first?.position ?? RulePosition(line: 1, column: 1), "'in' does not apply to '\(field.name)', a boolean")
            return nil
        case .text, .address, .keyword:
            let fold = field.kind.foldsCase
            let key = name.map { "\($0)\u{0}\(fold)" }
            if let key, let cached = textSets[key] { return .inTexts(cached, foldCase: fold) }
            let set = Set(entries.map { fold ? $0.text.lowercased() : $0.text })
            if let key { textSets[key] = set }
            return .inTexts(set, foldCase: fold)
        }
    }

    /// Compiles a regex with PCRE2 now, so a bad pattern is an error at check time with PCRE2's
    /// message and the column of the offending character.
    private mutating func compileRegex(_ pattern: String, flags: String, caseless: Bool, file: String, at position: RulePosition) -> RuleRegex? {
        if pattern.utf8.count > limits.maxRegexLength {
            error(file, position, "the regex is longer than \(limits.maxRegexLength) octets", hint: "split it, or use a list")
            return nil
        }
        if pattern.isEmpty {
            error(file, position, "the regex is empty", hint: "an empty regex matches everything; remove the condition instead")
            return nil
        }
        do {
            return try RuleRegex(pattern: pattern, flags: flags, caseless: caseless, limits: limits)
        } catch {
            if error.offset < 0 {
                let flagsColumn = position.column + pattern.unicodeScalars.count + 1
                self.error(file, RulePosition(line: position.line, column: flagsColumn), error.message, hint: "flags are i (ignore case), m (multiline), s (dot matches newline), x (extended), u (Unicode classes)")
            } else {
                let prefix = pattern.utf8.prefix(error.offset)
                let scalars = String(decoding: prefix, as: UTF8.self).unicodeScalars.count
                self.error(file, RulePosition(line: position.line, column: position.column + scalars), "bad regex: \(error.message)",
                           hint: "the syntax is PCRE2 (Perl-compatible); write \\/ for a slash")
            }
            return nil
        }
    }

    // MARK: - Actions

    /// Stages where an action makes sense; nil for every stage.
    static func stages(for action: String) -> [RuleStage]? {
        switch action {
        case "set_mail_from": [.mail]
        case "set_rcpt": [.rcpt]
        case "bcc", "redirect": [.data, .message]
        case "add_header", "set_header", "remove_header", "prefix_subject", "discard", "quarantine": [.message]
        default: nil
        }
    }

    private mutating func compileAction(_ action: ActionSyntax, file: String, stage: RuleStage) -> CompiledAction? {
        if let allowed = Self.stages(for: action.name), !allowed.contains(stage) {
            let display = action.name == "set_mail_from" ? "set mail_from" : action.name == "set_rcpt" ? "set rcpt" : action.name
            error(file, action.position, "'\(display)' is not available at stage '\(stage.rawValue)'",
                  hint: "it works on: \(allowed.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        func text(_ literal: Located<RuleStringLiteral>, max: Int? = nil) -> RuleTemplate? {
            template(literal, file: file, stage: stage, maxLength: max ?? limits.maxInterpolatedLength)
        }
        switch action.kind {
        case .accept: return .accept
        case .discard: return .discard
        case .reject(let code, let enhanced, let message), .tempfail(let code, let enhanced, let message):
            let isReject = action.name == "reject"
            let valid = code.value / 100 == (isReject ? 5 : 4) && (code.value / 10) % 10 <= 5
            if !valid {
                error(file, code.position, "'\(action.name)' needs a \(isReject ? "5xx" : "4xx") reply code, not \(code.value)",
                      hint: isReject ? "e.g. 550 (mailbox), 553 (address), 554 (transaction); tempfail takes 4xx" : "e.g. 450, 451, 452; reject takes 5xx")
            }
            let parsedEnhanced = enhanced.flatMap { enhancedCode($0, replyCode: code.value, file: file) }
            let rendered = text(message, max: limits.maxReplyTextLength)
            guard valid, enhanced == nil || parsedEnhanced != nil, let rendered else { return nil }
            return isReject ? .reject(code: code.value, enhanced: parsedEnhanced, text: rendered) : .tempfail(code: code.value, enhanced: parsedEnhanced, text: rendered)
        case .disconnect(let code, let enhanced, let message):
            if let code, !(code.value / 100 == 4 || code.value / 100 == 5) || (code.value / 10) % 10 > 5 {
                error(file, code.position, "'disconnect' needs a 4xx or 5xx reply code, not \(code.value)", hint: "421 is the usual closing reply (RFC 5321 §3.8)")
                return nil
            }
            let parsedEnhanced = enhanced.flatMap { enhancedCode($0, replyCode: code?.value ?? 0, file: file) }
            if enhanced != nil, parsedEnhanced == nil { return nil }
            var rendered: RuleTemplate?
            if let message {
                guard let t = text(message, max: limits.maxReplyTextLength) else { return nil }
                rendered = t
            }
            return .disconnect(code: code?.value, enhanced: parsedEnhanced, text: rendered)
        case .quarantine(let reason): return nonEmpty(reason, "quarantine reason", file: file).flatMap { text($0) }.map { .quarantine($0) }
        case .setMailFrom(let value): return address(value, file: file, allowNull: true).flatMap { text($0) }.map { .setMailFrom($0) }
        case .setRcpt(let value): return address(value, file: file, allowNull: false).flatMap { text($0) }.map { .setRcpt($0) }
        case .bcc(let value): return address(value, file: file, allowNull: false).flatMap { text($0) }.map { .bcc($0) }
        case .redirect(let value): return address(value, file: file, allowNull: false).flatMap { text($0) }.map { .redirect($0) }
        case .addHeader(let name, let value):
            guard let name = headerName(name, file: file), let value = text(value) else { return nil }
            return .addHeader(name: name, value: value)
        case .setHeader(let name, let value):
            guard let name = headerName(name, file: file), let value = text(value) else { return nil }
            return .setHeader(name: name, value: value)
        case .removeHeader(let name): return headerName(name, file: file).map { .removeHeader(name: $0) }
        case .prefixSubject(let value): return nonEmpty(value, "subject prefix", file: file).flatMap { text($0) }.map { .prefixSubject($0) }
        case .tag(let value): return nonEmpty(value, "tag", file: file).flatMap { text($0) }.map { .tag($0) }
        case .log(let value): return text(value).map { .log($0) }
        }
    }

    private mutating func nonEmpty(_ literal: Located<RuleStringLiteral>, _ what: String, file: String) -> Located<RuleStringLiteral>? {
        if literal.value.parts.isEmpty {
            error(file, literal.position, "the \(what) is empty")
            return nil
        }
        return literal
    }

    /// `X.Y.Z` whose class matches the reply code's first digit (RFC 3463 §2; RFC 2034 §4).
    private mutating func enhancedCode(_ word: Located<String>, replyCode: Int, file: String) -> EnhancedStatusCode? {
        let utf8 = Substring(word.value).utf8
        guard let (code, length) = EnhancedStatusCode.parse(prefixOf: utf8), length == utf8.count else {
            error(file, word.position, "'\(word.value)' is not an enhanced status code", hint: "write class.subject.detail, e.g. 5.7.1 (RFC 3463)")
            return nil
        }
        if replyCode != 0, code.statusClass != replyCode / 100 {
            error(file, word.position, "enhanced code \(word.value) has class \(code.statusClass) but the reply code is \(replyCode)",
                  hint: "the class must match the reply code's first digit: \(replyCode / 100).\(code.subject).\(code.detail)")
            return nil
        }
        return code
    }

    /// A static address must be a plausible RFC 5321 mailbox; an interpolated one is sanitised at run
    /// time, and the proxy validates the result before it reaches a command.
    private mutating func address(_ literal: Located<RuleStringLiteral>, file: String, allowNull: Bool) -> Located<RuleStringLiteral>? {
        let text = literal.value.text
        if text.utf8.contains(where: { $0 == 0x3C || $0 == 0x3E || $0 == 0x20 || $0 == 0x09 }) {
            error(file, literal.position, "an address is written without <> and without spaces", hint: "e.g. \"archive@example.com\"")
            return nil
        }
        if !literal.value.isInterpolated, text.isEmpty, !allowNull {
            error(file, literal.position, "the address is empty")
            return nil
        }
        return literal
    }

    /// A header field name (RFC 5322 §2.2: printable US-ASCII except ":"), static.
    private mutating func headerName(_ literal: Located<RuleStringLiteral>, file: String) -> String? {
        if literal.value.isInterpolated {
            error(file, literal.position, "a header name cannot use ${...} interpolation")
            return nil
        }
        let name = literal.value.text
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 >= 33 && $0 <= 126 && $0 != 0x3A }) else {
            error(file, literal.position, "'\(name)' is not a header field name", hint: "printable ASCII without spaces or ':' (RFC 5322 §2.2), e.g. \"X-Policy\"")
            return nil
        }
        return name
    }

    /// Binds the interpolations of an action string and refuses CR, LF and NUL in its static text.
    private mutating func template(_ literal: Located<RuleStringLiteral>, file: String, stage: RuleStage, maxLength: Int) -> RuleTemplate? {
        if literal.value.containsLineBreakOrNUL {
            error(file, literal.position, "the string contains CR, LF or NUL, which must never reach the wire: it would end the line early and smuggle a command",
                  hint: "remove the \\r, \\n or \\0")
            return nil
        }
        if literal.value.text.utf8.count > maxLength {
            error(file, literal.position, "the string is longer than \(maxLength) octets")
            return nil
        }
        var parts: [RuleTemplate.Part] = []
        var ok = true
        for part in literal.value.parts {
            switch part {
            case .text(let text): parts.append(.text(text))
            case .capture(let number, _): parts.append(.capture(number))
            case .limitCount(let name, let position):
                if let field = RuleField.lookup("limit_count"), let accessor = resolveLimitField(field, limit: name, file: file, at: position, stage: stage) {
                    parts.append(.field(accessor))
                } else {
                    ok = false
                }
            case .field(let name, let position):
                if let (_, accessor) = resolveField(name, argument: nil, takesArgumentSyntax: false, file: file, at: position, stage: stage) {
                    parts.append(.field(accessor))
                } else {
                    ok = false
                }
            }
        }
        return ok ? RuleTemplate(parts: parts, maxLength: maxLength) : nil
    }
}
