import SMTPTranscript

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a transcript file's records with their lines exactly as written, from an offset on, for
/// `smtpscope index` and for catching up. Only whole lines count: a last line without its newline
/// is a record the proxy is still writing, left for the next read.
public struct TranscriptLines {
    public let path: String
    public var decoder = SessionRecordDecoder()

    public init(path: String) {
        self.path = path
    }

    /// One line: its record, or why it is not one (with its line number counted from `offset`).
    public enum Line {
        case record(SessionRecord, line: String)
        case invalid(SessionRecordDecodingError)
    }

    /// Calls `body` for each whole non-blank line from `offset`; returns the offset after the last
    /// whole line read.
    public func read(from offset: Int64 = 0, _ body: (Line) throws -> Void) throws -> Int64 {
        guard let file = fopen(path, "rb") else {
            throw TraceIndexError("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        if offset > 0, fseeko(file, off_t(offset), SEEK_SET) != 0 {
            throw TraceIndexError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        var end = offset
        var buffer: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(buffer) }
        var lineNumber = 1
        while true {
            let count = getline(&buffer, &capacity, file)
            if count < 0 { break }
            guard let buffer, count > 0 else { break }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: count)
            guard bytes[count - 1] == UInt8(ascii: "\n") else { break }
            end += Int64(count)
            var content = UnsafeBufferPointer(rebasing: bytes[0..<(count - 1)])
            if content.last == UInt8(ascii: "\r") { content = UnsafeBufferPointer(rebasing: content[0..<(content.count - 1)]) }
            defer { lineNumber += 1 }
            if content.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let line: Line
            do throws(SessionRecordDecodingError) {
                let record = try decoder.decode(utf8: content, lineNumber: lineNumber)
                line = .record(record, line: String(decoding: content, as: UTF8.self))
            } catch {
                line = .invalid(error)
            }
            try body(line)
        }
        if ferror(file) != 0 {
            throw TraceIndexError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        return end
    }
}
