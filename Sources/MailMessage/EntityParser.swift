/// Follows the MIME structure of a message (RFC 2045, RFC 2046 §5.1) line by line: header sections,
/// multipart boundaries, and leaf bodies decoded as they stream past.
///
/// Memory is bounded by ``MessageLimits``: one header section at a time, one boundary per open
/// multipart (at most `maxMIMEDepth`), the body text budget, and one ``Attachment`` per part (at most
/// `maxParts`). Work per line is bounded by the depth times the line's head.
///
/// Which leaves are attachments: a part with `Content-Disposition: attachment`, or with a filename
/// (disposition `filename` or Content-Type `name`), or a `message/rfc822` (or `message/global`) part,
/// which counts as one attachment and is not descended into. The message's main text (the first
/// `text/plain` or `text/html` leaf not marked as an attachment) is never one, even with a filename.
/// Other `text/plain` and `text/html` leaves that are not attachments feed ``bodyText``.
struct EntityParser: LineConsumer, Sendable {
    private enum Phase: Sendable {
        /// Reading a header section (``header``).
        case header
        /// Decoding a leaf body (``leaf``).
        case leaf
        /// Content that is ignored: preamble, epilogue, skipped or opaque parts.
        case skipping
    }

    let limits: MessageLimits
    private(set) var anomalies: AnomalyLog
    private(set) var topLevelFields: [HeaderSectionParser.Field] = []
    private(set) var topLevelHeaderComplete = false
    private(set) var attachments: [Attachment] = []
    private(set) var bodyText = ""

    private var phase = Phase.header
    private var header: HeaderSectionParser?
    private var headerIsTopLevel = true
    private var leaf: LeafPart?
    private var multiparts: [MultipartFrame] = []
    private var partCount = 0
    private var sawMainText = false
    private var bodyTextOctets = 0

    init(limits: MessageLimits) {
        self.limits = limits
        self.anomalies = AnomalyLog(capacity: limits.maxAnomalies)
        self.header = HeaderSectionParser(
            octetLimit: limits.maxHeaderSectionOctets,
            fieldLimit: limits.maxHeaderFields,
            retention: .allFields
        )
    }

    // MARK: LineConsumer

    mutating func receiveLine(_ line: [UInt8], terminator: LineTerminator) {
        if !multiparts.isEmpty, line.count >= 2, line[0] == ASCII.hyphen, line[1] == ASCII.hyphen,
            matchDelimiter(line)
        {
            return
        }
        switch phase {
        case .header:
            switch beginHeaderLine(line) {
            case .field, .continuation, .end:
                header?.endLine(terminator)
            case .notHeader:
                receiveContentLine(line, terminator: terminator)
            }
        case .leaf, .skipping:
            receiveContentLine(line, terminator: terminator)
        }
    }

    mutating func receiveLongLineHead(_ head: [UInt8]) {
        // A long line is never a delimiter: boundaries are capped below the head's size.
        switch phase {
        case .header:
            if beginHeaderLine(head) == .notHeader {
                leaf?.receive(head)
            }
        case .leaf:
            leaf?.receive(head)
        case .skipping:
            break
        }
    }

    mutating func receiveLongLineContinuation(_ octets: UnsafeRawBufferPointer) {
        switch phase {
        case .header:
            header?.appendLineData(octets)
        case .leaf:
            leaf?.receive(octets)
        case .skipping:
            break
        }
    }

    mutating func receiveLongLineEnd(_ terminator: LineTerminator) {
        switch phase {
        case .header:
            header?.endLine(terminator)
        case .leaf:
            leaf?.receiveLineEnd(terminator)
        case .skipping:
            break
        }
    }

    /// No open multipart (so no delimiter to look for), and the rest is either skipped or a leaf
    /// whose decoding nobody looks at.
    var ignoresLines: Bool {
        guard multiparts.isEmpty else { return false }
        switch phase {
        case .header: return false
        case .skipping: return true
        case .leaf: return leaf?.isUnobserved ?? true
        }
    }

    mutating func receiveOddOctet(_ kind: LineAssembler.OddOctet) {
        let place = phase == .header ? "header" : "body"
        switch kind {
        case .bareCR: anomalies.record("bare_cr", place)
        case .bareLF: anomalies.record("bare_lf", place)
        case .nul: anomalies.record("nul_octet", place)
        }
    }

    /// Ends the content: whatever entity is open ends with it.
    mutating func finish() {
        if phase == .header {
            endHeaderSection()
        }
        finishLeaf(atEndOfContent: true)
        if !multiparts.isEmpty {
            anomalies.record("unterminated_multipart", String(decoding: multiparts[multiparts.count - 1].boundary, as: UTF8.self))
            multiparts.removeAll()
        }
        phase = .skipping
    }

    mutating func recordAnomaly(_ kind: String, _ detail: String? = nil) {
        anomalies.record(kind, detail)
    }

    // MARK: Lines

    private mutating func receiveContentLine(_ line: [UInt8], terminator: LineTerminator) {
        guard phase == .leaf else { return }
        if !line.isEmpty { leaf?.receive(line) }
        leaf?.receiveLineEnd(terminator)
    }

    /// Classifies a header line; an empty or non-header line ends the section, after which the
    /// phase is the body's.
    private mutating func beginHeaderLine(_ head: [UInt8]) -> HeaderSectionParser.LineKind {
        guard let kind = header?.beginLine(head) else { return .notHeader }
        switch kind {
        case .field, .continuation:
            break
        case .end:
            endHeaderSection()
        case .notHeader:
            let shown = String(decoding: head.prefix(60), as: UTF8.self)
            anomalies.record("header_without_colon", shown)
            endHeaderSection()
        }
        return kind
    }

    /// Checks `line` against the open multiparts, innermost first, and acts on a delimiter.
    private mutating func matchDelimiter(_ line: [UInt8]) -> Bool {
        var index = multiparts.count - 1
        while index >= 0 {
            if let delimiter = multiparts[index].delimiter(in: line) {
                receiveDelimiter(delimiter, frameIndex: index)
                return true
            }
            index -= 1
        }
        return false
    }

    private mutating func receiveDelimiter(_ delimiter: MultipartFrame.Delimiter, frameIndex: Int) {
        if phase == .header {
            // A part whose header section never ended: it has no body.
            endHeaderSection()
        }
        finishLeaf(atEndOfContent: false)
        if frameIndex < multiparts.count - 1 {
            // An outer boundary closes the inner multiparts that never saw their close delimiter.
            anomalies.record("unterminated_multipart", String(decoding: multiparts[multiparts.count - 1].boundary, as: UTF8.self))
            multiparts.removeSubrange((frameIndex + 1)...)
        }
        switch delimiter {
        case .close:
            multiparts.removeLast()
            phase = .skipping
        case .part:
            partCount += 1
            guard partCount <= limits.maxParts else {
                anomalies.record("too_many_parts", String(limits.maxParts))
                phase = .skipping
                return
            }
            header = HeaderSectionParser(
                octetLimit: limits.maxHeaderSectionOctets,
                fieldLimit: limits.maxHeaderFields,
                retention: .mimeFields
            )
            headerIsTopLevel = false
            phase = .header
        }
    }

    // MARK: Entities

    private mutating func endHeaderSection() {
        guard var section = header else {
            phase = .skipping
            return
        }
        header = nil
        let fields = section.finish()
        let place = headerIsTopLevel ? "message" : "part"
        if section.exceededOctetLimit {
            anomalies.record("header_section_too_large", place)
        }
        if section.exceededFieldLimit {
            anomalies.record("too_many_header_fields", String(limits.maxHeaderFields))
        }
        for name in section.namesWithEightBit {
            anomalies.record("eight_bit_in_header", name)
        }
        if headerIsTopLevel {
            topLevelFields = fields
            topLevelHeaderComplete = true
        }
        let parentIsDigest = !headerIsTopLevel && (multiparts.last?.isDigest ?? false)
        headerIsTopLevel = false
        beginBody(fields: fields, parentIsDigest: parentIsDigest)
    }

    private static func firstValue(_ name: String, in fields: [HeaderSectionParser.Field]) -> String? {
        fields.first { HeaderSection.namesMatch($0.name, name) }?.rawValue
    }

    private mutating func beginBody(fields: [HeaderSectionParser.Field], parentIsDigest: Bool) {
        let defaultType = parentIsDigest ? "message/rfc822" : "text/plain"
        var contentType = MIMEParameters(value: defaultType)
        var mediaType = defaultType
        if let raw = Self.firstValue("Content-Type", in: fields) {
            let parsed = MIMEParameters.parse(raw)
            if let type = parsed.mediaType {
                contentType = parsed
                mediaType = type
            } else {
                // RFC 2045 §5.2: an invalid Content-Type is treated as text/plain.
                anomalies.record("invalid_content_type", String(raw.prefix(60)))
                mediaType = "text/plain"
            }
        }

        if mediaType.hasPrefix("multipart/") {
            guard let boundary = contentType["boundary"], !boundary.isEmpty,
                boundary.utf8.count <= MultipartFrame.maxBoundaryOctets
            else {
                anomalies.record("invalid_boundary", mediaType)
                phase = .skipping
                return
            }
            guard multiparts.count < limits.maxMIMEDepth else {
                anomalies.record("mime_depth_exceeded", String(limits.maxMIMEDepth))
                phase = .skipping
                return
            }
            multiparts.append(MultipartFrame(boundary: Array(boundary.utf8), isDigest: mediaType == "multipart/digest"))
            phase = .skipping  // the preamble
            return
        }

        let disposition = Self.firstValue("Content-Disposition", in: fields).map(MIMEParameters.parse)
        let filename = disposition?["filename"] ?? contentType["name"]
        let isAttachmentDisposition = disposition?.value == "attachment"
        let isText = mediaType == "text/plain" || mediaType == "text/html"
        let isAttachment: Bool
        if mediaType == "message/rfc822" || mediaType == "message/global" {
            isAttachment = true
        } else if isText, !isAttachmentDisposition, !sawMainText {
            sawMainText = true
            isAttachment = false
        } else {
            isAttachment = isAttachmentDisposition || filename != nil
        }
        let collectsText = isText && !isAttachment
        let encoding = ContentTransferDecoder.Encoding(fieldValue: Self.firstValue("Content-Transfer-Encoding", in: fields))
        leaf = LeafPart(
            attachment: isAttachment ? Attachment(filename: filename, contentType: mediaType, size: 0) : nil,
            encoding: encoding,
            charset: Charset(name: contentType["charset"] ?? "us-ascii"),
            textBudget: collectsText ? limits.maxBodyTextOctets - bodyTextOctets : 0
        )
        phase = .leaf
    }

    private mutating func finishLeaf(atEndOfContent: Bool) {
        guard var part = leaf else { return }
        leaf = nil
        let result = part.finish(atEndOfContent: atEndOfContent)
        if result.invalidEncoding {
            anomalies.record("invalid_transfer_encoding", part.attachment?.contentType)
        }
        if var attachment = part.attachment {
            attachment.size = result.decodedOctets
            attachments.append(attachment)
        }
        if !result.text.isEmpty {
            bodyTextOctets += result.text.count
            if !bodyText.isEmpty { bodyText += "\n" }
            bodyText += part.charset.decode(result.text)
        }
        if phase == .leaf { phase = .skipping }
    }
}
