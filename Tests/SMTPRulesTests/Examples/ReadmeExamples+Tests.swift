import Foundation
import Testing
@testable import SMTPRules

/// Every example in the reference tables of rules/README.md compiles at the stage the table gives.
struct ReadmeExamplesTests {
    static let prelude = """
        list our_domains = ["example.com"]
        list office_nets = [10.0.0.0/8]
        list blocked from "blocked.txt"
        limit "user-hourly" counts messages per auth.user over 1h max 200

        """

    /// The table rows of the README: cells split on " | ", backticks kept.
    static func rows() throws -> [[String]] {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(4)
        let path = parts.joined(separator: "/") + "/rules/README.md"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").filter { $0.hasPrefix("| `") }.map { line in
            line.dropFirst(2).dropLast(2).components(separatedBy: " | ")
        }
    }

    /// The backticked snippets in a cell.
    static func snippets(_ cell: String) -> [String] {
        cell.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    @Test func fieldAndOperatorExamplesCompile() throws {
        var checked = 0
        for row in try Self.rows() where row.count >= 3 {
            let stage = RuleStage(rawValue: row[2].trimmingCharacters(in: .whitespaces)) ?? .message
            for snippet in Self.snippets(row.last ?? "") + Self.snippets(row.count == 3 ? row[2] : "") where snippet.hasPrefix("when ") {
                let result = compile(Self.prelude + "rule \"r\" on \(stage.rawValue)\n  \(snippet)\n  tag \"t\"\n", lists: ["blocked.txt": "x\n"])
                #expect(result.errors.isEmpty, "\(snippet) on \(stage): \(result.errors.map(\.description))")
                checked += 1
            }
        }
        #expect(checked >= 40)
    }

    @Test func actionExamplesCompileAtTheirStages() throws {
        var checked = 0
        for row in try Self.rows() where row.count == 4 {
            let stages = row[1] == "all" ? RuleStage.allCases : row[1].components(separatedBy: ", ").compactMap(RuleStage.init(rawValue:))
            guard let action = Self.snippets(row[2]).first, !stages.isEmpty else { continue }
            for stage in stages {
                let result = compile("rule \"r\" on \(stage.rawValue) when tls \(action)\n")
                #expect(result.errors.isEmpty, "\(action) on \(stage): \(result.errors.map(\.description))")
                checked += 1
            }
            for stage in RuleStage.allCases where !stages.contains(stage) {
                #expect(!compile("rule \"r\" on \(stage.rawValue) when tls \(action)\n").errors.isEmpty, "\(action) must be refused on \(stage)")
            }
        }
        #expect(checked >= 16)
    }
}
