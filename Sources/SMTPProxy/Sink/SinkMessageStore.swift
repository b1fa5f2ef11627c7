import Foundation
import NIOCore

/// Keeps messages in a directory: accepted ones for `smtpscope sink --store DIR`, quarantined
/// ones for `smtpscope proxy --quarantine DIR`.
///
/// Each message becomes two files: `ID.eml`, the message content exactly as the client sent it
/// after dot-unstuffing (RFC 5321 §4.5.2; BDAT content as chunked, RFC 3030), with nothing added,
/// so tests can compare it byte for byte; and `ID.json`, the envelope. Both are written under
/// temporary names and renamed into place, `ID.json` first, so a reader that sees `ID.eml` sees a
/// complete message and its envelope. A `durable` store (the quarantine: the client is told 250 once
/// its message is there) flushes both files and the directory to the disk before `commit` returns;
/// the sink's store does not: it is a test and benchmark peer, not a mail queue.
final class SinkMessageStore: Sendable {
    let directory: String
    let durable: Bool

    init(directory: String, durable: Bool = false) {
        self.directory = directory
        self.durable = durable
    }

    /// Creates the directory (and its parents) when it does not exist.
    func prepare() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func openSpool(queueID: String) throws -> SinkSpool {
        try SinkSpool(directory: directory, queueID: queueID, durable: durable)
    }
}

/// The envelope file next to each stored message (`ID.json`).
struct SinkEnvelopeRecord: Codable, Sendable {
    var queueID: String
    var received: String
    var clientIP: String?
    var clientPort: Int?
    var helo: String?
    var mailFrom: String
    var mailParams: [String: String?]
    var rcptTo: [String]
    var command: String
    var size: Int

    enum CodingKeys: String, CodingKey {
        case queueID = "queue_id"
        case received
        case clientIP = "client_ip"
        case clientPort = "client_port"
        case helo
        case mailFrom = "mail_from"
        case mailParams = "mail_params"
        case rcptTo = "rcpt_to"
        case command
        case size
    }
}

/// One message being written: content goes to a hidden temporary file until `commit` renames it.
///
/// Writes are buffered up to `flushThreshold` octets, so the number of system calls does not grow
/// with the number of small content slices.
final class SinkSpool {
    static let flushThreshold = 64 * 1024

    let queueID: String
    private let directory: String
    private let durable: Bool
    private let temporaryPath: String
    private var descriptor: Int32
    private var pending = ByteBuffer()
    private var failed = false

    init(directory: String, queueID: String, durable: Bool = false) throws {
        self.directory = directory
        self.queueID = queueID
        self.durable = durable
        self.temporaryPath = "\(directory)/.\(queueID).eml.tmp"
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if descriptor < 0 { throw SinkStoreError(path: temporaryPath, errno: errno) }
    }

    deinit {
        if descriptor >= 0 {
            close(descriptor)
            unlink(temporaryPath)
        }
    }

    func append(_ slice: ByteBuffer) {
        guard !failed else { return }
        var slice = slice
        pending.writeBuffer(&slice)
        if pending.readableBytes >= Self.flushThreshold { flush() }
    }

    /// Writes the envelope, then moves the message into place; returns false when either failed.
    func commit(_ record: some Encodable) -> Bool {
        flush()
        guard !failed, !durable || fsync(descriptor) == 0, close(descriptor) == 0 else {
            discard()
            return false
        }
        descriptor = -1
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let envelopePath = "\(directory)/\(queueID).json"
        let envelopeTemporary = "\(directory)/.\(queueID).json.tmp"
        do {
            var data = try encoder.encode(record)
            data.append(UInt8(ascii: "\n"))
            if durable {
                try Self.writeDurably(data, to: envelopeTemporary)
            } else {
                try data.write(to: URL(fileURLWithPath: envelopeTemporary))
            }
        } catch {
            unlink(envelopeTemporary)
            unlink(temporaryPath)
            return false
        }
        guard rename(envelopeTemporary, envelopePath) == 0, rename(temporaryPath, "\(directory)/\(queueID).eml") == 0 else {
            unlink(envelopeTemporary)
            unlink(temporaryPath)
            return false
        }
        // The renames are durable once the directory is: without this a crash can leave the
        // files' data on disk and their names not (rename(2) and fsync(2) on Linux file systems).
        return !durable || Self.syncDirectory(directory)
    }

    /// Writes `data` to a new file at `path` and flushes it to the disk.
    private static func writeDurably(_ data: Data, to path: String) throws {
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard file >= 0 else { throw SinkStoreError(path: path, errno: errno) }
        defer { close(file) }
        var offset = 0
        while offset < data.count {
            let written = data.withUnsafeBytes { write(file, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw SinkStoreError(path: path, errno: errno)
            }
            offset += written
        }
        guard fsync(file) == 0 else { throw SinkStoreError(path: path, errno: errno) }
    }

    private static func syncDirectory(_ path: String) -> Bool {
        let directory = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { return false }
        defer { close(directory) }
        return fsync(directory) == 0
    }

    func discard() {
        if descriptor >= 0 {
            close(descriptor)
            descriptor = -1
        }
        unlink(temporaryPath)
        pending.clear()
    }

    private func flush() {
        guard !failed, descriptor >= 0 else { return }
        while pending.readableBytes > 0 {
            let written = pending.withUnsafeReadableBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                failed = true
                break
            }
            pending.moveReaderIndex(forwardBy: written)
        }
        pending.clear()
    }
}

@available(*, unavailable)
extension SinkSpool: Sendable {}

struct SinkStoreError: Error, CustomStringConvertible {
    var path: String
    var errno: Int32
    var description: String { "\(path): \(String(cString: strerror(errno)))" }
}
