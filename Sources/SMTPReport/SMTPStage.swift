import SMTPCore

/// Where in an SMTP session (RFC 5321 §3) a command was sent or a reply came.
public enum SMTPStage: String, CaseIterable, Sendable {
    /// The greeting after the connection opened (RFC 5321 §3.1).
    case connect
    case helo
    case starttls
    case auth
    case mail
    case rcpt
    /// The DATA command itself, answered by 354 or a refusal.
    case data
    /// The end of the message content (`<CRLF>.<CRLF>`).
    case endOfData = "end-of-data"
    case bdat
    case rset
    case quit
    case other

    /// The stage of what a reply answers: a command by its verb, a SASL response as AUTH.
    init(_ awaited: AwaitedReply) {
        switch awaited {
        case .greeting: self = .connect
        case .command(_, let command): self.init(verb: command.verb)
        case .invalidCommand(_, let verb): self.init(verb: verb ?? "")
        case .endOfData: self = .endOfData
        case .bdatChunk: self = .bdat
        case .saslResponse: self = .auth
        case .unknown: self = .other
        }
    }

    /// The stage of a command verb (case-insensitive, RFC 5321 §2.4).
    init(verb: String) {
        switch verb.uppercased() {
        case "HELO", "EHLO", "LHLO": self = .helo
        case "STARTTLS": self = .starttls
        case "AUTH": self = .auth
        case "MAIL": self = .mail
        case "RCPT": self = .rcpt
        case "DATA": self = .data
        case "BDAT": self = .bdat
        case "RSET": self = .rset
        case "QUIT": self = .quit
        default: self = .other
        }
    }
}
