import ArgumentParser
import SMTPReport
import SMTPTranscript

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
        var problems = 0
        for file in files {
            report.noteFile()
            var skipped = 0
            // Streamed: memory is bounded by one record's line, however large the file.
            do {
                try TranscriptFileReader().forEachRecord(inFile: file) { result in
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
            } catch {
                throw fail("\(file): \(error)")
            }
            if skipped > 0 { report.noteSkippedRecords(skipped) }
        }
        print(format == .json ? report.renderJSON() : report.render(), terminator: "")
        if problems > 0 {
            // The report is printed, but some input could not be read: that is a failure to say.
            throw fail("\(problems) lines were not valid records and were skipped")
        }
    }
}

enum ReportFormat: String, ExpressibleByArgument {
    case text
    case json
}
