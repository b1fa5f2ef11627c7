/// `ContentType` of a TLS record (RFC 8446 §5.1; heartbeat from RFC 6520).
enum TLSContentType: UInt8, Sendable {
    case changeCipherSpec = 20
    case alert = 21
    case handshake = 22
    case applicationData = 23
    case heartbeat = 24
}

/// The 5-byte header in front of every TLS record (RFC 8446 §5.1, RFC 5246 §6.2.1):
///
///     struct {
///         ContentType type;
///         ProtocolVersion legacy_record_version;
///         uint16 length;
///         opaque fragment[TLSPlaintext.length];
///     } TLSPlaintext;
struct TLSRecordHeader: Sendable, Equatable {
    static let byteCount = 5

    var contentType: TLSContentType
    var legacyRecordVersion: TLSProtocolVersion
    var length: Int
}

/// The first header of a stream sent in SSL 2.0 format, as SSLv2-compatible hellos are
/// (RFC 5246 §E.2): a 2-byte length with the top bit set, then `msg_type` and a 2-byte version.
struct TLSSSLv2RecordHeader: Sendable, Equatable {
    /// 1 is CLIENT-HELLO, 4 is SERVER-HELLO.
    var messageType: UInt8
    /// For a CLIENT-HELLO the version the client asks for; for a SERVER-HELLO the first two bytes
    /// after `msg_type` (session-id-hit and certificate type).
    var versionField: UInt16
    /// The record length, counting `msg_type` and the version field.
    var length: Int
}

/// What the first bytes of a record header say, as far as they go.
enum TLSRecordPrefixVerdict: Sendable, Equatable {
    case needMoreBytes
    case tls(TLSRecordHeader)
    case sslv2(TLSSSLv2RecordHeader)
    case invalid(String)
}

extension TLSRecordPrefixVerdict {
    /// Judges a record header from its first bytes, so that plaintext (`EHLO`, `220 `) is rejected
    /// from its first octet rather than after five.
    ///
    /// - Parameters:
    ///   - prefix: up to ``TLSRecordHeader/byteCount`` bytes.
    ///   - sslv2MessageType: the SSLv2 `msg_type` accepted in place of a TLS header, or `nil` when
    ///     only TLS records may appear (every record but a stream's first).
    ///   - requiredContentType: when non-nil, the only content type allowed.
    static func judge(
        _ prefix: some Collection<UInt8>,
        sslv2MessageType: UInt8?,
        requiredContentType: TLSContentType? = nil,
        maximumRecordLength: Int = TLSObserverDefaults.maximumRecordLength
    ) -> TLSRecordPrefixVerdict {
        var bytes = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
        var count = 0
        for byte in prefix.prefix(TLSRecordHeader.byteCount) {
            switch count {
            case 0: bytes.0 = byte
            case 1: bytes.1 = byte
            case 2: bytes.2 = byte
            case 3: bytes.3 = byte
            default: bytes.4 = byte
            }
            count += 1
        }
        guard count > 0 else { return .needMoreBytes }

        if bytes.0 & 0x80 != 0, let sslv2MessageType {
            return judgeSSLv2(bytes, count: count, messageType: sslv2MessageType)
        }
        guard let contentType = TLSContentType(rawValue: bytes.0),
            requiredContentType.map({ $0 == contentType }) ?? true
        else {
            return .invalid("content type \(bytes.0) is not a TLS record type")
        }
        guard count > 1 else { return .needMoreBytes }
        guard bytes.1 == 3 else { return .invalid("record version major \(bytes.1) is not 3") }
        guard count > 2 else { return .needMoreBytes }
        guard bytes.2 <= 4 else { return .invalid("record version 3.\(bytes.2) is unknown") }
        guard count > 4 else { return .needMoreBytes }
        let length = Int(bytes.3) << 8 | Int(bytes.4)
        guard length <= maximumRecordLength else {
            return .invalid("record length \(length) exceeds \(maximumRecordLength)")
        }
        return .tls(
            TLSRecordHeader(
                contentType: contentType,
                legacyRecordVersion: TLSProtocolVersion(rawValue: UInt16(bytes.1) << 8 | UInt16(bytes.2)),
                length: length
            )
        )
    }

    private static func judgeSSLv2(
        _ bytes: (UInt8, UInt8, UInt8, UInt8, UInt8),
        count: Int,
        messageType: UInt8
    ) -> TLSRecordPrefixVerdict {
        guard count > 2 else { return .needMoreBytes }
        guard bytes.2 == messageType else {
            return .invalid("SSLv2 message type \(bytes.2) where \(messageType) was expected")
        }
        // A CLIENT-HELLO names the version it wants: SSL 2.0 or a 3.x version (RFC 5246 §E.2).
        if messageType == 1 {
            guard count > 3 else { return .needMoreBytes }
            guard bytes.3 == 0 || bytes.3 == 3 else {
                return .invalid("SSLv2 CLIENT-HELLO version major \(bytes.3) is unknown")
            }
        }
        guard count > 4 else { return .needMoreBytes }
        let length = Int(bytes.0 & 0x7F) << 8 | Int(bytes.1)
        // msg_type, version, and three 2-byte lengths at least.
        guard length >= 9 || messageType != 1, length >= 3 else {
            return .invalid("SSLv2 record length \(length) is too short")
        }
        return .sslv2(
            TLSSSLv2RecordHeader(
                messageType: bytes.2,
                versionField: UInt16(bytes.3) << 8 | UInt16(bytes.4),
                length: length
            )
        )
    }
}
