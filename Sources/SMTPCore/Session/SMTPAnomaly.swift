/// Something in a session that a careful receiver would refuse or that shows the peers disagree
/// (README "Anomalies"). `rawValue` is the transcript's `kind`.
public enum SMTPAnomalyKind: String, Sendable, Hashable, CaseIterable {
    case bareLFInData = "bare_lf_in_data"
    case bareCRInData = "bare_cr_in_data"
    case nulInData = "nul_in_data"
    case pipeliningNotAdvertised = "pipelining_not_advertised"
    case commandBeforeGreeting = "command_before_greeting"
    /// Client bytes pipelined after STARTTLS (CVE-2011-0411), or plaintext where TLS should start.
    case plaintextAfterSTARTTLS = "plaintext_after_starttls"
    /// STARTTLS refused, or a downgrade seen on one leg.
    case starttlsStripped = "starttls_stripped"
    case replyWithoutCommand = "reply_without_command"
    case overlongLine = "overlong_line"
    case captureGap = "capture_gap"
    case ambiguousRetransmission = "ambiguous_retransmission"
    /// The server's replies show it ended a message where the strict rule does not.
    case smugglingSuspected = "smuggling_suspected"
    case unparsedBytes = "unparsed_bytes"
    /// A reply line that is not `3DIGIT [SP / "-" text]`, or a multi-line reply with mixed codes.
    case malformedReply = "malformed_reply"
    /// A command line the core could not parse (the server's reply is recorded too).
    case malformedCommand = "malformed_command"
    /// A capture holding only one direction of the connection.
    case oneSidedCapture = "one_sided_capture"
    /// The server replied to the end of a message that the client had not finished by the strict rule.
    case prematureDataReply = "premature_data_reply"
    /// A reply whose code does not fit the command it answers (e.g. 250 to DATA).
    case unexpectedReply = "unexpected_reply"
    case messageHeaderAnomaly = "message_header_anomaly"
    case bareLFInCommand = "bare_lf_in_command"
    /// Proxy mode: the upstream could not be reached; the client was answered 421 4.4.1.
    case upstreamUnreachable = "upstream_unreachable"
    /// Proxy mode: the TLS handshake with the upstream failed after its 220 to STARTTLS; the client
    /// was answered 421 4.7.0 and nothing went upstream in plaintext.
    case upstreamTLSFailed = "upstream_tls_failed"
    /// Proxy mode: a message refused at the size limit; the record reads it only that far, so it
    /// carries no digest or MIME findings for it.
    case messageTruncated = "message_truncated"
    /// Proxy mode: a rule quarantined a message the quarantine could not store; the client was
    /// answered 451 and keeps the message.
    case quarantineFailed = "quarantine_failed"
    /// Transparent proxy mode: the connection's original destination is the proxy itself (no
    /// firewall rule redirected it); the client was answered 554 5.4.6 and nothing was relayed.
    case proxyLoop = "proxy_loop"
}

public struct SMTPAnomaly: Sendable, Hashable {
    public var kind: SMTPAnomalyKind
    public var detail: String?

    public init(_ kind: SMTPAnomalyKind, _ detail: String? = nil) {
        self.kind = kind
        self.detail = detail
    }
}
