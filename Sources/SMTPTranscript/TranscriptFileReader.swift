#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Streams the records of a JSON Lines transcript file (or standard input for "-") for
/// `smtpscope report` and `rules test --against`, in memory bounded by one line
/// (`SessionRecordDecoder.maximumLineLength`) plus one read chunk, however large the file.
///
/// A line over the limit is reported as an error for that line and skipped up to its newline; the
/// lines after it are still read.
public struct TranscriptFileReader {
    /// Octets asked of `read(2)` at a time (1 MiB).
    public static let chunkSize = 1 << 20

    public var decoder: SessionRecordDecoder

    public init(decoder: SessionRecordDecoder = SessionRecordDecoder()) {
        self.decoder = decoder
    }

    /// Calls `body` with each non-blank line's record or error until the file ends or `body`
    /// returns false. Throws only when the file itself cannot be opened or read.
    public func forEachRecord(
        inFile path: String,
        _ body: (Result<SessionRecord, SessionRecordDecodingError>) -> Bool
    ) throws(TranscriptFileError) {
        let fd: Int32
        if path == "-" {
            fd = STDIN_FILENO
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw TranscriptFile.error(.open, path) }
        }
        defer { if fd != STDIN_FILENO { _ = close(fd) } }

        var pending: [UInt8] = []
        var lineNumber = 1
        var skippingOverlongLine = false
        var chunk = [UInt8](repeating: 0, count: Self.chunkSize)

        while true {
            let count = chunk.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                while true {
                    let n = read(fd, base, raw.count)
                    if n < 0, errno == EINTR { continue }
                    return n
                }
            }
            guard count >= 0 else { throw TranscriptFile.error(.read, path) }
            if count == 0 { break }

            var start = 0
            while start < count {
                guard let newline = chunk[start..<count].firstIndex(of: UInt8(ascii: "\n")) else {
                    if !skippingOverlongLine { pending.append(contentsOf: chunk[start..<count]) }
                    break
                }
                if skippingOverlongLine {
                    skippingOverlongLine = false
                } else {
                    pending.append(contentsOf: chunk[start..<newline])
                    guard emit(pending, lineNumber, body) else { return }
                }
                pending.removeAll(keepingCapacity: true)
                lineNumber += 1
                start = newline + 1
            }
            if pending.count > decoder.maximumLineLength {
                let failure = SessionRecordDecodingError(line: lineNumber, problem: "line longer than \(decoder.maximumLineLength) octets")
                guard body(.failure(failure)) else { return }
                pending.removeAll(keepingCapacity: false)
                skippingOverlongLine = true
            }
        }
        if !skippingOverlongLine, !pending.isEmpty {
            _ = emit(pending, lineNumber, body)
        }
    }

    private func emit(
        _ line: [UInt8],
        _ lineNumber: Int,
        _ body: (Result<SessionRecord, SessionRecordDecodingError>) -> Bool
    ) -> Bool {
        var keepGoing = true
        decoder.forEachLine(in: line, firstLineNumber: lineNumber) { result in
            keepGoing = body(result)
            return keepGoing
        }
        return keepGoing
    }
}
