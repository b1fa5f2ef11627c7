import SMTPCore

/// Why a transcript line is not a `smtpscope.session/1` record: the line, the column for JSON syntax
/// errors, the JSON path of the offending value (`transactions[0].rcpt_to[2].reply.code`), and the problem.
public struct SessionRecordDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    /// 1-based octet column, for syntax errors.
    public var column: Int?
    /// Empty for errors about the line as a whole.
    public var path: String
    public var problem: String

    public init(line: Int, column: Int? = nil, path: String = "", problem: String) {
        self.line = line
        self.column = column
        self.path = path
        self.problem = problem
    }

    public var description: String {
        var text = "line \(line)"
        if let column { text += ", column \(column)" }
        if !path.isEmpty { text += ": \(path)" }
        return text + ": " + problem
    }
}

/// Reads `smtpscope.session/1` JSON Lines (`session.v1.schema.json`) back into
/// `SessionRecord`s, for `smtpscope report` and `rules test` over transcript files.
///
/// Strict about what the schema requires (every key present, every type and enumerated value right,
/// `schema` equal to `smtpscope.session/1`) so a damaged file is reported, not misread; keys it does
/// not know are ignored so that later, compatible writers stay readable. Bounded: a line longer than
/// `maximumLineLength` (default 64 MiB) or nested deeper than 32 levels is an error, never a crash.
public struct SessionRecordDecoder: Sendable {
    public static let defaultMaximumLineLength = 64 << 20

    public var maximumLineLength: Int

    public init(maximumLineLength: Int = SessionRecordDecoder.defaultMaximumLineLength) {
        precondition(maximumLineLength > 0, "maximumLineLength must be positive")
        self.maximumLineLength = maximumLineLength
    }

    /// Decodes one line (without its newline; trailing CR and surrounding whitespace are allowed).
    public func decode(line: String, lineNumber: Int = 1) throws(SessionRecordDecodingError) -> SessionRecord {
        var copy = line
        let result = copy.withUTF8 { buffer -> Result<SessionRecord, SessionRecordDecodingError> in
            do throws(SessionRecordDecodingError) {
                return .success(try decode(utf8: buffer, lineNumber: lineNumber))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Decodes one line of octets.
    public func decode(utf8 line: UnsafeBufferPointer<UInt8>, lineNumber: Int = 1) throws(SessionRecordDecodingError) -> SessionRecord {
        guard line.count <= maximumLineLength else {
            throw SessionRecordDecodingError(line: lineNumber, problem: "line longer than \(maximumLineLength) octets")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            throw SessionRecordDecodingError(line: lineNumber, column: error.column, problem: error.problem)
        }
        return try RecordReader(line: lineNumber).record(value)
    }

    /// Decodes every non-blank line of a JSON Lines text, stopping at the first bad line.
    public func decodeAll(_ text: [UInt8], firstLineNumber: Int = 1) throws(SessionRecordDecodingError) -> [SessionRecord] {
        var records: [SessionRecord] = []
        var failure: SessionRecordDecodingError?
        forEachLine(in: text, firstLineNumber: firstLineNumber) { result in
            switch result {
            case .success(let record):
                records.append(record)
                return true
            case .failure(let error):
                failure = error
                return false
            }
        }
        if let failure { throw failure }
        return records
    }

    /// Calls `body` with each non-blank line's record or error, in order, until `body` returns false.
    /// Lines end in LF (a CR before it is whitespace to JSON); blank lines are skipped.
    public func forEachLine(
        in text: [UInt8],
        firstLineNumber: Int = 1,
        _ body: (Result<SessionRecord, SessionRecordDecodingError>) -> Bool
    ) {
        text.withUnsafeBufferPointer { all in
            var lineNumber = firstLineNumber
            var start = 0
            while start < all.count {
                var end = start
                while end < all.count, all[end] != UInt8(ascii: "\n") { end += 1 }
                let line = UnsafeBufferPointer(rebasing: all[start..<end])
                let blank = line.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
                if !blank {
                    let result: Result<SessionRecord, SessionRecordDecodingError>
                    do throws(SessionRecordDecodingError) {
                        result = .success(try decode(utf8: line, lineNumber: lineNumber))
                    } catch {
                        result = .failure(error)
                    }
                    guard body(result) else { return }
                }
                lineNumber += 1
                start = end + 1
            }
        }
    }
}

// MARK: - Mapping JSON to the record

/// Walks a parsed line, turning every mismatch into an error that carries the line and path.
private struct RecordReader {
    let line: Int

    func fail(_ path: String, _ problem: String) -> SessionRecordDecodingError {
        SessionRecordDecodingError(line: line, path: path, problem: problem)
    }

    func record(_ value: JSONValue) throws(SessionRecordDecodingError) -> SessionRecord {
        let o = try object(value, "")
        let schema = try o.string("schema")
        guard schema == SessionRecord.schemaName else {
            throw fail("schema", "is \(quoted(schema)), expected \(quoted(SessionRecord.schemaName))")
        }
        var record = SessionRecord(
            sessionID: try o.string("session_id"),
            source: try o.enumeration("source"),
            start: try o.time("start"),
            end: try o.optional("end") { (v, p) throws(SessionRecordDecodingError) in try time(v, p) },
            client: try o.optional("client", endpoint),
            server: try o.optional("server", endpoint),
            upstream: try o.optional("upstream", endpoint),
            greeting: try o.optional("greeting", reply),
            helo: try o.optional("helo") { (v, p) throws(SessionRecordDecodingError) in
                let h = try object(v, p)
                return SessionRecord.Helo(verb: try h.string("verb"), name: try h.string("name"))
            },
            extensions: try o.optional("extensions", strings),
            tls: try tls(o.require("tls"), o.path("tls")),
            auth: try o.optional("auth") { (v, p) throws(SessionRecordDecodingError) in
                let a = try object(v, p)
                return SessionRecord.Auth(
                    mechanism: try a.string("mechanism"),
                    user: try a.optionalString("user"),
                    result: try a.optional("result") { (v, p) throws(SessionRecordDecodingError) in try enumeration(v, p) },
                    code: try a.optionalInt("code")
                )
            },
            transactions: try o.array("transactions", transaction),
            events: try o.array("events", event),
            outcome: try o.enumeration("outcome"),
            close: try o.optional("close") { (v, p) throws(SessionRecordDecodingError) in
                let c = try object(v, p)
                return SessionRecord.Close(
                    by: try c.optional("by") { (v, p) throws(SessionRecordDecodingError) in try enumeration(v, p) },
                    reason: try c.enumeration("reason")
                )
            },
            anomalies: try o.array("anomalies") { (v, p) throws(SessionRecordDecodingError) in
                let a = try object(v, p)
                return SessionRecord.Anomaly(kind: try a.string("kind"), t: try a.seconds("t"), detail: try a.optionalString("detail"))
            },
            bytes: try {
                () throws(SessionRecordDecodingError) -> SessionRecord.ByteCounts in
                let b = try object(o.require("bytes"), "bytes")
                return SessionRecord.ByteCounts(client: try b.int("client"), server: try b.int("server"))
            }()
        )
        // Session-level verdicts came with schema additions; older records have no such key.
        if o.has("rules") { record.rules = try o.array("rules", verdict) }
        // So did the upstream leg's TLS (proxy mode), written only when there was some.
        record.upstreamTLS = try o.absentOrNull("upstream_tls", upstreamTLS)
        return record
    }

    func endpoint(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> SessionRecord.Endpoint {
        let o = try object(value, path)
        return SessionRecord.Endpoint(ip: try o.string("ip"), port: try o.int("port"))
    }

    func reply(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> SessionRecord.Reply {
        let o = try object(value, path)
        return SessionRecord.Reply(code: try o.int("code"), enhanced: try o.optionalString("enhanced"), text: try o.string("text"))
    }

    func tls(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> SessionRecord.TLS {
        let o = try object(value, path)
        return SessionRecord.TLS(
            mode: try o.enumeration("mode"),
            established: try o.optional("established") { (v, p) throws(SessionRecordDecodingError) in try bool(v, p) },
            version: try o.optionalString("version"),
            cipher: try o.optionalString("cipher"),
            sni: try o.optionalString("sni"),
            failure: try o.optionalString("failure")
        )
    }

    func upstreamTLS(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> SessionRecord.UpstreamTLS {
        let o = try object(value, path)
        return SessionRecord.UpstreamTLS(
            mode: try o.enumeration("mode"),
            established: try bool(o.require("established"), o.path("established")),
            version: try o.optionalString("version"),
            cipher: try o.optionalString("cipher"),
            sni: try o.optionalString("sni"),
            certificate: try o.optional("certificate") { (v, p) throws(SessionRecordDecodingError) in try enumeration(v, p) },
            failure: try o.optionalString("failure")
        )
    }

    func transaction(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> SessionRecord.Transaction {
        let o = try object(value, path)
        return SessionRecord.Transaction(
            mailFrom: try o.optional("mail_from") { (v, p) throws(SessionRecordDecodingError) in
                let m = try object(v, p)
                return SessionRecord.MailFrom(
                    address: try m.optionalString("address"),
                    params: try parameters(m.require("params"), m.path("params")),
                    reply: try m.optional("reply", reply),
                    rewrittenTo: try m.optionalString("rewritten_to")
                )
            },
            rcptTo: try o.array("rcpt_to") { (v, p) throws(SessionRecordDecodingError) in
                let r = try object(v, p)
                return SessionRecord.Recipient(
                    address: try r.optionalString("address"),
                    params: try parameters(r.require("params"), r.path("params")),
                    reply: try r.optional("reply", reply)
                )
            },
            data: try o.optional("data") { (v, p) throws(SessionRecordDecodingError) in
                let d = try object(v, p)
                return SessionRecord.DataTransfer(
                    command: try d.enumeration("command"),
                    size: try d.optionalInt("size"),
                    chunks: try d.int("chunks"),
                    initialReply: try d.optional("initial_reply", reply),
                    reply: try d.optional("reply", reply)
                )
            },
            message: try o.optional("message", message),
            rules: try o.array("rules", verdict),
            outcome: try o.enumeration("outcome")
        )
    }

    func verdict(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> SessionRecord.RuleVerdict {
        let r = try object(value, path)
        return SessionRecord.RuleVerdict(
            rule: try r.string("rule"),
            file: try r.string("file"),
            line: try r.absentOrNull("line") { (v, p) throws(SessionRecordDecodingError) in try int(v, p) },
            stage: try r.string("stage"),
            action: try r.string("action"),
            enforced: try bool(r.require("enforced"), r.path("enforced")),
            mode: try r.absentOrNull("mode") { (v, p) throws(SessionRecordDecodingError) in try enumeration(v, p) },
            detail: try r.absentOrNull("detail") { (v, p) throws(SessionRecordDecodingError) in try string(v, p) }
        )
    }

    func message(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> SessionRecord.Message {
        let o = try object(value, path)
        return SessionRecord.Message(
            messageID: try o.optionalString("message_id"),
            subject: try o.optionalString("subject"),
            from: try strings(o.require("from"), o.path("from")),
            to: try strings(o.require("to"), o.path("to")),
            cc: try strings(o.require("cc"), o.path("cc")),
            date: try o.optionalString("date"),
            size: try o.int("size"),
            sha256: try o.optionalString("sha256"),
            attachments: try o.array("attachments") { (v, p) throws(SessionRecordDecodingError) in
                let a = try object(v, p)
                return SessionRecord.Attachment(
                    filename: try a.optionalString("filename"),
                    contentType: try a.string("content_type"),
                    size: try a.int("size")
                )
            }
        )
    }

    func event(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> SessionRecord.Event {
        let o = try object(value, path)
        let octets: Int?
        if o.has("octets") {
            octets = try o.int("octets")
        } else {
            octets = nil
        }
        return SessionRecord.Event(
            t: try o.seconds("t"),
            from: try o.enumeration("from"),
            to: try o.enumeration("to"),
            text: try o.string("text"),
            octets: octets
        )
    }

    func parameters(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> [SessionRecord.Parameter] {
        guard case .object(let members) = value else { throw fail(path, "expected an object, found \(kind(value))") }
        var result: [SessionRecord.Parameter] = []
        result.reserveCapacity(members.count)
        for member in members {
            switch member.value {
            case .null:
                result.append(SessionRecord.Parameter(keyword: member.key, value: nil))
            case .string(let text):
                result.append(SessionRecord.Parameter(keyword: member.key, value: text))
            default:
                throw fail(path + "." + member.key, "expected a string or null, found \(kind(member.value))")
            }
        }
        return result
    }

    func strings(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> [String] {
        guard case .array(let elements) = value else { throw fail(path, "expected an array, found \(kind(value))") }
        var result: [String] = []
        result.reserveCapacity(elements.count)
        for (i, element) in elements.enumerated() {
            result.append(try string(element, "\(path)[\(i)]"))
        }
        return result
    }

    // MARK: Scalars

    func object(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> ObjectReader {
        guard case .object(let members) = value else { throw fail(path, "expected an object, found \(kind(value))") }
        return ObjectReader(reader: self, members: members, basePath: path)
    }

    func string(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> String {
        guard case .string(let text) = value else { throw fail(path, "expected a string, found \(kind(value))") }
        return text
    }

    func bool(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> Bool {
        guard case .bool(let flag) = value else { throw fail(path, "expected true or false, found \(kind(value))") }
        return flag
    }

    func int(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> Int {
        guard case .number(let text) = value else { throw fail(path, "expected an integer, found \(kind(value))") }
        guard let number = Int(text) else { throw fail(path, "expected an integer, found \(text)") }
        return number
    }

    /// Seconds as written by the encoder (`0.000312`) to exact microseconds; other spellings of a
    /// number (an exponent, more decimals, as a tool such as jq may write) go through `Double`.
    func seconds(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> Int64 {
        guard case .number(let text) = value else { throw fail(path, "expected a number of seconds, found \(kind(value))") }
        if let exact = Self.exactMicroseconds(text) { return exact }
        guard let double = Double(text), double.isFinite, abs(double) < 9.2e12 else {
            throw fail(path, "seconds out of range: \(text)")
        }
        return Int64((double * 1_000_000).rounded())
    }

    static func exactMicroseconds(_ text: String) -> Int64? {
        var utf8 = Substring(text).utf8[...]
        var negative = false
        if utf8.first == UInt8(ascii: "-") {
            negative = true
            utf8 = utf8.dropFirst()
        }
        let whole = utf8.prefix { $0 != UInt8(ascii: ".") }
        let fraction = utf8.dropFirst(whole.count + 1)
        guard !whole.isEmpty, whole.count <= 12, fraction.count <= 6,
              whole.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              fraction.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { return nil }
        var micros: Int64 = 0
        for digit in whole { micros = micros * 10 + Int64(digit - UInt8(ascii: "0")) }
        var fractionDigits = 0
        for digit in fraction {
            micros = micros * 10 + Int64(digit - UInt8(ascii: "0"))
            fractionDigits += 1
        }
        for _ in fractionDigits..<6 { micros *= 10 }
        return negative ? -micros : micros
    }

    func time(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> Timestamp {
        let text = try string(value, path)
        guard let time = RFC3339.parse(text) else { throw fail(path, "not an RFC 3339 date-time: \(quoted(text))") }
        return time
    }

    func enumeration<E: RawRepresentable & CaseIterable>(_ value: JSONValue, _ path: String) throws(SessionRecordDecodingError) -> E
    where E.RawValue == String {
        let text = try string(value, path)
        guard let result = E(rawValue: text) else {
            let allowed = E.allCases.map { quoted($0.rawValue) }.joined(separator: ", ")
            throw fail(path, "unknown value \(quoted(text)), expected one of \(allowed)")
        }
        return result
    }

    func kind(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// A bounded, escaped rendering of untrusted text for error messages.
    func quoted(_ text: String) -> String {
        var out: [UInt8] = []
        JSONOutput.writeString(String(text.prefix(80)), into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// One JSON object with the path that leads to it.
private struct ObjectReader {
    let reader: RecordReader
    let members: [(key: String, value: JSONValue)]
    let basePath: String

    func path(_ key: String) -> String {
        basePath.isEmpty ? key : basePath + "." + key
    }

    func has(_ key: String) -> Bool {
        members.contains { $0.key == key }
    }

    func require(_ key: String) throws(SessionRecordDecodingError) -> JSONValue {
        // Last one wins on a repeated key, as in most JSON readers.
        guard let member = members.last(where: { $0.key == key }) else { throw reader.fail(path(key), "missing key") }
        return member.value
    }

    func string(_ key: String) throws(SessionRecordDecodingError) -> String {
        try reader.string(require(key), path(key))
    }

    func int(_ key: String) throws(SessionRecordDecodingError) -> Int {
        try reader.int(require(key), path(key))
    }

    func seconds(_ key: String) throws(SessionRecordDecodingError) -> Int64 {
        try reader.seconds(require(key), path(key))
    }

    func time(_ key: String) throws(SessionRecordDecodingError) -> Timestamp {
        try reader.time(require(key), path(key))
    }

    func enumeration<E: RawRepresentable & CaseIterable>(_ key: String) throws(SessionRecordDecodingError) -> E
    where E.RawValue == String {
        try reader.enumeration(require(key), path(key))
    }

    func optionalString(_ key: String) throws(SessionRecordDecodingError) -> String? {
        try optional(key) { (v, p) throws(SessionRecordDecodingError) in try reader.string(v, p) }
    }

    func optionalInt(_ key: String) throws(SessionRecordDecodingError) -> Int? {
        try optional(key) { (v, p) throws(SessionRecordDecodingError) in try reader.int(v, p) }
    }

    /// A key that may be missing (added to the schema later) and whose value may be `null`.
    func absentOrNull<T>(
        _ key: String,
        _ transform: (JSONValue, String) throws(SessionRecordDecodingError) -> T
    ) throws(SessionRecordDecodingError) -> T? {
        guard has(key) else { return nil }
        return try optional(key, transform)
    }

    /// A required key whose value may be `null`.
    func optional<T>(
        _ key: String,
        _ transform: (JSONValue, String) throws(SessionRecordDecodingError) -> T
    ) throws(SessionRecordDecodingError) -> T? {
        let value = try require(key)
        if case .null = value { return nil }
        return try transform(value, path(key))
    }

    func array<T>(
        _ key: String,
        _ transform: (JSONValue, String) throws(SessionRecordDecodingError) -> T
    ) throws(SessionRecordDecodingError) -> [T] {
        let value = try require(key)
        guard case .array(let elements) = value else {
            throw reader.fail(path(key), "expected an array, found \(reader.kind(value))")
        }
        var result: [T] = []
        result.reserveCapacity(elements.count)
        for (i, element) in elements.enumerated() {
            result.append(try transform(element, "\(path(key))[\(i)]"))
        }
        return result
    }
}
