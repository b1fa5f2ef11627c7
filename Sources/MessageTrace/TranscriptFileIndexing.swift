import SMTPTranscript

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Adds a transcript file's records to an index, in batches, and notes how far it got, so that
/// the next catch-up reads only what was appended since (`smtpscope index`, and the proxy's
/// writer at start-up and after the index was unavailable).
public enum TranscriptFileIndexing {
    public struct Counts: Sendable, Equatable {
        public var read = 0
        public var added = 0
        public var invalid = 0

        public init() {}

        public static func += (lhs: inout Counts, rhs: Counts) {
            lhs.read += rhs.read
            lhs.added += rhs.added
            lhs.invalid += rhs.invalid
        }
    }

    /// `resume`: start where the last catch-up of this file stopped (the file only grows).
    public static func index(
        file path: String,
        into index: any TraceIndex,
        resume: Bool,
        batchSize: Int = 1000,
        invalid: (SessionRecordDecodingError) -> Void = { _ in }
    ) throws -> Counts {
        let key = progressKey(path)
        let start = try resume ? index.indexedOctets(ofFile: key) : 0
        if resume, fileSize(path).map({ $0 <= start }) == true { return Counts() }
        var counts = Counts()
        var batch: [IndexedSession] = []
        batch.reserveCapacity(batchSize)
        let end = try TranscriptLines(path: path).read(from: start) { line in
            switch line {
            case .record(let record, let text):
                counts.read += 1
                batch.append(IndexedSession(record, line: text))
                if batch.count >= batchSize {
                    counts.added += try index.add(batch)
                    batch.removeAll(keepingCapacity: true)
                }
            case .invalid(let error):
                counts.invalid += 1
                invalid(error)
            }
        }
        counts.added += try index.add(batch)
        try index.setIndexedOctets(end, ofFile: key)
        return counts
    }

    /// The transcript files of a `proxy --transcripts` directory (`smtpscope-*.jsonl`), oldest first.
    public static func transcriptFiles(inDirectory directory: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix("smtpscope-") && name.hasSuffix(".jsonl") { names.append(name) }
        }
        // smtpscope-YYYYMMDD.jsonl, then smtpscope-YYYYMMDD.N.jsonl: order by day, then by N.
        return names.sorted { rotationOrder($0) < rotationOrder($1) }.map { directory + "/" + $0 }
    }

    static func rotationOrder(_ name: String) -> (String, Int) {
        let stem = name.dropFirst("smtpscope-".count).dropLast(".jsonl".count)
        let parts = stem.split(separator: ".", maxSplits: 1)
        return (String(parts.first ?? ""), parts.count > 1 ? Int(parts[1]) ?? 0 : 0)
    }

    /// Under which name a file's progress is kept: the host name and the file's real path, since
    /// proxies on several hosts may share one index (PostgreSQL) and write files of the same name.
    public static func progressKey(_ path: String) -> String {
        var host = [CChar](repeating: 0, count: 256)
        let hostName = gethostname(&host, host.count - 1) == 0
            ? String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "localhost"
        guard let resolved = realpath(path, nil) else { return hostName + ":" + path }
        defer { free(resolved) }
        return hostName + ":" + String(cString: resolved)
    }

    static func fileSize(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }
}
