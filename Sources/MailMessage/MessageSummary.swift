/// What ``MessageInspector`` learned about one message (RFC 5322 §3 header, RFC 2045/2046 structure).
public struct MessageSummary: Sendable, Equatable {
    /// The top-level header fields, in order, bounded by ``MessageLimits``.
    public var header: HeaderSection
    /// The first `Message-ID` field as written: angle brackets kept, unfolded, trimmed (RFC 5322 §3.6.4).
    public var messageID: String?
    /// The first `Subject` field, unfolded and RFC 2047-decoded (RFC 5322 §3.6.5).
    public var subject: String?
    /// Mailboxes of every `From` field, groups flattened (RFC 5322 §3.6.2).
    public var from: [Mailbox]
    /// Mailboxes of every `To` field, groups flattened (RFC 5322 §3.6.3).
    public var to: [Mailbox]
    /// Mailboxes of every `Cc` field, groups flattened (RFC 5322 §3.6.3).
    public var cc: [Mailbox]
    /// The first `Date` field as written, unfolded and trimmed (RFC 5322 §3.6.1).
    public var date: String?
    /// Octets of message content received.
    public var size: Int
    /// Lowercase hex SHA-256 over every octet received.
    public var sha256: String
    /// Leaf parts that are attachments, in message order (see ``MessageInspector``).
    public var attachments: [Attachment]
    /// Decoded `text/plain` and `text/html` content, bounded by ``MessageLimits/maxBodyTextOctets``.
    /// Parts are separated by a line feed.
    public var bodyText: String
    /// Deviations from RFC 5322/2045/2046 and limits that were hit, in the order first seen.
    public var anomalies: [MessageAnomaly]

    public init(
        header: HeaderSection = HeaderSection(),
        messageID: String? = nil,
        subject: String? = nil,
        from: [Mailbox] = [],
        to: [Mailbox] = [],
        cc: [Mailbox] = [],
        date: String? = nil,
        size: Int = 0,
        sha256: String = "",
        attachments: [Attachment] = [],
        bodyText: String = "",
        anomalies: [MessageAnomaly] = []
    ) {
        self.header = header
        self.messageID = messageID
        self.subject = subject
        self.from = from
        self.to = to
        self.cc = cc
        self.date = date
        self.size = size
        self.sha256 = sha256
        self.attachments = attachments
        self.bodyText = bodyText
        self.anomalies = anomalies
    }
}

/// A leaf MIME part that is an attachment (RFC 2183 `Content-Disposition`, RFC 2046 §5.2.1 for
/// `message/rfc822`). The record, the rules and the reader of a message share this one shape.
public struct Attachment: Sendable, Hashable {
    /// From the disposition's `filename` or the content type's `name` (RFC 2231 and RFC 2047 decoded).
    public var filename: String?
    /// Lowercased `type/subtype` (RFC 2045 §5.1).
    public var contentType: String
    /// Decoded octets, after the Content-Transfer-Encoding (RFC 2045 §6) is undone.
    public var size: Int

    public init(filename: String?, contentType: String, size: Int) {
        self.filename = filename
        self.contentType = contentType
        self.size = size
    }
}

/// Something in a message that departs from RFC 5322/2045/2046/2047, or a limit that was hit.
public struct MessageAnomaly: Sendable, Equatable, Hashable {
    /// snake_case, e.g. `header_without_colon`, `duplicate_header`, `header_section_too_large`.
    public var kind: String
    /// What was seen, bounded and free of line breaks, when it helps.
    public var detail: String?

    public init(kind: String, detail: String? = nil) {
        self.kind = kind
        self.detail = detail
    }
}
