/// Why an SMTP server refused or deferred mail, as a postmaster would file it: the reply code
/// (RFC 5321 §4.2), the enhanced status code (RFC 3463) and the server's text, read together.
public enum FailureCause: String, CaseIterable, Sendable {
    case mailboxUnknown
    case senderRejected
    case relayDenied
    case authenticationRequired
    case authenticationFailed
    case blocklisted
    case spfFailure
    case dkimFailure
    case dmarcFailure
    case greylisted
    case messageTooLarge
    case rateLimited
    case policyRejection
    /// Spam, virus or other content filtering.
    case contentRejected
    case mailboxFull
    /// The client sent commands ahead of replies where RFC 2920 does not allow it.
    case pipeliningMisuse
    /// Syntax or sequence errors (500, 501, 502, 503, 504).
    case protocolError
    /// A reply code no standard defines, or an enhanced code whose class contradicts the reply.
    case nonStandardReply
    case tlsRequired
    /// 421: the server is going away.
    case serviceUnavailable
    case timeout
    /// The envelope sender is not an address the logged-in user may use (Postfix
    /// `reject_sender_login_mismatch`, Exchange "SendAsDenied").
    case senderLoginMismatch
    /// Proxy mode: smtpscope could not connect to its upstream and answered 421 itself.
    case upstreamUnreachable
    /// Proxy mode: an smtpscope rule refused, not the server.
    case ruleRefusal
    /// The session ended inside a message's content, before its end of data.
    case brokenOff
    case other

    /// A short label for report headings.
    public var label: String {
        switch self {
        case .mailboxUnknown: "mailbox unknown"
        case .senderRejected: "sender rejected"
        case .relayDenied: "relay denied"
        case .authenticationRequired: "authentication required"
        case .authenticationFailed: "authentication failed"
        case .blocklisted: "blocklisted"
        case .spfFailure: "SPF failure"
        case .dkimFailure: "DKIM failure"
        case .dmarcFailure: "DMARC failure"
        case .greylisted: "greylisted"
        case .messageTooLarge: "message too large"
        case .rateLimited: "rate limited"
        case .policyRejection: "policy rejection"
        case .contentRejected: "content rejected"
        case .mailboxFull: "mailbox full"
        case .pipeliningMisuse: "pipelining misuse"
        case .protocolError: "protocol error"
        case .nonStandardReply: "non-standard reply"
        case .tlsRequired: "TLS required"
        case .serviceUnavailable: "service unavailable"
        case .timeout: "timeout"
        case .senderLoginMismatch: "sender not allowed for the login"
        case .upstreamUnreachable: "upstream unreachable"
        case .ruleRefusal: "refused by an smtpscope rule"
        case .brokenOff: "message broken off"
        case .other: "other"
        }
    }

    /// One line: what to do about it.
    public var hint: String {
        switch self {
        case .mailboxUnknown:
            "The address does not exist there: check the spelling, or ask the recipient for a current address."
        case .senderRejected:
            "The envelope sender was refused: its domain must resolve (MX or A) and the address must be allowed to send here."
        case .relayDenied:
            "The server is not the recipient's MX and will not relay: send to the right MX, or authenticate first."
        case .authenticationRequired:
            "The server only accepts mail from logged-in users: enable SMTP AUTH (usually on port 587)."
        case .authenticationFailed:
            "The credentials or mechanism were refused: check user name, password and mechanism; the account may be locked."
        case .blocklisted:
            "The sending IP or domain is on a blocklist: look it up on the named list and request delisting."
        case .spfFailure:
            "SPF did not authorise this sending IP: add it to the sender domain's SPF record."
        case .dkimFailure:
            "No valid DKIM signature: sign outgoing mail and publish the selector's key in DNS."
        case .dmarcFailure:
            "DMARC failed: align SPF or DKIM with the From: domain, and check that domain's DMARC policy."
        case .greylisted:
            "Greylisting: a temporary refusal by design; a compliant sender retries after a few minutes and gets through."
        case .messageTooLarge:
            "The message exceeds the server's size limit: send it smaller, or share large files by link."
        case .rateLimited:
            "Too many messages, recipients or connections: slow down, batch fewer recipients, and retry later."
        case .policyRejection:
            "Refused by local policy (reverse DNS, HELO name, sender or client restrictions): fix what the text names, or ask the receiving postmaster."
        case .contentRejected:
            "The content was judged spam or malware: review the message, its links and attachments, and the sender's reputation."
        case .mailboxFull:
            "The recipient's mailbox is over quota: the recipient must make room; retry later."
        case .pipeliningMisuse:
            "The client sent commands before the server's replies where it may not: fix the client's PIPELINING use (RFC 2920)."
        case .protocolError:
            "A command was malformed or out of order: check the client's SMTP implementation or the named parameter."
        case .nonStandardReply:
            "The server answered with a code no standard defines: read the text, and check the server or anything in between."
        case .tlsRequired:
            "The server requires encryption: use STARTTLS (or implicit TLS) before this command."
        case .serviceUnavailable:
            "The server closed the channel (421): it is overloaded or shutting down; the client should retry later."
        case .timeout:
            "A peer waited too long: look at the stalls below, the network path and the server's load."
        case .senderLoginMismatch:
            "The envelope sender is not an address this login may send as: send as the login's own address, or let the login use this one (Postfix smtpd_sender_login_maps, Exchange send-as rights)."
        case .upstreamUnreachable:
            "The proxy could not connect to its upstream (the reason is given with each failure): check --upstream's host and port, that its name resolves, and that the server there is running and reachable from the proxy."
        case .ruleRefusal:
            "An smtpscope rule refused this, not the server: the rule and its file:line are named with each failure; change the rule, or what it matched."
        case .brokenOff:
            "The connection ended inside the message, before its end of data: nothing was delivered and the sender must send it again; look at the side that ended it (its logs and timeouts) and anything in between."
        case .other:
            "Not a known pattern: read the full reply text and its enhanced status code."
        }
    }
}
