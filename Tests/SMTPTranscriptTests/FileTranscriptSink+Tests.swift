import Foundation
import Testing
@testable import SMTPTranscript

@Suite struct FileTranscriptSinkTests {
    @Test func recordsAreAppendedAsJSONLinesThatDecodeBack() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let sink = try FileTranscriptSink(path: dir.file("t.jsonl"))
        for record in Fixtures.all { try sink.write(record) }
        try sink.flush()
        #expect(try SessionRecordDecoder().decodeAll(dir.contents("t.jsonl")) == Fixtures.all)
        try sink.close()
    }

    @Test func reopeningAppendsInsteadOfTruncating() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for record in [Fixtures.minimal, Fixtures.awkward] {
            let sink = try FileTranscriptSink(path: dir.file("t.jsonl"))
            try sink.write(record)
            try sink.close()
        }
        #expect(try SessionRecordDecoder().decodeAll(dir.contents("t.jsonl")) == [Fixtures.minimal, Fixtures.awkward])
    }

    @Test func writesBeyondTheBufferReachTheFileWithoutFlush() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let sink = try FileTranscriptSink(path: dir.file("t.jsonl"), bufferCapacity: 16)
        try sink.write(Fixtures.rejectedCapture)
        try sink.write(Fixtures.minimal)
        // Both lines are longer than the buffer, so each went straight to the file.
        #expect(try SessionRecordDecoder().decodeAll(dir.contents("t.jsonl")) == [Fixtures.rejectedCapture, Fixtures.minimal])
    }

    @Test func droppingTheSinkFlushesIt() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        do {
            let sink = try FileTranscriptSink(path: dir.file("t.jsonl"))
            try sink.write(Fixtures.minimal)
        }
        #expect(try SessionRecordDecoder().decodeAll(dir.contents("t.jsonl")) == [Fixtures.minimal])
    }

    @Test func textFormatWritesTheDialogue() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let sink = try FileTranscriptSink(path: dir.file("t.txt"), format: .text)
        try sink.write(Fixtures.rejectedCapture)
        try sink.write(Fixtures.minimal)
        try sink.close()
        let text = String(decoding: try dir.contents("t.txt"), as: UTF8.self)
        #expect(text == TextTranscriptWriter.render(Fixtures.rejectedCapture) + TextTranscriptWriter.render(Fixtures.minimal))
    }

    @Test func openFailureNamesThePathAndReason() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("missing/t.jsonl")
        #expect(throws: TranscriptFileError(operation: .open, path: path, errno: ENOENT, reason: "No such file or directory")) {
            try FileTranscriptSink(path: path)
        }
    }

    @Test func writingAfterCloseIsAnError() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let sink = try FileTranscriptSink(path: dir.file("t.jsonl"), bufferCapacity: 16)
        try sink.close()
        #expect(throws: TranscriptFileError.self) { try sink.write(Fixtures.minimal) }
    }
}
