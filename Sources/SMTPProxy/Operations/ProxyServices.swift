import Logging
import ServiceLifecycle
import UnixSignals

/// The proxy under swift-service-lifecycle, so SIGTERM drains: runs until the group's graceful shutdown
/// (SIGTERM, SIGINT), then stops accepting and lets sessions finish for up to `drainTimeout` seconds.
public struct ProxyService: Service {
    private let server: ProxyServer
    private let drainTimeout: Int64
    private let logger: Logger

    public init(server: ProxyServer, drainTimeout: Int64, logger: Logger) {
        self.server = server
        self.drainTimeout = drainTimeout
        self.logger = logger
    }

    public func run() async throws {
        // Cancellation (a second signal, a failing service) drains too: sessions still get a reply.
        try? await gracefulShutdown()
        logger.info("shutting down: no new connections; draining open sessions", metadata: ["sessions": "\(server.openConnections)", "deadline_seconds": "\(drainTimeout)"])
        await server.drain(deadline: drainTimeout)
        logger.info("drained")
    }
}

/// The proxy's signals: SIGHUP calls `reload` once per signal; SIGTERM or SIGINT ends
/// this service, which (run with `.gracefullyShutdownGroup`) starts the group's graceful shutdown.
///
/// The signals are trapped when the `UnixSignalsSequence` is made, before the listeners are bound,
/// and the sequence buffers them: a signal that comes while the proxy is still starting is acted on
/// once the group runs, instead of killing the process with the default action.
public struct SignalService: Service {
    private let signals: UnixSignalsSequence
    private let reload: @Sendable () async -> Void
    private let logger: Logger

    /// Traps SIGTERM, SIGINT and SIGHUP at once.
    public static func trapSignals() async -> UnixSignalsSequence {
        await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
    }

    public init(signals: UnixSignalsSequence, logger: Logger, reload: @escaping @Sendable () async -> Void) {
        self.signals = signals
        self.logger = logger
        self.reload = reload
    }

    public func run() async throws {
        for await signal in signals.cancelOnGracefulShutdown() {
            if signal == .sighup {
                logger.info("SIGHUP: reloading")
                await reload()
            } else {
                logger.info("\(signal): graceful shutdown")
                return
            }
        }
    }
}

/// The `--metrics` endpoint: serves until the group shuts down, after the proxy has drained.
public struct MetricsService: Service {
    private let server: MetricsServer

    public init(server: MetricsServer) {
        self.server = server
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await server.stop()
    }
}
