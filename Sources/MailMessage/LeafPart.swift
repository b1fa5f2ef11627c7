/// The body of a leaf MIME entity (RFC 2045, RFC 2046 §5.1.1) being decoded as it streams past.
///
/// The line break before each line is held back until the next line shows it is content: the line
/// break before a boundary delimiter belongs to the delimiter (RFC 2046 §5.1.1), not to the part.
struct LeafPart: Sendable {
    /// Set when the part is an attachment; its size is filled in at the end.
    let attachment: Attachment?
    let charset: Charset
    private var decoder: ContentTransferDecoder
    private var sink: Sink
    private var pendingLineBreak: LineTerminator?

    /// Counts decoded octets and keeps up to a budget of them as text.
    struct Sink: DecodedOctetSink, Sendable {
        var decodedOctets = 0
        var text: [UInt8] = []
        let textBudget: Int

        @inline(__always)
        mutating func append(_ octet: UInt8) {
            decodedOctets += 1
            if text.count < textBudget { text.append(octet) }
        }

        mutating func append(contentsOf octets: UnsafeRawBufferPointer) {
            decodedOctets += octets.count
            let room = textBudget - text.count
            if room > 0 { text.append(contentsOf: octets.prefix(room)) }
        }
    }

    init(attachment: Attachment?, encoding: ContentTransferDecoder.Encoding, charset: Charset, textBudget: Int) {
        self.attachment = attachment
        self.charset = charset
        self.decoder = ContentTransferDecoder(encoding: encoding)
        self.sink = Sink(textBudget: max(0, textBudget))
    }

    mutating func receive(_ octets: UnsafeRawBufferPointer) {
        if let lineBreak = pendingLineBreak {
            decoder.lineBreak(lineBreak, into: &sink)
            pendingLineBreak = nil
        }
        decoder.decode(octets, into: &sink)
    }

    mutating func receive(_ octets: [UInt8]) {
        octets.withUnsafeBytes { receive($0) }
    }

    /// True when whatever else arrives cannot change what `finish` reports that anyone uses: not an
    /// attachment (whose size counts), identity-encoded (no invalid encoding to find), and no room
    /// left for text.
    var isUnobserved: Bool {
        attachment == nil && decoder.encoding == .identity && sink.text.count >= sink.textBudget
    }

    mutating func receiveLineEnd(_ terminator: LineTerminator) {
        if let lineBreak = pendingLineBreak {
            // An empty line: the break before it is content.
            decoder.lineBreak(lineBreak, into: &sink)
        }
        pendingLineBreak = terminator
    }

    /// Ends the part. `atEndOfContent` is true when the message ended rather than a delimiter line:
    /// then the last line break is the part's own.
    mutating func finish(atEndOfContent: Bool) -> (decodedOctets: Int, text: [UInt8], invalidEncoding: Bool) {
        if atEndOfContent, let lineBreak = pendingLineBreak {
            decoder.lineBreak(lineBreak, into: &sink)
        }
        pendingLineBreak = nil
        decoder.finish(into: &sink)
        return (sink.decodedOctets, sink.text, decoder.sawInvalidInput)
    }
}
