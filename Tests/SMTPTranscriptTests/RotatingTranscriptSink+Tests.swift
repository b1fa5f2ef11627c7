import Foundation
import SMTPCore
import Testing
@testable import SMTPTranscript

@Suite struct RotatingTranscriptSinkTests {
    static func record(_ id: String, endingAt end: String?, start: String = "2026-11-29T06:45:01.123456Z") -> SessionRecord {
        var record = Fixtures.minimal
        record.sessionID = id
        record.start = RFC3339.parse(start) ?? Fixtures.start
        record.end = end.flatMap { RFC3339.parse($0) }
        return record
    }

    static func ids(_ dir: TemporaryDirectory, _ name: String) throws -> [String] {
        try SessionRecordDecoder().decodeAll(dir.contents(name)).map(\.sessionID)
    }

    @Test(arguments: [
        (RFC3339.CivilDate(year: 2026, month: 11, day: 29), 0, "smtpscope-20261129.jsonl"),
        (RFC3339.CivilDate(year: 2026, month: 1, day: 2), 1, "smtpscope-20260102.1.jsonl"),
        (RFC3339.CivilDate(year: 999, month: 12, day: 31), 12, "smtpscope-09991231.12.jsonl"),
    ])
    func fileNamesCarryTheDayAndRotationIndex(day: RFC3339.CivilDate, index: Int, expected: String) {
        #expect(RotatingTranscriptSink.fileName(day: day, index: index) == expected)
    }

    @Test func recordsAreFiledByTheUTCDayTheSessionEnded() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let sink = try RotatingTranscriptSink(directory: dir.path)
        try sink.write(Self.record("A", endingAt: "2026-11-29T23:59:59.999999Z"))
        try sink.write(Self.record("B", endingAt: "2026-11-30T00:00:00.000000Z"))
        try sink.write(Self.record("C", endingAt: nil, start: "2026-11-30T10:00:00.000000Z"))
        // A late writer for the previous day goes back to that day's file.
        try sink.write(Self.record("D", endingAt: "2026-11-29T23:59:59.000000Z", start: "2026-11-29T23:00:00.000000Z"))
        try sink.close()
        #expect(try dir.names() == ["smtpscope-20261129.jsonl", "smtpscope-20261130.jsonl"])
        #expect(try Self.ids(dir, "smtpscope-20261129.jsonl") == ["A", "D"])
        #expect(try Self.ids(dir, "smtpscope-20261130.jsonl") == ["B", "C"])
    }

    @Test func filesRotateBeforeTheyWouldExceedTheSizeLimit() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let lineLength = SessionRecordEncoder.jsonLine(Self.record("A", endingAt: nil)).utf8.count + 1
        let sink = try RotatingTranscriptSink(directory: dir.path, maximumFileBytes: lineLength * 2)
        for id in ["A", "B", "C", "D", "E"] {
            try sink.write(Self.record(id, endingAt: nil))
        }
        #expect(sink.currentPath == dir.file("smtpscope-20261129.2.jsonl"))
        try sink.close()
        #expect(try dir.names() == ["smtpscope-20261129.1.jsonl", "smtpscope-20261129.2.jsonl", "smtpscope-20261129.jsonl"])
        #expect(try Self.ids(dir, "smtpscope-20261129.jsonl") == ["A", "B"])
        #expect(try Self.ids(dir, "smtpscope-20261129.1.jsonl") == ["C", "D"])
        #expect(try Self.ids(dir, "smtpscope-20261129.2.jsonl") == ["E"])
        for name in try dir.names() {
            #expect(try dir.contents(name).count <= lineLength * 2)
        }
    }

    @Test func aRecordLargerThanTheLimitGetsAFileOfItsOwn() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let sink = try RotatingTranscriptSink(directory: dir.path, maximumFileBytes: 100)
        try sink.write(Self.record("A", endingAt: nil))
        try sink.write(Self.record("B", endingAt: nil))
        try sink.close()
        #expect(try Self.ids(dir, "smtpscope-20261129.jsonl") == ["A"])
        #expect(try Self.ids(dir, "smtpscope-20261129.1.jsonl") == ["B"])
    }

    @Test func aRestartResumesInTheDaysLastFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let lineLength = SessionRecordEncoder.jsonLine(Self.record("A", endingAt: nil)).utf8.count + 1
        do {
            let sink = try RotatingTranscriptSink(directory: dir.path, maximumFileBytes: lineLength * 2)
            for id in ["A", "B", "C"] { try sink.write(Self.record(id, endingAt: nil)) }
            try sink.close()
        }
        let sink = try RotatingTranscriptSink(directory: dir.path, maximumFileBytes: lineLength * 2)
        for id in ["D", "E"] { try sink.write(Self.record(id, endingAt: nil)) }
        try sink.close()
        #expect(try Self.ids(dir, "smtpscope-20261129.jsonl") == ["A", "B"])
        #expect(try Self.ids(dir, "smtpscope-20261129.1.jsonl") == ["C", "D"])
        #expect(try Self.ids(dir, "smtpscope-20261129.2.jsonl") == ["E"])
    }

    @Test func missingDirectoriesAreCreated() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let sink = try RotatingTranscriptSink(directory: dir.file("a/b/"))
        try sink.write(Fixtures.rejectedCapture)
        try sink.close()
        #expect(try Self.ids(dir, "a/b/smtpscope-20261129.jsonl") == [Fixtures.rejectedCapture.sessionID])
    }

    @Test func aFileInPlaceOfTheDirectoryIsReported() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        #expect(FileManager.default.createFile(atPath: dir.file("plain"), contents: Data()))
        #expect(throws: TranscriptFileError(operation: .createDirectory, path: dir.file("plain"), errno: ENOTDIR, reason: "not a directory")) {
            try RotatingTranscriptSink(directory: dir.file("plain"))
        }
    }
}
