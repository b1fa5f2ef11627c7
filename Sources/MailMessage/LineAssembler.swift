/// How a line of message content ended.
enum LineTerminator: Sendable, Equatable {
    /// CRLF, as RFC 5322 §2.1 requires.
    case crlf
    /// A bare LF.
    case lf
    /// The end of the content, without a line break.
    case none

    func write(into sink: inout some DecodedOctetSink) {
        switch self {
        case .crlf:
            sink.append(ASCII.cr)
            sink.append(ASCII.lf)
        case .lf:
            sink.append(ASCII.lf)
        case .none:
            break
        }
    }
}

/// Receives the lines a ``LineAssembler`` finds.
///
/// A line that fits in the assembler's head buffer arrives whole (``receiveLine(_:terminator:)``).
/// A longer one arrives as its head (``receiveLongLineHead(_:)``), then the rest in pieces of any
/// size (``receiveLongLineContinuation(_:)``), then its end (``receiveLongLineEnd(_:)``). The split
/// between head and rest depends only on the content, never on how it was chunked.
protocol LineConsumer {
    mutating func receiveLine(_ line: [UInt8], terminator: LineTerminator)
    mutating func receiveLongLineHead(_ head: [UInt8])
    mutating func receiveLongLineContinuation(_ octets: UnsafeRawBufferPointer)
    mutating func receiveLongLineEnd(_ terminator: LineTerminator)
    /// A bare CR, bare LF or NUL was seen (RFC 5322 §2.3 forbids them).
    mutating func receiveOddOctet(_ kind: LineAssembler.OddOctet)
    /// True when no line from here to the end of the content can change what the consumer reports
    /// (say, the body of a single-part message whose text is not kept): the assembler then stops
    /// delivering lines and only reports odd octets and whether the last line was ended. Asked at
    /// line starts; once true it must stay true, since no line is delivered to change it.
    var ignoresLines: Bool { get }
}

/// Splits message content into lines in bounded memory, however it is chunked.
///
/// Lines end at LF; a CR right before it makes the terminator CRLF. A CR followed by anything else is a
/// bare CR and stays in the line's data: treating it as a line break is how SMTP smuggling starts, and
/// the MIME structure must be judged by the same lines the server will see. Only the first
/// ``headCapacity`` octets of a line are buffered; that is enough to tell a header field name or a MIME
/// boundary line (RFC 2046 §5.1.1 caps boundaries at 70 characters).
struct LineAssembler: Sendable {
    enum OddOctet: Sendable {
        case bareCR
        case bareLF
        case nul
    }

    /// Octets of a line buffered before it is streamed as a long line.
    static let headCapacity = 1024

    private var head: [UInt8] = []
    private var isLong = false
    /// A CR that ended the previous chunk: whether it starts CRLF is decided by the next octet.
    private var heldCR = false
    /// Set once the consumer ignores lines: line data is no longer buffered or delivered.
    private var skipping = false
    /// While skipping: whether the current line has octets (for the missing final line break).
    private var skippedLineHasData = false

    init() {
        head.reserveCapacity(Self.headCapacity)
    }

    mutating func receive(_ octets: UnsafeRawBufferPointer, into consumer: inout some LineConsumer) {
        var index = octets.startIndex
        let end = octets.endIndex
        if heldCR, index < end {
            heldCR = false
            if octets[index] == ASCII.lf {
                endLine(.crlf, into: &consumer)
                index += 1
            } else {
                consumer.receiveOddOctet(.bareCR)
                appendBareCR(into: &consumer)
            }
        }
        while index < end {
            if !skipping, !isLong, head.isEmpty, consumer.ignoresLines { skipping = true }
            // Find the next octet that needs a decision; everything before it is plain line data.
            let special = Self.nextSpecial(in: octets, from: index)
            if special > index {
                append(UnsafeRawBufferPointer(rebasing: octets[index..<special]), into: &consumer)
            }
            guard special < end else { return }
            switch octets[special] {
            case ASCII.lf:
                consumer.receiveOddOctet(.bareLF)
                endLine(.lf, into: &consumer)
                index = special + 1
            case ASCII.cr:
                if special + 1 == end {
                    heldCR = true
                    return
                }
                if octets[special + 1] == ASCII.lf {
                    endLine(.crlf, into: &consumer)
                    index = special + 2
                } else {
                    consumer.receiveOddOctet(.bareCR)
                    append(UnsafeRawBufferPointer(rebasing: octets[special..<special + 1]), into: &consumer)
                    index = special + 1
                }
            default:
                consumer.receiveOddOctet(.nul)
                append(UnsafeRawBufferPointer(rebasing: octets[special..<special + 1]), into: &consumer)
                index = special + 1
            }
        }
    }

    /// The index of the first LF, CR or NUL at or after `start`, or the end.
    private static func nextSpecial(in octets: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = start
        let end = octets.endIndex
        // Eight octets at a time while none is below 0x0E (CR is 0x0D, the largest of the three):
        // (w - 0x0E0E...) & ~w & 0x8080... is non-zero exactly when some octet of w is below 0x0E.
        while index + 8 <= end {
            let word = UInt64(littleEndian: octets.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            if (word &- 0x0E0E_0E0E_0E0E_0E0E) & ~word & 0x8080_8080_8080_8080 != 0 { break }
            index += 8
        }
        while index < end {
            let octet = octets[index]
            if octet == ASCII.lf || octet == ASCII.cr || octet == 0 { break }
            index += 1
        }
        return index
    }

    /// Ends the content: a held CR is a bare CR, and a last line without a break is delivered.
    /// Returns whether that last line had no line break.
    mutating func finish(into consumer: inout some LineConsumer) -> Bool {
        if heldCR {
            heldCR = false
            consumer.receiveOddOctet(.bareCR)
            appendBareCR(into: &consumer)
        }
        guard isLong || !head.isEmpty || skippedLineHasData else { return false }
        endLine(.none, into: &consumer)
        return true
    }

    private mutating func appendBareCR(into consumer: inout some LineConsumer) {
        let cr: [UInt8] = [ASCII.cr]
        cr.withUnsafeBytes { append($0, into: &consumer) }
    }

    private mutating func append(_ octets: UnsafeRawBufferPointer, into consumer: inout some LineConsumer) {
        if skipping {
            if !octets.isEmpty { skippedLineHasData = true }
            return
        }
        if isLong {
            consumer.receiveLongLineContinuation(octets)
            return
        }
        let room = Self.headCapacity - head.count
        if octets.count <= room {
            head.append(contentsOf: octets)
            return
        }
        head.append(contentsOf: octets[octets.startIndex..<octets.startIndex + room])
        isLong = true
        consumer.receiveLongLineHead(head)
        consumer.receiveLongLineContinuation(
            UnsafeRawBufferPointer(rebasing: octets[(octets.startIndex + room)...])
        )
    }

    private mutating func endLine(_ terminator: LineTerminator, into consumer: inout some LineConsumer) {
        if skipping {
            skippedLineHasData = false
            return
        }
        if isLong {
            consumer.receiveLongLineEnd(terminator)
        } else {
            consumer.receiveLine(head, terminator: terminator)
        }
        head.removeAll(keepingCapacity: true)
        isLong = false
    }
}
