import MessageTrace

/// Where the message trace's index is (`--index`): a SQLite file, a PostgreSQL database, or off.
/// The default is `index.sqlite` in the transcripts directory (`./transcripts/index.sqlite`).
enum IndexLocation: Equatable, Sendable {
    case sqlite(path: String)
    case postgres(PostgresTarget)
    case off

    static let defaultDirectory = "./transcripts"

    static func sqlite(inDirectory directory: String) -> IndexLocation {
        .sqlite(path: (directory.hasSuffix("/") ? String(directory.dropLast()) : directory) + "/index.sqlite")
    }

    /// Why an `--index` value cannot be used, in words for the usage error.
    struct Problem: Error {
        var description: String
    }

    /// `none`, `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=...]`, or a SQLite file path.
    static func parse(_ text: String) -> Result<IndexLocation, Problem> {
        if text == "none" { return .success(.off) }
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            guard let target = PostgresTarget(url: text) else {
                return .failure(Problem(description: "expected postgres://USER@HOST:PORT/DATABASE[?sslmode=disable|prefer|require|verify-ca|verify-full[&sslrootcert=FILE]], e.g. postgres://smtpscope@127.0.0.1:5432/trace"))
            }
            return .success(.postgres(target))
        }
        if text.isEmpty { return .failure(Problem(description: "expected a file path, postgres://USER@HOST:PORT/DATABASE or none")) }
        return .success(.sqlite(path: text))
    }

    /// `--index` as given, or the default for a command that reads or fills an index.
    static func given(_ text: String?, default fallback: IndexLocation) -> IndexLocation {
        guard let text, case .success(let location) = parse(text) else { return fallback }
        return location
    }

    /// Never the password of a PostgreSQL URL.
    var description: String {
        switch self {
        case .sqlite(let path): return "\(path) (SQLite)"
        case .postgres(let target): return "\(target) (PostgreSQL)"
        case .off: return "none"
        }
    }

    /// For reading only (the console): a SQLite file is opened read-only, never created or migrated,
    /// so it cannot race the writer that makes it.
    func openForReading() throws(TraceIndexError) -> any TraceIndex {
        if case .sqlite(let path) = self { return try SQLiteTraceIndex(path: path, readOnly: true) }
        return try open()
    }

    func open() throws(TraceIndexError) -> any TraceIndex {
        switch self {
        case .sqlite(let path):
            return try SQLiteTraceIndex(path: path)
        case .postgres(let target):
            return try PostgresTraceIndex(target: target)
        case .off:
            throw TraceIndexError("no index (--index none)")
        }
    }
}
