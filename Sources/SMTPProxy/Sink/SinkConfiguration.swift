/// What `smtpscope sink` accepts and how long it waits, with the proxy's Postfix-like defaults.
///
/// Every limit answers with the RFC 5321 reply a strict server gives: a longer command line gets
/// `500 5.5.2`, a larger message `552 5.3.4`, one recipient too many `452 4.5.3`, one error too many
/// `421 4.7.0` (RFC 5321 §4.5.3.1, §4.2.2; RFC 3463 for the enhanced codes).
public struct SinkConfiguration: Sendable, Hashable {
    /// The name in the greeting and the EHLO reply (Postfix `myhostname`).
    public var hostname: String = "localhost"
    /// Longest command line, CRLF included (Postfix `line_length_limit`).
    public var maxCommandLineOctets: Int = 2048
    /// Largest message, counted after dot-unstuffing; advertised as `SIZE` (Postfix `message_size_limit`).
    public var maxMessageOctets: Int = 10_240_000
    /// Recipients per transaction (Postfix `smtpd_recipient_limit`).
    public var maxRecipients: Int = 1000
    /// Error replies per session before `421 4.7.0` and a close (Postfix `smtpd_hard_error_limit`).
    public var maxErrors: Int = 20
    /// Seconds without a complete read before `421 4.4.2` and a close (RFC 5321 §4.5.3.2.7: 5 minutes).
    public var idleTimeoutSeconds: Int64 = 300
    /// Sessions open at once; the next client gets `421 4.3.2` and a close.
    public var maxConnections: Int = 4096

    public init() {}
}
