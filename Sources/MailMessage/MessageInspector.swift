import NIOCore

/// Inspects an Internet message (RFC 5322, MIME RFC 2045–2047, RFC 2231) as it streams past, in
/// chunks of any size, with bounded memory and bounded work per octet.
///
/// It is fed the content of one DATA or BDAT transfer, already dot-unstuffed (RFC 5321 §4.5.2), and
/// expects lines ending in CRLF, but copes with anything: bare CR and LF, NUL, a missing final CRLF,
/// huge lines and binary junk are flagged in ``MessageSummary/anomalies``, never fatal. The summary
/// is the same however the content is chunked. Size and SHA-256 cover every octet received; the
/// header fields, parts and text kept are bounded by ``MessageLimits``.
public struct MessageInspector: Sendable {
    private var lines = LineAssembler()
    private var entities: EntityParser
    private var digest = MessageDigest()
    private var size = 0

    /// Octets handed to the line assembler at once, so its work area stays small whatever the
    /// caller's chunk size.
    private static let sliceOctets = 64 * 1024

    public init(limits: MessageLimits = MessageLimits()) {
        self.entities = EntityParser(limits: limits)
    }

    /// Takes the next octets of message content.
    public mutating func receive(_ bytes: ByteBuffer) {
        bytes.withUnsafeReadableBytes { receive($0) }
    }

    /// Takes the next octets of message content.
    public mutating func receive(_ bytes: some Collection<UInt8>) {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { receive(UnsafeRawBufferPointer($0)) }
        if handled == nil {
            Array(bytes).withUnsafeBytes { receive($0) }
        }
    }

    private mutating func receive(_ octets: UnsafeRawBufferPointer) {
        size += octets.count
        digest.update(octets)
        var start = octets.startIndex
        while start < octets.endIndex {
            let end = min(start + Self.sliceOctets, octets.endIndex)
            lines.receive(UnsafeRawBufferPointer(rebasing: octets[start..<end]), into: &entities)
            start = end
        }
    }

    /// Ends the content and returns what was found. The inspector is spent afterwards.
    public mutating func finish() -> MessageSummary {
        if lines.finish(into: &entities) {
            entities.recordAnomaly("missing_final_crlf")
        }
        entities.finish()
        return MessageSummary.make(
            fields: entities.topLevelFields,
            parser: entities,
            size: size,
            sha256: digest.finalizeHex()
        )
    }
}

extension MessageSummary {
    /// RFC 5322 §3.6 fields that may appear at most once.
    private static let singleFields = [
        "Date", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Message-ID", "In-Reply-To", "References",
        "Subject",
    ]

    fileprivate static func make(
        fields: [HeaderSectionParser.Field],
        parser: EntityParser,
        size: Int,
        sha256: String
    ) -> MessageSummary {
        var anomalies = parser.anomalies
        var headerFields: [HeaderField] = []
        headerFields.reserveCapacity(fields.count)
        for field in fields {
            let decoded = EncodedWord.decodeReportingMalformed(field.rawValue)
            if decoded.malformed {
                anomalies.record("malformed_encoded_word", field.name)
            }
            headerFields.append(HeaderField(name: field.name, rawValue: field.rawValue, value: decoded.text))
        }
        let header = HeaderSection(fields: headerFields)
        for name in singleFields where header.all(name).count > 1 {
            anomalies.record("duplicate_header", name)
        }
        if size > 0 {
            if header.first("From") == nil { anomalies.record("missing_header", "From") }
            if header.first("Date") == nil { anomalies.record("missing_header", "Date") }
        }
        func mailboxes(_ name: String) -> [Mailbox] {
            var result: [Mailbox] = []
            for field in header.all(name) where result.count < AddressList.maxMailboxes {
                result.append(contentsOf: AddressList.parse(field.rawValue).prefix(AddressList.maxMailboxes - result.count))
            }
            return result
        }
        return MessageSummary(
            header: header,
            messageID: header.first("Message-ID")?.rawValue,
            subject: header.first("Subject")?.value,
            from: mailboxes("From"),
            to: mailboxes("To"),
            cc: mailboxes("Cc"),
            date: header.first("Date")?.rawValue,
            size: size,
            sha256: sha256,
            attachments: parser.attachments,
            bodyText: parser.bodyText,
            anomalies: anomalies.anomalies
        )
    }
}
