import NIOCore

/// Reads DATA content by the strict RFC 5321 rule (§4.1.1.4, §4.5.2): lines end in CRLF, a leading
/// "." is removed, and the content ends at `CRLF "." CRLF` and nothing else.
///
/// A bare CR or LF is content, never a line end: counting it as one is what lets a lenient server see a
/// different end of data than a strict one (SMTP smuggling). Every such octet is counted in
/// `observations`, and the first place where a lenient server *would* have ended the message
/// (`LF "." LF`, `CR "." CR`, ...) is reported as a stop of its own, so a passive observer can remember
/// it and follow the server if its replies show it ended there.
public struct DataContentParser: Sendable {
    public enum Stop: Sendable, Hashable {
        /// All input was consumed; the content goes on.
        case needMoreBytes
        /// `CRLF.CRLF` was consumed; any bytes after it are left in the buffer.
        case endOfData
        /// The parser stopped just after the first lenient end-of-data sequence of this message.
        /// Calling `parse` again continues by the strict rule.
        case lenientEndCandidate
    }

    /// What the content held that a strict receiver refuses or a lenient one misreads.
    public struct Observations: Sendable, Hashable {
        public var bareLF = 0
        public var bareCR = 0
        public var nul = 0
        /// Lines over 1000 octets including CRLF (RFC 5321 §4.5.3.1.6).
        public var overlongLines = 0
        public var longestLine = 0
        /// Content octet offset of the first bare LF, bare CR or NUL.
        public var firstBareLFOffset: Int?
        public var firstBareCROffset: Int?
        public var firstNULOffset: Int?

        public var hasForbiddenOctets: Bool { bareLF > 0 || bareCR > 0 || nul > 0 }

        public init() {}
    }

    private enum State: Sendable {
        /// After CRLF, or at the very start of the content.
        case lineStart
        case middle
        /// After a CR inside a line.
        case carriageReturn
        /// After a "." at the start of a line (the dot itself is never content).
        case dot
        /// After "." CR at the start of a line: LF makes the end of data, anything else makes the CR
        /// content.
        case dotCarriageReturn
    }

    /// Tracks the lenient reading: any CR or LF counts as a line break.
    private enum LenientState: Sendable {
        case other
        case afterBreak
        case afterBreakDot(strict: Bool)
        case afterBreakDotCR(strict: Bool)
    }

    public private(set) var observations = Observations()
    /// Content octets handed out so far (after dot-unstuffing).
    public private(set) var contentOctets = 0
    /// Whether to stop at lenient end candidates (a passive observer wants them; a relay that
    /// rejects bare line ends does not need them).
    public var reportsLenientEndCandidates: Bool
    private var state = State.lineStart
    private var lenient = LenientState.afterBreak
    private var lineLength = 0
    private var candidateReported = false
    /// Content octets the strict reading has accepted, handed out or not: the offsets of
    /// observations count in it, so they do not depend on chunking.
    private var position = 0
    private var lastCarriageReturnPosition = 0
    /// The CR of a line-start ".\r" that ended the previous input chunk: not yet known to be content.
    private var heldCarriageReturn = false
    /// While a possible lenient terminator is open ("." after a line break), the octets from its dot
    /// on are withheld: if it completes, they are content only in the strict reading.
    private var holdStart: Int?
    /// Withheld octets of an open lenient terminator, carried over from previous input chunks.
    private var carriedHold = ByteBuffer()
    /// Strict-reading content withheld at a lenient candidate, handed out on the next `parse`.
    private var pendingStrictContent = ByteBuffer()

    public init(reportsLenientEndCandidates: Bool = true) {
        self.reportsLenientEndCandidates = reportsLenientEndCandidates
    }

    private static let carriageReturn: ByteBuffer = {
        var buffer = ByteBufferAllocator().buffer(capacity: 1)
        buffer.writeInteger(UInt8(ascii: "\r"))
        return buffer
    }()

    /// Where `parse` is in its input: the start of the content span not yet handed out, and the
    /// next octet to read. Kept in a value passed `inout` rather than in locals captured by nested
    /// functions, which would cost a dynamic exclusivity check per octet.
    private struct Cursor {
        var spanStart: Int
        var index: Int
    }

    /// Consumes content from `buffer`, passing unstuffed content to `emit` as slices of the input.
    ///
    /// After `.lenientEndCandidate`, the content handed out so far ends just before the lenient
    /// end-of-data line, so a reader that follows a lenient server can end the message there; the
    /// next call hands out that line first and goes on by the strict rule.
    public mutating func parse(_ buffer: inout ByteBuffer, emit: (ByteBuffer) -> Void) -> Stop {
        var cursor = Cursor(spanStart: buffer.readerIndex, index: buffer.readerIndex)

        if pendingStrictContent.readableBytes > 0 {
            contentOctets += pendingStrictContent.readableBytes
            emit(pendingStrictContent)
            pendingStrictContent = ByteBuffer()
        }
        // An open hold goes on at the start of this input; the index it had in an earlier input
        // means nothing in this one (the caller may have compacted or replaced its buffer).
        if holdStart != nil || carriedHold.readableBytes > 0 { holdStart = cursor.index }

        let result = scan(buffer, cursor: &cursor, emit: emit)
        if result == .endOfData {
            buffer.moveReaderIndex(to: cursor.index)
            return .endOfData
        }
        return stop(result, buffer: &buffer, cursor: &cursor, emit: emit)
    }

    /// The octet loop of `parse`, over the readable bytes in place (one access to the buffer's
    /// storage for the whole loop, not one per octet). Returns where it stopped; for
    /// `.endOfData` the cursor is just past the terminator.
    private mutating func scan(_ buffer: ByteBuffer, cursor: inout Cursor, emit: (ByteBuffer) -> Void) -> Stop {
        let base = buffer.readerIndex
        let end = buffer.writerIndex
        return buffer.withUnsafeReadableBytes { octets in
            scan(octets, base: base, end: end, buffer: buffer, cursor: &cursor, emit: emit)
        }
    }

    private mutating func scan(
        _ octets: UnsafeRawBufferPointer,
        base: Int,
        end: Int,
        buffer: ByteBuffer,
        cursor: inout Cursor,
        emit: (ByteBuffer) -> Void
    ) -> Stop {
        while cursor.index < end {
            if state == .middle, holdStart == nil, lenientIsPlain {
                // Inside a line, octets other than CR, LF and NUL change nothing but the counts, in
                // both readings: skip the run at once.
                let run = Self.plainRunLength(in: octets, from: cursor.index - base, to: end - base)
                if run > 0 {
                    lineLength += run
                    position += run
                    cursor.index += run
                    continue
                }
            }
            let byte = octets[cursor.index - base]
            var candidateAfterThisByte = false
            if reportsLenientEndCandidates && !candidateReported {
                if case .afterBreak = lenient, byte == UInt8(ascii: ".") { holdStart = cursor.index }
                switch advanceLenient(byte) {
                case .none:
                    switch lenient {
                    case .afterBreakDot, .afterBreakDotCR: break
                    case .other, .afterBreak: if holdStart != nil { releaseHold(emit: emit) }
                    }
                case .beforeThisByte:
                    candidateReported = true
                    return .lenientEndCandidate
                case .afterThisByte:
                    candidateAfterThisByte = true
                }
            }

            switch state {
            case .lineStart where byte == UInt8(ascii: "."):
                flush(upTo: cursor.index, buffer: buffer, cursor: &cursor, emit: emit)
                cursor.spanStart = cursor.index + 1
                state = .dot
            case .lineStart, .middle:
                consumeContent(byte)
            case .carriageReturn:
                if byte == UInt8(ascii: "\n") {
                    position += 1
                    endLine()
                    state = .lineStart
                } else {
                    recordBareCR(at: lastCarriageReturnPosition)
                    consumeContent(byte)
                }
            case .dot:
                // spanStart already excludes the dot; a CR right after it is withheld.
                if byte == UInt8(ascii: "\r") {
                    state = .dotCarriageReturn
                } else {
                    state = .middle
                    lineLength = 0
                    consumeContent(byte)
                }
            case .dotCarriageReturn:
                if byte == UInt8(ascii: "\n") {
                    heldCarriageReturn = false
                    holdStart = nil
                    state = .lineStart
                    lineLength = 0
                    cursor.index += 1
                    cursor.spanStart = cursor.index
                    return .endOfData
                }
                // ".\r" then something else: the dot was stuffing and the CR is a bare CR.
                if heldCarriageReturn {
                    heldCarriageReturn = false
                    contentOctets += 1
                    emit(Self.carriageReturn)
                }
                recordBareCR(at: position)
                position += 1
                state = .middle
                lineLength = 1
                consumeContent(byte)
            }
            cursor.index += 1
            if candidateAfterThisByte {
                candidateReported = true
                return .lenientEndCandidate
            }
        }
        return .needMoreBytes
    }

    /// `parse`, appending the content slices to `contents` instead of handing them to a closure.
    public mutating func parse(_ buffer: inout ByteBuffer, into contents: inout [ByteBuffer]) -> Stop {
        // An inout parameter captured by the non-escaping closure needs no dynamic exclusivity
        // check, unlike a local variable captured by the caller's closure.
        parse(&buffer) { contents.append($0) }
    }

    /// True when the lenient reading is not followed or sits inside a line, so that an ordinary
    /// octet leaves it as it is.
    private var lenientIsPlain: Bool {
        guard reportsLenientEndCandidates && !candidateReported else { return true }
        if case .other = lenient { return true }
        return false
    }

    /// Octets of `octets` from `start` before the first CR, LF or NUL (or `end`).
    private static func plainRunLength(in octets: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
        var offset = start
        // Eight octets at a time while none is below 0x0E (CR is 0x0D, the largest of the three):
        // (w - 0x0E0E...) & ~w & 0x8080... is non-zero exactly when some octet of w is below 0x0E.
        while offset + 8 <= end {
            let word = UInt64(littleEndian: octets.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            if (word &- 0x0E0E_0E0E_0E0E_0E0E) & ~word & 0x8080_8080_8080_8080 != 0 { break }
            offset += 8
        }
        while offset < end {
            let octet = octets[offset]
            if octet <= UInt8(ascii: "\r"), octet == UInt8(ascii: "\r") || octet == UInt8(ascii: "\n") || octet == 0 {
                break
            }
            offset += 1
        }
        return offset - start
    }

    /// Hands out the content from the span start up to `limit`, but never past an open hold.
    private mutating func flush(upTo limitPosition: Int, buffer: ByteBuffer, cursor: inout Cursor, emit: (ByteBuffer) -> Void) {
        let limit = holdStart.map { min(limitPosition, max($0, cursor.spanStart)) } ?? limitPosition
        if limit > cursor.spanStart, let slice = buffer.getSlice(at: cursor.spanStart, length: limit - cursor.spanStart) {
            contentOctets += slice.readableBytes
            emit(slice)
        }
        cursor.spanStart = max(cursor.spanStart, limit)
    }

    /// Octets from the hold start to the current stop that are strict content.
    private func heldSlice(buffer: ByteBuffer, cursor: Cursor) -> ByteBuffer {
        guard let holdStart else { return ByteBuffer() }
        let from = max(cursor.spanStart, holdStart)
        let to = state == .dotCarriageReturn ? cursor.spanStart : cursor.index
        guard to > from, let slice = buffer.getSlice(at: from, length: to - from) else { return ByteBuffer() }
        return slice
    }

    private mutating func releaseHold(emit: (ByteBuffer) -> Void) {
        holdStart = nil
        if carriedHold.readableBytes > 0 {
            contentOctets += carriedHold.readableBytes
            emit(carriedHold)
            carriedHold = ByteBuffer()
        }
    }

    /// Stops with the CR of a line-start ".\r" withheld until the next octet decides it.
    private mutating func stop(_ result: Stop, buffer: inout ByteBuffer, cursor: inout Cursor, emit: (ByteBuffer) -> Void) -> Stop {
        if result == .lenientEndCandidate {
            var strict = carriedHold
            var slice = heldSlice(buffer: buffer, cursor: cursor)
            strict.writeBuffer(&slice)
            pendingStrictContent = strict
            carriedHold = ByteBuffer()
            if let holdStart { flush(upTo: holdStart, buffer: buffer, cursor: &cursor, emit: emit) }
            holdStart = nil
        } else if holdStart != nil {
            flush(upTo: cursor.index, buffer: buffer, cursor: &cursor, emit: emit)
            var slice = heldSlice(buffer: buffer, cursor: cursor)
            carriedHold.writeBuffer(&slice)
        } else {
            flush(upTo: state == .dotCarriageReturn ? cursor.spanStart : cursor.index, buffer: buffer, cursor: &cursor, emit: emit)
        }
        if state == .dotCarriageReturn { heldCarriageReturn = true }
        buffer.moveReaderIndex(to: cursor.index)
        return result
    }

    private mutating func consumeContent(_ byte: UInt8) {
        lineLength += 1
        switch byte {
        case UInt8(ascii: "\r"):
            lastCarriageReturnPosition = position
            state = .carriageReturn
        case UInt8(ascii: "\n"):
            observations.bareLF += 1
            if observations.firstBareLFOffset == nil { observations.firstBareLFOffset = position }
            state = .middle
        case 0:
            observations.nul += 1
            if observations.firstNULOffset == nil { observations.firstNULOffset = position }
            state = .middle
        default:
            state = .middle
        }
        position += 1
    }

    private mutating func recordBareCR(at offset: Int) {
        observations.bareCR += 1
        if observations.firstBareCROffset == nil { observations.firstBareCROffset = offset }
    }

    private mutating func endLine() {
        let octets = lineLength + 1
        if octets > observations.longestLine { observations.longestLine = octets }
        if octets > 1000 { observations.overlongLines += 1 }
        lineLength = 0
    }

    private enum LenientStop {
        case beforeThisByte
        case afterThisByte
    }

    /// Advances the lenient reading, in which any CR or LF ends a line; reports where a lenient
    /// terminator ends relative to this octet.
    private mutating func advanceLenient(_ byte: UInt8) -> LenientStop? {
        let isBreak = byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
        switch lenient {
        case .other:
            lenient = isBreak ? .afterBreak : .other
        case .afterBreak:
            if byte == UInt8(ascii: ".") {
                lenient = .afterBreakDot(strict: state == .lineStart)
            } else {
                lenient = isBreak ? .afterBreak : .other
            }
        case .afterBreakDot(let strict):
            if byte == UInt8(ascii: "\n") {
                lenient = .afterBreak
                return .afterThisByte
            }
            lenient = byte == UInt8(ascii: "\r") ? .afterBreakDotCR(strict: strict) : .other
        case .afterBreakDotCR(let strict):
            if byte == UInt8(ascii: "\n") {
                lenient = .afterBreak
                // CRLF "." CRLF is the real end, not a candidate.
                return strict ? nil : .afterThisByte
            }
            // A CR-terminated dot line: the terminator ended before this octet.
            lenient = isBreak ? .afterBreak : .other
            return .beforeThisByte
        }
        return nil
    }
}
