import Foundation

extension RuleSet {
    /// Checks and compiles in-memory sources (tests, `rules check` on given text). `listFile` returns the
    /// text of a list file named by `list x from "file"`, or throws.
    public static func compile(_ sources: [RuleSource], listFile: (String) throws -> String) -> RuleCheckResult {
        RuleChecker.check(sources, listFile: listFile, limits: .default)
    }

    public static func compile(_ sources: [RuleSource], limits: RuleLimits, listFile: (String) throws -> String) -> RuleCheckResult {
        RuleChecker.check(sources, listFile: listFile, limits: limits)
    }

    /// Every `*.rules` file in `directory`, in name order (byte order of the UTF-8 names); list files are
    /// resolved against `directory` unless absolute. An unreadable directory or file is an error
    /// diagnostic, never a throw.
    public static func load(directory: String) -> RuleCheckResult {
        load(directory: directory, limits: .default)
    }

    public static func load(directory: String, limits: RuleLimits) -> RuleCheckResult {
        let base = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        func failure(_ path: String, _ message: String, hint: String? = nil) -> RuleCheckResult {
            RuleCheckResult(ruleSet: nil, diagnostics: [RuleDiagnostic(severity: .error, file: path, line: 1, column: 1, message: message, hint: hint)], examples: [])
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: base)
                .filter { $0.hasSuffix(".rules") && !$0.hasPrefix(".") }
                .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        } catch {
            return failure(base, "cannot read the rules directory: \(error.localizedDescription)", hint: "check the path given to --rules")
        }
        if names.count > limits.maxFiles {
            return failure(base, "more than \(limits.maxFiles) .rules files")
        }
        var sources: [RuleSource] = []
        var unreadable: [RuleDiagnostic] = []
        for name in names {
            let path = "\(base)/\(name)"
            switch readText(path, maxSize: limits.maxFileSize) {
            case .success(let text): sources.append(RuleSource(path: path, text: text))
            case .failure(let message):
                unreadable.append(RuleDiagnostic(severity: .error, file: path, line: 1, column: 1, message: message))
            }
        }
        func listPath(_ name: String) -> String { name.hasPrefix("/") ? name : "\(base)/\(name)" }
        var result = RuleChecker.check(sources, listFile: { name in
            switch readText(listPath(name), maxSize: limits.maxListFileSize) {
            case .success(let text): return text
            case .failure(let message): throw ListFileError(message: message)
            }
        }, limits: limits, listPath: listPath)
        if !unreadable.isEmpty {
            result = RuleCheckResult(ruleSet: nil, diagnostics: unreadable + result.diagnostics, examples: result.examples)
        }
        return result
    }

    private struct ListFileError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    private enum ReadResult {
        case success(String)
        case failure(String)
    }

    /// Reads a file as UTF-8, refusing one larger than `maxSize` before reading it all.
    private static func readText(_ path: String, maxSize: Int) -> ReadResult {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return .failure("cannot open \(path)")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: maxSize + 1) ?? Data()
        } catch {
            return .failure("cannot read \(path): \(error.localizedDescription)")
        }
        if data.count > maxSize { return .failure("\(path) is larger than \(maxSize) octets") }
        guard let text = String(data: data, encoding: .utf8) else {
            return .failure("\(path) is not valid UTF-8")
        }
        return .success(text)
    }
}
