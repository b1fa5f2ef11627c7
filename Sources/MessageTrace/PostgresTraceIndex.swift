import Dispatch
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// The shared index: PostgreSQL (through postgres-nio), for several proxies behind a load balancer
/// writing one trace. The same tables and searches as SQLite (`TraceSchema`, `TraceSQL`), `$n`
/// placeholders. One connection; its calls block the calling thread, which is the index writer's
/// own (or the command's), never an event loop of the proxy.
public final class PostgresTraceIndex: TraceIndex {
    public let target: PostgresTarget
    private let connection: PostgresConnection
    private let logger: Logger

    /// Connects and brings the schema up to date; two proxies starting together take turns (an
    /// advisory lock), so each migration runs once.
    public init(target: PostgresTarget) throws(TraceIndexError) {
        self.target = target
        let configuration = PostgresConnection.Configuration(
            host: target.host, port: target.port, username: target.user, password: target.password,
            database: target.database, tls: try Self.tls(target.tls)
        )
        let logger = Logger(label: "smtpscope.index.postgres")
        self.logger = logger
        do {
            connection = try Self.blocking {
                try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
            }
        } catch {
            throw TraceIndexError("cannot connect to \(target): \(Self.describe(error))")
        }
        do {
            try migrate()
        } catch {
            try? Self.blocking { [connection] in try await connection.close() }
            throw error
        }
    }

    /// The connection's TLS as libpq's `sslmode` says (www.postgresql.org/docs/15/libpq-ssl.html):
    /// `prefer` and `require` encrypt without checking the server's certificate; `verify-ca` checks
    /// its chain, `verify-full` its chain and name, against `sslrootcert` or the system's roots.
    private static func tls(_ mode: PostgresTarget.TLS) throws(TraceIndexError) -> PostgresConnection.Configuration.TLS {
        func context(_ verification: CertificateVerification, rootCertificate: String?) throws(TraceIndexError) -> NIOSSLContext {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = verification
            do {
                if let rootCertificate { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificate)) }
                return try NIOSSLContext(configuration: tls)
            } catch {
                throw TraceIndexError("cannot set up TLS to PostgreSQL\(rootCertificate.map { " with sslrootcert \($0)" } ?? ""): \(error)")
            }
        }
        switch mode {
        case .disable: return .disable
        case .prefer: return .prefer(try context(.none, rootCertificate: nil))
        case .require: return .require(try context(.none, rootCertificate: nil))
        case .verifyCA(let root): return .require(try context(.noHostnameVerification, rootCertificate: root))
        case .verifyFull(let root): return .require(try context(.fullVerification, rootCertificate: root))
        }
    }

    /// Closing never waits: a connection to a server that went away may not answer.
    deinit {
        let connection = self.connection
        Task { try? await connection.close() }
    }

    private func migrate() throws(TraceIndexError) {
        try run("prepare") {
            try execute("BEGIN")
            do {
                // Any constant will do, as long as every smtpscope uses the same one.
                try execute("SELECT pg_advisory_xact_lock(5370726770)")
                try execute("CREATE TABLE IF NOT EXISTS trace_migrations (identifier TEXT PRIMARY KEY NOT NULL)")
                let applied = Set(try rows(TraceStatement(sql: "SELECT identifier FROM trace_migrations", arguments: [])).map { try $0.decode(String.self) })
                let known = TraceSchema.migrations(.postgres)
                if !applied.isSubset(of: Set(known.map(\.identifier))) {
                    throw TraceIndexError("the index at \(target) was made by a newer smtpscope (schema \(applied.sorted().joined(separator: ", ")))")
                }
                for migration in known where !applied.contains(migration.identifier) {
                    for statement in migration.statements { try execute(statement) }
                    try execute(TraceStatement(sql: "INSERT INTO trace_migrations (identifier) VALUES ($1)", arguments: [.text(migration.identifier)]))
                }
                try execute("COMMIT")
            } catch {
                try? execute("ROLLBACK")
                throw error
            }
        }
    }

    @discardableResult
    public func add(_ sessions: [IndexedSession]) throws -> Int {
        guard !sessions.isEmpty else { return 0 }
        return try run("write to") {
            try execute("BEGIN")
            do {
                var added = 0
                for session in sessions {
                    var insert = TraceSchema.insertSession(session, dialect: .postgres)
                    insert.sql += " RETURNING id"
                    // An id already present returns no row and leaves its rows as they are.
                    guard try !rows(insert).isEmpty else { continue }
                    added += 1
                    for statement in TraceSchema.insertChildren(session, dialect: .postgres) { try execute(statement) }
                }
                try execute("COMMIT")
                return added
            } catch {
                try? execute("ROLLBACK")
                throw error
            }
        }
    }

    public func search(_ query: TraceQuery) throws -> [TraceHit] {
        try run("search") {
            var hits = try rows(TraceSQL.search(query, dialect: .postgres)).map { row in
                let (id, start, line) = try row.decode((String, Int64, String).self)
                return TraceHit(sessionID: id, start: start, line: line, matchingPositions: nil)
            }
            for index in hits.indices {
                guard let positions = TraceSQL.matchingPositions(query, session: hits[index].sessionID, dialect: .postgres) else { continue }
                hits[index].matchingPositions = try rows(positions).map { Int(try $0.decode(Int64.self)) }
            }
            return hits
        }
    }

    @discardableResult
    public func deleteSessions(startedBefore cutoff: Int64, batch: Int) throws -> Int {
        var deleted = 0
        while true {
            let count = try run("delete from") {
                try rows(TraceStatement(
                    sql: "DELETE FROM session WHERE id IN (SELECT id FROM session WHERE start_us < $1 LIMIT $2) RETURNING 1",
                    arguments: [.integer(cutoff), .integer(Int64(batch))]
                )).count
            }
            deleted += count
            if count < batch { return deleted }
        }
    }

    public func stats(since: Int64?, until: Int64?, bucket: Int64?) throws -> TraceStats {
        try run("read") {
            let statements = TraceSQL.statsStatements(since: since, until: until, bucket: bucket, dialect: .postgres)
            var stats = TraceStats()
            for row in try rows(statements.sessions) {
                let (outcome, count) = try row.decode((String, Int64).self)
                stats.add(.session(outcome: outcome, count: Int(count)))
            }
            for row in try rows(statements.messages) {
                let (outcome, count) = try row.decode((String, Int64).self)
                stats.add(.message(outcome: outcome, count: Int(count)))
            }
            for row in try rows(statements.refusals) {
                let (reply, rule, count) = try row.decode((String?, String?, Int64).self)
                stats.add(.refusal(reply: reply, rule: rule, count: Int(count)))
            }
            for row in try rows(statements.topSenders) {
                let (sender, count) = try row.decode((String, Int64).self)
                stats.add(.sender(sender, count: Int(count)))
            }
            for row in try rows(statements.topRecipientDomains) {
                let (domain, count) = try row.decode((String, Int64).self)
                stats.add(.recipientDomain(domain, count: Int(count)))
            }
            if let buckets = statements.buckets {
                for row in try rows(buckets) {
                    let (bucket, count) = try row.decode((Int64, Int64).self)
                    stats.add(.bucket(bucket, count: Int(count)))
                }
            }
            return stats
        }
    }

    public func indexedOctets(ofFile path: String) throws -> Int64 {
        try run("read") {
            try rows(TraceStatement(sql: "SELECT indexed_octets FROM transcript_file WHERE path = $1", arguments: [.text(path)]))
                .first.map { try $0.decode(Int64.self) } ?? 0
        }
    }

    public func setIndexedOctets(_ octets: Int64, ofFile path: String) throws {
        try run("write to") {
            try execute(TraceStatement(
                sql: "INSERT INTO transcript_file (path, indexed_octets) VALUES ($1, $2) ON CONFLICT (path) DO UPDATE SET indexed_octets = excluded.indexed_octets",
                arguments: [.text(path), .integer(octets)]
            ))
        }
    }

    public func sessionCount() throws -> Int {
        try run("read") {
            Int(try rows(TraceStatement(sql: "SELECT count(*) FROM session", arguments: [])).first?.decode(Int64.self) ?? 0)
        }
    }

    // MARK: - Statements

    private func execute(_ sql: String) throws {
        try execute(TraceStatement(sql: sql, arguments: []))
    }

    private func execute(_ statement: TraceStatement) throws {
        _ = try rows(statement)
    }

    /// Runs one statement with its values bound, and collects its rows.
    private func rows(_ statement: TraceStatement) throws -> [PostgresRow] {
        var binds = PostgresBindings(capacity: statement.arguments.count)
        for argument in statement.arguments {
            switch argument {
            case .text(let text): binds.append(text)
            case .integer(let integer): binds.append(integer)
            case .blob(let octets): binds.append(ByteBuffer(bytes: octets))
            }
        }
        let query = PostgresQuery(unsafeSQL: statement.sql, binds: binds)
        let connection = self.connection
        let logger = self.logger
        return try Self.blocking {
            var collected: [PostgresRow] = []
            for try await row in try await connection.query(query, logger: logger) { collected.append(row) }
            return collected
        }
    }

    private func run<T>(_ verb: String, _ body: () throws -> T) throws(TraceIndexError) -> T {
        do {
            return try body()
        } catch let error as TraceIndexError {
            throw error
        } catch {
            throw TraceIndexError("cannot \(verb) the index at \(target): \(Self.describe(error))")
        }
    }

    /// Longest wait for one statement or the connection: a server stopped mid-query can leave a
    /// query unanswered, and the index writer must go on to retry rather than wait for ever.
    static let timeout: Double = 30

    /// Waits for async work on a thread that is not the cooperative pool's, up to `timeout` seconds.
    private static func blocking<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox<T>()
        let task = Task {
            let outcome: Result<T, any Error>
            do { outcome = .success(try await work()) } catch { outcome = .failure(error) }
            result.set(outcome)
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success, let outcome = result.get() else {
            task.cancel()
            throw NoAnswer()
        }
        return try outcome.get()
    }

    private struct NoAnswer: Error {}

    /// PostgreSQL's own message (its `message` field) rather than postgres-nio's generic text.
    static func describe(_ error: any Error) -> String {
        if error is NoAnswer { return "no answer within \(Int(timeout)) s" }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection: return "connection failed or lost"
            default: return "\(error.code)"
            }
        }
        return "\(error)"
    }
}

/// Written by the task, read by the waiting thread (possibly after it gave up on the task).
private final class ResultBox<T: Sendable>: Sendable {
    private let value = Mutex<Result<T, any Error>?>(nil)

    func set(_ outcome: Result<T, any Error>) { value.withLock { $0 = outcome } }
    func get() -> Result<T, any Error>? { value.withLock { $0 } }
}
