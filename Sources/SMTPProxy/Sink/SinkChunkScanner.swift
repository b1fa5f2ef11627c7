import NIOCore

/// Finds the octets a strict receiver refuses in BDAT chunks: a CR not followed by LF, an LF not
/// preceded by CR, and NUL (RFC 5321 §2.3.8; Postfix `smtpd_forbid_bare_newline`).
///
/// BDAT content is not dot-stuffed (RFC 3030 §2), so `DataContentParser` does not apply, but the
/// same octets are what a lenient next hop misreads. The scan keeps one octet of state, so chunk
/// boundaries (even inside CRLF) do not change the result.
public struct SinkChunkScanner: Sendable, Hashable {
    public private(set) var bareLF = 0
    public private(set) var bareCR = 0
    public private(set) var nul = 0
    private var afterCarriageReturn = false

    public init() {}

    public var hasForbiddenOctets: Bool { bareLF > 0 || bareCR > 0 || nul > 0 }

    public mutating func scan(_ buffer: ByteBuffer) {
        for byte in buffer.readableBytesView {
            if afterCarriageReturn && byte != UInt8(ascii: "\n") { bareCR += 1 }
            switch byte {
            case UInt8(ascii: "\n"):
                if !afterCarriageReturn { bareLF += 1 }
                afterCarriageReturn = false
            case UInt8(ascii: "\r"):
                afterCarriageReturn = true
            case 0:
                nul += 1
                afterCarriageReturn = false
            default:
                afterCarriageReturn = false
            }
        }
    }

    /// Call at the end of the message: a CR that ended the last chunk was never followed by LF.
    public mutating func finish() {
        if afterCarriageReturn {
            bareCR += 1
            afterCarriageReturn = false
        }
    }
}
