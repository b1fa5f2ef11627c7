import Testing
@testable import SMTPTranscript

@Suite struct SyslogMessageTests {
    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func aCompletedSessionIsMailInfoWithTheJSONLineAsItsMessage() throws {
        var record = Fixtures.minimal
        record.outcome = .completed
        record.end = Fixtures.at(612_000)
        let message = SyslogMessage(record: record, hostname: "mx1.example", processID: "4242")
        var out: [UInt8] = []
        message.appendMessage(into: &out)
        // <22> = mail (2) * 8 + info (6); TIMESTAMP is the session's end.
        #expect(text(out) == "<22>1 2026-11-29T06:45:01.735456Z mx1.example smtpscope 4242 session - " + SessionRecordEncoder.jsonLine(record))
    }

    @Test func everyOtherOutcomeIsNotice() {
        for outcome in SessionRecord.SessionOutcome.allCases where outcome != .completed {
            var record = Fixtures.minimal
            record.outcome = outcome
            let message = SyslogMessage(record: record, hostname: "h", processID: "1")
            #expect(message.priority == 21, "\(outcome)")
            #expect(text(message.frame).contains("<21>1 "))
        }
    }

    @Test func withoutAnEndTheTimestampIsTheStart() {
        let message = SyslogMessage(record: Fixtures.minimal, hostname: "h", processID: "1")
        #expect(text(message.frame).contains(" 2026-11-29T06:45:01.123456Z h smtpscope 1 session - {"))
    }

    @Test func theFrameIsTheOctetCountOfTheMessageThenASpace() throws {
        for record in Fixtures.all {
            let message = SyslogMessage(record: record, hostname: "mx1.example", processID: "4242")
            let frame = message.frame
            let space = try #require(frame.firstIndex(of: UInt8(ascii: " ")))
            let length = try #require(Int(text(Array(frame[..<space]))))
            let body = Array(frame[(space + 1)...])
            #expect(length == body.count)
            var expected: [UInt8] = []
            message.appendMessage(into: &expected)
            #expect(body == expected)
        }
    }

    @Test func theMessageIsTheJSONLineWithoutLineFeedOrBOM() throws {
        // Non-ASCII text stays UTF-8 and is counted in octets, not characters.
        for record in Fixtures.all {
            let message = SyslogMessage(record: record, hostname: "h", processID: "1")
            var line: [UInt8] = []
            SessionRecordEncoder.encode(record, into: &line)
            #expect(message.json == Array(line.dropLast()))
            #expect(message.json.first == UInt8(ascii: "{"))
            let body = message.frame
            #expect(Array(body.suffix(message.json.count)) == message.json)
            #expect(!body.starts(with: [0xEF, 0xBB, 0xBF]))
            #expect(try SessionRecordDecoder().decodeAll(message.json + [UInt8(ascii: "\n")]) == [record])
        }
    }

    @Test func aLargeRecordIsOneFrame() throws {
        var record = Fixtures.minimal
        record.events = (0..<2000).map { .init(t: Int64($0), from: .client, to: .server, text: "NOOP \($0) ünïcödé") }
        let frame = SyslogMessage(record: record, hostname: "h", processID: "1").frame
        #expect(frame.count > 64 << 10)
        let space = try #require(frame.firstIndex(of: UInt8(ascii: " ")))
        #expect(Int(text(Array(frame[..<space]))) == frame.count - space - 1)
    }

    @Test func headerFieldsArePrintableASCIIOrTheNilValue() {
        var out: [UInt8] = []
        SyslogMessage.appendHeaderField("mx 1.exämple\u{7F}", maximumLength: 255, into: &out)
        #expect(text(out) == "mx1.exmple")
        out = []
        SyslogMessage.appendHeaderField(" \t", maximumLength: 255, into: &out)
        #expect(text(out) == "-")
        out = []
        SyslogMessage.appendHeaderField(String(repeating: "a", count: 300), maximumLength: 255, into: &out)
        #expect(out.count == 255)
        let message = SyslogMessage(record: Fixtures.minimal, hostname: "", processID: "")
        #expect(text(message.frame).contains(" - smtpscope - session - {"))
    }
}

@Suite struct SyslogTargetTests {
    private func parsed(_ text: String) -> SyslogTarget? {
        if case .success(let target) = SyslogTarget.parse(text) { return target }
        return nil
    }

    private func problem(_ text: String) -> String? {
        if case .failure(let error) = SyslogTarget.parse(text) { return error.reason }
        return nil
    }

    @Test func hostsAndPorts() {
        #expect(parsed("syslog+tcp://127.0.0.1:514") == SyslogTarget(host: "127.0.0.1", port: 514))
        #expect(parsed("syslog+tcp://logs.example.com:6514/") == SyslogTarget(host: "logs.example.com", port: 6514))
        #expect(parsed("SYSLOG+TCP://collector:601") == SyslogTarget(host: "collector", port: 601))
        #expect(parsed("syslog+tcp://[::1]:514") == SyslogTarget(host: "::1", port: 514))
        #expect(parsed("syslog+tcp://[2001:db8::5]:10514") == SyslogTarget(host: "2001:db8::5", port: 10514))
    }

    @Test func descriptionsRoundTrip() {
        for text in ["syslog+tcp://127.0.0.1:514", "syslog+tcp://[::1]:514", "syslog+tcp://collector:601"] {
            #expect(parsed(text)?.description == text)
        }
    }

    @Test func malformedURLsSayWhy() {
        #expect(problem("syslog+udp://127.0.0.1:514")?.contains("only syslog+tcp") == true)
        #expect(problem("syslog+tcp://127.0.0.1")?.contains("port is missing") == true)
        #expect(problem("syslog+tcp://127.0.0.1:0")?.contains("not a port") == true)
        #expect(problem("syslog+tcp://127.0.0.1:70000")?.contains("not a port") == true)
        #expect(problem("syslog+tcp://:514")?.contains("host is missing") == true)
        #expect(problem("syslog+tcp://::1:514")?.contains("brackets") == true)
        #expect(problem("syslog+tcp://[::1:514")?.contains("closing bracket") == true)
        #expect(problem("syslog+tcp://[::1]")?.contains("port is missing") == true)
        #expect(problem("syslog+tcp://[host]:514")?.contains("not an IPv6") == true)
        #expect(problem("syslog+tcp://a b:514")?.contains("not a host") == true)
        #expect(problem("syslog+tcp://host/path:514") != nil)
    }

    @Test func onlySchemesLookLikeURLs() {
        #expect(SyslogTarget.looksLikeURL("syslog+tcp://h:1"))
        #expect(SyslogTarget.looksLikeURL("http://h:1"))
        #expect(!SyslogTarget.looksLikeURL("./transcripts"))
        #expect(!SyslogTarget.looksLikeURL("-"))
        #expect(!SyslogTarget.looksLikeURL("out.jsonl"))
    }
}
