import ArgumentParser
import MessageTrace
import SMTPCapture
import SMTPTranscript

#if canImport(Glibc)
import Glibc
#endif

/// `smtpscope index FILE...`: adds transcript files, or captures read as `smtpscope pcap` reads
/// them, to the message trace's index. A session already there (by id) is left as it is, so adding
/// the same files twice changes nothing, and a deleted index is rebuilt from the files.
struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Add transcript files or captures to the message trace's index (see 'smtpscope trace').",
        discussion: """
            Transcript files (JSON Lines, as proxy and pcap write them) are indexed with their lines as \
            written; captures (pcap, pcapng, gzip) are read as 'smtpscope pcap' reads them, with the \
            same session ids. Sessions already in the index are skipped: indexing twice changes nothing.
            """
    )

    @Argument(help: ArgumentHelp("Transcript files (.jsonl) or captures.", valueName: "FILE"))
    var files: [String]

    @Option(name: .long, help: ArgumentHelp("The index: a SQLite file or postgres://USER@HOST:PORT/DB (default: ./transcripts/index.sqlite).", valueName: "PATH|postgres://..."))
    var index: String?

    @Option(name: .long, help: ArgumentHelp("Then delete sessions older than this from the index (e.g. 90d, 24h).", valueName: "AGE"))
    var retain: String?

    func validate() throws {
        if files.isEmpty { throw ValidationError("give one or more transcript files or captures") }
        if let index {
            switch IndexLocation.parse(index) {
            case .failure(let problem): throw ValidationError("--index \(index): \(problem.description)")
            case .success(.off): throw ValidationError("--index none: 'index' needs an index to add to")
            case .success: break
            }
        }
        if let retain, TraceTime.age(retain) == nil {
            throw ValidationError("--retain \(retain): expected an age such as 90d, 24h or 2w")
        }
    }

    func run() throws {
        let location = IndexLocation.given(index, default: .sqlite(inDirectory: IndexLocation.defaultDirectory))
        if case .sqlite(let path) = location { try makeParentDirectory(of: path) }
        let trace: any TraceIndex
        do {
            trace = try location.open()
        } catch {
            throw fail(error.description)
        }
        var counts = TranscriptFileIndexing.Counts()
        let captures = files.filter { RecordedSessions.kind(of: $0) == .capture }
        do {
            var named = 0
            for file in files where RecordedSessions.kind(of: file) == .transcript {
                let added = try TranscriptFileIndexing.index(file: file, into: trace, resume: false) { error in
                    if named < 10 { FileHandleStandardError.write("smtpscope: \(file):\(error)\n") }
                    named += 1
                }
                counts += added
            }
            if !captures.isEmpty { counts += try indexCaptures(captures, into: trace) }
            var retained = ""
            if let retain, let age = TraceTime.age(retain) {
                let deleted = try trace.deleteSessions(startedBefore: TraceClock.now() - age, batch: 500)
                retained = "; \(deleted) sessions older than \(retain) deleted"
            }
            let total = try trace.sessionCount()
            print("\(counts.read) sessions read, \(counts.added) new; \(location.description) holds \(total)\(retained)")
        } catch {
            throw fail("\(error)")
        }
        if counts.invalid > 0 {
            throw fail("\(counts.invalid) lines were not valid records and were skipped")
        }
    }

    /// Captures are read as one, as `smtpscope pcap` reads them, so the ids are the same.
    private func indexCaptures(_ captures: [String], into trace: any TraceIndex) throws -> TranscriptFileIndexing.Counts {
        var counts = TranscriptFileIndexing.Counts()
        var batch: [IndexedSession] = []
        var failure: (any Error)?
        let add: (SessionRecord) -> Void = { record in
            counts.read += 1
            batch.append(IndexedSession(record, line: SessionRecordEncoder.jsonLine(record)))
            guard batch.count >= 1000, failure == nil else { return }
            do { counts.added += try trace.add(batch) } catch { failure = error }
            batch.removeAll(keepingCapacity: true)
        }
        var reader = CaptureReader(sessionIDs: RecordedSessions.reproducibleSessionIDs(for: captures))
        for file in captures {
            do {
                let source = try PcapSource.openFile(path: file, filter: nil)
                try reader.read(source, record: add)
            } catch {
                let message = error.description
                throw RuntimeFailure(description: message.hasPrefix(file) ? message : "\(file): \(message)")
            }
        }
        reader.finish(record: add)
        if let failure { throw failure }
        counts.added += try trace.add(batch)
        return counts
    }
}

/// Creates the index file's directory (`./transcripts/` before the proxy first wrote there).
func makeParentDirectory(of path: String) throws {
    guard let slash = path.lastIndex(of: "/") else { return }
    let directory = String(path[..<slash])
    guard !directory.isEmpty else { return }
    var info = stat()
    if stat(directory, &info) == 0 { return }
    if mkdir(directory, 0o755) != 0 && errno != EEXIST {
        throw fail("cannot create \(directory) for the index: \(String(cString: strerror(errno)))")
    }
}

enum TraceClock {
    /// Microseconds since the epoch.
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1000
    }
}
