/// Appends records to one file, or to standard output for the path "-" (`smtpscope pcap
/// --transcripts FILE|-`), as JSON Lines or as the `--format text` dialogue.
///
/// Writes are buffered (64 KiB by default) and reach the file on `flush()`, `close()`, when the
/// buffer fills, or when the sink is released.
public final class FileTranscriptSink: TranscriptSink {
    public enum Format: String, Sendable, Equatable, CaseIterable {
        case jsonLines = "jsonl"
        case text
    }

    public let path: String
    public let format: Format
    private let file: TranscriptFile
    private var scratch: [UInt8] = []

    /// Opens `path` for appending, creating it if needed; "-" is standard output.
    public init(path: String, format: Format = .jsonLines, bufferCapacity: Int = 64 << 10) throws(TranscriptFileError) {
        precondition(bufferCapacity > 0, "bufferCapacity must be positive")
        self.path = path
        self.format = format
        if path == "-" {
            file = TranscriptFile(standardOutputBufferCapacity: bufferCapacity)
        } else {
            file = try TranscriptFile(appendingTo: path, bufferCapacity: bufferCapacity)
        }
    }

    public func write(_ record: SessionRecord) throws(TranscriptFileError) {
        scratch.removeAll(keepingCapacity: true)
        switch format {
        case .jsonLines:
            SessionRecordEncoder.encode(record, into: &scratch)
        case .text:
            scratch.append(contentsOf: TextTranscriptWriter.render(record).utf8)
        }
        try file.append(line: scratch)
    }

    public func flush() throws(TranscriptFileError) {
        try file.flush()
    }

    public func close() throws(TranscriptFileError) {
        try file.close()
    }
}

@available(*, unavailable)
extension FileTranscriptSink: Sendable {}
