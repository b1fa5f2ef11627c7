import SMTPCore
import Testing
@testable import SMTPTranscript

@Suite struct SessionRecordDecoderTests {
    let decoder = SessionRecordDecoder()

    @Test(arguments: Fixtures.all)
    func encodingThenDecodingGivesTheSameRecord(record: SessionRecord) throws {
        let line = SessionRecordEncoder.jsonLine(record)
        let decoded = try decoder.decode(line: line)
        #expect(decoded == record)
        #expect(SessionRecordEncoder.jsonLine(decoded) == line)
    }

    @Test func decodeAllReadsJSONLinesSkippingBlankLinesAndCR() throws {
        var text: [UInt8] = []
        for record in Fixtures.all {
            SessionRecordEncoder.encode(record, into: &text)
            text += Array("\r\n  \n".utf8)
        }
        #expect(try decoder.decodeAll(text) == Fixtures.all)
    }

    @Test func parametersKeepOrderNullsAndRepeats() throws {
        var record = Fixtures.minimal
        let params: [SessionRecord.Parameter] = [
            .init(keyword: "SIZE", value: "1"), .init(keyword: "SMTPUTF8", value: nil), .init(keyword: "SIZE", value: "2"),
        ]
        record.transactions = [.init(mailFrom: .init(address: "a@b", params: params), outcome: .unknown)]
        let decoded = try decoder.decode(line: SessionRecordEncoder.jsonLine(record))
        #expect(decoded.transactions.first?.mailFrom?.params == params)
    }

    @Test func unknownKeysAreIgnoredForForwardCompatibility() throws {
        let line = SessionRecordEncoder.jsonLine(Fixtures.minimal)
            .replacingFirst(#""bytes":{"#, with: #""future":[1,{"x":null}],"bytes":{"later":true,"#)
        #expect(try decoder.decode(line: line) == Fixtures.minimal)
    }

    @Test(arguments: [
        ("0.000001", Int64(1)), ("1e-06", 1), ("2.5E0", 2_500_000), ("0.0000015", 2), ("12", 12_000_000), ("-0.5", -500_000),
    ])
    func secondsAreReadExactlyOrRoundedToMicroseconds(text: String, microseconds: Int64) throws {
        var record = Fixtures.minimal
        record.anomalies = [.init(kind: "capture_gap", t: 0)]
        let line = SessionRecordEncoder.jsonLine(record).replacingFirst(#""t":0.000000"#, with: #""t":"# + text)
        #expect(try decoder.decode(line: line).anomalies.first?.t == microseconds)
    }

    @Test func escapesAndSurrogatePairsAreDecoded() throws {
        let line = SessionRecordEncoder.jsonLine(Fixtures.minimal)
            .replacingFirst(#""session_id":"01JDV7Q8ZK3M5N6P7R8S9T0V1W""#, with: #""session_id":"\u00e9\ud83c\udf89\/\"\\\b\f\n\r\t""#)
        #expect(try decoder.decode(line: line).sessionID == "\u{E9}\u{1F389}/\"\\\u{8}\u{C}\n\r\t")
    }

    /// (mutation of the minimal record's line, expected error text)
    @Test(arguments: [
        (#""schema":"smtpscope.session/1""#, #""schema":"smtpscope.session/2""#,
         #"line 7: schema: is "smtpscope.session/2", expected "smtpscope.session/1""#),
        (#","bytes":{"client":0,"server":0}"#, "", "line 7: bytes: missing key"),
        (#""server":null"#, #""server":{"ip":"192.0.2.1","port":"25"}"#, #"line 7: server.port: expected an integer, found a string"#),
        (#""server":null"#, #""server":{"ip":"192.0.2.1","port":2.5}"#, #"line 7: server.port: expected an integer, found 2.5"#),
        (#""outcome":"incomplete""#, #""outcome":"great""#,
         #"line 7: outcome: unknown value "great", expected one of "incomplete", "tls_failed", "reset", "server_closed", "timeout", "rejected", "tempfail", "completed""#),
        (#""start":"2026-11-29T06:45:01.123456Z""#, #""start":"yesterday""#, #"line 7: start: not an RFC 3339 date-time: "yesterday""#),
        (#""transactions":[]"#, #""transactions":[{"mail_from":null,"rcpt_to":[{"address":"x","params":{},"reply":{"code":"550","enhanced":null,"text":""}}],"data":null,"message":null,"rules":[],"outcome":"rejected"}]"#,
         "line 7: transactions[0].rcpt_to[0].reply.code: expected an integer, found a string"),
        (#""extensions":null"#, #""extensions":["A",1]"#, "line 7: extensions[1]: expected a string, found a number"),
        (#""tls":{"mode":"none","established":null"#, #""tls":{"mode":"none","established":"yes""#, "line 7: tls.established: expected true or false, found a string"),
        (#""events":[]"#, #""events":[{"t":"0","from":"client","to":"server","text":""}]"#, "line 7: events[0].t: expected a number of seconds, found a string"),
        (#""events":[]"#, #""events":[{"t":1e300,"from":"client","to":"server","text":""}]"#, "line 7: events[0].t: seconds out of range: 1e300"),
        (#""auth":null"#, #""auth":{"mechanism":"PLAIN","user":null,"result":null,"code":null,"x":1}"#, ""),
        (#""auth":null"#, #""auth":[]"#, "line 7: auth: expected an object, found an array"),
        (#""transactions":[]"#, #""transactions":[{"mail_from":{"address":"","params":{"SIZE":1},"reply":null,"rewritten_to":null},"rcpt_to":[],"data":null,"message":null,"rules":[],"outcome":"unknown"}]"#,
         "line 7: transactions[0].mail_from.params.SIZE: expected a string or null, found a number"),
    ])
    /// An empty `expected` means the line decodes.
    func schemaErrorsNameLineAndPath(original: String, replacement: String, expected: String) {
        let line = SessionRecordEncoder.jsonLine(Fixtures.minimal).replacingFirst(original, with: replacement)
        #expect(line != SessionRecordEncoder.jsonLine(Fixtures.minimal))
        do {
            _ = try decoder.decode(line: line, lineNumber: 7)
            #expect(expected.isEmpty)
        } catch {
            #expect(error.description == expected)
        }
    }

    @Test(arguments: [
        ("", "line 3, column 1: unexpected end of input"),
        ("{", "line 3, column 2: expected a string key"),
        (#"{"a":}"#, "line 3, column 6: unexpected character"),
        (#"{"a":1,}"#, "line 3, column 8: expected a string key"),
        (#"{"a":1} x"#, "line 3, column 9: unexpected text after the JSON value"),
        (#"{"a":tru}"#, "line 3, column 6: invalid literal"),
        (#"{"a":01}"#, "line 3, column 7: expected ',' or '}'"),
        (#"{"a":-}"#, "line 3, column 7: expected a digit"),
        (#"{"a":1.}"#, "line 3, column 8: expected a digit after '.'"),
        (#"{"a":"x"#, "line 3, column 6: unterminated string"),
        ("{\"a\":\"\u{1}\"}", "line 3, column 7: unescaped control character in string"),
        (#"{"a":"\x"}"#, "line 3, column 8: invalid escape"),
        (#"{"a":"\ud800"}"#, "line 3, column 13: unpaired high surrogate"),
        (#"{"a":"\udc00"}"#, "line 3, column 13: unpaired low surrogate"),
        (#"{"a":"\u12"}"#, #"line 3, column 11: invalid hex digit in \u escape"#),
        ("[1]", "line 3: expected an object, found an array"),
    ])
    func syntaxErrorsNameLineAndColumn(text: String, expected: String) {
        do {
            _ = try decoder.decode(line: text, lineNumber: 3)
            Issue.record("decoded \(text)")
        } catch {
            #expect(error.description == expected)
        }
    }

    @Test func invalidUTF8IsAnErrorNotRepaired() {
        let bytes: [UInt8] = Array(#"{"a":"ok"#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        #expect(throws: SessionRecordDecodingError(line: 1, column: 7, problem: "invalid UTF-8 in string")) {
            try bytes.withUnsafeBufferPointer { (buffer) throws(SessionRecordDecodingError) in
                _ = try decoder.decode(utf8: buffer)
            }
        }
    }

    @Test func deepNestingIsRefusedWithoutRecursingFurther() {
        let text = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: SessionRecordDecodingError(line: 1, column: 33, problem: "nesting deeper than 32")) {
            try decoder.decode(line: text)
        }
    }

    @Test func overlongLinesAreRefused() {
        let small = SessionRecordDecoder(maximumLineLength: 100)
        #expect(throws: SessionRecordDecodingError(line: 2, problem: "line longer than 100 octets")) {
            try small.decode(line: SessionRecordEncoder.jsonLine(Fixtures.minimal), lineNumber: 2)
        }
    }

    @Test func decodeAllStopsAtTheFirstBadLineAndNamesIt() {
        var text: [UInt8] = []
        SessionRecordEncoder.encode(Fixtures.minimal, into: &text)
        text += Array("\n".utf8)
        SessionRecordEncoder.encode(Fixtures.awkward, into: &text)
        text += Array("{\"schema\":1}\n".utf8)
        SessionRecordEncoder.encode(Fixtures.minimal, into: &text)
        #expect(throws: SessionRecordDecodingError(line: 4, path: "schema", problem: "expected a string, found a number")) {
            try decoder.decodeAll(text)
        }
    }

    @Test func forEachLineReportsEveryLineUntilStopped() {
        var text: [UInt8] = Array("x\n".utf8)
        SessionRecordEncoder.encode(Fixtures.minimal, into: &text)
        text += Array("y\nz\n".utf8)
        var seen: [String] = []
        decoder.forEachLine(in: text, firstLineNumber: 10) { result in
            switch result {
            case .success(let record): seen.append(record.sessionID)
            case .failure(let error): seen.append("error \(error.line)")
            }
            return seen.count < 3
        }
        #expect(seen == ["error 10", Fixtures.minimal.sessionID, "error 12"])
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
