import NIOCore

/// Rebuilds handshake messages from record fragments (RFC 8446 §5.1: a message may span records and a
/// record may hold several messages):
///
///     struct {
///         HandshakeType msg_type;    /* handshake type */
///         uint24 length;             /* remaining bytes in message */
///         select (Handshake.msg_type) { ... };
///     } Handshake;
///
/// It holds at most one partial message of up to `maximumMessageLength` bytes plus one fragment.
struct TLSHandshakeReassembler: Sendable {
    enum Output: Sendable, Equatable {
        case message(type: UInt8, body: ByteBuffer)
        /// A message declared longer than the limit; the reassembler should be dropped.
        case messageTooLong(type: UInt8, length: Int)
    }

    static let headerLength = 4

    private var pending = ByteBuffer()
    let maximumMessageLength: Int

    init(maximumMessageLength: Int = TLSObserverDefaults.maximumHandshakeMessageLength) {
        self.maximumMessageLength = maximumMessageLength
    }

    /// Adds a record fragment. Call ``nextMessage()`` until it returns `nil` after each one.
    mutating func append(_ fragment: ByteBuffer) {
        var fragment = fragment
        pending.writeBuffer(&fragment)
    }

    /// The next whole message, `nil` when more bytes are needed.
    mutating func nextMessage() -> Output? {
        guard pending.readableBytes >= Self.headerLength,
            let type = pending.getInteger(at: pending.readerIndex, as: UInt8.self),
            let lengthHigh = pending.getInteger(at: pending.readerIndex + 1, as: UInt8.self),
            let lengthLow = pending.getInteger(at: pending.readerIndex + 2, as: UInt16.self)
        else { return nil }
        let length = Int(lengthHigh) << 16 | Int(lengthLow)
        guard length <= maximumMessageLength else {
            return .messageTooLong(type: type, length: length)
        }
        guard pending.readableBytes >= Self.headerLength + length else { return nil }
        pending.moveReaderIndex(forwardBy: Self.headerLength)
        guard let body = pending.readSlice(length: length) else { return nil }
        if pending.readableBytes == 0 {
            // Nothing partial is left, so the next fragment can reuse the storage from the start.
            pending.clear()
        }
        return .message(type: type, body: body)
    }
}
