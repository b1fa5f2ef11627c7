import Foundation
import Testing
@testable import SMTPTranscript

@Suite struct TranscriptFileReaderTests {
    static func read(_ path: String, maximumLineLength: Int = SessionRecordDecoder.defaultMaximumLineLength) throws -> [String] {
        var seen: [String] = []
        try TranscriptFileReader(decoder: SessionRecordDecoder(maximumLineLength: maximumLineLength)).forEachRecord(inFile: path) { result in
            switch result {
            case .success(let record): seen.append(record.sessionID)
            case .failure(let error): seen.append(error.description)
            }
            return true
        }
        return seen
    }

    @Test func streamsRecordsAcrossChunksAndSkipsOverlongLines() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var text: [UInt8] = []
        SessionRecordEncoder.encode(Fixtures.minimal, into: &text)
        text += Array("\n".utf8)
        // Longer than a read chunk and than the limit: an error for line 3, then reading goes on.
        text += [UInt8](repeating: UInt8(ascii: "x"), count: TranscriptFileReader.chunkSize * 2 + 7) + [UInt8(ascii: "\n")]
        SessionRecordEncoder.encode(Fixtures.rejectedCapture, into: &text)
        text += Array("not json\n".utf8)
        text += Array(SessionRecordEncoder.jsonLine(Fixtures.awkward).utf8)  // no final newline
        try Data(text).write(to: URL(fileURLWithPath: dir.file("t.jsonl")))

        #expect(try Self.read(dir.file("t.jsonl"), maximumLineLength: 4096) == [
            Fixtures.minimal.sessionID,
            "line 3: line longer than 4096 octets",
            Fixtures.rejectedCapture.sessionID,
            "line 5, column 1: invalid literal",
            Fixtures.awkward.sessionID,
        ])
    }

    @Test func bigFilesMatchTheInMemoryDecoder() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var text: [UInt8] = []
        var expected: [String] = []
        for i in 0..<5000 {
            var record = Fixtures.all[i % Fixtures.all.count]
            record.sessionID = "S\(i)"
            SessionRecordEncoder.encode(record, into: &text)
            expected.append(record.sessionID)
        }
        #expect(text.count > TranscriptFileReader.chunkSize)
        try Data(text).write(to: URL(fileURLWithPath: dir.file("t.jsonl")))
        #expect(try Self.read(dir.file("t.jsonl")) == expected)
    }

    @Test func stoppingEarlyIsHonoured() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var text: [UInt8] = []
        for record in Fixtures.all { SessionRecordEncoder.encode(record, into: &text) }
        try Data(text).write(to: URL(fileURLWithPath: dir.file("t.jsonl")))
        var count = 0
        try TranscriptFileReader().forEachRecord(inFile: dir.file("t.jsonl")) { _ in
            count += 1
            return false
        }
        #expect(count == 1)
    }

    @Test func aMissingFileIsAnOpenError() {
        #expect(throws: TranscriptFileError(operation: .open, path: "/nonexistent/t.jsonl", errno: ENOENT, reason: "No such file or directory")) {
            try Self.read("/nonexistent/t.jsonl")
        }
    }
}
