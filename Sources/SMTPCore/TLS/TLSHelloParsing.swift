import NIOCore

/// Why a hello could not be read. The observer reports it and stops following that direction.
struct TLSParseError: Error, Sendable, Equatable {
    var reason: String

    init(_ reason: String) {
        self.reason = reason
    }

    static func truncated(_ field: String) -> TLSParseError {
        TLSParseError("\(field) is truncated")
    }
}

/// Readers for the presentation language's vectors (RFC 8446 §3.4): a big-endian length of 1, 2 or
/// 3 octets, then that many bytes.
extension ByteBuffer {
    mutating func readTLSUInt8(_ field: String) throws(TLSParseError) -> UInt8 {
        guard let value = readInteger(as: UInt8.self) else { throw .truncated(field) }
        return value
    }

    mutating func readTLSUInt16(_ field: String) throws(TLSParseError) -> UInt16 {
        guard let value = readInteger(as: UInt16.self) else { throw .truncated(field) }
        return value
    }

    mutating func readTLSUInt24(_ field: String) throws(TLSParseError) -> Int {
        guard let high = readInteger(as: UInt8.self), let low = readInteger(as: UInt16.self) else {
            throw .truncated(field)
        }
        return Int(high) << 16 | Int(low)
    }

    mutating func readTLSBytes(_ length: Int, _ field: String) throws(TLSParseError) -> ByteBuffer {
        guard let slice = readSlice(length: length) else { throw .truncated(field) }
        return slice
    }

    /// `opaque field<floor..2^8-1>`: a vector with a 1-octet length.
    mutating func readTLSVector8(_ field: String) throws(TLSParseError) -> ByteBuffer {
        let length = try readTLSUInt8(field)
        return try readTLSBytes(Int(length), field)
    }

    /// `opaque field<floor..2^16-1>`: a vector with a 2-octet length.
    mutating func readTLSVector16(_ field: String) throws(TLSParseError) -> ByteBuffer {
        let length = try readTLSUInt16(field)
        return try readTLSBytes(Int(length), field)
    }
}

/// Text for a peer-chosen name (SNI host name, ALPN protocol): printable ASCII is kept and every
/// other byte is written `\xNN`, so no control character or invalid UTF-8 reaches a transcript.
enum TLSPrintable {
    static func string(from bytes: ByteBuffer, maximumLength: Int) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(min(bytes.readableBytes, maximumLength))
        for byte in bytes.readableBytesView.prefix(maximumLength) {
            if byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") {
                text.append(byte)
            } else {
                text.append(contentsOf: "\\x".utf8)
                text.append(contentsOf: TLSHex.format(byte).utf8.dropFirst(2))
            }
        }
        return String(decoding: text, as: UTF8.self)
    }
}
