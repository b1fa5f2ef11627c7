import ArgumentParser
import SMTPTranscript

/// `smtpscope show FILE...`: transcript records (written by `proxy` or `pcap`) as the dialogue,
/// in the layout of `pcap --format text`, both legs of a proxy session included.
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print transcript records (JSON Lines from proxy or pcap) as the dialogue, as pcap --format text does."
    )

    @Argument(help: ArgumentHelp("Transcript files (smtpscope.session/1 JSON Lines), or - for standard input.", valueName: "FILE|-"))
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("give one or more transcript files") }
        for file in files where file != "-" && RecordedSessions.kind(of: file) == .capture {
            throw ValidationError("\(file) is a capture, not a transcript: use 'smtpscope pcap --format text \(file)'")
        }
    }

    func run() throws {
        var problems = 0
        for file in files {
            do {
                try TranscriptFileReader().forEachRecord(inFile: file) { result in
                    switch result {
                    case .success(let record):
                        print(TextTranscriptWriter.render(record), terminator: "")
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
