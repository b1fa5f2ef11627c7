import ArgumentParser
import SMTPReport
import SMTPTranscript

#if canImport(Glibc)
import Glibc
#endif

/// `smtpscope report FILE...`: the troubleshooting report from transcript files written by
/// `pcap` or `proxy`.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Summarise transcript files (JSON Lines): deliveries, failures by cause, TLS, timing."
    )

    @Argument(help: ArgumentHelp("Transcript files (smtpscope.session/1 JSON Lines).", valueName: "FILE"))
    var files: [String]

    @Option(name: .long, help: ArgumentHelp("Output format: text, or json (one object, for scripts).", valueName: "text|json"))
    var format: ReportFormat = .text

    func validate() throws {
        if files.isEmpty { throw ValidationError("give one or more transcript files") }
        for file in files where RecordedSessions.kind(of: file) == .capture {
            throw ValidationError("\(file) is a capture, not a transcript: use 'smtpscope pcap --report \(file)'")
        }
    }

    func run() throws {
        var report = DeliveryReport()
        let decoder = SessionRecordDecoder()
        var problems = 0
        for file in files {
            guard let bytes = readWholeFile(file) else {
                throw fail("\(file): cannot read: \(String(cString: strerror(errno)))")
            }
            report.noteFile()
            var skipped = 0
            decoder.forEachLine(in: bytes) { result in
                switch result {
                case .success(let record):
                    report.add(record)
                case .failure(let error):
                    skipped += 1
                    if problems < 10 { FileHandleStandardError.write("smtpscope: \(file):\(error)\n") }
                    problems += 1
                }
                return true
            }
            if skipped > 0 { report.noteSkippedRecords(skipped) }
        }
        print(format == .json ? report.renderJSON() : report.render(), terminator: "")
        if problems > 0 {
            // The report is printed, but some input could not be read: that is a failure to say.
            throw fail("\(problems) lines were not valid records and were skipped")
        }
    }

    private func readWholeFile(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count > 0 { bytes.append(contentsOf: chunk[..<count]) }
            if count < chunk.count { break }
        }
        return ferror(file) == 0 ? bytes : nil
    }
}

enum ReportFormat: String, ExpressibleByArgument {
    case text
    case json
}
