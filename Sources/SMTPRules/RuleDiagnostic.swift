/// One rules file handed to the checker: its path (as it should appear in diagnostics) and its text.
public struct RuleSource: Sendable {
    public var path: String
    public var text: String

    public init(path: String, text: String) {
        self.path = path
        self.text = text
    }
}

/// A problem the checker found, with its `file:line:col`, so an editor can jump to it.
public struct RuleDiagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable {
        case error, warning
    }

    public var severity: Severity
    public var file: String
    /// 1-based.
    public var line: Int
    /// 1-based, in Unicode scalars.
    public var column: Int
    public var message: String
    public var hint: String?

    public init(severity: Severity, file: String, line: Int, column: Int, message: String, hint: String? = nil) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.hint = hint
    }

    public var description: String {
        var text = "\(file):\(line):\(column): \(severity.rawValue): \(message)"
        if let hint { text += "\n  hint: \(hint)" }
        return text
    }
}

/// The result of checking a rule set: the compiled set when it is usable, every diagnostic, and the
/// outcome of every `example` block (rules/README.md, "Checking").
public struct RuleCheckResult: Sendable {
    /// nil when any error diagnostic exists (failing examples included).
    public var ruleSet: RuleSet?
    /// Errors and warnings, in file/line order.
    public var diagnostics: [RuleDiagnostic]
    /// Every `example` block run against the compiled set (empty when it did not compile).
    public var examples: [RuleExampleResult]

    public init(ruleSet: RuleSet?, diagnostics: [RuleDiagnostic], examples: [RuleExampleResult]) {
        self.ruleSet = ruleSet
        self.diagnostics = diagnostics
        self.examples = examples
    }

    /// No errors and every example passed.
    public var isValid: Bool {
        ruleSet != nil && !diagnostics.contains { $0.severity == .error } && examples.allSatisfy(\.passed)
    }

    public var errors: [RuleDiagnostic] { diagnostics.filter { $0.severity == .error } }
    public var warnings: [RuleDiagnostic] { diagnostics.filter { $0.severity == .warning } }
}

/// What one `example` block did when run against the compiled rules.
public struct RuleExampleResult: Sendable {
    public var name: String
    public var file: String
    public var line: Int
    public var passed: Bool
    /// What happened versus what was expected.
    public var detail: String

    public init(name: String, file: String, line: Int, passed: Bool, detail: String) {
        self.name = name
        self.file = file
        self.line = line
        self.passed = passed
        self.detail = detail
    }
}
