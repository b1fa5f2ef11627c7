import GRDB

/// Raw access to an index file, for what the index's own API never does (a newer schema's mark).
enum TraceTestDatabase {
    static func execute(_ sql: String, path: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: sql) }
    }

    /// Rows of a query, as text.
    static func strings(_ sql: String, path: String) throws -> [String] {
        let queue = try DatabaseQueue(path: path)
        return try queue.read { db in try Row.fetchAll(db, sql: sql).map { $0.description } }
    }
}
