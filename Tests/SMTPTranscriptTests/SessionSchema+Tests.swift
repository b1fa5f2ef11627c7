import Foundation
import SMTPCore
import Testing
@testable import SMTPTranscript

/// The schema file is the normative contract: these tests hold the encoder and the schema to each other.
@Suite struct SessionSchemaTests {
    static let schemaPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/SMTPTranscript/session.v1.schema.json").path

    static func schemaBytes() throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: schemaPath)))
    }

    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try bytes.withUnsafeBufferPointer { try JSONParser.parse($0) }
    }

    @Test func schemaIsValidJSONDeclaringDraft2020_12() throws {
        let object = try JSONSerialization.jsonObject(with: Data(try Self.schemaBytes())) as? [String: Any]
        #expect(object?["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
        #expect(object?["title"] as? String == SessionRecord.schemaName)
    }

    @Test func schemaShipsAsAModuleResource() throws {
        let url = try #require(SessionSchema.url)
        #expect(Array(try Data(contentsOf: url)) == (try Self.schemaBytes()))
    }

    @Test func everyKeyTheEncoderWritesIsInTheSchemaInSchemaOrder() throws {
        let walker = SchemaWalker(root: try Self.parse(try Self.schemaBytes()))
        var seen = Set<String>()
        for record in Fixtures.all {
            let value = try Self.parse(Array(SessionRecordEncoder.jsonLine(record).utf8))
            let problems = walker.check(value, against: walker.root, path: "", seen: &seen)
            #expect(problems == [], "\(record.sessionID)")
        }
        // And the other way: the fixtures exercise every property the schema names.
        let declared = walker.declaredPaths(walker.root, path: "")
        #expect(declared.count > 80)
        #expect(declared.subtracting(seen).sorted() == [])
        #expect(seen.subtracting(declared).sorted() == [])
    }

    @Test func everyPropertyIsRequiredExceptOctets() throws {
        let walker = SchemaWalker(root: try Self.parse(try Self.schemaBytes()))
        var optional: [String] = []
        walker.forEachObjectSchema(walker.root, path: "") { path, properties, required, additionalProperties in
            for key in properties where !required.contains(key) { optional.append(path + "." + key) }
            if properties.isEmpty == false {
                #expect(additionalProperties == .bool(false), "\(path) must forbid additional properties")
            }
        }
        // `upstream_tls` came later and is written only when present, so older records stay valid.
        #expect(optional.sorted() == [".events[].octets", ".upstream_tls"])
    }

    @Test func schemaEnumsListEveryModelCase() throws {
        let walker = SchemaWalker(root: try Self.parse(try Self.schemaBytes()))
        func cases<E: CaseIterable & RawRepresentable>(_: E.Type) -> [String] where E.RawValue == String {
            E.allCases.map(\.rawValue)
        }
        let table: [(String, [String])] = [
            ("source", cases(SessionRecord.Source.self)),
            ("tls.mode", cases(SessionRecord.TLS.Mode.self)),
            ("auth.result", cases(SessionRecord.Auth.Result.self)),
            ("transactions[].data.command", cases(SessionRecord.DataTransfer.Command.self)),
            ("transactions[].outcome", cases(SessionRecord.TransactionOutcome.self)),
            ("events[].from", cases(SessionRecord.Party.self)),
            ("events[].to", cases(SessionRecord.Party.self)),
            ("outcome", cases(SessionRecord.SessionOutcome.self)),
            ("close.by", cases(SessionRecord.Party.self)),
            ("close.reason", cases(SessionRecord.Close.Reason.self)),
            ("upstream_tls.certificate", cases(SessionRecord.UpstreamTLS.Certificate.self)),
        ]
        for (path, expected) in table {
            let values = walker.enumValues(atPath: path)
            #expect(values.filter { $0 != "null" } == expected, "\(path)")
        }
    }

    static let pythonJSONSchemaAvailable: Bool = {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else { return false }
        return (try? runPython(script: "import jsonschema", arguments: []).status) == 0
    }()

    static func runPython(script: String, arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    static let validatorScript = """
        import json, sys, jsonschema
        schema = json.load(open(sys.argv[1]))
        cls = jsonschema.Draft202012Validator
        cls.check_schema(schema)
        validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
        bad = 0
        for number, line in enumerate(open(sys.argv[2], encoding="utf-8"), 1):
            for error in validator.iter_errors(json.loads(line)):
                bad += 1
                print("line %d: %s: %s" % (number, "/".join(map(str, error.absolute_path)), error.message))
        sys.exit(1 if bad else 0)
        """

    static func validate(lines: [String]) throws -> (status: Int32, output: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("smtpscope-schema-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(lines.map { $0 + "\n" }.joined().utf8).write(to: file)
        return try runPython(script: validatorScript, arguments: [schemaPath, file.path])
    }

    @Test(.enabled(if: pythonJSONSchemaAvailable, "needs /usr/bin/python3 with the jsonschema module (Debian: python3-jsonschema)"))
    func encodedRecordsValidateAgainstTheSchemaWithPythonJSONSchema() throws {
        let result = try Self.validate(lines: Fixtures.all.map(SessionRecordEncoder.jsonLine))
        #expect(result.status == 0, "\(result.output)")
    }

    @Test(
        .enabled(if: pythonJSONSchemaAvailable, "needs /usr/bin/python3 with the jsonschema module (Debian: python3-jsonschema)"),
        arguments: [
            (#""enhanced":"2.1.0""#, #""enhanced":"6.1.0""#),
            (#""start":"2026-11-29T06:45:01.123456Z""#, #""start":"2026-11-29T06:45:01Z""#),
            (#""sha256":"9f86"#, #""sha256":"9F86"#),
            (#""outcome":"delivered""#, #""outcome":"sent""#),
            (#""code":235"#, #""code":"235""#),
            (#""rewritten_to":"alice@example.com"}"#, #""rewritten_to":"alice@example.com","extra":1}"#),
            (#""ip":"203.0.113.7""#, #""ip":"mx.example""#),
            (#""port":25}"#, #""port":65536}"#),
            (#","bytes":{"client":2048,"server":512}"#, ""),
        ]
    )
    func schemaRejectsWhatTheEncoderNeverWrites(original: String, replacement: String) throws {
        let line = SessionRecordEncoder.jsonLine(Fixtures.deliveredProxy)
        let mutated = line.replacingFirst(original, with: replacement)
        #expect(mutated != line)
        let result = try Self.validate(lines: [mutated])
        #expect(result.status == 1, "\(result.output)")
    }
}

/// Walks encoded JSON alongside the schema, following `$ref` (to `#/$defs/...`) and `anyOf`.
struct SchemaWalker {
    let root: JSONValue

    func member(_ value: JSONValue, _ key: String) -> JSONValue? {
        guard case .object(let members) = value else { return nil }
        return members.first { $0.key == key }?.value
    }

    func keys(_ value: JSONValue?) -> [String] {
        guard let value, case .object(let members) = value else { return [] }
        return members.map(\.key)
    }

    /// The concrete alternatives a schema node stands for.
    func alternatives(_ node: JSONValue) -> [JSONValue] {
        if case .string(let ref)? = member(node, "$ref"), ref.hasPrefix("#/$defs/") {
            let name = String(ref.dropFirst("#/$defs/".count))
            guard let target = member(root, "$defs").flatMap({ member($0, name) }) else { return [] }
            return alternatives(target)
        }
        if case .array(let options)? = member(node, "anyOf") {
            return options.flatMap(alternatives)
        }
        return [node]
    }

    func check(_ value: JSONValue, against node: JSONValue, path: String, seen: inout Set<String>) -> [String] {
        let options = alternatives(node)
        switch value {
        case .object(let members):
            guard let schema = options.first(where: { member($0, "properties") != nil || member($0, "additionalProperties") != nil }) else {
                return ["\(path): object where the schema has none"]
            }
            var problems: [String] = []
            let properties = member(schema, "properties")
            let declaredOrder = keys(properties)
            let written = members.map(\.key).filter { declaredOrder.contains($0) }
            if written != declaredOrder.filter({ written.contains($0) }) {
                problems.append("\(path): keys \(written) not in schema order \(declaredOrder)")
            }
            for (key, child) in members {
                let childPath = path + "." + key
                if let sub = properties.flatMap({ member($0, key) }) {
                    seen.insert(childPath)
                    problems += check(child, against: sub, path: childPath, seen: &seen)
                } else if let additional = member(schema, "additionalProperties"), additional != .bool(false) {
                    seen.insert(path + ".*")
                    problems += check(child, against: additional, path: path + ".*", seen: &seen)
                } else {
                    problems.append("\(childPath): not in the schema")
                }
            }
            return problems
        case .array(let elements):
            guard let items = options.lazy.compactMap({ member($0, "items") }).first else {
                return ["\(path): array where the schema has none"]
            }
            return elements.flatMap { check($0, against: items, path: path + "[]", seen: &seen) }
        default:
            return []
        }
    }

    func declaredPaths(_ node: JSONValue, path: String) -> Set<String> {
        var paths = Set<String>()
        for option in alternatives(node) {
            if let properties = member(option, "properties") {
                for key in keys(properties) {
                    paths.insert(path + "." + key)
                    if let sub = member(properties, key) { paths.formUnion(declaredPaths(sub, path: path + "." + key)) }
                }
            }
            if let additional = member(option, "additionalProperties"), additional != .bool(false) {
                paths.insert(path + ".*")
                paths.formUnion(declaredPaths(additional, path: path + ".*"))
            }
            if let items = member(option, "items") {
                paths.formUnion(declaredPaths(items, path: path + "[]"))
            }
        }
        return paths
    }

    func forEachObjectSchema(
        _ node: JSONValue, path: String,
        _ body: (String, [String], [String], JSONValue?) -> Void
    ) {
        for option in alternatives(node) {
            if let properties = member(option, "properties") {
                var required: [String] = []
                if case .array(let names)? = member(option, "required") {
                    required = names.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
                }
                body(path, keys(properties), required, member(option, "additionalProperties"))
                for key in keys(properties) {
                    if let sub = member(properties, key) { forEachObjectSchema(sub, path: path + "." + key, body) }
                }
            }
            if let items = member(option, "items") {
                forEachObjectSchema(items, path: path + "[]", body)
            }
        }
    }

    /// `enum` values (as JSON text for null) of the node at a dotted path such as `transactions[].outcome`.
    func enumValues(atPath path: String) -> [String] {
        var nodes = [root]
        for component in path.split(separator: ".") {
            let isArray = component.hasSuffix("[]")
            let key = String(isArray ? component.dropLast(2) : component)
            nodes = nodes.flatMap(alternatives).compactMap { member($0, "properties").flatMap { member($0, key) } }
            if isArray {
                nodes = nodes.flatMap(alternatives).compactMap { member($0, "items") }
            }
        }
        return nodes.flatMap(alternatives).flatMap { option -> [String] in
            guard case .array(let values)? = member(option, "enum") else { return [] }
            return values.map { value in
                switch value {
                case .string(let s): return s
                default: return "null"
                }
            }
        }
    }
}
