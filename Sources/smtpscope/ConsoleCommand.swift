import ArgumentParser
import Logging
import MessageTrace
import NIOCore
import NIOPosix
import SMTPConsole
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// `smtpscope console`: the web console on an index, until SIGINT or SIGTERM.
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Serve the web console: live sessions, the trace search, a ladder view of each session.",
        discussion: """
            Every request needs the access token: the browser logs in with it at /login (a cookie \
            follows), scripts send 'Authorization: Bearer TOKEN'. Without --console-token-file a \
            token is generated and printed. The console listens on loopback unless told otherwise; \
            it speaks plain HTTP, so anything else should be reached through an SSH tunnel or a \
            TLS reverse proxy.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Address to listen on (default 127.0.0.1:8025; port 0 picks a free one).", valueName: "HOST:PORT"))
    var listen = "127.0.0.1:8025"

    @Option(name: .long, help: ArgumentHelp("The index: a SQLite file or postgres://USER@HOST:PORT/DB (default: ./transcripts/index.sqlite).", valueName: "PATH|postgres://..."))
    var index: String?

    @Option(name: .customLong("console-token-file"), help: ArgumentHelp("A file holding the access token (at least 16 printable characters); default: a new random token, printed.", valueName: "FILE"))
    var tokenFile: String?

    @Option(name: .long, help: ArgumentHelp("The proxy's quarantine folder, for the Quarantine page (list, view, release, delete).", valueName: "DIR"))
    var quarantine: String?

    @Option(name: .long, help: ArgumentHelp("Where a released message goes: the proxy's upstream SMTP server.", valueName: "HOST:PORT"))
    var upstream: String?

    func validate() throws {
        if let upstream, ConsoleAddress(parsing: upstream) == nil {
            throw ValidationError("--upstream \(upstream): expected HOST:PORT, e.g. 127.0.0.1:25")
        }
        if upstream != nil && quarantine == nil {
            throw ValidationError("--upstream serves releases from the quarantine: give --quarantine DIR too")
        }
        if ConsoleAddress(parsing: listen) == nil {
            throw ValidationError("--listen \(listen): expected HOST:PORT, e.g. 127.0.0.1:8025 or [::1]:8025")
        }
        if let index {
            switch IndexLocation.parse(index) {
            case .failure(let problem): throw ValidationError("--index \(index): \(problem.description)")
            case .success(.off): throw ValidationError("--index none: the console needs an index to show")
            case .success: break
            }
        }
    }

    func run() async throws {
        ConsoleLaunch.bootstrapLogging()
        let logger = Logger(label: "smtpscope.console")
        let location = IndexLocation.given(index, default: .sqlite(inDirectory: IndexLocation.defaultDirectory))
        if case .sqlite(let path) = location, access(path, F_OK) != 0 {
            throw fail("no index at \(path): run 'smtpscope index FILE...' on the transcripts, or 'smtpscope proxy', which keeps one")
        }
        let (token, tokenDescription) = try ConsoleLaunch.token(file: tokenFile)
        let address = ConsoleAddress(parsing: listen)!
        ConsoleLaunch.warnIfExposed(address, flag: "--listen")
        let opened: any TraceIndex
        do {
            opened = try location.openForReading()
        } catch {
            throw fail(error.description)
        }
        let store = quarantine.map {
            QuarantineStore(directory: $0, upstream: upstream.flatMap(ConsoleAddress.init(parsing:)), heloName: ConsoleLaunch.heloName())
        }
        let server = ConsoleServer(address: address, token: token, index: ConsoleIndex(opened), quarantine: store, logger: logger, now: TraceClock.now)
        let indexDescription = location.description
        let service = server.service { host, port in
            ConsoleLaunch.say("""
                smtpscope console
                  url:    \(ConsoleLaunch.url(host: host, port: port))
                  token:  \(tokenDescription)
                  index:  \(indexDescription)
                Stop with Ctrl-C or SIGTERM.
                """)
        }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        ))
        do {
            try await group.run()
        } catch {
            throw fail("console: " + ErrorDescription.listening(on: "\(address)", flag: "--listen", error))
        }
    }
}

/// What `console` and `proxy --console` share: the token, the warning, the banner's URL.
enum ConsoleLaunch {
    static func bootstrapLogging() {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
    }

    /// The token and how the banner names it: printed when generated, never when from a file.
    static func token(file: String?) throws -> (ConsoleToken, String) {
        guard let file else {
            let token = ConsoleToken.generate()
            return (token, token.value)
        }
        guard let contents = readFile(file) else {
            throw usageFailure("--console-token-file \(file): cannot read it")
        }
        guard let token = ConsoleToken(fileContents: contents) else {
            throw usageFailure("--console-token-file \(file): expected one token of at least \(ConsoleToken.minimumLength) printable characters, no spaces")
        }
        return (token, "from \(file)")
    }

    static func warnIfExposed(_ address: ConsoleAddress, flag: String) {
        guard !address.isLoopback else { return }
        FileHandleStandardError.write("""
            smtpscope: warning: \(flag) \(address) is not a loopback address: whoever reaches it can try the token, \
            and the console speaks plain HTTP, so the token and every page cross the network in clear. \
            Prefer 127.0.0.1 with an SSH tunnel or a TLS reverse proxy.

            """)
    }

    /// Binds the address once and lets it go: the console's server binds only when its service
    /// runs, and beside the proxy an address already in use must stop the start-up, not end the
    /// proxy later. (Another process can still take the port in between; then the service fails.)
    static func checkListening(_ address: ConsoleAddress) async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .bind(host: address.host, port: address.port)
            .get()
        try await channel.close()
    }

    /// This machine's name, for EHLO when a quarantined message is released.
    static func heloName() -> String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "localhost" }
        let text = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.isEmpty ? "localhost" : text
    }

    static func url(host: String, port: Int) -> String {
        host.contains(":") ? "http://[\(host)]:\(port)/" : "http://\(host):\(port)/"
    }

    static func say(_ text: String) {
        print(text)
        fflush(nil)
    }

    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer[0..<count]
            if bytes.count > 1 << 16 { return nil }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Where a banner line goes: standard output, or standard error when standard output carries
/// records (`--transcripts -`).
enum ConsoleBanner: Sendable {
    case standardOutput
    case standardError

    func write(_ line: String) {
        switch self {
        case .standardOutput: ConsoleLaunch.say(line)
        case .standardError: FileHandleStandardError.write(line + "\n")
        }
    }
}
