import ArgumentParser
import RuleSimulation
import SMTPCapture
import SMTPConsole
import SMTPReport
import SMTPTranscript
import SenderLimits

#if canImport(Glibc)
import Glibc
#endif

/// `smtpscope pcap`: captures in, transcripts and the troubleshooting report out.
struct PcapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pcap",
        abstract: "Read captures (pcap, pcapng, gzip) or a live interface and write one transcript per SMTP session.",
        discussion: """
            Records go to standard output as JSON Lines (schema smtpscope.session/1) unless --report is given, \
            in which case the troubleshooting report goes to standard output and records go only where \
            --transcripts says.
            """
    )

    @Argument(help: ArgumentHelp("Capture files (pcap, pcapng, optionally gzip-compressed).", valueName: "FILE"))
    var files: [String] = []

    @Option(name: .long, help: ArgumentHelp("Capture live from this interface until interrupted (needs CAP_NET_RAW).", valueName: "IFACE"))
    var live: String?

    @Option(name: .long, help: ArgumentHelp("A BPF filter for the capture, e.g. 'tcp port 25'.", valueName: "BPF"))
    var filter: String?

    @Option(name: .long, help: ArgumentHelp("SMTP ports, comma-separated; other ports are recognised by their first bytes.", valueName: "PORTS"))
    var ports: String = "25,465,587,2525"

    @Option(name: .long, help: ArgumentHelp("Where records go: a file (appended) or '-' for standard output.", valueName: "FILE|-"))
    var transcripts: String?

    @Option(name: .long, help: ArgumentHelp("Record format: jsonl or text.", valueName: "jsonl|text"))
    var format: FileTranscriptSink.Format = .jsonLines

    @Flag(name: .long, help: "Print the troubleshooting report: what was delivered, what failed and why.")
    var report = false

    @Option(name: .customLong("report-format"), help: ArgumentHelp("The report as text, or as one self-contained HTML file with charts and a ladder for each session that did not go through (implies --report).", valueName: "text|html"))
    var reportFormat: PcapReportFormat?

    @Flag(name: .long, help: "Replace AUTH user names with a keyed hash (stable within one run).")
    var redactUsers = false

    @Option(name: .long, help: ArgumentHelp("Say in each transcript what this rules folder would have done (nothing is enforced); a summary by rule goes to standard error.", valueName: "DIR"))
    var rules: String?

    func validate() throws {
        if files.isEmpty && live == nil {
            throw ValidationError("give capture files, or --live IFACE")
        }
        if !files.isEmpty && live != nil {
            throw ValidationError("--live reads an interface; do not also give files")
        }
        if parsedPorts == nil {
            throw ValidationError("--ports takes comma-separated port numbers 1-65535, e.g. 25,465,587,2525")
        }
    }

    private var parsedPorts: Set<UInt16>? {
        var ports = Set<UInt16>()
        for part in self.ports.split(separator: ",") {
            guard let port = UInt16(part.trimmingCharacters()), port > 0 else { return nil }
            ports.insert(port)
        }
        return ports.isEmpty ? nil : ports
    }

    func run() throws {
        var options = CaptureSessionizer.Options()
        options.ports = parsedPorts ?? options.ports
        options.implicitTLSPorts = options.ports.contains(465) ? [465] : []
        // Limits replay as sessions complete in the capture (`rules test` orders them by start).
        let simulator = try rules.map { directory in
            let ruleSet = try RulesTestCommand.loadOrExit(directory)
            return RuleSimulator(rules: ruleSet, limits: RulesTestCommand.replayLedger(for: ruleSet))
        }
        // Decoded body text serves only rules that read `body`; a record never carries it. Not
        // collecting it lets the message inspector skip the body's lines.
        options.recorder.keepMessages(for: simulator.map { [$0.rules] } ?? [])
        if redactUsers { options.recorder.userRedactor = UserRedactor.withRandomKey() }

        let report = self.report || reportFormat != nil
        let destination = transcripts ?? (report ? nil : "-")
        let sink: FileTranscriptSink?
        do {
            sink = try destination.map { path throws(TranscriptFileError) in try FileTranscriptSink(path: path, format: format) }
        } catch {
            throw fail("cannot write transcripts: \(error)")
        }
        var rulesSummary = RulesReport.Summary()
        var deliveryReport = report ? DeliveryReport() : nil
        var htmlReport = reportFormat == .html ? HTMLReport() : nil
        var writeFailure: TranscriptFileError?
        let handle: (CapturedSession) -> Void = { captured in
            var record = captured.record
            if let simulator {
                let simulated = simulator.simulate(captured.record, messages: captured.messages)
                rulesSummary.add(simulated)
                record = simulated.record
            }
            deliveryReport?.add(record)
            htmlReport?.add(record)
            guard writeFailure == nil, let sink else { return }
            do throws(TranscriptFileError) {
                try sink.write(record)
            } catch {
                writeFailure = error
            }
        }

        // Offline reads are reproducible: the same captures give the same session ids.
        let sessionIDs = live == nil
            ? RecordedSessions.reproducibleSessionIDs(for: files)
            : SessionIDGenerator()
        var reader = CaptureReader(options: options, sessionIDs: sessionIDs)
        var progress = TerminalProgress()
        var warnings: [String] = []
        if let live {
            let stop = PcapStopFlag()
            LiveCaptureSignals.install(stop)
            let source: PcapSource
            do {
                source = try PcapSource.openLive(interface: live, filter: filter, stopFlag: stop)
                try reader.read(source, session: handle)
            } catch {
                throw Self.failure(error)
            }
        } else {
            for file in files {
                deliveryReport?.noteFile()
                do {
                    let source = try PcapSource.openFile(path: file, filter: filter)
                    try reader.read(source, session: handle) { update in
                        progress.update(bytes: update.bytesRead, total: update.totalBytes, sessions: update.sessions)
                    }
                    if let truncation = reader.summary.truncation {
                        warnings.append("warning: \(truncation)")
                        deliveryReport?.noteTruncation("\(truncation)")
                    }
                } catch {
                    progress.clear()
                    if case .invalidFilter = error { throw Self.failure(error) }
                    let message = error.description
                    throw fail(message.hasPrefix(file) ? message : "\(file): \(message)")
                }
            }
        }
        reader.finish(session: handle)
        progress.clear()
        let unrecognised = reader.summary.unrecognisedFlows
        if unrecognised > 0 {
            deliveryReport?.noteUnrecognisedFlows(unrecognised)
            warnings.append("note: " + DeliveryReport.unrecognisedFlowsText(unrecognised))
        }
        for warning in warnings { FileHandleStandardError.write("smtpscope: \(warning)\n") }
        let damaged = reader.summary.decode.damaged
        if damaged > 0 {
            FileHandleStandardError.write("smtpscope: \(damaged) damaged packets were counted and skipped\n")
        }
        do {
            try sink?.flush()
        } catch {
            throw fail("cannot write transcripts: \(error)")
        }
        if let writeFailure { throw fail("cannot write transcripts: \(writeFailure)") }
        if simulator != nil { FileHandleStandardError.write("rules (\(rules ?? "")), nothing enforced:" + rulesSummary.render()) }
        if let htmlReport, let deliveryReport {
            print(htmlReport.render(text: deliveryReport.render()).rendered, terminator: "")
        } else if let deliveryReport {
            print(deliveryReport.render(), terminator: "")
        }
    }
}

enum PcapReportFormat: String, ExpressibleByArgument {
    case text
    case html
}

extension PcapCommand {
    /// A bad --filter is a usage error (exit 2), named by its flag; other failures exit 1.
    static func failure(_ error: PcapError) -> ExitCode {
        guard case .invalidFilter(let filter, let message) = error else { return fail(error.description) }
        FileHandleStandardError.write(
            "smtpscope: --filter \"\(filter)\" is not a BPF filter libpcap accepts (\(message)); "
                + "see pcap-filter(7), e.g. --filter 'tcp port 25'\n"
        )
        return ExitCode(2)
    }
}

extension FileTranscriptSink.Format: ExpressibleByArgument {}

extension Substring {
    fileprivate func trimmingCharacters() -> Substring {
        var text = self
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return text
    }
}

/// SIGINT and SIGTERM stop a live capture cleanly, so open sessions are flushed.
enum LiveCaptureSignals {
    nonisolated(unsafe) private static var flag: PcapStopFlag?

    static func install(_ stop: PcapStopFlag) {
        flag = stop
        signal(SIGINT) { _ in LiveCaptureSignals.flag?.requestStop() }
        signal(SIGTERM) { _ in LiveCaptureSignals.flag?.requestStop() }
    }
}
