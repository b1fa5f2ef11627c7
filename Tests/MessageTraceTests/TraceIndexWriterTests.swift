import Dispatch
import MessageTrace
import SMTPCore
import SMTPTranscript
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The proxy's index writer: batches off the caller's thread, survives an index that fails, and
/// catches up from the transcript files.
@Suite struct TraceIndexWriterTests {
    typealias F = TraceFixtures

    /// Events seen, and a semaphore per kind a test waits for.
    final class Events: Sendable {
        let seen = Mutex<[String]>([])
        let recovered = DispatchSemaphore(value: 0)
        let caughtUp = DispatchSemaphore(value: 0)

        func note(_ event: TraceIndexWriter.Event) {
            switch event {
            case .failed(_, let first): seen.withLock { $0.append(first ? "failed-first" : "failed") }
            case .recovered: seen.withLock { $0.append("recovered") }; recovered.signal()
            case .indexed(let count): seen.withLock { $0.append("indexed \(count)") }
            case .dropped(let count): seen.withLock { $0.append("dropped \(count)") }
            case .caughtUp(let counts, _): seen.withLock { $0.append("caught up \(counts.added)") }; caughtUp.signal()
            case .retained(let deleted): seen.withLock { $0.append("retained \(deleted)") }
            }
        }

        var all: [String] { seen.withLock { $0 } }
    }

    /// Opens the index only after `failures` attempts have failed (a database that is down).
    final class FlakyOpener: Sendable {
        let path: String
        let remaining: Mutex<Int>

        init(path: String, failures: Int) {
            self.path = path
            remaining = Mutex(failures)
        }

        func open() throws -> any TraceIndex {
            let fail = remaining.withLock { remaining -> Bool in
                guard remaining > 0 else { return false }
                remaining -= 1
                return true
            }
            if fail { throw TraceIndexError("the index is down") }
            return try SQLiteTraceIndex(path: path)
        }
    }

    static func records(_ prefix: String, _ count: Int) -> [SessionRecord] {
        (0..<count).map { F.session("\(prefix)\($0)", at: Int64($0), transactions: [F.message(from: "a@example.org", to: [("b@example.net", 250)])]) }
    }

    static func writeTranscript(_ records: [SessionRecord], to path: String, partialTail: Bool = false) {
        let file = fopen(path, "ab")!
        for record in records { fputs(SessionRecordEncoder.jsonLine(record) + "\n", file) }
        if partialTail { fputs("{\"schema\":\"smtpscope.ses", file) }
        fclose(file)
    }

    @Test func queuedRecordsReachTheIndex() throws {
        let directory = F.temporaryDirectory()
        defer { F.remove(directory) }
        let path = directory + "/index.sqlite"
        let events = Events()
        let writer = TraceIndexWriter(open: { try SQLiteTraceIndex(path: path) }, onEvent: { events.note($0) })
        for record in Self.records("Q", 1200) { writer.enqueue(record) }
        #expect(writer.close(timeout: 120))
        let index = try SQLiteTraceIndex(path: path)
        #expect(try index.sessionCount() == 1200)
        var query = TraceQuery(limit: 1)
        query.session = "Q7"
        #expect(try index.search(query).first?.line == SessionRecordEncoder.jsonLine(Self.records("Q", 8)[7]))
    }

    @Test func aFailingIndexIsLoggedOnceAndCatchesUp() throws {
        let directory = F.temporaryDirectory()
        defer { F.remove(directory) }
        let opener = FlakyOpener(path: directory + "/index.sqlite", failures: 3)
        let events = Events()
        var configuration = TraceIndexWriter.Configuration()
        configuration.retryDelay = 0.01
        let writer = TraceIndexWriter(configuration: configuration, open: { try opener.open() }, onEvent: { events.note($0) })
        for record in Self.records("F", 10) { writer.enqueue(record) }
        #expect(events.recovered.wait(timeout: .now() + 120) == .success)
        #expect(writer.close(timeout: 120))
        #expect(events.all.filter { $0.hasPrefix("failed") } == ["failed-first", "failed", "failed"])
        #expect(try SQLiteTraceIndex(path: directory + "/index.sqlite").sessionCount() == 10)
    }

    /// Records past the queue's bound are not lost: they are read again from the transcript files.
    @Test func droppedRecordsComeBackFromTheFiles() throws {
        let directory = F.temporaryDirectory()
        defer { F.remove(directory) }
        let transcript = directory + "/smtpscope-20260110.jsonl"
        let records = Self.records("D", 50)
        Self.writeTranscript(records, to: transcript, partialTail: true)
        let opener = FlakyOpener(path: directory + "/index.sqlite", failures: 5)
        let events = Events()
        var configuration = TraceIndexWriter.Configuration()
        configuration.capacity = 4
        configuration.retryDelay = 0.01
        configuration.transcriptFiles = { TranscriptFileIndexing.transcriptFiles(inDirectory: directory) }
        let writer = TraceIndexWriter(configuration: configuration, open: { try opener.open() }, onEvent: { events.note($0) })
        for record in records { writer.enqueue(record) }
        #expect(events.recovered.wait(timeout: .now() + 120) == .success)
        #expect(writer.close(timeout: 120))
        #expect(events.all.contains("dropped 1"))
        let index = try SQLiteTraceIndex(path: directory + "/index.sqlite")
        #expect(try index.sessionCount() == 50)
        // The unfinished last line is not read, and the next catch-up starts after the last whole line.
        let whole = records.map { SessionRecordEncoder.jsonLine($0).utf8.count + 1 }.reduce(0, +)
        #expect(try index.indexedOctets(ofFile: TranscriptFileIndexing.progressKey(transcript)) == Int64(whole))
    }

    /// `--retain`: sessions older than the age are deleted once the index is open, the rest kept.
    @Test func retentionDeletesOldSessions() throws {
        let directory = F.temporaryDirectory()
        defer { F.remove(directory) }
        let path = directory + "/index.sqlite"
        let index = try SQLiteTraceIndex(path: path)
        // The fixtures' sessions are from January 2026; one is made to have started just now.
        var fresh = Self.records("N", 1)[0]
        fresh.start = Timestamp(microsecondsSinceEpoch: TraceFixtures.now())
        try index.add(Self.records("O", 3).map(F.indexed) + [F.indexed(fresh)])
        let events = Events()
        var configuration = TraceIndexWriter.Configuration()
        configuration.retention = 86_400_000_000
        let writer = TraceIndexWriter(configuration: configuration, open: { try SQLiteTraceIndex(path: path) }, onEvent: { events.note($0) })
        #expect(writer.close(timeout: 120))
        #expect(events.all.contains("retained 3"))
        #expect(try index.search(TraceQuery()).map(\.sessionID) == ["N0"])
    }

    @Test func startUpReadsOnlyWhatTheFilesAdded() throws {
        let directory = F.temporaryDirectory()
        defer { F.remove(directory) }
        let transcript = directory + "/smtpscope-20260110.jsonl"
        Self.writeTranscript(Self.records("A", 3), to: transcript)
        let index = try SQLiteTraceIndex(path: directory + "/index.sqlite")
        #expect(try TranscriptFileIndexing.index(file: transcript, into: index, resume: true).added == 3)
        Self.writeTranscript(Self.records("B", 2), to: transcript)
        let again = try TranscriptFileIndexing.index(file: transcript, into: index, resume: true)
        #expect(again.read == 2 && again.added == 2)
        #expect(try TranscriptFileIndexing.index(file: transcript, into: index, resume: true).read == 0)
        // Without resuming, everything is read and nothing is new.
        let whole = try TranscriptFileIndexing.index(file: transcript, into: index, resume: false)
        #expect(whole.read == 5 && whole.added == 0)
    }

    @Test func rotatedFilesAreReadInOrder() {
        let directory = F.temporaryDirectory()
        defer { F.remove(directory) }
        for name in ["smtpscope-20260111.jsonl", "smtpscope-20260110.10.jsonl", "smtpscope-20260110.2.jsonl", "smtpscope-20260110.jsonl", "index.sqlite", "other.jsonl"] {
            Self.writeTranscript([], to: directory + "/" + name)
        }
        #expect(TranscriptFileIndexing.transcriptFiles(inDirectory: directory).map { String($0.split(separator: "/").last!) } == [
            "smtpscope-20260110.jsonl", "smtpscope-20260110.2.jsonl", "smtpscope-20260110.10.jsonl", "smtpscope-20260111.jsonl",
        ])
    }
}
