import ArgumentParser
import Logging
import MessageTrace
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import SMTPConsole
import SMTPProxy
import SMTPRules
import SMTPTranscript
import SenderLimits
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// `smtpscope proxy`: relay SMTP between clients and an upstream, write a transcript of every session.
/// With no arguments it listens on 127.0.0.1:2525 in front of the built-in sink and writes transcripts
/// to ./transcripts/.
struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Relay SMTP to an upstream server and write a transcript of every session.",
        discussion: """
            With no arguments: listen on 127.0.0.1:2525 in front of the built-in sink (an in-process \
            server that accepts and discards mail), write transcripts to ./transcripts/. \
            SIGINT or SIGTERM stops accepting, lets sessions finish for --drain-timeout seconds, \
            writes their transcripts and exits 0. SIGHUP re-reads --tls-cert/--tls-key and the rules \
            for new sessions; a failed reload keeps the old ones. Open sessions are never dropped.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Address to listen on, HOST:PORT (repeatable); :PORT is every IPv4 address (0.0.0.0:PORT), [::]:PORT every IPv6 one.", valueName: "HOST:PORT"))
    var listen: [String] = []

    @Option(name: .long, help: ArgumentHelp("SMTPS address (TLS from the first octet, RFC 8314), HOST:PORT (repeatable; needs --tls-cert).", valueName: "HOST:PORT"))
    var implicitTLSListen: [String] = []

    @Flag(name: .long, help: "Every client connection starts with a HAProxy PROXY protocol v1 or v2 header; the client is the address it names.")
    var proxyProtocol = false

    @Option(name: .long, help: ArgumentHelp("Seconds a client has to send its whole PROXY protocol header.", valueName: "SECONDS"))
    var proxyProtocolTimeout: Int64 = 10

    @Flag(name: .long, help: "Tell an upstream that offers XCLIENT who the client is (Postfix XCLIENT: ADDR, PORT, HELO, PROTO; NAME is [UNAVAILABLE]).")
    var xclient = false

    @Option(name: .long, help: ArgumentHelp("Serve Prometheus metrics at http://HOST:PORT/metrics.", valueName: "HOST:PORT"))
    var metrics: String?

    @Option(name: .long, help: ArgumentHelp("Serve the web console (see 'smtpscope console') on the proxy's index at http://HOST:PORT/.", valueName: "HOST:PORT"))
    var console: String?

    @Option(name: .customLong("console-token-file"), help: ArgumentHelp("The console's access token, from a file (default: a new random token, printed).", valueName: "FILE"))
    var consoleTokenFile: String?

    @Option(name: .long, help: ArgumentHelp("Upstream SMTP server, HOST:PORT (default: the built-in sink).", valueName: "HOST:PORT"))
    var upstream: String?

    @Flag(name: .long, help: "Transparent gateway: each connection's upstream is the address its client dialled, as an nftables/iptables REDIRECT (SO_ORIGINAL_DST) or TPROXY rule intercepted it. Excludes --upstream.")
    var transparent = false

    @Flag(name: .long, help: "With --transparent under TPROXY: connect upstream from the client's own address (IP_TRANSPARENT; needs CAP_NET_ADMIN).")
    var spoofSource = false

    @Option(name: .long, help: ArgumentHelp("The rules folder (*.rules in name order); default: ./rules when it exists, else no rules. 'none' applies none.", valueName: "DIR|none"))
    var rules: String?

    @Option(name: .long, help: ArgumentHelp("Where quarantined messages go (ID.eml and ID.json).", valueName: "DIR"))
    var quarantine = "./quarantine"

    @Option(name: .long, help: ArgumentHelp("Where transcripts go: a directory (day- and size-rotated smtpscope-YYYYMMDD.jsonl), a .jsonl file, '-' for standard output, or syslog+tcp://HOST:PORT (one RFC 5424 message per session, RFC 6587 octet counting).", valueName: "DIR|FILE|-|syslog+tcp://HOST:PORT"))
    var transcripts = "./transcripts"

    @Option(name: .long, help: ArgumentHelp("The message trace's index ('smtpscope trace'): a SQLite file, postgres://USER@HOST:PORT/DB (shared by several proxies), or none (default: index.sqlite in the --transcripts directory; none for other --transcripts).", valueName: "PATH|postgres://...|none"))
    var index: String?

    @Option(name: .long, help: ArgumentHelp("Delete index rows of sessions older than this, at start-up and hourly (e.g. 90d); the transcript files are not touched.", valueName: "AGE"))
    var retain: String?

    @Option(name: .long, help: ArgumentHelp("Certificate chain (PEM) offered to clients, or 'auto' for an ephemeral self-signed one.", valueName: "PEM|auto"))
    var tlsCert: String?

    @Option(name: .long, help: ArgumentHelp("Private key (PEM) for --tls-cert.", valueName: "PEM"))
    var tlsKey: String?

    @Option(name: .long, help: ArgumentHelp("STARTTLS towards clients: offer, require, passthrough (the client's STARTTLS goes to the upstream and TLS runs end to end, relayed blind) or off (default: offer with --tls-cert, else off).", valueName: "MODE"))
    var clientTLS: String?

    @Option(name: .long, help: ArgumentHelp("STARTTLS towards the upstream: opportunistic, require, verify or off (default: opportunistic; off under --client-tls passthrough).", valueName: "MODE"))
    var upstreamTLS: String?

    @Option(name: .long, help: ArgumentHelp("CA certificates (PEM) for --upstream-tls verify (default: the system's).", valueName: "FILE"))
    var upstreamCA: String?

    @Option(name: .long, help: ArgumentHelp("The name the proxy uses in its own replies.", valueName: "NAME"))
    var hostname = "smtpscope"

    @Option(name: .long, help: ArgumentHelp("Longest command line in octets, CRLF included.", valueName: "OCTETS"))
    var lineLengthLimit = ProxyLimits().maxCommandLineOctets

    @Option(name: .long, help: ArgumentHelp("Largest message in octets.", valueName: "OCTETS"))
    var messageSizeLimit = ProxyLimits().maxMessageOctets

    @Option(name: .long, help: ArgumentHelp("Largest header section of a message in octets (Postfix header_size_limit).", valueName: "OCTETS"))
    var headerSizeLimit = ProxyLimits().maxHeaderSectionOctets

    @Option(name: .long, help: ArgumentHelp("Recipients per message.", valueName: "N"))
    var recipientLimit = ProxyLimits().maxRecipients

    @Option(name: .long, help: ArgumentHelp("Error replies per session before 421.", valueName: "N"))
    var errorLimit = ProxyLimits().maxErrors

    @Option(name: .long, help: ArgumentHelp("Slowest message content accepted, in octets per second (Postfix smtpd_min_data_rate): 421 4.4.2 below it.", valueName: "OCTETS/S"))
    var minDataRate = ProxyLimits().minDataRate

    @Option(name: .long, help: ArgumentHelp("Open client connections in total.", valueName: "N"))
    var connectionLimit = 1000

    @Option(name: .long, help: ArgumentHelp("Open client connections per client IP.", valueName: "N"))
    var connectionsPerClient = 50

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for the upstream's greeting.", valueName: "SECONDS"))
    var greetingTimeout = ProxyTimeouts().greeting

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for the upstream's reply to a command.", valueName: "SECONDS"))
    var commandTimeout = ProxyTimeouts().command

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for the upstream's reply to DATA.", valueName: "SECONDS"))
    var dataTimeout = ProxyTimeouts().dataInitiation

    @Option(name: .long, help: ArgumentHelp("Seconds a client has to send each --min-data-rate × this many octets of message content (and at most between two reads).", valueName: "SECONDS"))
    var dataBlockTimeout = ProxyTimeouts().dataBlock

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for the upstream's reply to the end of data.", valueName: "SECONDS"))
    var endOfDataTimeout = ProxyTimeouts().endOfData

    @Option(name: .long, help: ArgumentHelp("Seconds a client may stay silent between commands.", valueName: "SECONDS"))
    var idleTimeout = ProxyTimeouts().serverIdle

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for the upstream's TCP connection.", valueName: "SECONDS"))
    var connectTimeout: Int64 = 30

    @Option(name: .long, help: ArgumentHelp("Seconds sessions may take to finish after SIGINT/SIGTERM.", valueName: "SECONDS"))
    var drainTimeout: Int64 = 30

    /// A listening address: `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` for every IPv4 address, as
    /// Postfix's `master.cf` and Go's `net.Listen` read it. (Every IPv6 address too would make IPv4
    /// clients `::ffff:` mapped addresses in the records; `[::]:PORT` asks for that explicitly.)
    static func listenAddress(_ text: String) -> HostPort? {
        HostPort(parsing: text.hasPrefix(":") ? "0.0.0.0" + text : text)
    }

    func validate() throws {
        for address in listen where Self.listenAddress(address) == nil {
            throw ValidationError("--listen \(address): expected HOST:PORT, e.g. 127.0.0.1:2525 or [::1]:2525")
        }
        for address in implicitTLSListen where Self.listenAddress(address) == nil {
            throw ValidationError("--implicit-tls-listen \(address): expected HOST:PORT, e.g. 127.0.0.1:465")
        }
        if !implicitTLSListen.isEmpty && tlsCert == nil {
            throw ValidationError("--implicit-tls-listen needs a certificate: give --tls-cert PEM --tls-key PEM, or --tls-cert auto")
        }
        if let metrics, Self.listenAddress(metrics) == nil {
            throw ValidationError("--metrics \(metrics): expected HOST:PORT, e.g. 127.0.0.1:9465")
        }
        if SyslogTarget.looksLikeURL(transcripts), case .failure(let problem) = SyslogTarget.parse(transcripts) {
            throw ValidationError("--transcripts \(transcripts): \(problem); expected a directory, a file, '-' or syslog+tcp://HOST:PORT, e.g. syslog+tcp://127.0.0.1:514")
        }
        if let console, ConsoleAddress(parsing: console) == nil {
            throw ValidationError("--console \(console): expected HOST:PORT, e.g. 127.0.0.1:8025")
        }
        if consoleTokenFile != nil && console == nil {
            throw ValidationError("--console-token-file needs --console HOST:PORT")
        }
        if let index, case .failure(let problem) = IndexLocation.parse(index) {
            throw ValidationError("--index \(index): \(problem.description)")
        }
        if let retain, TraceTime.age(retain) == nil {
            throw ValidationError("--retain \(retain): expected an age such as 90d, 24h or 2w")
        }
        if let upstream, HostPort(parsing: upstream) == nil {
            throw ValidationError("--upstream \(upstream): expected HOST:PORT, e.g. 127.0.0.1:25")
        }
        try validateTransparent()
        if let clientTLS, ClientTLSMode(rawValue: clientTLS) == nil {
            throw ValidationError("--client-tls \(clientTLS): expected offer, require, passthrough or off")
        }
        if let upstreamTLS, UpstreamTLSMode(rawValue: upstreamTLS) == nil {
            throw ValidationError("--upstream-tls \(upstreamTLS): expected opportunistic, require, verify or off")
        }
        if clientTLSMode == .passthrough, let upstreamTLS, upstreamTLSMode != .off {
            throw ValidationError("--upstream-tls \(upstreamTLS) and --client-tls passthrough exclude each other: under passthrough the upstream's STARTTLS is the client's, end to end")
        }
        if upstreamCA != nil && upstreamTLSMode != .verify {
            throw ValidationError("--upstream-ca is only used with --upstream-tls verify")
        }
        if clientTLSMode != .off && clientTLSMode != .passthrough && tlsCert == nil {
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
            ("--header-size-limit", Int64(headerSizeLimit)),
            ("--recipient-limit", Int64(recipientLimit)), ("--error-limit", Int64(errorLimit)),
            ("--min-data-rate", Int64(minDataRate)),
            ("--connection-limit", Int64(connectionLimit)), ("--connections-per-client", Int64(connectionsPerClient)),
            ("--greeting-timeout", greetingTimeout), ("--command-timeout", commandTimeout), ("--data-timeout", dataTimeout),
            ("--data-block-timeout", dataBlockTimeout), ("--end-of-data-timeout", endOfDataTimeout),
            ("--idle-timeout", idleTimeout), ("--connect-timeout", connectTimeout),
            ("--proxy-protocol-timeout", proxyProtocolTimeout),
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

    /// `--transparent` takes each connection's upstream from the connection itself, so nothing
    /// that names another upstream or another destination goes with it.
    private func validateTransparent() throws {
        if spoofSource && !transparent {
            throw ValidationError("--spoof-source needs --transparent: only an intercepted connection has a client address to connect upstream from")
        }
        guard transparent else { return }
        if upstream != nil {
            throw ValidationError("--upstream and --transparent exclude each other: in transparent mode each connection's upstream is its original destination")
        }
        if proxyProtocol {
            throw ValidationError("--proxy-protocol and --transparent exclude each other: behind a load balancer the connection's destination is the proxy itself, and a PROXY header's destination is not trusted to choose the upstream")
        }
        if !implicitTLSListen.isEmpty {
            throw ValidationError("--implicit-tls-listen and --transparent exclude each other: intercepted SMTPS would need implicit TLS towards the original destination, which the proxy does not speak")
        }
    }

    private var clientTLSMode: ClientTLSMode {
        clientTLS.flatMap(ClientTLSMode.init(rawValue:)) ?? (tlsCert == nil ? .off : .offer)
    }

    private var upstreamTLSMode: UpstreamTLSMode {
        upstreamTLS.flatMap(UpstreamTLSMode.init(rawValue:)) ?? (clientTLSMode == .passthrough ? .off : .opportunistic)
    }

    func run() async throws {
        // Logs go to standard error: standard output may carry transcripts (`--transcripts -`).
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "smtpscope.proxy")
        var relay = RelayConfiguration()
        relay.hostname = hostname
        relay.clientTLS = clientTLSMode
        relay.xclient = xclient
        relay.upstreamTLS = upstreamTLSMode
        relay.limits.maxCommandLineOctets = lineLengthLimit
        relay.limits.maxMessageOctets = messageSizeLimit
        relay.limits.maxHeaderSectionOctets = headerSizeLimit
        relay.limits.maxRecipients = recipientLimit
        relay.limits.maxErrors = errorLimit
        relay.limits.minDataRate = minDataRate
        relay.timeouts.greeting = greetingTimeout
        relay.timeouts.command = commandTimeout
        relay.timeouts.dataInitiation = dataTimeout
        relay.timeouts.dataBlock = dataBlockTimeout
        relay.timeouts.endOfData = endOfDataTimeout
        relay.timeouts.serverIdle = idleTimeout
        relay.spool.quarantineDirectory = quarantine

        // Invalid rules never start a proxy (exit 2, every problem with file:line:col).
        let rulesDirectory = self.rulesDirectory
        var policy: any SessionPolicy = AllowAllPolicy()
        var rulesDescription = "none (allow all)"
        // Sender limits' counters: one store for the proxy's life, handed from rule set to rule set
        // on reloads.
        let limitStore = MemoryLimitStore()
        let limitLedger = LimitLedger(store: limitStore)
        var loadedRules: RuleSet?
        if let rulesDirectory {
            let result = RuleSet.load(directory: rulesDirectory)
            guard result.isValid, let ruleSet = result.ruleSet else {
                FileHandleStandardError.write(RulesReport.check(result, directory: rulesDirectory))
                throw ExitCode(2)
            }
            policy = RulesPolicy(rules: ruleSet, limits: limitLedger)
            loadedRules = ruleSet
            rulesDescription = Self.describe(ruleSet, in: rulesDirectory)
        }

        // Standard output carries records with `--transcripts -`; the banner then goes to stderr.
        let say: (String) -> Void = transcripts == "-" ? { FileHandleStandardError.write($0 + "\n") } : { print($0); fflush(nil) }

        let sink: any TranscriptSink
        let transcriptsDescription: String
        // The files the index catches up from, and where its default file goes.
        let transcriptFiles: @Sendable () -> [String]
        var defaultIndex = IndexLocation.off
        do {
            if SyslogTarget.looksLikeURL(transcripts), case .success(let target) = SyslogTarget.parse(transcripts) {
                sink = SyslogTranscriptSink(target: target) { logger.warning("\($0)") }
                transcriptsDescription = "\(target) (RFC 5424 over TCP, octet-counted; up to \(SyslogTranscriptSink.defaultBacklogLimit >> 20) MiB held while the collector is down)"
                transcriptFiles = { [] }
            } else if transcripts == "-" || transcripts.hasSuffix(".jsonl") || isRegularFile(transcripts) {
                sink = try FileTranscriptSink(path: transcripts)
                transcriptsDescription = transcripts == "-" ? "standard output (JSON Lines)" : "\(transcripts) (JSON Lines, appended)"
                let files = transcripts == "-" ? [] : [transcripts]
                transcriptFiles = { files }
            } else {
                sink = try RotatingTranscriptSink(directory: transcripts)
                transcriptsDescription = "\(transcripts)/ (smtpscope-YYYYMMDD.jsonl, rotated by day and size)"
                let directory = transcripts
                transcriptFiles = { TranscriptFileIndexing.transcriptFiles(inDirectory: directory) }
                defaultIndex = .sqlite(inDirectory: directory)
            }
        } catch {
            throw fail("cannot write transcripts: \(error)")
        }

        var server = ProxyServerConfiguration(
            // The default listener stands in only when no listener at all is given.
            listen: listen.isEmpty && implicitTLSListen.isEmpty ? [HostPort(host: "127.0.0.1", port: 2525)] : listen.compactMap(Self.listenAddress),
            upstream: HostPort(host: "127.0.0.1", port: 0),
            relay: relay
        )
        server.implicitTLSListen = implicitTLSListen.compactMap(Self.listenAddress)
        server.proxyProtocol = proxyProtocol
        server.proxyProtocolTimeout = proxyProtocolTimeout
        server.logger = logger
        server.maxConnections = connectionLimit
        server.maxConnectionsPerClient = connectionsPerClient
        server.upstreamConnectTimeout = connectTimeout
        var tlsDescription: String
        let tlsSource: ClientTLSSource?
        do {
            switch tlsCert {
            case nil:
                tlsSource = nil
                tlsDescription = "off (no certificate)"
            case "auto":
                tlsSource = .ephemeral(hostname: hostname)
                tlsDescription = "\(clientTLSMode.rawValue), ephemeral self-signed certificate for \(hostname)"
            case let path?:
                tlsSource = .files(certificate: path, key: tlsKey ?? "")
                tlsDescription = "\(clientTLSMode.rawValue), certificate \(path)"
            }
            if clientTLSMode == .passthrough {
                // The certificate, if any, serves only --implicit-tls-listen.
                tlsDescription = "passthrough: STARTTLS is relayed to the upstream and TLS runs end to end; those sessions are relayed blind, so only connect and helo rules apply to them"
                    + (tlsSource == nil ? "" : " (SMTPS listeners: \(tlsCert == "auto" ? "ephemeral certificate" : "certificate \(tlsCert ?? "")"))")
            }
            server.clientTLSContext = try tlsSource?.makeContext()
            server.upstreamTLSContext = try ProxyTLS.upstreamLegContext(mode: relay.upstreamTLS, caPath: upstreamCA)
        } catch {
            throw fail(error.description)
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        var proxyMetrics: ProxyMetrics?
        var metricsServer: MetricsServer?
        if let metrics, let address = Self.listenAddress(metrics) {
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            proxyMetrics = ProxyMetrics()
            metricsServer = MetricsServer(address: address, group: group, logger: logger) { registry.emitToBuffer() }
        }
        let observedMetrics = proxyMetrics
        if loadedRules != nil {  // a reload may bring limits in
            LimitStoreWatch.start(limitStore, on: group.next()) { logger.warning("\($0)") }
        }
        if let loadedRules, let proxyMetrics { policy = RulesPolicy(rules: loadedRules, limits: limitLedger, metrics: proxyMetrics) }
        var recordObserver: (@Sendable (SessionRecord) -> Void)?
        if let observedMetrics { recordObserver = { observedMetrics.observe($0) } }
        let indexLocation = IndexLocation.given(index, default: defaultIndex)
        let indexWriter = startIndexWriter(indexLocation, files: transcriptFiles, logger: logger)
        var indexRecord: (@Sendable (SessionRecord) -> Void)?
        if let indexWriter { indexRecord = { indexWriter.enqueue($0) } }
        let writer = TranscriptWriter(sink: sink, observer: recordObserver, written: indexRecord) { message in
            FileHandleStandardError.write("smtpscope: transcript write failed: \(message)\n")
        }
        var builtInSink: SMTPSink?
        let upstreamDescription: String
        if transparent {
            if spoofSource, let problem = TransparentConfiguration.spoofingPermissionProblem() {
                throw fail("--spoof-source: cannot set IP_TRANSPARENT (\(problem)); run as root or with CAP_NET_ADMIN")
            }
            server.transparent = TransparentConfiguration(spoofSource: spoofSource)
            upstreamDescription = "transparent: each connection's original destination (REDIRECT or TPROXY)\(spoofSource ? ", from the client's address" : "")"
        } else if let upstream, let target = HostPort(parsing: upstream) {
            server.upstream = target
            server.upstreamServerHostname = Self.isIPAddress(target.host) ? nil : target.host
            upstreamDescription = "\(target)"
        } else {
            let sinkServer = SMTPSink(group: group, host: "127.0.0.1", port: 0, storeDirectory: nil)
            let address: SocketAddress
            do {
                address = try await sinkServer.start()
            } catch {
                throw fail("cannot start the built-in sink: \(error)")
            }
            builtInSink = sinkServer
            server.upstream = HostPort(host: "127.0.0.1", port: address.port ?? 0)
            upstreamDescription = "built-in sink at \(server.upstream) (accepts and discards mail)"
        }

        let consoleService = try await startConsole(on: indexLocation, upstream: transparent ? nil : server.upstream, logger: logger,
                                              say: transcripts == "-" ? .standardError : .standardOutput)

        // Trapped before the listeners open, so an early signal waits for the service group.
        let signals = await SignalService.trapSignals()
        let proxy = ProxyServer(configuration: server, group: group, policy: policy, transcripts: writer, metrics: proxyMetrics)
        let listeners: [ProxyServer.Listener]
        do {
            listeners = try await proxy.startListeners()
        } catch {
            let addresses = (server.listen + server.implicitTLSListen).map(\.description).joined(separator: ", ")
            let message = "cannot listen: " + ErrorDescription.listening(on: addresses, flag: "--listen", error)
            throw ErrorDescription.isUnknownHost(error) ? usageFailure(message) : fail(message)
        }
        var metricsAddress: SocketAddress?
        if let metricsServer {
            do {
                metricsAddress = try await metricsServer.start()
            } catch {
                throw fail("cannot listen: " + ErrorDescription.listening(on: "\(metricsServer.address)", flag: "--metrics", error))
            }
        }

        say("smtpscope proxy")
        for listener in listeners {
            let kind = listener.implicitTLS ? " (SMTPS, implicit TLS)" : ""
            say("  listening:    \(listener.address.ipAddress ?? "?"):\(listener.address.port ?? 0)\(kind)\(proxyProtocol ? ", PROXY protocol v1/v2 required" : "")")
        }
        say("  upstream:     \(upstreamDescription)")
        say("  rules:        \(rulesDescription)")
        say("  quarantine:   \(quarantine)/ (created when a rule first quarantines)")
        say("  transcripts:  \(transcriptsDescription)")
        say("  index:        \(Self.describe(indexLocation, retain: retain, defaultIndex: defaultIndex))")
        say("  client TLS:   \(tlsDescription)")
        say("  upstream TLS: \(relay.upstreamTLS.rawValue)\(upstreamCA.map { " (CA \($0))" } ?? "")")
        say("  limits:       line \(lineLengthLimit) octets, message \(messageSizeLimit) octets, \(recipientLimit) recipients, \(connectionLimit) connections (\(connectionsPerClient) per client)")
        if let metricsAddress {
            say("  metrics:      http://\(metricsAddress.ipAddress ?? "?"):\(metricsAddress.port ?? 0)/metrics")
        }
        say("Stop with Ctrl-C or SIGTERM (sessions get \(drainTimeout) s to finish); SIGHUP reloads certificates and rules.")
        logger.info("started", metadata: ["listeners": "\(listeners.count)", "proxy_protocol": "\(proxyProtocol)", "metrics": "\(metricsAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "off")"])

        // SIGTERM/SIGINT end the signal service, which shuts the group down gracefully in reverse
        // order: the proxy drains, then the metrics endpoint closes. SIGHUP: reload.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let metricsServer {
            services.append(.init(service: MetricsService(server: metricsServer), successTerminationBehavior: .gracefullyShutdownGroup))
        }
        if let consoleService {
            services.append(.init(service: consoleService, successTerminationBehavior: .gracefullyShutdownGroup))
        }
        services.append(.init(service: ProxyService(server: proxy, drainTimeout: drainTimeout, logger: logger), successTerminationBehavior: .gracefullyShutdownGroup))
        let command = self
        services.append(.init(service: SignalService(signals: signals, logger: logger) {
            command.reload(proxy: proxy, tlsSource: tlsSource, limits: limitLedger, metrics: observedMetrics, logger: logger)
        }, successTerminationBehavior: .gracefullyShutdownGroup))
        let serviceGroup = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger))
        do {
            try await serviceGroup.run()
        } catch {
            logger.error("service group ended with an error: \(error)")
        }
        try? await builtInSink?.stop()
        await writer.close()
        // The index gets a few seconds for what is queued; what it misses is in the files, and
        // the next start-up catches up with it.
        if let indexWriter, !indexWriter.close(timeout: 10) {
            logger.warning("index: records still queued at exit; the next start-up indexes them from the transcript files")
        }
        logger.info("transcripts flushed; exiting")
        try? await group.shutdownGracefully()
        if writer.failureCount > 0 {
            throw fail("\(writer.failureCount) transcripts could not be written")
        }
    }

    /// SIGHUP: new sessions get the re-read certificate and rules; a part that fails keeps what it
    /// had. Open sessions keep what they started with.
    private func reload(proxy: ProxyServer, tlsSource: ClientTLSSource?, limits: LimitLedger, metrics: ProxyMetrics?, logger: Logger) {
        if let tlsSource {
            if tlsSource.isReloadable {
                do {
                    proxy.replaceClientTLSContext(try tlsSource.makeContext())
                    logger.info("reload: TLS certificate re-read; new sessions use it", metadata: ["tls_cert": "\(tlsCert ?? "")"])
                    metrics?.reloaded("tls", succeeded: true)
                } catch {
                    logger.error("reload: TLS certificate not reloaded, keeping the previous one: \(error)")
                    metrics?.reloaded("tls", succeeded: false)
                }
            } else {
                logger.info("reload: --tls-cert auto has nothing on disk to re-read; keeping the ephemeral certificate")
            }
        }
        guard let rulesDirectory else { return }
        let result = RuleSet.load(directory: rulesDirectory)
        if result.isValid, let ruleSet = result.ruleSet {
            // Counters of limits the new rules keep (same name, unit, key and window) carry on.
            limits.retain(ruleSet.limits)
            proxy.replacePolicy(RulesPolicy(rules: ruleSet, limits: limits, metrics: metrics))
            logger.info("reload: rules re-read; new sessions use them", metadata: ["rules": "\(Self.describe(ruleSet, in: rulesDirectory))"])
            metrics?.reloaded("rules", succeeded: true)
        } else {
            // A bad reload keeps the old rules, so the proxy never runs without any, and says why.
            let problems = RulesReport.check(result, directory: rulesDirectory).split(separator: "\n").joined(separator: "; ")
            logger.error("reload: rules not reloaded, keeping the previous ones: \(problems)")
            metrics?.reloaded("rules", succeeded: false)
        }
    }

    /// `--console`: the web console on the proxy's own index, as a service beside the others; it
    /// says its URL (and a generated token) once it listens.
    private func startConsole(on location: IndexLocation, upstream: HostPort?, logger: Logger, say: ConsoleBanner) async throws -> (any Service)? {
        guard let console, let address = ConsoleAddress(parsing: console) else { return nil }
        guard location != .off else {
            throw usageFailure("--console needs the index: give --index PATH or postgres://..., or a --transcripts directory")
        }
        let (token, tokenDescription) = try ConsoleLaunch.token(file: consoleTokenFile)
        ConsoleLaunch.warnIfExposed(address, flag: "--console")
        do {
            try await ConsoleLaunch.checkListening(address)
        } catch {
            let message = "cannot listen: " + ErrorDescription.listening(on: "\(address)", flag: "--console", error)
            throw ErrorDescription.isUnknownHost(error) ? usageFailure(message) : fail(message)
        }
        // Opened at the first request: the index writer makes the file, on its own thread.
        let index = ConsoleIndex { try location.openForReading() }
        // Releases go where the proxy relays; a transparent proxy has no one upstream to release to.
        let store = QuarantineStore(directory: quarantine, upstream: upstream.map { ConsoleAddress(host: $0.host, port: $0.port) }, heloName: hostname)
        let server = ConsoleServer(address: address, token: token, index: index, quarantine: store, logger: logger, now: TraceClock.now)
        return server.service { host, port in
            say.write("  console:      \(ConsoleLaunch.url(host: host, port: port)) (token: \(tokenDescription))")
        }
    }

    /// The message trace's writer: records go to the index off the event loop, in batches; an index
    /// that fails is logged once (and again when it is back) and counted in `/metrics`, and the
    /// proxy goes on relaying and writing transcripts.
    private func startIndexWriter(_ location: IndexLocation, files: @escaping @Sendable () -> [String], logger: Logger) -> TraceIndexWriter? {
        guard location != .off else { return nil }
        if case .sqlite(let path) = location { try? makeParentDirectory(of: path) }
        var configuration = TraceIndexWriter.Configuration()
        configuration.transcriptFiles = files
        configuration.retention = retain.flatMap(TraceTime.age)
        let failures = Counter(label: "smtpscope_index_failures_total")
        let indexed = Counter(label: "smtpscope_index_records_total")
        let dropped = Counter(label: "smtpscope_index_dropped_total")
        let description = location.description
        return TraceIndexWriter(configuration: configuration, open: { try location.open() }) { event in
            switch event {
            case .failed(let problem, let first):
                failures.increment()
                if first {
                    logger.error("index: \(problem); relaying and transcripts go on, and the index catches up when it is back")
                }
            case .recovered:
                logger.info("index: \(description) is back; catching up")
            case .indexed(let count):
                indexed.increment(by: count)
            case .dropped(let count):
                dropped.increment(by: count)
            case .caughtUp(let counts, let fileCount):
                if counts.added > 0 || counts.invalid > 0 {
                    logger.info("index: caught up from \(fileCount) transcript files: \(counts.added) sessions added, \(counts.invalid) lines not valid records")
                }
            case .retained(let deleted):
                if deleted > 0 { logger.info("index: \(deleted) sessions past --retain deleted") }
            }
        }
    }

    private static func describe(_ location: IndexLocation, retain: String?, defaultIndex: IndexLocation) -> String {
        switch location {
        case .off:
            return defaultIndex == .off ? "off (no transcript directory; give --index PATH)" : "off (--index none)"
        case .sqlite, .postgres:
            let retention = retain.map { ", sessions older than \($0) deleted" } ?? ""
            return "\(location.description), kept up to date off the event loop\(retention); 'smtpscope trace' searches it"
        }
    }

    /// `--rules`, or ./rules when it exists; nil for none.
    private var rulesDirectory: String? {
        if let rules { return rules == "none" ? nil : rules }
        var info = stat()
        return stat("rules", &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR ? "rules" : nil
    }

    private static func describe(_ rules: RuleSet, in directory: String) -> String {
        let stages = RuleStage.allCases.filter { rules.stages.contains($0) }.map(\.rawValue).joined(separator: ", ")
        let spooling = rules.evaluatesMessages ? "messages spooled for message rules" : "messages cut through"
        return "\(directory)/: \(rules.ruleCount) rules (\(stages.isEmpty ? "no stage" : stages)); \(spooling)"
    }

    private func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}
