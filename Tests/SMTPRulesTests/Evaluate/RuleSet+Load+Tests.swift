import Foundation
import Testing
@testable import SMTPRules

/// Loading from disk: name order, list files beside the rules, errors with real paths.
struct RuleSetLoadTests {
    static func directory(_ files: [String: String]) throws -> String {
        let path = "/tmp/smtprules-test-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(toFile: "\(path)/\(name)", atomically: true, encoding: .utf8)
        }
        return path
    }

    @Test func filesLoadInNameOrderAndListsResolveAgainstTheDirectory() throws {
        let path = try Self.directory([
            "20-b.rules": "rule \"b\" on mail when client.ip in nets tag \"b\"",
            "10-a.rules": "list nets from \"nets.txt\"\nrule \"a\" on mail tag \"a\"",
            "nets.txt": "10.0.0.0/8\n",
            "notes.md": "not rules",
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = RuleSet.load(directory: path + "/")
        let set = try #require(result.ruleSet, "\(result.diagnostics)")
        #expect(set.evaluate(.mail, RuleFacts(clientIP: "10.1.1.1", mailFrom: "a@b")).effects == [.tag("a"), .tag("b")])
    }

    @Test func listFileErrorsNameTheListFile() throws {
        let path = try Self.directory([
            "a.rules": "list nets from \"nets.txt\"\nrule \"a\" on connect when client.ip in nets tag \"x\"",
            "nets.txt": "# ok\n10.0.0.0/8\n\nnot-an-ip\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(RuleSet.load(directory: path).errors.first)
        #expect("\(error.file):\(error.line):\(error.column)" == "\(path)/nets.txt:4:1")
    }

    @Test func invalidUTF8IsADiagnostic() throws {
        let path = try Self.directory([:])
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data([0x72, 0xFF, 0xFE]).write(to: URL(fileURLWithPath: "\(path)/bad.rules"))
        let result = RuleSet.load(directory: path)
        #expect(result.errors.first?.message.contains("not valid UTF-8") == true)
        #expect(!result.isValid)
    }
}
