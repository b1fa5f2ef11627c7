import NIOCore

/// Writes message content for DATA in canonical form (RFC 5321 §4.1.1.4 and §4.5.2): every line
/// ends in CRLF, a line starting with "." gets another ".", and the content ends with
/// `CRLF "." CRLF` and nothing else.
///
/// This is the writing half of canonical forwarding: content is never relayed as it came, so the
/// upstream cannot find an end of data the proxy did not see. The input is content as
/// `DataContentParser` emits it (already unstuffed), or BDAT chunk octets (RFC 3030 §2). A bare CR,
/// a bare LF or a NUL is never "cleaned" into CRLF or dropped, since normalising is what turns
/// `\r.\r` into a real end of data downstream: it is refused with `ForbiddenOctet`, and the caller
/// aborts the transaction.
public struct DataContentWriter: Sendable {
    public enum Octet: Sendable, Hashable {
        case bareLF
        case bareCR
        case nul
    }

    /// Content that may not be forwarded; `offset` counts content octets before it.
    public struct ForbiddenOctet: Error, Sendable, Hashable {
        public var octet: Octet
        public var offset: Int

        public init(octet: Octet, offset: Int) {
            self.octet = octet
            self.offset = offset
        }
    }

    /// Content octets accepted so far (before dot-stuffing).
    public private(set) var contentOctets = 0
    private var atLineStart = true
    /// A CR was the last octet seen: only an LF may follow. When it ended an input, it has not
    /// been written yet.
    private var pendingCarriageReturn = false
    private var finished = false

    public init() {}

    /// Appends `content` to `output`, dot-stuffed. On a forbidden octet nothing more is written
    /// (octets before it may already be in `output`, which the caller then discards) and every
    /// later call throws again.
    public mutating func write(_ content: ByteBuffer, into output: inout ByteBuffer) throws(ForbiddenOctet) {
        precondition(!finished, "content written after the end of data")
        let failure = content.withUnsafeReadableBytes { scan($0, into: &output) }
        if let failure { throw failure }
    }

    /// Checks `content` exactly as `write` would, writing nothing: for content that is checked as
    /// it arrives and written later (a spooled message, a BDAT chunk relayed as it is).
    public mutating func check(_ content: ByteBuffer) throws(ForbiddenOctet) {
        precondition(!finished, "content written after the end of data")
        var discarding = Discarding()
        let failure = content.withUnsafeReadableBytes { scan($0, into: &discarding) }
        if let failure { throw failure }
    }

    /// The scan over contiguous octets: one pass, ordinary octets skipped a word at a time, and
    /// copied to `output` in spans rather than one by one.
    private mutating func scan<Output: StuffedOutput>(_ bytes: UnsafeRawBufferPointer, into output: inout Output) -> ForbiddenOctet? {
        let count = bytes.count
        var spanStart = 0
        var index = 0
        while index < count {
            if pendingCarriageReturn {
                guard bytes[index] == UInt8(ascii: "\n") else {
                    Self.copy(bytes, spanStart, index, into: &output)
                    return ForbiddenOctet(octet: .bareCR, offset: contentOctets - 1)
                }
                pendingCarriageReturn = false
                if index == 0 {
                    // The CR ended the previous input and was held back until this LF confirmed it.
                    output.append(octet: UInt8(ascii: "\r"))
                }
                atLineStart = true
                contentOctets += 1
                index += 1
                continue
            }
            if !atLineStart {
                // Only CR, LF and NUL (all below 0x0E) need a look inside a line: a word holding
                // none of them is skipped whole.
                while index + 8 <= count {
                    let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                    if (word &- 0x0E0E_0E0E_0E0E_0E0E) & ~word & 0x8080_8080_8080_8080 != 0 { break }
                    index += 8
                    contentOctets += 8
                }
                if index == count { break }
            }
            switch bytes[index] {
            case UInt8(ascii: "\r"):
                pendingCarriageReturn = true
                atLineStart = false
            case UInt8(ascii: "\n"):
                Self.copy(bytes, spanStart, index, into: &output)
                return ForbiddenOctet(octet: .bareLF, offset: contentOctets)
            case 0:
                Self.copy(bytes, spanStart, index, into: &output)
                return ForbiddenOctet(octet: .nul, offset: contentOctets)
            case UInt8(ascii: ".") where atLineStart:
                // RFC 5321 §4.5.2: the sender doubles a leading period.
                Self.copy(bytes, spanStart, index, into: &output)
                spanStart = index
                output.append(octet: UInt8(ascii: "."))
                atLineStart = false
            default:
                atLineStart = false
            }
            contentOctets += 1
            index += 1
        }
        // A trailing CR is held back: if a bare CR, it must not reach the upstream at all.
        Self.copy(bytes, spanStart, pendingCarriageReturn ? index - 1 : index, into: &output)
        return nil
    }

    private static func copy<Output: StuffedOutput>(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, into output: inout Output) {
        if end > start { output.append(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) }
    }

    /// Ends the content: CRLF if the last line lacks one (BDAT content may end anywhere), then
    /// `"." CRLF`.
    public mutating func finish(into output: inout ByteBuffer) throws(ForbiddenOctet) {
        precondition(!finished, "end of data written twice")
        if pendingCarriageReturn {
            throw ForbiddenOctet(octet: .bareCR, offset: contentOctets - 1)
        }
        finished = true
        if !atLineStart { output.writeStaticString("\r\n") }
        output.writeStaticString(".\r\n")
    }
}

/// Where the scan puts canonical content: a buffer (`write`), or nowhere (`check`). Generic rather
/// than optional so each use is specialised and the check costs no copy at all.
private protocol StuffedOutput {
    mutating func append(_ bytes: UnsafeRawBufferPointer)
    mutating func append(octet: UInt8)
}

extension ByteBuffer: StuffedOutput {
    fileprivate mutating func append(_ bytes: UnsafeRawBufferPointer) { writeBytes(bytes) }
    fileprivate mutating func append(octet: UInt8) { writeInteger(octet) }
}

private struct Discarding: StuffedOutput {
    func append(_ bytes: UnsafeRawBufferPointer) {}
    func append(octet: UInt8) {}
}
