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

    /// The stage of a command line, by its verb (case-insensitive, RFC 5321 §2.4).
    public init(commandLine: String) {
        let verb = commandLine.prefix(while: { $0 != " " && $0 != ":" }).prefix(16).uppercased()
        switch verb {
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
