import MessageTrace

/// Where the message trace's index is (`--index`): a SQLite file, or off. The default is
/// `index.sqlite` in the transcripts directory (`./transcripts/index.sqlite`).
enum IndexLocation: Equatable, Sendable {
    case sqlite(path: String)
    case off

    static let defaultDirectory = "./transcripts"

    static func sqlite(inDirectory directory: String) -> IndexLocation {
        .sqlite(path: (directory.hasSuffix("/") ? String(directory.dropLast()) : directory) + "/index.sqlite")
    }

    /// Why an `--index` value cannot be used, in words for the usage error.
    struct Problem: Error {
        var description: String
    }

    /// `none`, or a file path; a postgres:// URL is refused with what to do instead.
    static func parse(_ text: String) -> Result<IndexLocation, Problem> {
        if text == "none" { return .success(.off) }
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            return .failure(Problem(description: "PostgreSQL is not supported by this build yet; give a SQLite file path"))
        }
        if text.isEmpty { return .failure(Problem(description: "expected a file path or none")) }
        return .success(.sqlite(path: text))
    }

    /// `--index` as given, or the default for a command that reads or fills an index.
    static func given(_ text: String?, default fallback: IndexLocation) -> IndexLocation {
        guard let text, case .success(let location) = parse(text) else { return fallback }
        return location
    }

    var description: String {
        switch self {
        case .sqlite(let path): return "\(path) (SQLite)"
        case .off: return "none"
        }
    }

    func open() throws(TraceIndexError) -> any TraceIndex {
        switch self {
        case .sqlite(let path):
            return try SQLiteTraceIndex(path: path)
        case .off:
            throw TraceIndexError("no index (--index none)")
        }
    }
}
