import NIOCore

#if canImport(Glibc)
import Glibc
private let systemClose = Glibc.close
#elseif canImport(Musl)
import Musl
private let systemClose = Musl.close
#elseif canImport(Darwin)
import Darwin
private let systemClose = Darwin.close
#endif

/// One message held whole while `message` rules decide: in memory up to a threshold, then in a
/// temporary file that is unlinked as soon as it is made, so nothing outlives the process.
///
/// The octets are the message content un-stuffed (what DATA carries after RFC 5321 §4.5.2
/// transparency is undone), checked by `DataContentWriter` on the way in.
struct MessageSpool: Sendable {
    enum SpoolError: Error, CustomStringConvertible {
        case system(String, Int32)

        var description: String {
            switch self {
            case .system(let call, let code): "\(call): \(String(cString: strerror(code)))"
            }
        }
    }

    private let memoryLimit: Int
    private let directory: String
    private var memory = ByteBuffer()
    private var descriptor: Int32?
    private(set) var octets = 0
    /// The first write that failed: the spool then lacks octets, and must not be released or kept.
    private(set) var failure: SpoolError?

    init(configuration: SpoolConfiguration) {
        self.memoryLimit = configuration.memoryOctets
        self.directory = configuration.temporaryDirectory
    }

    mutating func append(_ bytes: ByteBuffer) throws(SpoolError) {
        octets += bytes.readableBytes
        if descriptor == nil, memory.readableBytes + bytes.readableBytes <= memoryLimit {
            var bytes = bytes
            memory.writeBuffer(&bytes)
            return
        }
        do {
            let fd = try openFile()
            try Self.writeAll(fd, bytes.readableBytesView)
        } catch {
            if failure == nil { failure = error }
            throw error
        }
    }

    /// The whole message, in order, a piece at a time.
    func forEachPiece(_ body: (ByteBuffer) -> Void) throws(SpoolError) {
        var offset = 0
        while let piece = try piece(at: offset) {
            offset += piece.readableBytes
            body(piece)
        }
    }

    /// Up to `maximum` octets from `offset` on, or nil past the end: lets a reader go at its own
    /// pace (the upstream's), so releasing a spooled message never holds it whole in memory.
    func piece(at offset: Int, maximum: Int = 65536) throws(SpoolError) -> ByteBuffer? {
        if offset < memory.readableBytes {
            return memory.getSlice(at: memory.readerIndex + offset, length: min(maximum, memory.readableBytes - offset))
        }
        guard let fd = descriptor else { return nil }
        var piece = ByteBuffer()
        var failure: Int32?
        let count = piece.writeWithUnsafeMutableBytes(minimumWritableBytes: maximum) { pointer in
            while true {
                let result = pread(fd, pointer.baseAddress, min(pointer.count, maximum), off_t(offset - memory.readableBytes))
                if result >= 0 { return result }
                if errno != EINTR {
                    failure = errno
                    return 0
                }
            }
        }
        if let failure { throw .system("read from spool file", failure) }
        return count == 0 ? nil : piece
    }

    /// Frees the memory and the file.
    mutating func close() {
        if let fd = descriptor { _ = systemClose(fd) }
        descriptor = nil
        memory = ByteBuffer()
        octets = 0
    }

    private mutating func openFile() throws(SpoolError) -> Int32 {
        if let descriptor { return descriptor }
        var template = Array("\(directory)/smtpscope-spool-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw .system("mkstemp in \(directory)", errno) }
        // Unlinked at once: the file lives only as long as the descriptor.
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        descriptor = fd
        return fd
    }

    private static func writeAll(_ fd: Int32, _ bytes: ByteBufferView) throws(SpoolError) {
        var failure: Int32?
        bytes.withContiguousStorageIfAvailable { buffer in
            var done = 0
            while done < buffer.count {
                let result = write(fd, buffer.baseAddress! + done, buffer.count - done)
                if result < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                done += result
            }
        }
        if let failure { throw .system("write to spool file", failure) }
    }
}
