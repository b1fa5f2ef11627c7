import ArgumentParser
import RuleSimulation
import SMTPCapture
import SMTPRules
import SMTPTranscript
import SenderLimits

/// `smtpscope rules`: check a rules folder, and try it on recorded traffic (rules/README.md).
struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Check a rules folder, or show what it would do to captured or recorded sessions.",
        subcommands: [RulesCheckCommand.self, RulesTestCommand.self]
    )
}

/// `smtpscope rules check DIR`: every problem with `file:line:col` and a hint, then the examples.
struct RulesCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Find every problem in a rules folder and run its example blocks. Exit 2 when any is found."
    )

    @Argument(help: ArgumentHelp("The rules folder (its *.rules files load in name order).", valueName: "DIR"))
    var directory: String

    func run() throws {
        let result = RuleSet.load(directory: directory)
        print(RulesReport.check(result, directory: directory), terminator: "")
        if !result.isValid { throw ExitCode(2) }
    }
}

/// `smtpscope rules test DIR --against FILE...`: what the rules would have done, nothing enforced.
struct RulesTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Show what a rules folder would do to the sessions in captures or transcript files.",
        discussion: """
            Nothing is enforced. Each session with a verdict is listed with what would have ended a \
            stage, then a summary by rule. With --diff OLD_DIR, only the sessions whose verdicts differ \
            between OLD_DIR and DIR are listed: try a policy change on last week's traffic before \
            deploying it. In a capture, `message` rules see each whole message, as the proxy does. A \
            transcript file keeps only Subject, From, To, Cc, Date and Message-ID and no body text: a rule \
            that reads more is listed as not judged.
            """
    )

    @Argument(help: ArgumentHelp("The rules folder to try.", valueName: "DIR"))
    var directory: String

    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp("Captures (pcap, pcapng, gzip) or transcript files (JSON Lines).", valueName: "FILE"))
    var against: [String] = []

    @Option(name: .long, help: ArgumentHelp("Compare with this rules folder and list the sessions whose verdicts change.", valueName: "OLD_DIR"))
    var diff: String?

    @Option(name: .long, help: ArgumentHelp("text (default), or jsonl: each session's transcript with its verdicts.", valueName: "text|jsonl"))
    var format: FileTranscriptSink.Format = .text

    func validate() throws {
        if against.isEmpty { throw ValidationError("give the traffic to test against: --against FILE...") }
        if diff != nil && format == .jsonLines { throw ValidationError("--diff prints a text list; leave out --format jsonl") }
    }

    func run() throws {
        let new = try Self.loadOrExit(directory)
        let old = try diff.map(Self.loadOrExit)
        let simulator = RuleSimulator(rules: new, limits: Self.replayLedger(for: new))
        let previous = old.map { RuleSimulator(rules: $0, limits: Self.replayLedger(for: $0)) }
        var summary = RulesReport.Summary()
        var comparison = RuleSetComparison()
        let sink = format == .jsonLines ? try? FileTranscriptSink(path: "-", format: .jsonLines) : nil
        var writeFailure: TranscriptFileError?
        // The old rules may read more of a message than the new ones: keep what either reads.
        let readers = old.map { [new, $0] } ?? [new]
        // Limits count in time order: the sessions are replayed in the order they started.
        let inTimeOrder = !new.limits.isEmpty || old?.limits.isEmpty == false
        var held: [CapturedSession] = []
        func replay(_ session: CapturedSession) {
            let simulated = simulator.simulate(session.record, messages: session.messages)
            summary.add(simulated)
            if let previous {
                comparison.compare(old: previous.simulate(session.record, messages: session.messages), new: simulated)
            } else if let sink {
                do throws(TranscriptFileError) {
                    if writeFailure == nil { try sink.write(simulated.record) }
                } catch {
                    writeFailure = error
                }
            } else if let text = RulesReport.session(simulated) {
                print(text, terminator: "")
            }
        }
        try RecordedSessions.forEach(in: against, for: readers) { session in
            if inTimeOrder { held.append(session) } else { replay(session) }
        }
        for session in held.enumerated().sorted(by: { ($0.element.record.start, $0.offset) < ($1.element.record.start, $1.offset) }) {
            replay(session.element)
        }
        do throws(TranscriptFileError) {
            try sink?.flush()
        } catch {
            writeFailure = error
        }
        if let writeFailure { throw fail("cannot write transcripts: \(writeFailure)") }
        if diff != nil {
            print(RulesReport.comparison(comparison, old: diff ?? "", new: directory), terminator: "")
        } else if sink == nil {
            print(summary.render(), terminator: "")
        }
    }

    /// Counters for a replay of `rules`' limits, on the records' own times; nil without limits.
    static func replayLedger(for rules: RuleSet) -> LimitLedger? {
        rules.limits.isEmpty ? nil : LimitLedger(store: MemoryLimitStore(maxCounters: 10_000_000))
    }

    /// The compiled rules, or the check report and exit 2.
    static func loadOrExit(_ directory: String) throws -> RuleSet {
        let result = RuleSet.load(directory: directory)
        guard result.isValid, let rules = result.ruleSet else {
            FileHandleStandardError.write(RulesReport.check(result, directory: directory))
            throw ExitCode(2)
        }
        return rules
    }
}
