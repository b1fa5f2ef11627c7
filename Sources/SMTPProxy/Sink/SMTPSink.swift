import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// The built-in accept-everything SMTP server (`smtpscope sink`), like Postfix's
/// smtp-sink but a strict RFC 5321 server (with RFC 2920 PIPELINING, RFC 3030 CHUNKING, RFC 1870
/// SIZE, RFC 6152 8BITMIME, RFC 2034 ENHANCEDSTATUSCODES, RFC 6531 SMTPUTF8). It answers every
/// well-formed transaction with `250 2.0.0 Ok: queued as ID` and keeps the message only when given
/// a store directory (see `SinkMessageStore`); otherwise content is dropped as it streams, so
/// memory stays flat.
///
/// The protocol lives in `SinkSessionStateMachine`; this type owns the listening socket and the
/// open sessions. Configuration is immutable and the mutable server state sits behind a mutex, so
/// the sink may be started and stopped from any task.
public final class SMTPSink: Sendable {
    public let configuration: SinkConfiguration
    private let group: any EventLoopGroup
    private let host: String
    private let port: Int
    private let store: SinkMessageStore?
    private let queueIDs = SinkQueueIDGenerator()
    private let server = NIOLockedValueBox<ServerState>(ServerState())
    private let openSessions = Atomic<Int>(0)

    /// How long a session may take to receive its `421` once `stop()` is called.
    static let shutdownGrace = TimeAmount.seconds(5)

    private struct ServerState: Sendable {
        var listener: (any Channel)?
        var sessions: [ObjectIdentifier: any Channel] = [:]
        var stopping = false
    }

    /// A sink on `host`:`port` (port 0 picks a free port); `storeDirectory` nil discards messages.
    public convenience init(group: any EventLoopGroup, host: String, port: Int, storeDirectory: String?) {
        self.init(group: group, host: host, port: port, storeDirectory: storeDirectory, configuration: SinkConfiguration())
    }

    public init(group: any EventLoopGroup, host: String, port: Int, storeDirectory: String?, configuration: SinkConfiguration) {
        precondition((0...65535).contains(port), "a TCP port is 0-65535")
        self.group = group
        self.host = host
        self.port = port
        self.store = storeDirectory.map { SinkMessageStore(directory: $0) }
        self.configuration = configuration
    }

    /// Binds and starts accepting; returns the bound address (the real port when `port` was 0).
    public func start() async throws -> SocketAddress {
        try store?.prepare()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.initializeSession(channel)
                }
            }
        let listener = try await bootstrap.bind(host: host, port: port).get()
        let alreadyStarted = server.withLockedValue { state -> Bool in
            if state.listener != nil { return true }
            state.listener = listener
            return false
        }
        if alreadyStarted {
            try? await listener.close()
            preconditionFailure("SMTPSink.start() called twice")
        }
        guard let address = listener.localAddress else {
            try? await listener.close()
            throw SinkStartError.noLocalAddress
        }
        return address
    }

    /// Stops accepting, tells open sessions `421 4.3.2` and closes them.
    public func stop() async throws {
        let (listener, sessions) = server.withLockedValue { state in
            state.stopping = true
            let listener = state.listener
            state.listener = nil
            return (listener, Array(state.sessions.values))
        }
        for session in sessions {
            session.pipeline.fireUserInboundEventTriggered(SinkShutdownEvent())
            // A client that reads nothing could hold the 421 (and the close behind it) forever.
            session.eventLoop.scheduleTask(in: Self.shutdownGrace) { session.close(promise: nil) }
        }
        try await listener?.close()
        for session in sessions {
            try? await session.closeFuture.get()
        }
    }

    private func initializeSession(_ channel: any Channel) throws {
        let count = openSessions.add(1, ordering: .relaxed).newValue
        let id = ObjectIdentifier(channel)
        let stopping = server.withLockedValue { state -> Bool in
            if !state.stopping { state.sessions[id] = channel }
            return state.stopping
        }
        channel.closeFuture.whenComplete { [self] _ in
            openSessions.subtract(1, ordering: .relaxed)
            server.withLockedValue { state in _ = state.sessions.removeValue(forKey: id) }
        }
        let handlers = channel.pipeline.syncOperations
        if stopping {
            try handlers.addHandler(SinkRefusalHandler(reply: SinkReplies.shuttingDown(configuration.hostname)))
        } else if count > configuration.maxConnections {
            try handlers.addHandler(SinkRefusalHandler(reply: SinkReplies.tooManyConnections(configuration.hostname)))
        } else {
            try handlers.addHandler(IdleStateHandler(readTimeout: .seconds(configuration.idleTimeoutSeconds)))
            try handlers.addHandler(SinkSessionHandler(configuration: configuration, store: store, queueIDs: queueIDs))
        }
    }
}

/// Why `SMTPSink.start()` could not produce a listening address.
public enum SinkStartError: Error, Sendable, CustomStringConvertible {
    case noLocalAddress

    public var description: String {
        switch self {
        case .noLocalAddress: "the listening socket has no local address"
        }
    }
}
