import ArgumentParser
import Dispatch
import NIOCore
import NIOPosix
import SMTPProxy
import SMTPTranscript

#if canImport(Glibc)
import Glibc
#endif

/// `smtpscope proxy`: relay SMTP between clients and an upstream, write a transcript of every
/// session (DESIGN §2 and §5). With no arguments it listens on 127.0.0.1:2525 in front of the
/// built-in sink and writes transcripts to ./transcripts/.
struct ProxyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Relay SMTP to an upstream server and write a transcript of every session.",
        discussion: """
            With no arguments: listen on 127.0.0.1:2525 in front of the built-in sink (an in-process \
            server that accepts and discards mail), write transcripts to ./transcripts/. \
            SIGINT or SIGTERM stops accepting, lets sessions finish for --drain-timeout seconds, \
            writes their transcripts and exits 0.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Address to listen on, HOST:PORT (repeatable).", valueName: "HOST:PORT"))
    var listen: [String] = []

    @Option(name: .long, help: ArgumentHelp("Upstream SMTP server, HOST:PORT (default: the built-in sink).", valueName: "HOST:PORT"))
    var upstream: String?

    @Option(name: .long, help: ArgumentHelp("Where transcripts go: a directory (day- and size-rotated smtpscope-YYYYMMDD.jsonl), a .jsonl file, or '-' for standard output.", valueName: "DIR|FILE|-"))
    var transcripts = "./transcripts"

    @Option(name: .long, help: ArgumentHelp("Certificate chain (PEM) offered to clients, or 'auto' for an ephemeral self-signed one.", valueName: "PEM|auto"))
    var tlsCert: String?

    @Option(name: .long, help: ArgumentHelp("Private key (PEM) for --tls-cert.", valueName: "PEM"))
    var tlsKey: String?

    @Option(name: .long, help: ArgumentHelp("STARTTLS towards clients: offer, require or off (default: offer with --tls-cert, else off).", valueName: "MODE"))
    var clientTLS: String?

    @Option(name: .long, help: ArgumentHelp("STARTTLS towards the upstream: opportunistic, require, verify or off.", valueName: "MODE"))
    var upstreamTLS = "opportunistic"

    @Option(name: .long, help: ArgumentHelp("CA certificates (PEM) for --upstream-tls verify (default: the system's).", valueName: "FILE"))
    var upstreamCA: String?

    @Option(name: .long, help: "The name the proxy uses in its own replies.")
    var hostname = "smtpscope"

    @Option(name: .long, help: "Longest command line in octets, CRLF included.")
    var lineLengthLimit = ProxyLimits().maxCommandLineOctets

    @Option(name: .long, help: "Largest message in octets.")
    var messageSizeLimit = ProxyLimits().maxMessageOctets

    @Option(name: .long, help: "Recipients per message.")
    var recipientLimit = ProxyLimits().maxRecipients

    @Option(name: .long, help: "Error replies per session before 421.")
    var errorLimit = ProxyLimits().maxErrors

    @Option(name: .long, help: "Open client connections in total.")
    var connectionLimit = 1000

    @Option(name: .long, help: "Open client connections per client IP.")
    var connectionsPerClient = 50

    @Option(name: .long, help: "Seconds to wait for the upstream's greeting.")
    var greetingTimeout = ProxyTimeouts().greeting

    @Option(name: .long, help: "Seconds to wait for the upstream's reply to a command.")
    var commandTimeout = ProxyTimeouts().command

    @Option(name: .long, help: "Seconds to wait for the upstream's reply to DATA.")
    var dataTimeout = ProxyTimeouts().dataInitiation

    @Option(name: .long, help: "Seconds between two blocks of message content.")
    var dataBlockTimeout = ProxyTimeouts().dataBlock

    @Option(name: .long, help: "Seconds to wait for the upstream's reply to the end of data.")
    var endOfDataTimeout = ProxyTimeouts().endOfData

    @Option(name: .long, help: "Seconds a client may stay silent between commands.")
    var idleTimeout = ProxyTimeouts().serverIdle

    @Option(name: .long, help: "Seconds to wait for the upstream's TCP connection.")
    var connectTimeout: Int64 = 30

    @Option(name: .long, help: "Seconds sessions may take to finish after SIGINT/SIGTERM.")
    var drainTimeout: Int64 = 30

    func validate() throws {
        for address in listen where HostPort(parsing: address) == nil {
            throw ValidationError("--listen \(address): expected HOST:PORT, e.g. 127.0.0.1:2525 or [::1]:2525")
        }
        if let upstream, HostPort(parsing: upstream) == nil {
            throw ValidationError("--upstream \(upstream): expected HOST:PORT, e.g. 127.0.0.1:25")
        }
        if let clientTLS, ClientTLSMode(rawValue: clientTLS) == nil {
            throw ValidationError("--client-tls \(clientTLS): expected offer, require or off")
        }
        guard let upstreamMode = UpstreamTLSMode(rawValue: upstreamTLS) else {
            throw ValidationError("--upstream-tls \(upstreamTLS): expected opportunistic, require, verify or off")
        }
        if upstreamCA != nil && upstreamMode != .verify {
            throw ValidationError("--upstream-ca is only used with --upstream-tls verify")
        }
        if clientTLSMode != .off && tlsCert == nil {
            throw ValidationError("--client-tls \(clientTLSMode.rawValue) needs a certificate: give --tls-cert PEM --tls-key PEM, or --tls-cert auto")
        }
        if let tlsCert, tlsCert != "auto", tlsKey == nil {
            throw ValidationError("--tls-cert \(tlsCert) needs --tls-key PEM (or use --tls-cert auto)")
        }
        if tlsKey != nil && (tlsCert == nil || tlsCert == "auto") {
            throw ValidationError("--tls-key goes with --tls-cert PEM")
        }
        let positive: [(String, Int64)] = [
            ("--line-length-limit", Int64(lineLengthLimit)), ("--message-size-limit", Int64(messageSizeLimit)),
            ("--recipient-limit", Int64(recipientLimit)), ("--error-limit", Int64(errorLimit)),
            ("--connection-limit", Int64(connectionLimit)), ("--connections-per-client", Int64(connectionsPerClient)),
            ("--greeting-timeout", greetingTimeout), ("--command-timeout", commandTimeout), ("--data-timeout", dataTimeout),
            ("--data-block-timeout", dataBlockTimeout), ("--end-of-data-timeout", endOfDataTimeout),
            ("--idle-timeout", idleTimeout), ("--connect-timeout", connectTimeout),
        ]
        for (flag, value) in positive where value <= 0 {
            throw ValidationError("\(flag) must be a positive number")
        }
        if lineLengthLimit < 512 {
            throw ValidationError("--line-length-limit must be at least 512 (RFC 5321 §4.5.3.1.4)")
        }
        if drainTimeout < 0 {
            throw ValidationError("--drain-timeout must be 0 or more seconds")
        }
    }

    private var clientTLSMode: ClientTLSMode {
        clientTLS.flatMap(ClientTLSMode.init(rawValue:)) ?? (tlsCert == nil ? .off : .offer)
    }

    func run() throws {
        var relay = RelayConfiguration()
        relay.hostname = hostname
        relay.clientTLS = clientTLSMode
        relay.upstreamTLS = UpstreamTLSMode(rawValue: upstreamTLS) ?? .opportunistic
        relay.limits.maxCommandLineOctets = lineLengthLimit
        relay.limits.maxMessageOctets = messageSizeLimit
        relay.limits.maxRecipients = recipientLimit
        relay.limits.maxErrors = errorLimit
        relay.timeouts.greeting = greetingTimeout
        relay.timeouts.command = commandTimeout
        relay.timeouts.dataInitiation = dataTimeout
        relay.timeouts.dataBlock = dataBlockTimeout
        relay.timeouts.endOfData = endOfDataTimeout
        relay.timeouts.serverIdle = idleTimeout

        // Standard output carries records with `--transcripts -`; the banner then goes to stderr.
        let say: (String) -> Void = transcripts == "-" ? { FileHandleStandardError.write($0 + "\n") } : { print($0); fflush(nil) }

        let sink: any TranscriptSink
        let transcriptsDescription: String
        do {
            if transcripts == "-" || transcripts.hasSuffix(".jsonl") || isRegularFile(transcripts) {
                sink = try FileTranscriptSink(path: transcripts)
                transcriptsDescription = transcripts == "-" ? "standard output (JSON Lines)" : "\(transcripts) (JSON Lines, appended)"
            } else {
                sink = try RotatingTranscriptSink(directory: transcripts)
                transcriptsDescription = "\(transcripts)/ (smtpscope-YYYYMMDD.jsonl, rotated by day and size)"
            }
        } catch {
            throw fail("cannot write transcripts: \(error)")
        }

        var server = ProxyServerConfiguration(
            listen: listen.isEmpty ? [HostPort(host: "127.0.0.1", port: 2525)] : listen.compactMap(HostPort.init(parsing:)),
            upstream: HostPort(host: "127.0.0.1", port: 0),
            relay: relay
        )
        server.maxConnections = connectionLimit
        server.maxConnectionsPerClient = connectionsPerClient
        server.upstreamConnectTimeout = connectTimeout
        let tlsDescription: String
        do {
            switch tlsCert {
            case nil:
                tlsDescription = "off (no certificate)"
            case "auto":
                server.clientTLSContext = try ProxyTLS.ephemeralClientLegContext(hostname: hostname)
                tlsDescription = "\(clientTLSMode.rawValue), ephemeral self-signed certificate for \(hostname)"
            case let path?:
                server.clientTLSContext = try ProxyTLS.clientLegContext(certificatePath: path, keyPath: tlsKey ?? "")
                tlsDescription = "\(clientTLSMode.rawValue), certificate \(path)"
            }
            server.upstreamTLSContext = try ProxyTLS.upstreamLegContext(mode: relay.upstreamTLS, caPath: upstreamCA)
        } catch {
            throw fail(error.description)
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let writer = TranscriptWriter(sink: sink) { message in
            FileHandleStandardError.write("smtpscope: transcript write failed: \(message)\n")
        }
        var builtInSink: SMTPSink?
        let upstreamDescription: String
        if let upstream, let target = HostPort(parsing: upstream) {
            server.upstream = target
            server.upstreamServerHostname = Self.isIPAddress(target.host) ? nil : target.host
            upstreamDescription = "\(target)"
        } else {
            let sinkServer = SMTPSink(group: group, host: "127.0.0.1", port: 0, storeDirectory: nil)
            let address: SocketAddress
            do {
                address = try blocking { try await sinkServer.start() }
            } catch {
                throw fail("cannot start the built-in sink: \(error)")
            }
            builtInSink = sinkServer
            server.upstream = HostPort(host: "127.0.0.1", port: address.port ?? 0)
            upstreamDescription = "built-in sink at \(server.upstream) (accepts and discards mail)"
        }

        let proxy = ProxyServer(configuration: server, group: group, policy: AllowAllPolicy(), transcripts: writer)
        let addresses: [SocketAddress]
        do {
            addresses = try blocking { try await proxy.start() }
        } catch {
            throw fail("cannot listen on \(server.listen.map(\.description).joined(separator: ", ")): \(error)")
        }

        say("smtpscope proxy")
        for address in addresses {
            say("  listening:    \(address.ipAddress ?? "?"):\(address.port ?? 0)")
        }
        say("  upstream:     \(upstreamDescription)")
        say("  rules:        none (allow all)")
        say("  transcripts:  \(transcriptsDescription)")
        say("  client TLS:   \(tlsDescription)")
        say("  upstream TLS: \(relay.upstreamTLS.rawValue)\(upstreamCA.map { " (CA \($0))" } ?? "")")
        say("  limits:       line \(lineLengthLimit) octets, message \(messageSizeLimit) octets, \(recipientLimit) recipients, \(connectionLimit) connections (\(connectionsPerClient) per client)")
        say("Stop with Ctrl-C or SIGTERM (sessions get \(drainTimeout) s to finish).")

        waitForTerminationSignal()
        say("smtpscope proxy: draining (up to \(drainTimeout) s)")
        let drainTimeout = self.drainTimeout
        let startedSink = builtInSink
        blocking {
            await proxy.drain(deadline: drainTimeout)
            try? await startedSink?.stop()
            await writer.close()
        }
        try? group.syncShutdownGracefully()
        if writer.failureCount > 0 {
            throw fail("\(writer.failureCount) transcripts could not be written")
        }
    }

    private func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}

/// Blocks until SIGINT or SIGTERM arrives.
private func waitForTerminationSignal() {
    let semaphore = DispatchSemaphore(value: 0)
    let queue = DispatchQueue(label: "smtpscope.signals")
    var sources: [DispatchSourceSignal] = []
    for signalNumber in [SIGINT, SIGTERM] {
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
        source.setEventHandler { semaphore.signal() }
        source.resume()
        sources.append(source)
    }
    semaphore.wait()
    for source in sources { source.cancel() }
}

/// Runs async work from the synchronous command (the main thread is not part of the cooperative pool).
private func blocking<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
    let semaphore = DispatchSemaphore(value: 0)
    let result = ResultBox<T>()
    Task {
        do { result.value = .success(try await work()) } catch { result.value = .failure(error) }
        semaphore.signal()
    }
    semaphore.wait()
    guard let value = result.value else { throw RuntimeFailure(description: "interrupted") }
    return try value.get()
}

private func blocking(_ work: @escaping @Sendable () async -> Void) {
    let semaphore = DispatchSemaphore(value: 0)
    Task {
        await work()
        semaphore.signal()
    }
    semaphore.wait()
}

/// Written once by the task, read after the semaphore: the semaphore orders the accesses.
private final class ResultBox<T: Sendable>: @unchecked Sendable {
    var value: Result<T, any Error>?
}
