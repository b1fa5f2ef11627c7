import ArgumentParser
import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPProxy

#if canImport(Glibc)
import Glibc
#endif

/// `smtpscope sink`: the built-in accept-everything SMTP server, run on its own.
struct SinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sink",
        abstract: "Run the built-in SMTP server that accepts every message (like Postfix's smtp-sink).",
        discussion: """
            Every well-formed transaction gets 250 2.0.0 Ok: queued as ID. Without --store the content is discarded as it arrives; with --store DIR each message is written to DIR/ID.eml exactly as received (after dot-unstuffing), with its envelope in DIR/ID.json.

            A bare LF, bare CR or NUL in the content is refused with 550 5.5.2. Runs until SIGINT or SIGTERM.
            """
    )

    static let defaultListen = "127.0.0.1:2526"

    @Option(name: .long, help: ArgumentHelp("Address to listen on, HOST:PORT or [IPv6]:PORT (port 0 picks a free one).", valueName: "HOST:PORT"))
    var listen: String = SinkCommand.defaultListen

    @Option(name: .long, help: ArgumentHelp("Keep each accepted message in this directory (created if missing).", valueName: "DIR"))
    var store: String?

    func validate() throws {
        if ListenAddress(parsing: listen) == nil {
            throw ValidationError("--listen takes HOST:PORT or [IPv6]:PORT with a port 0-65535, e.g. \(Self.defaultListen)")
        }
        if let store, store.isEmpty {
            throw ValidationError("--store needs a directory path")
        }
    }

    func run() throws {
        guard let address = ListenAddress(parsing: listen) else { throw ValidationError("bad --listen \(listen)") }
        let sink = SMTPSink(group: MultiThreadedEventLoopGroup.singleton, host: address.host, port: address.port, storeDirectory: store)
        let stop = SignalWaiter(signals: [SIGINT, SIGTERM])
        let bound: SocketAddress
        do {
            bound = try waitFor { try await sink.start() }
        } catch let error as IOError {
            throw fail("cannot listen: " + ErrorDescription.listening(on: listen, flag: "--listen", error))
        } catch where ErrorDescription.isUnknownHost(error) {
            throw usageFailure("cannot listen: " + ErrorDescription.listening(on: listen, flag: "--listen", error))
        } catch {
            throw fail("--store \(store ?? ""): \(ErrorDescription.describe(error))")
        }
        let shown = bound.ipAddress.map { $0.contains(":") ? "[\($0)]:\(bound.port ?? 0)" : "\($0):\(bound.port ?? 0)" } ?? listen
        if let store {
            say("smtpscope sink: listening on \(shown); storing each accepted message as \(store)/ID.eml with its envelope in \(store)/ID.json")
        } else {
            say("smtpscope sink: listening on \(shown); accepting every message and discarding its content (give --store DIR to keep messages)")
        }
        say("smtpscope sink: stop with Ctrl-C or SIGTERM")
        let signal = stop.wait()
        say("smtpscope sink: signal \(signal), stopping")
        do {
            try waitFor { try await sink.stop() }
        } catch {
            throw fail("stopping the sink failed: \(error)")
        }
    }

    private func say(_ line: String) {
        print(line)
        fflush(nil)  // all streams: stdout is block-buffered when it is not a terminal
    }
}

/// `HOST:PORT` or `[IPv6]:PORT`.
struct ListenAddress: Hashable {
    var host: String
    var port: Int

    init?(parsing text: String) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard !hostPart.isEmpty, let port = Int(portPart), (0...65535).contains(port) else { return nil }
        self.host = String(hostPart)
        self.port = port
    }
}

/// Blocks the calling thread until `body` finishes: the CLI's root command is synchronous.
func waitFor<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = OutcomeBox<T>()
    Task {
        let outcome: Result<T, any Error>
        do {
            outcome = .success(try await body())
        } catch {
            outcome = .failure(error)
        }
        box.finish(outcome)
    }
    return try box.wait().get()
}

/// One result handed from a task to a waiting thread.
private final class OutcomeBox<T: Sendable>: Sendable {
    private let outcome = NIOLockedValueBox<Result<T, any Error>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    /// Keeps the first result; a later one (a second Ctrl-C) changes nothing.
    func finish(_ result: Result<T, any Error>) {
        let first = outcome.withLockedValue { stored -> Bool in
            guard case .none = stored else { return false }
            stored = result
            return true
        }
        if first { done.signal() }
    }

    func wait() -> Result<T, any Error> {
        done.wait()
        // finish() stored the result before signalling.
        guard let result = outcome.withLockedValue({ $0 }) else { preconditionFailure("signalled without a result") }
        return result
    }
}

/// Waits for the first of some signals, which are otherwise ignored while it exists.
final class SignalWaiter {
    private var sources: [any DispatchSourceSignal] = []
    private let first = OutcomeBox<Int32>()

    init(signals: [Int32]) {
        let queue = DispatchQueue(label: "smtpscope.sink.signals")
        let first = self.first
        for number in signals {
            Glibc.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { first.finish(.success(number)) }
            source.resume()
            sources.append(source)
        }
    }

    func wait() -> String {
        switch first.wait() {
        case .success(SIGINT): "SIGINT"
        case .success(SIGTERM): "SIGTERM"
        case .success(let other): "\(other)"
        case .failure: "?"
        }
    }
}
