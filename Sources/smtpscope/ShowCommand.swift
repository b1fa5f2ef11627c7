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
        try RecordedSessions.forEachTranscriptRecord(in: files) { record in
            print(TextTranscriptWriter.render(record), terminator: "")
        }
    }
}
