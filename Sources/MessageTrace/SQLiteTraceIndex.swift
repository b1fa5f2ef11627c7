import Foundation
import GRDB

/// The embedded index: one SQLite file (through GRDB), in WAL mode, so a `trace` in another process
/// reads while the proxy writes, and retention's small deletes never lock a search out.
public final class SQLiteTraceIndex: TraceIndex {
    public let path: String
    private let pool: DatabasePool

    /// Opens or creates the file and brings its schema up to date.
    public init(path: String, readOnly: Bool = false) throws(TraceIndexError) {
        self.path = path
        var configuration = Configuration()
        configuration.readonly = readOnly
        configuration.foreignKeysEnabled = true
        // Another process (the proxy, `smtpscope index`) may hold the write lock for one batch.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // A record is a few KiB of JSON: on SQLite's default 4 KiB pages most take a page of
            // their own, half empty, or spill into overflow pages. 16 KiB pages pack several. It
            // takes effect only while the file is still empty (before WAL), so an existing index
            // keeps its pages.
            if !readOnly { try db.execute(sql: "PRAGMA page_size = 16384") }
        }
        if !readOnly {
            // The index holds what the transcripts hold (addresses, subjects, the records whole),
            // so it is created as they are, 0640; SQLite gives its -wal and -shm files the same.
            let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
            if fd >= 0 { close(fd) }
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw TraceIndexError("cannot open index \(path): \(Self.describe(error))")
        }
        do {
            let known = TraceSchema.migrations(.sqlite)
            func refuseNewer(_ applied: Set<String>) throws {
                guard !applied.isSubset(of: Set(known.map(\.identifier))) else { return }
                throw TraceIndexError("index \(path) was made by a newer smtpscope (schema \(applied.sorted().joined(separator: ", "))); use that version, or rebuild it with 'smtpscope index'")
            }
            if readOnly {
                try pool.read { db in
                    if try db.tableExists(Self.migrationsTable) { try refuseNewer(Set(String.fetchAll(db, sql: "SELECT identifier FROM \(Self.migrationsTable)"))) }
                }
            } else {
                // The check and the migrations in one IMMEDIATE transaction: it takes the write lock
                // first, so two processes opening a new index together (the proxy and `smtpscope
                // index`) apply each migration once; the second waits, then finds it applied.
                try pool.barrierWriteWithoutTransaction { db in
                    try db.inTransaction(.immediate) {
                        try db.execute(sql: "CREATE TABLE IF NOT EXISTS \(Self.migrationsTable) (identifier TEXT NOT NULL PRIMARY KEY)")
                        let applied = Set(try String.fetchAll(db, sql: "SELECT identifier FROM \(Self.migrationsTable)"))
                        try refuseNewer(applied)
                        for migration in known where !applied.contains(migration.identifier) {
                            for statement in migration.statements { try db.execute(sql: statement) }
                            try db.execute(sql: "INSERT INTO \(Self.migrationsTable) (identifier) VALUES (?)", arguments: [migration.identifier])
                        }
                        return .commit
                    }
                }
            }
        } catch let error as TraceIndexError {
            throw error
        } catch {
            throw TraceIndexError("cannot prepare index \(path): \(Self.describe(error))")
        }
    }

    /// Applied migrations, by identifier; the name GRDB's migrator gave it, which indexes made by
    /// earlier versions have.
    private static let migrationsTable = "grdb_migrations"

    @discardableResult
    public func add(_ sessions: [IndexedSession]) throws -> Int {
        guard !sessions.isEmpty else { return 0 }
        return try run("write to") {
            try pool.write { db in
                var added = 0
                for session in sessions {
                    try Self.execute(TraceSchema.insertSession(session, dialect: .sqlite), db)
                    // An id already present leaves its rows as they are.
                    guard db.changesCount > 0 else { continue }
                    added += 1
                    for statement in TraceSchema.insertChildren(session, dialect: .sqlite) {
                        try Self.execute(statement, db)
                    }
                }
                return added
            }
        }
    }

    public func search(_ query: TraceQuery) throws -> [TraceHit] {
        try run("search") {
            try pool.read { db in
                // An index made before schema v2 and opened read-only has no trigram table.
                let trigrams = try db.tableExists("message_subject")
                let statement = TraceSQL.search(query, dialect: .sqlite, subjectTrigrams: trigrams)
                var hits: [TraceHit] = []
                let rows = try Row.fetchCursor(db, sql: statement.sql, arguments: Self.arguments(statement))
                while let row = try rows.next() {
                    hits.append(TraceHit(sessionID: row[0], start: row[1], line: row[2], matchingPositions: nil))
                }
                for index in hits.indices {
                    guard let positions = TraceSQL.matchingPositions(query, session: hits[index].sessionID, dialect: .sqlite, subjectTrigrams: trigrams) else { continue }
                    hits[index].matchingPositions = try Int.fetchAll(db, sql: positions.sql, arguments: Self.arguments(positions))
                }
                return hits
            }
        }
    }

    @discardableResult
    public func deleteSessions(startedBefore cutoff: Int64, batch: Int) throws -> Int {
        var deleted = 0
        while true {
            let count = try run("delete from") {
                try pool.write { db in
                    try db.execute(
                        sql: "DELETE FROM session WHERE id IN (SELECT id FROM session WHERE start_us < ? LIMIT ?)",
                        arguments: [cutoff, batch]
                    )
                    return db.changesCount
                }
            }
            deleted += count
            if count < batch { return deleted }
        }
    }

    public func indexedOctets(ofFile path: String) throws -> Int64 {
        try run("read") {
            try pool.read { db in
                try Int64.fetchOne(db, sql: "SELECT indexed_octets FROM transcript_file WHERE path = ?", arguments: [path]) ?? 0
            }
        }
    }

    public func setIndexedOctets(_ octets: Int64, ofFile path: String) throws {
        try run("write to") {
            try pool.write { db in
                try db.execute(
                    sql: "INSERT INTO transcript_file (path, indexed_octets) VALUES (?, ?) ON CONFLICT (path) DO UPDATE SET indexed_octets = excluded.indexed_octets",
                    arguments: [path, octets]
                )
            }
        }
    }

    public func sessionCount() throws -> Int {
        try run("read") {
            try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM session") ?? 0 }
        }
    }

    public func stats(since: Int64?, until: Int64?, bucket: Int64?) throws -> TraceStats {
        try run("read") {
            try pool.read { db in
                let statements = TraceSQL.statsStatements(since: since, until: until, bucket: bucket, dialect: .sqlite)
                func rows(_ statement: TraceStatement) throws -> [Row] {
                    try Row.fetchAll(db, sql: statement.sql, arguments: Self.arguments(statement))
                }
                var stats = TraceStats()
                for row in try rows(statements.sessions) { stats.add(.session(outcome: row[0], count: row[1])) }
                for row in try rows(statements.messages) { stats.add(.message(outcome: row[0], count: row[1])) }
                for row in try rows(statements.refusals) { stats.add(.refusal(reply: row[0], rule: row[1], count: row[2])) }
                for row in try rows(statements.topSenders) { stats.add(.sender(row[0], count: row[1])) }
                for row in try rows(statements.topRecipientDomains) { stats.add(.recipientDomain(row[0], count: row[1])) }
                if let buckets = statements.buckets {
                    for row in try rows(buckets) { stats.add(.bucket(row[0], count: row[1])) }
                }
                return stats
            }
        }
    }

    private static func execute(_ statement: TraceStatement, _ db: Database) throws {
        try db.cachedStatement(sql: statement.sql).execute(arguments: arguments(statement))
    }

    private static func arguments(_ statement: TraceStatement) -> StatementArguments {
        StatementArguments(statement.arguments.map { value -> (any DatabaseValueConvertible)? in
            switch value {
            case .text(let text): return text
            case .integer(let integer): return integer
            case .blob(let octets): return Data(octets)
            }
        })
    }

    /// Runs a database operation, turning GRDB's errors into words that name the file.
    private func run<T>(_ verb: String, _ body: () throws -> T) throws(TraceIndexError) -> T {
        do {
            return try body()
        } catch let error as TraceIndexError {
            throw error
        } catch {
            throw TraceIndexError("cannot \(verb) index \(path): \(Self.describe(error))")
        }
    }

    static func describe(_ error: any Error) -> String {
        guard let error = error as? DatabaseError else { return "\(error)" }
        return error.message ?? "SQLite error \(error.resultCode.rawValue)"
    }
}
