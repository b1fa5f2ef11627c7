/// Receives the octets a ``ContentTransferDecoder`` produces.
protocol DecodedOctetSink {
    mutating func append(_ octet: UInt8)
    /// Octets that pass through unchanged (identity encoding), as one call rather than one per octet.
    mutating func append(contentsOf octets: UnsafeRawBufferPointer)
}

extension DecodedOctetSink {
    mutating func append(contentsOf octets: UnsafeRawBufferPointer) {
        for octet in octets { append(octet) }
    }
}

/// Undoes a Content-Transfer-Encoding (RFC 2045 §6) as the encoded content streams past, in
/// constant memory.
///
/// Content arrives as line data (``decode(_:into:)``) and line breaks (``lineBreak(_:into:)``), as
/// ``LineAssembler`` splits it; the line break before a MIME boundary belongs to the boundary
/// (RFC 2046 §5.1.1) and is never passed in. Decoding is lenient, as receivers must be: base64
/// ignores octets outside its alphabet and tolerates missing padding; quoted-printable passes
/// malformed escapes through literally. Either sets ``sawInvalidInput``.
struct ContentTransferDecoder: Sendable {
    enum Encoding: Sendable, Equatable {
        /// `7bit`, `8bit`, `binary`, and any unknown encoding (RFC 2045 §6.4 says treat the body as
        /// opaque; counting its octets as they are is the useful reading).
        case identity
        case base64
        case quotedPrintable

        init(fieldValue: String?) {
            guard let fieldValue else {
                self = .identity
                return
            }
            switch ASCII.lowercased(ASCII.trimmed(fieldValue)) {
            case "base64": self = .base64
            case "quoted-printable": self = .quotedPrintable
            default: self = .identity
            }
        }
    }

    let encoding: Encoding
    private(set) var sawInvalidInput = false
    private var base64 = Base64Decoder()
    private var quotedPrintable = QuotedPrintableDecoder()

    init(encoding: Encoding) {
        self.encoding = encoding
    }

    mutating func decode(_ octets: some Sequence<UInt8>, into sink: inout some DecodedOctetSink) {
        switch encoding {
        case .identity:
            let copied: Void? = octets.withContiguousStorageIfAvailable { sink.append(contentsOf: UnsafeRawBufferPointer($0)) }
            if copied == nil {
                for octet in octets { sink.append(octet) }
            }
        case .base64:
            for octet in octets { base64.decode(octet, into: &sink) }
        case .quotedPrintable:
            for octet in octets { quotedPrintable.decode(octet, into: &sink) }
        }
    }

    mutating func lineBreak(_ terminator: LineTerminator, into sink: inout some DecodedOctetSink) {
        switch encoding {
        case .identity:
            terminator.write(into: &sink)
        case .base64:
            break
        case .quotedPrintable:
            quotedPrintable.lineBreak(terminator, into: &sink)
        }
    }

    mutating func finish(into sink: inout some DecodedOctetSink) {
        switch encoding {
        case .identity:
            break
        case .base64:
            base64.finish(into: &sink)
            sawInvalidInput = base64.sawInvalidInput
        case .quotedPrintable:
            quotedPrintable.finish(into: &sink)
            sawInvalidInput = quotedPrintable.sawInvalidInput
        }
    }
}

/// Streaming base64 (RFC 2045 §6.8): four alphabet characters make three octets.
struct Base64Decoder: Sendable {
    private var quantum: UInt32 = 0
    private var count = 0
    private(set) var sawInvalidInput = false

    /// 0–63 for alphabet characters, 0xFF otherwise.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        for (index, character) in alphabet.enumerated() {
            table[Int(character)] = UInt8(index)
        }
        return table
    }()

    @inline(__always)
    mutating func decode(_ octet: UInt8, into sink: inout some DecodedOctetSink) {
        let value = Self.values[Int(octet)]
        if value != 0xFF {
            quantum = quantum << 6 | UInt32(value)
            count += 1
            if count == 4 {
                sink.append(UInt8(truncatingIfNeeded: quantum >> 16))
                sink.append(UInt8(truncatingIfNeeded: quantum >> 8))
                sink.append(UInt8(truncatingIfNeeded: quantum))
                quantum = 0
                count = 0
            }
        } else if octet == ASCII.equals {
            // Padding ends a quantum early. Decoding resumes after it, so concatenated base64
            // (seen from some mailers) still decodes.
            flushPartialQuantum(into: &sink)
        } else if !(ASCII.isWhitespace(octet) || octet == ASCII.cr || octet == ASCII.lf) {
            sawInvalidInput = true
        }
    }

    mutating func finish(into sink: inout some DecodedOctetSink) {
        // Missing padding is tolerated: a trailing 2- or 3-character quantum still carries octets.
        flushPartialQuantum(into: &sink)
    }

    private mutating func flushPartialQuantum(into sink: inout some DecodedOctetSink) {
        switch count {
        case 2:
            sink.append(UInt8(truncatingIfNeeded: quantum >> 4))
        case 3:
            sink.append(UInt8(truncatingIfNeeded: quantum >> 10))
            sink.append(UInt8(truncatingIfNeeded: quantum >> 2))
        case 1:
            sawInvalidInput = true
        default:
            break
        }
        quantum = 0
        count = 0
    }
}

/// Streaming quoted-printable (RFC 2045 §6.7), line by line.
struct QuotedPrintableDecoder: Sendable {
    private enum State: Sendable {
        case text
        /// After `=`.
        case escape
        /// After `=` and one hex digit (the octet as written).
        case escapeHex(value: UInt8, written: UInt8)
        /// After `=` and whitespace: a soft line break with trailing padding, if the line ends here.
        case escapeWhitespace
    }

    private var state = State.text
    /// Whitespace seen but not yet written: rule 3 deletes it if the line ends next.
    private var heldWhitespace: [UInt8] = []
    private(set) var sawInvalidInput = false

    /// Whitespace held back at most; a longer run cannot be trailing padding of a valid line
    /// (76 characters, RFC 2045 §6.7 rule 5), so it is written out.
    static let maxHeldWhitespace = 998

    mutating func decode(_ octet: UInt8, into sink: inout some DecodedOctetSink) {
        switch state {
        case .text:
            if ASCII.isWhitespace(octet) {
                hold(octet, into: &sink)
            } else if octet == ASCII.equals {
                writeHeldWhitespace(into: &sink)
                state = .escape
            } else {
                writeHeldWhitespace(into: &sink)
                sink.append(octet)
            }
        case .escape:
            if let value = ASCII.hexValue(octet) {
                state = .escapeHex(value: value, written: octet)
            } else if ASCII.isWhitespace(octet) {
                heldWhitespace.append(octet)
                state = .escapeWhitespace
            } else {
                sawInvalidInput = true
                sink.append(ASCII.equals)
                state = .text
                decode(octet, into: &sink)
            }
        case .escapeHex(let high, let written):
            if let low = ASCII.hexValue(octet) {
                sink.append(high << 4 | low)
                state = .text
            } else {
                sawInvalidInput = true
                sink.append(ASCII.equals)
                sink.append(written)
                state = .text
                decode(octet, into: &sink)
            }
        case .escapeWhitespace:
            if ASCII.isWhitespace(octet), heldWhitespace.count < Self.maxHeldWhitespace {
                heldWhitespace.append(octet)
            } else {
                sawInvalidInput = true
                sink.append(ASCII.equals)
                writeHeldWhitespace(into: &sink)
                state = .text
                decode(octet, into: &sink)
            }
        }
    }

    mutating func lineBreak(_ terminator: LineTerminator, into sink: inout some DecodedOctetSink) {
        switch state {
        case .text:
            heldWhitespace.removeAll(keepingCapacity: true)
            terminator.write(into: &sink)
        case .escape, .escapeWhitespace:
            // A soft line break: the encoder split a long line here.
            heldWhitespace.removeAll(keepingCapacity: true)
        case .escapeHex(_, let written):
            sawInvalidInput = true
            sink.append(ASCII.equals)
            sink.append(written)
            terminator.write(into: &sink)
        }
        state = .text
    }

    mutating func finish(into sink: inout some DecodedOctetSink) {
        // The end of content ends the last line, without a line break of its own.
        lineBreak(.none, into: &sink)
    }

    private mutating func hold(_ octet: UInt8, into sink: inout some DecodedOctetSink) {
        if heldWhitespace.count >= Self.maxHeldWhitespace {
            writeHeldWhitespace(into: &sink)
        }
        heldWhitespace.append(octet)
    }

    private mutating func writeHeldWhitespace(into sink: inout some DecodedOctetSink) {
        guard !heldWhitespace.isEmpty else { return }
        for octet in heldWhitespace { sink.append(octet) }
        heldWhitespace.removeAll(keepingCapacity: true)
    }
}
