#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An append-only file descriptor with a write buffer, for transcript sinks.
///
/// Only whole lines are ever handed to `write(2)`, and the file is opened with `O_APPEND`, so a
/// reader (or a second writer) never sees half a record from a completed flush.
final class TranscriptFile {
    /// Flush once this many octets are buffered (default 64 KiB).
    static let defaultBufferCapacity = 64 << 10

    let path: String
    private var descriptor: Int32
    private let ownsDescriptor: Bool
    private var buffer: [UInt8] = []
    private let bufferCapacity: Int
    /// Octets in the file plus octets buffered.
    private(set) var size: Int

    /// Opens (creating with mode 0640 if needed) `path` for appending.
    init(appendingTo path: String, bufferCapacity: Int = TranscriptFile.defaultBufferCapacity) throws(TranscriptFileError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw TranscriptFile.error(.open, path) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let failure = TranscriptFile.error(.open, path)
            _ = posixClose(fd)
            throw failure
        }
        self.path = path
        self.descriptor = fd
        self.ownsDescriptor = true
        self.bufferCapacity = bufferCapacity
        self.size = Int(status.st_size)
        buffer.reserveCapacity(bufferCapacity)
    }

    /// Wraps a descriptor the caller keeps open (standard output).
    init(standardOutputBufferCapacity bufferCapacity: Int = TranscriptFile.defaultBufferCapacity) {
        self.path = "-"
        self.descriptor = STDOUT_FILENO
        self.ownsDescriptor = false
        self.bufferCapacity = bufferCapacity
        self.size = 0
        buffer.reserveCapacity(bufferCapacity)
    }

    deinit {
        // A sink dropped without `close()` still loses nothing it could write; errors have no one to go to.
        try? flush()
        if ownsDescriptor, descriptor >= 0 { _ = posixClose(descriptor) }
    }

    /// Buffers one complete line (the caller includes the newline).
    func append(line: [UInt8]) throws(TranscriptFileError) {
        if buffer.count + line.count > bufferCapacity {
            try flush()
        }
        if line.count >= bufferCapacity {
            try writeAll(line)
        } else {
            buffer.append(contentsOf: line)
        }
        size += line.count
    }

    func flush() throws(TranscriptFileError) {
        guard !buffer.isEmpty else { return }
        defer { buffer.removeAll(keepingCapacity: true) }
        try writeAll(buffer)
    }

    func close() throws(TranscriptFileError) {
        guard descriptor >= 0 else { return }
        defer { descriptor = -1 }
        do {
            try flush()
        } catch {
            if ownsDescriptor { _ = posixClose(descriptor) }
            throw error
        }
        if ownsDescriptor, posixClose(descriptor) != 0 {
            throw TranscriptFile.error(.close, path)
        }
    }

    private func writeAll(_ bytes: [UInt8]) throws(TranscriptFileError) {
        guard descriptor >= 0 else {
            throw TranscriptFileError(operation: .write, path: path, errno: EBADF, reason: "the sink is closed")
        }
        let failed: Bool = bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return false }
            var offset = 0
            while offset < raw.count {
                let written = posixWrite(descriptor, base + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return true
                }
                offset += written
            }
            return false
        }
        if failed { throw TranscriptFile.error(.write, path) }
    }

    static func error(_ operation: TranscriptFileError.Operation, _ path: String) -> TranscriptFileError {
        let code = errno
        return TranscriptFileError(operation: operation, path: path, errno: code, reason: String(cString: strerror(code)))
    }
}

// The methods named `close` and `write` above shadow the C functions inside the class.
@inline(__always) private func posixClose(_ fd: Int32) -> Int32 { close(fd) }
@inline(__always) private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
