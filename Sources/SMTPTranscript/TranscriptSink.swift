/// Where finished `smtpscope.session/1` records go (stdout for `pcap`, day- and size-rotated
/// files for `proxy`).
///
/// Sinks do blocking I/O and are called synchronously; a caller on an event loop hands records to
/// a thread of its own first. Writes may be buffered until `flush()`; `close()` flushes and releases
/// the file.
public protocol TranscriptSink {
    mutating func write(_ record: SessionRecord) throws(TranscriptFileError)
    mutating func flush() throws(TranscriptFileError)
    mutating func close() throws(TranscriptFileError)
}

/// A transcript file could not be opened, read, written or closed; `path` and the OS error say which and why.
public struct TranscriptFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Operation: String, Sendable, Equatable {
        case open
        case read
        case write
        case close
        case createDirectory = "create directory"
    }

    public var operation: Operation
    public var path: String
    /// The `errno` value, or 0 when the failure is not an OS error.
    public var errno: Int32
    public var reason: String

    public init(operation: Operation, path: String, errno: Int32, reason: String) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.reason = reason
    }

    public var description: String {
        "cannot \(operation.rawValue) transcript file \(path): \(reason)"
    }
}
