import ArgumentParser
import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostfixPolicy
import SMTPRules
import SenderLimits

#if canImport(Glibc)
import Glibc
#endif

/// `smtpscope policy`: the rules and limits as a Postfix policy service (`check_policy_service`).
struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Serve Postfix's SMTPD policy delegation protocol on a rules folder and its limits.",
        discussion: """
            Point Postfix at it with check_policy_service inet:HOST:PORT in the restriction list of each \
            stage the rules use (smtpd_end_of_data_restrictions for message rules, and for counting \
            messages and bytes). Reject and tempfail verdicts become the rule's reply, disconnect a 421, \
            discard DISCARD, quarantine HOLD; anything else DUNNO. Every decision is one \
            smtpscope.policy/1 JSON line. SIGHUP re-reads the rules (counters of limits kept as they were \
            stay); SIGINT or SIGTERM stops.
            """
    )

    static let defaultListen = "127.0.0.1:10040"

    @Option(name: .long, help: ArgumentHelp("Address to listen on, HOST:PORT or [IPv6]:PORT (port 0 picks a free one).", valueName: "HOST:PORT"))
    var listen: String = PolicyCommand.defaultListen

    @Option(name: .long, help: ArgumentHelp("The rules folder.", valueName: "DIR"))
    var rules: String = "rules"

    @Option(name: .long, help: ArgumentHelp("Append each decision as a JSON line to FILE, or - for standard output.", valueName: "FILE|-"))
    var transcripts: String = "-"

    func validate() throws {
        if ListenAddress(parsing: listen) == nil {
            throw ValidationError("--listen takes HOST:PORT or [IPv6]:PORT with a port 0-65535, e.g. \(Self.defaultListen)")
        }
    }

    func run() throws {
        guard let address = ListenAddress(parsing: listen) else { throw ValidationError("bad --listen \(listen)") }
        let ruleSet = try RulesTestCommand.loadOrExit(rules)
        guard let output = PolicyRecordFile(path: transcripts) else {
            throw fail("--transcripts \(transcripts): cannot open for appending: \(String(cString: strerror(errno)))")
        }
        let store = MemoryLimitStore()
        let ledger = LimitLedger(store: store)
        LimitStoreWatch.start(store, on: MultiThreadedEventLoopGroup.singleton.next()) { FileHandleStandardError.write("smtpscope policy: \($0)\n") }
        let server = PolicyServer(
            host: address.host, port: address.port, group: MultiThreadedEventLoopGroup.singleton,
            service: PostfixPolicyService(rules: ruleSet, limits: ledger),
            record: { output.write($0.jsonLine()) },
            problem: { FileHandleStandardError.write("smtpscope policy: \($0)\n") }
        )
        let stop = SignalWaiter(signals: [SIGINT, SIGTERM])
        let bound: SocketAddress
        do {
            bound = try waitFor { try await server.start() }
        } catch {
            throw fail("cannot listen: " + ErrorDescription.listening(on: listen, flag: "--listen", error))
        }
        let directory = rules
        let reload = Self.onSIGHUP {
            let result = RuleSet.load(directory: directory)
            guard result.isValid, let ruleSet = result.ruleSet else {
                let problems = RulesReport.check(result, directory: directory).split(separator: "\n").joined(separator: "; ")
                FileHandleStandardError.write("smtpscope policy: reload: rules not reloaded, keeping the previous ones: \(problems)\n")
                return
            }
            ledger.retain(ruleSet.limits)
            server.replaceService(PostfixPolicyService(rules: ruleSet, limits: ledger))
            FileHandleStandardError.write("smtpscope policy: reload: rules re-read from \(directory)/ (\(ruleSet.ruleCount) rules, \(ruleSet.limits.count) limits)\n")
        }
        let shown = bound.ipAddress.map { $0.contains(":") ? "[\($0)]:\(bound.port ?? 0)" : "\($0):\(bound.port ?? 0)" } ?? listen
        FileHandleStandardError.write(
            "smtpscope policy: listening on \(shown) (check_policy_service inet:\(shown)); rules \(rules)/: \(ruleSet.ruleCount) rules, \(ruleSet.limits.count) limits; decisions to \(transcripts == "-" ? "standard output" : transcripts)\n")
        let signal = stop.wait()
        reload.cancel()
        FileHandleStandardError.write("smtpscope policy: signal \(signal), stopping\n")
        try? waitFor { await server.stop() }
        output.close()
    }

    /// Calls `body` on every SIGHUP until the source is cancelled.
    private static func onSIGHUP(_ body: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
        Glibc.signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "smtpscope.policy.reload"))
        source.setEventHandler(handler: body)
        source.resume()
        return source
    }
}

/// The decisions' JSON Lines file (or standard output), written whole line by line. Lines are
/// written on a queue of their own, so a slow reader of standard output does not hold up the event
/// loops that answer Postfix; past `maxPending` lines waiting, a write waits its turn instead (memory
/// stays bounded, and no decision goes unrecorded).
/// `@unchecked`: the `FILE` pointer is only touched on `queue`, the count only under `lock`.
final class PolicyRecordFile: @unchecked Sendable {
    static let maxPending = 10_000
    private let lock = NIOLock()
    private var file: UnsafeMutablePointer<FILE>?
    private var pending = 0
    private let isStandardOutput: Bool
    private let queue = DispatchQueue(label: "smtpscope.policy.records")

    init?(path: String) {
        isStandardOutput = path == "-"
        // Standard output through a FILE of its own: nothing else writes there while the service runs.
        let handle: UnsafeMutablePointer<FILE>? = isStandardOutput ? fdopen(1, "w") : fopen(path, "a")
        guard let handle else { return nil }
        // The decisions name senders and users, as the session transcripts do.
        if !isStandardOutput { fchmod(fileno(handle), 0o640) }
        file = handle
    }

    func write(_ line: [UInt8]) {
        let backlogged = lock.withLock {
            pending += 1
            return pending > Self.maxPending
        }
        if backlogged {
            queue.sync { self.emit(line) }
        } else {
            queue.async { self.emit(line) }
        }
    }

    /// On `queue` only, which alone touches `file` after `init`.
    private func emit(_ line: [UInt8]) {
        lock.withLock { pending -= 1 }
        guard let file else { return }
        _ = line.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fflush(file)
    }

    /// Writes what is queued, then closes.
    func close() {
        queue.sync {
            if let file { _ = isStandardOutput ? fflush(file) : fclose(file) }
            file = nil
        }
    }
}
