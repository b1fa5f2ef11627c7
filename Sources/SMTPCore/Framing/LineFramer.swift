import NIOCore

/// Splits a byte stream into command or reply lines (RFC 5321 §2.3.8: lines end in CRLF).
///
/// A bare LF is accepted as a line end here, as Postfix and most servers accept it in commands, and
/// reported so that callers can flag it. A line longer than the limit is not buffered: its first
/// octets are kept, the rest is dropped up to the next LF, and it is reported as overlong, so memory
/// stays flat whatever the peer sends.
public struct LineFramer: Sendable {
    public enum Terminator: Sendable, Hashable {
        case crlf
        case bareLF
    }

    public enum Frame: Sendable, Hashable {
        case line(ByteBuffer, Terminator)
        /// A line over the limit: its first `maxLineOctets` octets, and its full length without CRLF.
        case overlong(prefix: ByteBuffer, totalOctets: Int)
    }

    /// Longest line, terminator included.
    public var maxLineOctets: Int
    private var overlongPrefix: ByteBuffer?
    private var overlongOctets = 0
    private var lastDroppedWasCR = false

    public init(maxLineOctets: Int) {
        precondition(maxLineOctets >= 3, "a line needs room for at least one octet and CRLF")
        self.maxLineOctets = maxLineOctets
    }

    /// True while the rest of an overlong line is being dropped.
    public var isDroppingOverlongLine: Bool { overlongPrefix != nil }

    /// Takes the next complete line from `buffer`, leaving any partial line in it.
    public mutating func next(from buffer: inout ByteBuffer) -> Frame? {
        let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n"))
        if var prefix = overlongPrefix {
            guard let newline else {
                if let last = buffer.readableBytesView.last { lastDroppedWasCR = last == UInt8(ascii: "\r") }
                overlongOctets += buffer.readableBytes
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                return nil
            }
            let length = newline - buffer.readerIndex
            // The CR of the CRLF may have arrived with the dropped octets of an earlier chunk.
            let endsWithCR = length > 0
                ? buffer.getInteger(at: newline - 1, as: UInt8.self) == UInt8(ascii: "\r")
                : lastDroppedWasCR
            overlongOctets += length
            buffer.moveReaderIndex(forwardBy: length + 1)
            let total = endsWithCR ? overlongOctets - 1 : overlongOctets
            overlongPrefix = nil
            overlongOctets = 0
            lastDroppedWasCR = false
            prefix.moveWriterIndex(to: min(prefix.writerIndex, prefix.readerIndex + maxLineOctets))
            return .overlong(prefix: prefix, totalOctets: max(total, 0))
        }
        guard let newline else {
            if buffer.readableBytes >= maxLineOctets {
                // Keep the start for the transcript, drop the rest as it arrives.
                overlongPrefix = buffer.readSlice(length: maxLineOctets - 2)
                if let last = buffer.readableBytesView.last ?? overlongPrefix?.readableBytesView.last {
                    lastDroppedWasCR = last == UInt8(ascii: "\r")
                }
                overlongOctets = maxLineOctets - 2 + buffer.readableBytes
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            }
            return nil
        }
        let length = newline - buffer.readerIndex
        if length + 1 > maxLineOctets {
            let prefix = buffer.getSlice(at: buffer.readerIndex, length: maxLineOctets - 2) ?? ByteBuffer()
            let hasCR = buffer.getInteger(at: newline - 1, as: UInt8.self) == UInt8(ascii: "\r")
            buffer.moveReaderIndex(forwardBy: length + 1)
            return .overlong(prefix: prefix, totalOctets: hasCR ? length - 1 : length)
        }
        if length > 0, buffer.getInteger(at: newline - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            let line = buffer.readSlice(length: length - 1) ?? ByteBuffer()
            buffer.moveReaderIndex(forwardBy: 2)
            return .line(line, .crlf)
        }
        let line = buffer.readSlice(length: length) ?? ByteBuffer()
        buffer.moveReaderIndex(forwardBy: 1)
        return .line(line, .bareLF)
    }
}
