import SMTPCore

/// The envelope of one message the sink accepted (RFC 5321 §2.3.1: reverse-path, forward-paths and
/// the parameters that travelled with them).
public struct SinkEnvelope: Sendable, Hashable {
    /// The most recent HELO/EHLO argument.
    public var helo: String?
    /// The reverse-path without angle brackets; "" is the null path `<>`.
    public var mailFrom: String
    public var mailParameters: [ESMTPParameter]
    public var recipients: [String]
    /// "DATA" or "BDAT" (RFC 3030).
    public var command: String
    /// Message octets after dot-unstuffing (DATA) or as chunked (BDAT).
    public var size: Int

    public init(helo: String?, mailFrom: String, mailParameters: [ESMTPParameter], recipients: [String], command: String, size: Int) {
        self.helo = helo
        self.mailFrom = mailFrom
        self.mailParameters = mailParameters
        self.recipients = recipients
        self.command = command
        self.size = size
    }
}
