#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes JSON Lines records into a directory, one file per UTC day of the session's end
/// (`smtpscope-YYYYMMDD.jsonl`), starting `smtpscope-YYYYMMDD.1.jsonl`, `.2.jsonl`, … whenever a file
/// would grow past `maximumFileBytes` (`proxy --transcripts DIR`).
///
/// A record is never split across files: a single record larger than the limit gets a file of its
/// own. A session without an end time is filed by its start. On start-up, and whenever the day
/// changes, writing resumes in the day's highest-numbered file while it has room, so restarts
/// append in order. A record for another day than the current file (a session that ended before
/// midnight but finished writing after it) reopens that day's file.
public final class RotatingTranscriptSink: TranscriptSink {
    /// 256 MiB.
    public static let defaultMaximumFileBytes = 256 << 20
    /// Upper bound on the rotation index scanned for one day, so a crowded directory cannot hang start-up.
    public static let maximumFilesPerDay = 100_000

    public let directory: String
    public let maximumFileBytes: Int
    private let bufferCapacity: Int
    private var current: (day: RFC3339.CivilDate, index: Int, file: TranscriptFile)?
    private var scratch: [UInt8] = []

    /// Creates `directory` (and missing parents, mode 0750) if needed.
    public init(
        directory: String,
        maximumFileBytes: Int = RotatingTranscriptSink.defaultMaximumFileBytes,
        bufferCapacity: Int = 64 << 10
    ) throws(TranscriptFileError) {
        precondition(maximumFileBytes > 0, "maximumFileBytes must be positive")
        precondition(bufferCapacity > 0, "bufferCapacity must be positive")
        self.directory = directory
        self.maximumFileBytes = maximumFileBytes
        self.bufferCapacity = bufferCapacity
        try Self.createDirectory(directory)
    }

    /// `smtpscope-20261129.jsonl` for index 0, `smtpscope-20261129.3.jsonl` for index 3.
    public static func fileName(day: RFC3339.CivilDate, index: Int) -> String {
        var name: [UInt8] = Array("smtpscope-".utf8)
        RFC3339.appendDigits(day.year, count: 4, into: &name)
        RFC3339.appendDigits(day.month, count: 2, into: &name)
        RFC3339.appendDigits(day.day, count: 2, into: &name)
        var text = String(decoding: name, as: UTF8.self)
        if index > 0 { text += ".\(index)" }
        return text + ".jsonl"
    }

    /// The file the next record of the current day goes to, once one has been written.
    public var currentPath: String? {
        current?.file.path
    }

    public func write(_ record: SessionRecord) throws(TranscriptFileError) {
        scratch.removeAll(keepingCapacity: true)
        SessionRecordEncoder.encode(record, into: &scratch)
        let day = RFC3339.civilDate(of: record.end ?? record.start)

        if let open = current, open.day == day {
            if open.file.size > 0, open.file.size + scratch.count > maximumFileBytes {
                try switchTo(day: day, index: open.index + 1)
            }
        } else {
            try switchTo(day: day, index: try resumeIndex(for: day))
        }
        guard let open = current else { return }
        try open.file.append(line: scratch)
    }

    public func flush() throws(TranscriptFileError) {
        try current?.file.flush()
    }

    public func close() throws(TranscriptFileError) {
        defer { current = nil }
        try current?.file.close()
    }

    // MARK: - Files

    private func path(day: RFC3339.CivilDate, index: Int) -> String {
        directory.hasSuffix("/") ? directory + Self.fileName(day: day, index: index)
            : directory + "/" + Self.fileName(day: day, index: index)
    }

    private func switchTo(day: RFC3339.CivilDate, index: Int) throws(TranscriptFileError) {
        if let open = current {
            current = nil
            try open.file.close()
        }
        let file = try TranscriptFile(appendingTo: path(day: day, index: index), bufferCapacity: bufferCapacity)
        current = (day, index, file)
    }

    /// The day's highest existing index if it has room, else the next one.
    private func resumeIndex(for day: RFC3339.CivilDate) throws(TranscriptFileError) -> Int {
        var lastSize: Int?
        var index = 0
        while index < Self.maximumFilesPerDay {
            var status = stat()
            guard stat(path(day: day, index: index), &status) == 0 else { break }
            lastSize = Int(status.st_size)
            index += 1
        }
        guard let lastSize else { return 0 }
        if lastSize < maximumFileBytes { return index - 1 }
        guard index < Self.maximumFilesPerDay else {
            throw TranscriptFileError(
                operation: .open,
                path: path(day: day, index: index),
                errno: 0,
                reason: "more than \(Self.maximumFilesPerDay) files for one day; raise the file size limit"
            )
        }
        return index
    }

    private static func createDirectory(_ directory: String) throws(TranscriptFileError) {
        var prefix = directory.hasPrefix("/") ? "/" : ""
        for component in directory.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o750) != 0, errno != EEXIST {
                throw TranscriptFile.error(.createDirectory, prefix)
            }
            prefix += "/"
        }
        var status = stat()
        guard stat(directory, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR else {
            throw TranscriptFileError(operation: .createDirectory, path: directory, errno: ENOTDIR, reason: "not a directory")
        }
    }
}

@available(*, unavailable)
extension RotatingTranscriptSink: Sendable {}
