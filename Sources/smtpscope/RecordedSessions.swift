import SMTPCapture
import SMTPRules
import SMTPTranscript

#if canImport(Glibc)
import Glibc
#endif

/// Sessions from files that are either captures or transcripts, as `rules test --against` takes
/// them: a file is a capture when it starts with a pcap, pcapng or gzip magic number, and JSON
/// Lines otherwise.
enum RecordedSessions {
    enum Kind {
        case capture
        case transcript
    }

    /// Session ids seeded from the captures' file names, so reading the same captures again gives
    /// the same ids and runs can be diffed.
    static func reproducibleSessionIDs(for captures: [String]) -> SessionIDGenerator {
        SessionIDGenerator(random: DeterministicRandom(seedingFrom: captures.map { String($0.split(separator: "/").last ?? "") }))
    }

    static func kind(of path: String) -> Kind {
        guard let file = fopen(path, "rb") else { return .transcript }
        defer { fclose(file) }
        var magic = [UInt8](repeating: 0, count: 4)
        let count = magic.withUnsafeMutableBytes { fread($0.baseAddress, 1, 4, file) }
        guard count == 4 else { return .transcript }
        let captureMagics: [[UInt8]] = [
            [0xD4, 0xC3, 0xB2, 0xA1], [0xA1, 0xB2, 0xC3, 0xD4],  // pcap, microseconds
            [0x4D, 0x3C, 0xB2, 0xA1], [0xA1, 0xB2, 0x3C, 0x4D],  // pcap, nanoseconds
            [0x0A, 0x0D, 0x0D, 0x0A],  // pcapng section header block
        ]
        if captureMagics.contains(magic) || magic.starts(with: [0x1F, 0x8B]) { return .capture }
        return .transcript
    }

    /// Calls `body` with every session: the captures first, read as one (a session split across
    /// files is joined, as `smtpscope pcap` does), then each transcript file in order. Unreadable
    /// files and malformed transcript lines are errors; the first ten are named on standard error.
    /// A capture's sessions come with what `rules` read of each whole message.
    static func forEach(in files: [String], for rules: [RuleSet] = [], _ body: (CapturedSession) -> Void) throws {
        let captures = files.filter { kind(of: $0) == .capture }
        if !captures.isEmpty {
            // The same ids as `smtpscope pcap` gives the same captures.
            var options = CaptureSessionizer.Options()
            options.recorder.keepMessages(for: rules)
            var reader = CaptureReader(options: options, sessionIDs: reproducibleSessionIDs(for: captures))
            for file in captures {
                do {
                    let source = try PcapSource.openFile(path: file, filter: nil)
                    try reader.read(source, session: body)
                } catch {
                    let message = error.description
                    throw fail(message.hasPrefix(file) ? message : "\(file): \(message)")
                }
            }
            reader.finish(session: body)
        }
        try forEachTranscriptRecord(in: files.filter { kind(of: $0) == .transcript }) { body(CapturedSession(record: $0)) }
    }

    /// The records of transcript files (`-` is standard input), in order. A malformed line is
    /// skipped and counted, the first ten named on standard error; any makes the command fail.
    static func forEachTranscriptRecord(in files: [String], _ body: (SessionRecord) -> Void) throws {
        var problems = 0
        for file in files {
            do {
                try TranscriptFileReader().forEachRecord(inFile: file) { result in
                    switch result {
                    case .success(let record):
                        body(record)
                    case .failure(let error):
                        if problems < 10 { FileHandleStandardError.write("smtpscope: \(file):\(error)\n") }
                        problems += 1
                    }
                    return true
                }
            } catch {
                throw fail("\(file): \(error)")
            }
        }
        if problems > 0 { throw fail("\(problems) lines were not valid records and were skipped") }
    }
}

extension SessionRecorder.Options {
    /// Whole messages kept for the `message` stage of `rules`, their text only when a rule reads
    /// `body` (up to the proxy's own bound, so both read the same text).
    mutating func keepMessages(for rules: [RuleSet]) {
        keepsMessageSummaries = rules.contains { $0.evaluatesMessages }
        if !rules.contains(where: { $0.readsMessageBody }) { messageLimits.maxBodyTextOctets = 0 }
    }
}
