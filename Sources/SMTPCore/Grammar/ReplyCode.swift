/// A basic SMTP reply code, three digits (RFC 5321 §4.2), with the meanings RFC 5321 §4.2.2 and
/// §4.2.3 give (and the codes RFC 3207, RFC 4954 and RFC 7504 added) in words.
public struct ReplyCode: Sendable, Hashable, RawRepresentable {
    public var rawValue: Int

    public init(rawValue: Int) { self.rawValue = rawValue }
    public init(_ code: Int) { self.rawValue = code }

    /// 220 (RFC 5321 §4.2.3): the greeting, and the go-ahead for TLS after STARTTLS (RFC 3207 §4).
    public static let serviceReady = ReplyCode(220)
    /// 221: the answer to QUIT.
    public static let closing = ReplyCode(221)
    /// 235: AUTH succeeded (RFC 4954 §6).
    public static let authenticationSucceeded = ReplyCode(235)
    /// 250: the action was completed.
    public static let ok = ReplyCode(250)
    /// 334: a SASL challenge follows (RFC 4954 §4).
    public static let authenticationChallenge = ReplyCode(334)
    /// 354: message content follows, up to `<CRLF>.<CRLF>`.
    public static let startMailInput = ReplyCode(354)
    /// 421: the server is closing the connection, in answer to any command (RFC 5321 §3.8).
    public static let serviceNotAvailable = ReplyCode(421)

    /// 2yz: the action was completed.
    public var isPositiveCompletion: Bool { (200..<300).contains(rawValue) }
    /// 4yz: the attempt may succeed later (RFC 5321 §4.2.1).
    public var isTransientNegative: Bool { (400..<500).contains(rawValue) }
    /// 4yz or 5yz.
    public var isNegative: Bool { (400..<600).contains(rawValue) }

    /// The meaning of the code, or `nil` when no standard defines it.
    public var meaning: String? {
        switch rawValue {
        case 211: "System status, or system help reply"
        case 214: "Help message"
        case 220: "Service ready"
        case 221: "Service closing transmission channel"
        case 235: "Authentication succeeded"
        case 250: "Requested mail action okay, completed"
        case 251: "User not local; will forward"
        case 252: "Cannot verify the user, but will accept the message and attempt delivery"
        case 334: "Authentication challenge"
        case 354: "Start mail input; end with <CRLF>.<CRLF>"
        case 421: "Service not available, closing transmission channel"
        case 432: "A password transition is needed"
        case 450: "Requested mail action not taken: mailbox unavailable (temporary)"
        case 451: "Requested action aborted: local error in processing"
        case 452: "Requested action not taken: insufficient system storage, or too many recipients"
        case 454: "Temporary authentication failure, or TLS not available"
        case 455: "Server unable to accommodate parameters"
        case 500: "Syntax error, command unrecognized"
        case 501: "Syntax error in parameters or arguments"
        case 502: "Command not implemented"
        case 503: "Bad sequence of commands"
        case 504: "Command parameter not implemented"
        case 521: "Host does not accept mail"
        case 530: "Authentication required, or must issue a STARTTLS command first"
        case 534: "Authentication mechanism is too weak"
        case 535: "Authentication credentials invalid"
        case 538: "Encryption required for requested authentication mechanism"
        case 550: "Requested action not taken: mailbox unavailable or refused by policy"
        case 551: "User not local"
        case 552: "Requested mail action aborted: exceeded storage allocation"
        case 553: "Requested action not taken: mailbox name not allowed"
        case 554: "Transaction failed, or no SMTP service here"
        case 555: "MAIL FROM/RCPT TO parameters not recognized or not implemented"
        case 556: "Domain does not accept mail"
        default: nil
        }
    }
}

extension SMTPReply {
    /// The reply's code as a `ReplyCode`, to compare with the named ones.
    public var replyCode: ReplyCode { ReplyCode(code) }
}
