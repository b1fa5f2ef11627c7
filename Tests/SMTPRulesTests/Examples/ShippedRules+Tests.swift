import Testing
@testable import SMTPRules

/// The shipped `rules/` folder is valid: it checks without errors or warnings, and every example passes.
struct ShippedRulesTests {
    static var directory: String {
        // Tests/SMTPRulesTests/Examples/ShippedRules+Tests.swift -> the repository root -> rules/
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(4)
        return parts.joined(separator: "/") + "/rules"
    }

    @Test func shippedRulesAreValid() {
        let result = RuleSet.load(directory: Self.directory)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(\.description).joined(separator: "\n"))")
        #expect(result.isValid)
        #expect(result.examples.count >= 10)
        for example in result.examples where !example.passed {
            Issue.record("\(example.file):\(example.line): \(example.name): \(example.detail)")
        }
    }

    @Test func everyShippedFileHasExamples() throws {
        let result = RuleSet.load(directory: Self.directory)
        let files = Set(result.examples.map(\.file))
        #expect(files.count >= 4)
    }

    @Test func loadingAMissingDirectoryIsADiagnostic() {
        let result = RuleSet.load(directory: "/nonexistent/rules")
        #expect(!result.isValid)
        #expect(result.errors.first?.file == "/nonexistent/rules")
    }
}
