/// Bounds the proxy enforces, with Postfix's defaults, so memory stays flat under any input. Each is
/// a `smtpscope proxy` flag (README, "Limits and their defaults").
public struct ProxyLimits: Sendable, Hashable {
    /// Longest command line, CRLF included (Postfix `line_length_limit`): `500 5.5.2` above it.
    public var maxCommandLineOctets = 2048
    /// An overlong command line is skipped up to its CRLF; past this many octets without one the
    /// session is closed with `421`.
    public var maxOverlongLineOctets = 1 << 20
    /// Message size (Postfix `message_size_limit`): `552 5.3.4` above it.
    public var maxMessageOctets = 10_240_000
    /// Header section of a message, up to its empty line (Postfix `header_size_limit`): `552 5.3.4`
    /// at the end of data above it (README, Security, case 19).
    public var maxHeaderSectionOctets = 102_400
    /// Recipients per transaction (Postfix `smtpd_recipient_limit`): later ones get `452 4.5.3`.
    public var maxRecipients = 1000
    /// Error replies per session (Postfix `smtpd_hard_error_limit`): then `421 4.7.0` and close.
    public var maxErrors = 20
    /// Longest SASL response line (RFC 4954 §4): `500 5.5.6` above it.
    public var maxAuthLineOctets = 12288
    /// Client octets held while a command waits for the upstream's reply.
    public var maxHeldClientOctets = 256 * 1024
    /// Slowest message content accepted, in octets per second (Postfix `smtpd_min_data_rate`):
    /// `--data-block-timeout` restarts only after this rate's worth of octets (hostile-input case 15).
    public var minDataRate = 500

    public init() {}
}

/// Timeouts on both legs, in seconds (RFC 5321 §4.5.3.2). Each but `quitReply` is a
/// `smtpscope proxy` flag.
public struct ProxyTimeouts: Sendable, Hashable {
    /// Waiting for the upstream's greeting (§4.5.3.2.1: 5 minutes).
    public var greeting: Int64 = 300
    /// Waiting for a reply to MAIL, RCPT and other commands (§4.5.3.2.2-3: 5 minutes).
    public var command: Int64 = 300
    /// Waiting for the reply to DATA (§4.5.3.2.4: 2 minutes).
    public var dataInitiation: Int64 = 120
    /// Between two blocks of content from the client, and the upstream taking a block
    /// (§4.5.3.2.5: 3 minutes).
    public var dataBlock: Int64 = 180
    /// Waiting for the reply to the end of data (§4.5.3.2.6: 10 minutes).
    public var endOfData: Int64 = 600
    /// A client that sends no command (§4.5.3.2.7 server timeout: 5 minutes).
    public var serverIdle: Int64 = 300
    /// Waiting for the upstream's 221 to the QUIT the proxy relayed: short, since nothing is at
    /// stake any more and the client is waiting for its own 221 (then the proxy answers it).
    public var quitReply: Int64 = 5

    public init() {}
}

/// `--client-tls`: STARTTLS towards the client (RFC 3207).
public enum ClientTLSMode: String, Sendable, Hashable, CaseIterable {
    /// Offer STARTTLS; plaintext is allowed.
    case offer
    /// Offer STARTTLS and refuse MAIL before it with `530 5.7.0`.
    case require
    /// Never offer STARTTLS.
    case off
    /// Offer STARTTLS when the upstream does, relay the client's STARTTLS to it, and after the
    /// upstream's 220 relay octets blind both ways: TLS runs end to end between client and
    /// upstream, and only its handshake is observed.
    case passthrough
}

/// `--upstream-tls`: STARTTLS towards the upstream (RFC 3207).
public enum UpstreamTLSMode: String, Sendable, Hashable, CaseIterable {
    /// STARTTLS when offered, without certificate checks; plaintext otherwise.
    case opportunistic
    /// STARTTLS or no mail: the client gets `451 4.7.5`.
    case require
    /// As `require`, and the certificate and host name are verified.
    case verify
    /// Never STARTTLS upstream.
    case off

    var requiresTLS: Bool {
        switch self {
        case .require, .verify: true
        case .opportunistic, .off: false
        }
    }
}

/// Everything the relay state machine needs to know about its deployment.
public struct RelayConfiguration: Sendable {
    public var limits = ProxyLimits()
    public var timeouts = ProxyTimeouts()
    public var clientTLS = ClientTLSMode.off
    public var upstreamTLS = UpstreamTLSMode.opportunistic
    /// The name the proxy uses in its own replies.
    public var hostname = "smtpscope"
    /// Where messages wait for `message` rules, and where quarantined ones go.
    public var spool = SpoolConfiguration()
    /// The client leg is TLS from the first octet (`--implicit-tls-listen`, RFC 8314 §3.3): no
    /// STARTTLS is offered and rules see `tls` true.
    public var clientLegImplicitTLS = false
    /// `--xclient`: tell an upstream that offers Postfix XCLIENT who the client is (ADDR, PORT,
    /// NAME, HELO, PROTO), after its EHLO and before any command of the client's.
    public var xclient = false

    public init() {}
}
