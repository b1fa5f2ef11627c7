import NIOCore

/// Splits one direction of a TLS connection into records (RFC 8446 §5.1), in chunks of any size.
///
/// Framing is a step of its own: the reader yields each record header, then either hands the body
/// on (``deliverRecordBody()``) or skips it without buffering, so a long encrypted stream costs one
/// header read per record and no memory. It keeps at most the 5 header bytes between calls.
struct TLSRecordReader: Sendable {
    enum Event: Sendable, Equatable {
        case header(TLSRecordHeader)
        /// The stream's first record in SSLv2 format; its body is skipped.
        case sslv2Header(TLSSSLv2RecordHeader)
        /// Part of the current record's body, after ``deliverRecordBody()``.
        case body(ByteBuffer)
        case recordEnd
        /// The bytes are not TLS records; the reader ignores the rest of the stream.
        case invalid(reason: String, isFirstRecord: Bool)
    }

    private enum State: Sendable {
        case header
        case body(remaining: Int, deliver: Bool)
        case failed
    }

    private var state: State = .header
    private var headerBytes: [UInt8] = []
    /// The SSLv2 `msg_type` allowed as the first record, or `nil`.
    private let sslv2MessageType: UInt8?
    private(set) var recordCount = 0

    /// - Parameter sslv2MessageType: 1 for the client direction (CLIENT-HELLO), 4 for the server
    ///   (SERVER-HELLO); only the stream's first record may use the SSLv2 format.
    init(sslv2MessageType: UInt8?) {
        self.sslv2MessageType = sslv2MessageType
        headerBytes.reserveCapacity(TLSRecordHeader.byteCount)
    }

    /// Asks for the body of the record whose header was just yielded.
    mutating func deliverRecordBody() {
        if case .body(let remaining, _) = state {
            state = .body(remaining: remaining, deliver: true)
        }
    }

    /// Skips whatever is left of the current record's body.
    mutating func skipRestOfRecord() {
        if case .body(let remaining, _) = state {
            state = .body(remaining: remaining, deliver: false)
        }
    }

    /// Stops reading: everything from now on is consumed and ignored.
    mutating func stop() {
        state = .failed
    }

    /// The next event from `input`, or `nil` when `input` is used up.
    mutating func next(_ input: inout ByteBuffer) -> Event? {
        while true {
            switch state {
            case .failed:
                input.moveReaderIndex(to: input.writerIndex)
                return nil

            case .header:
                guard let byte = input.readInteger(as: UInt8.self) else { return nil }
                headerBytes.append(byte)
                let verdict = TLSRecordPrefixVerdict.judge(
                    headerBytes,
                    sslv2MessageType: recordCount == 0 ? sslv2MessageType : nil
                )
                switch verdict {
                case .needMoreBytes:
                    continue
                case .invalid(let reason):
                    state = .failed
                    input.moveReaderIndex(to: input.writerIndex)
                    return .invalid(reason: reason, isFirstRecord: recordCount == 0)
                case .tls(let header):
                    startBody(length: header.length)
                    return .header(header)
                case .sslv2(let header):
                    // msg_type and the version field were the last three header bytes.
                    startBody(length: header.length - 3)
                    return .sslv2Header(header)
                }

            case .body(let remaining, let deliver):
                if remaining == 0 {
                    state = .header
                    return .recordEnd
                }
                let count = min(remaining, input.readableBytes)
                guard count > 0 else { return nil }
                state = .body(remaining: remaining - count, deliver: deliver)
                if deliver, let slice = input.readSlice(length: count) {
                    return .body(slice)
                }
                input.moveReaderIndex(forwardBy: count)
            }
        }
    }

    private mutating func startBody(length: Int) {
        recordCount += 1
        headerBytes.removeAll(keepingCapacity: true)
        state = .body(remaining: length, deliver: false)
    }
}
