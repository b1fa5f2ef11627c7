/// Bounds on what ``MessageInspector`` keeps and how far it descends into a message.
///
/// Every structure the inspector builds from a message (RFC 5322 header fields, RFC 2046 MIME parts,
/// decoded text) is bounded by one of these, so memory stays flat whatever the message holds. The size
/// and SHA-256 of the message are always computed over every octet, whatever the limits.
public struct MessageLimits: Sendable, Equatable {
    /// Octets of the top-level header section that are kept, line breaks included (RFC 5322 §2.1).
    /// Postfix's `header_size_limit` is 102400. Fields past it are dropped and
    /// `header_section_too_large` is flagged; counting and hashing go on. Each MIME part's header
    /// section has the same bound.
    public var maxHeaderSectionOctets: Int = 100 * 1024
    /// Top-level header fields that are kept (`too_many_header_fields` past it).
    public var maxHeaderFields: Int = 1000
    /// Nesting depth of multipart entities that is followed (RFC 2046 §5.1). A deeper multipart is
    /// treated as opaque content and `mime_depth_exceeded` is flagged.
    public var maxMIMEDepth: Int = 20
    /// MIME body parts that are examined (`too_many_parts` past it; later parts are skipped).
    public var maxParts: Int = 1000
    /// Decoded octets of `text/plain` and `text/html` body parts kept for content rules. 0 keeps none.
    public var maxBodyTextOctets: Int = 1024 * 1024
    /// Anomalies recorded per message; each distinct (kind, detail) is recorded once.
    public var maxAnomalies: Int = 100

    public init() {}
}
