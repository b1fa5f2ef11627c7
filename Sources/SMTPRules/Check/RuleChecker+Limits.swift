/// Checking `limit` declarations and the fields that read them (rules/README.md, "Limits"): unknown
/// or duplicate names, what a limit counts, a `per` field that is many-valued or not known when the
/// limit counts, windows and budgets; a rule that reads a limit before its key is known; and, as a
/// warning, a limit no rule reads.
extension RuleChecker {
    /// Every `limit` of every file, in file order; the valid ones are also in `declaredLimits`.
    mutating func resolveLimits(_ files: [(String, RuleFileSyntax)]) -> [RuleLimit] {
        var resolved: [RuleLimit] = []
        for (path, file) in files {
            for syntax in file.limits {
                if let existing = declaredLimits[syntax.name.value] {
                    error(path, syntax.name.position, "limit '\(syntax.name.value)' is already defined",
                          hint: "the first definition is at \(existing.file):\(existing.line); rename one of them")
                    continue
                }
                guard let limit = resolveLimit(syntax, file: path) else { continue }
                declaredLimits[limit.name] = limit
                resolved.append(limit)
            }
        }
        return resolved
    }

    private mutating func resolveLimit(_ syntax: LimitSyntax, file: String) -> RuleLimit? {
        let errorsBefore = diagnostics.count(where: { $0.severity == .error })
        let name = syntax.name.value
        if !LimitName.isValid(name) {
            error(file, syntax.name.position, "'\(name)' is not a limit name",
                  hint: "a letter or digit, then letters, digits, '-', '_' or '.', at most \(LimitName.maxLength): it is written unquoted in ${limit_count(\(name.isEmpty ? "name" : name))}")
        }
        let unit = LimitUnit(rawValue: syntax.counts.value)
        if unit == nil {
            let units = LimitUnit.allCases.map(\.rawValue)
            error(file, syntax.counts.position, "a limit counts \(units.joined(separator: ", ")), not '\(syntax.counts.value)'",
                  hint: Suggest.closest(to: syntax.counts.value, in: units).map { "did you mean '\($0)'?" })
        }
        var key: (RuleField, FieldAccessor)?
        if let unit { key = resolveLimitKey(syntax.per, countedAt: unit.countingStage, file: file) }
        let window = LimitWindow(syntax.window.value).flatMap { (1...LimitWindow.maxSeconds).contains($0.seconds) ? $0 : nil }
        if window == nil {
            error(file, syntax.window.position, "'\(syntax.window.value)' is not a window",
                  hint: "a number of seconds, minutes, hours or days from 1s to \(LimitWindow.maxSeconds / 86_400)d: 30s, 10m, 1h, 24h, 7d")
        }
        let max = RuleLiteral.integer(syntax.max.value)
        if max == nil || max == 0 {
            error(file, syntax.max.position, "'\(syntax.max.value)' is not a budget",
                  hint: max == 0 ? "a budget of 0 lets nothing through: write a rule that refuses instead" : "a whole number of at least 1 (sizes such as 100MB for bytes)")
        } else if unit != .bytes, syntax.max.value.utf8.contains(where: { $0 > 0x39 }) {
            error(file, syntax.max.position, "'\(syntax.max.value)' is a size, but the limit counts \(syntax.counts.value)", hint: "write a plain number")
        }
        guard diagnostics.count(where: { $0.severity == .error }) == errorsBefore, let unit, let key, let window, let max else { return nil }
        let perText = syntax.per.argument.map { "\(syntax.per.name)(\"\($0)\")" } ?? syntax.per.name
        return RuleLimit(name: name, unit: unit, per: perText, key: key.1, foldsKey: key.0.kind.foldsCase || key.0.kind == .ip, window: window,
                         max: max, file: file, line: syntax.position.line, column: syntax.position.column)
    }

    /// The `per` field: known, with one value, at the stage the limit counts at.
    private mutating func resolveLimitKey(_ per: FieldSyntax, countedAt stage: RuleStage, file: String) -> (RuleField, FieldAccessor)? {
        if RuleField.limitFields.contains(per.name) {
            error(file, per.position, "a limit is not counted per '\(per.name)'", hint: "count per a session or envelope field such as auth.user, mail_from or client.ip")
            return nil
        }
        if let field = RuleField.lookup(per.name), field.stage > stage {
            error(file, per.position, "'\(per.name)' is not known when this limit counts (at stage '\(stage.rawValue)')",
                  hint: "a limit's key is a field known by then: client.ip, helo, auth.user, mail_from... (header fields are never keys)")
            return nil
        }
        guard let resolved = resolveField(per.name, argument: per.argument, takesArgumentSyntax: false, file: file, at: per.position, stage: stage) else {
            return nil
        }
        if resolved.0.isMany(at: stage) {
            error(file, per.position, "'\(per.name)' has many values when this limit counts (at stage '\(stage.rawValue)')",
                  hint: "a limit's key has one value: count recipients per rcpt.domain, or messages per mail_from")
            return nil
        }
        return resolved
    }

    /// `over_limit("name")` or `limit_count("name")` at `stage`.
    mutating func resolveLimitField(_ field: RuleField, limit name: String, file: String, at position: RulePosition, stage: RuleStage) -> FieldAccessor? {
        guard let limit = declaredLimits[name] else {
            let suggestion = Suggest.closest(to: name, in: Array(declaredLimits.keys))
            error(file, position, "unknown limit '\(name)'",
                  hint: suggestion.map { "did you mean '\($0)'?" } ?? "declare it: limit \"\(name)\" counts messages per auth.user over 1h max 200")
            return nil
        }
        readLimits.insert(name)
        if let keyStage = RuleField.lookup(Self.fieldName(limit.per))?.stage, keyStage > stage {
            error(file, position, "limit '\(name)' is kept per \(limit.per), which is not known at stage '\(stage.rawValue)'",
                  hint: "read it from stage '\(keyStage.rawValue)' on")
            return nil
        }
        return field.name == "over_limit" ? .overLimit(LimitProbe(limit: limit, stage: stage)) : .limitCount(name)
    }

    private static func fieldName(_ per: String) -> String {
        per.firstIndex(of: "(").map { String(per[..<$0]) } ?? per
    }

    mutating func warnUnreadLimits(_ limits: [RuleLimit]) {
        for limit in limits where !readLimits.contains(limit.name) {
            warning(limit.file, RulePosition(line: limit.line, column: limit.column), "limit '\(limit.name)' is never read by a rule",
                    hint: "a limit counts only what rules read: when over_limit(\"\(limit.name)\") ...")
        }
    }
}
