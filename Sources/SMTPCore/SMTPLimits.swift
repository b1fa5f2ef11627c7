/// Bounds on everything the SMTP core buffers or counts, with Postfix-like defaults.
///
/// Every input is hostile: each limit here is what keeps memory flat whatever a peer sends.
public struct SMTPLimits: Sendable, Hashable {
    /// Longest command line kept, CRLF included (Postfix `line_length_limit`, RFC 5321 §4.5.3.1.4
    /// allows 512; ESMTP parameters make real lines longer).
    public var maxCommandLineOctets: Int = 2048
    /// Longest reply line kept; the rest of a longer line is dropped and flagged.
    public var maxReplyLineOctets: Int = 4096
    /// Reply lines kept in one multi-line reply; later lines are counted, not kept.
    public var maxReplyLines: Int = 200
    /// Longest SASL response line (RFC 4954 §4: 12288 octets).
    public var maxAuthLineOctets: Int = 12288
    /// Commands awaiting a reply (pipelining depth) before older ones are given up as unanswered.
    public var maxPendingCommands: Int = 10_000
    /// Client octets held while the inspector waits for the reply that says how to read them
    /// (after DATA, STARTTLS or AUTH).
    public var maxHeldClientOctets: Int = 1 << 20
    /// Client octets kept after a lenient end-of-data candidate, so the dialogue can be re-read if
    /// the server's replies show it ended the message there (SMTP smuggling).
    public var maxSmugglingRetainedOctets: Int = 256 * 1024

    public init() {}
}
