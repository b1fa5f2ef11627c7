import GRDB

/// Raw access to an index file, for what the index's own API never does (a newer schema's mark).
enum TraceTestDatabase {
    static func execute(_ sql: String, path: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: sql) }
    }
}
