/// A client command (RFC 5321 §4.1.1 and the extensions smtpscope understands).
public enum SMTPCommand: Sendable, Hashable {
    case helo(domain: String)
    case ehlo(domain: String)
    /// LMTP's greeting (RFC 2033 §4.1).
    case lhlo(domain: String)
    case mail(from: SMTPPath, parameters: [ESMTPParameter])
    case rcpt(to: SMTPPath, parameters: [ESMTPParameter])
    case data
    /// RFC 3030 §2: `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF`.
    case bdat(size: UInt64, last: Bool)
    case rset
    case noop
    case quit
    case vrfy(String)
    case expn(String)
    case help(String?)
    /// RFC 3207 §4.
    case starttls
    /// RFC 4954 §4: `"AUTH" SP sasl-mech [SP initial-response]`.
    case auth(mechanism: String, initialResponse: SASLResponse?)
    /// Postfix XCLIENT / XFORWARD: attribute list as sent.
    case xclient(String)
    case xforward(String)
    /// A verb smtpscope does not know, kept as sent.
    case unknown(verb: String, arguments: String)

    /// The verb as RFC 5321 spells it.
    public var verb: String {
        switch self {
        case .helo: "HELO"
        case .ehlo: "EHLO"
        case .lhlo: "LHLO"
        case .mail: "MAIL"
        case .rcpt: "RCPT"
        case .data: "DATA"
        case .bdat: "BDAT"
        case .rset: "RSET"
        case .noop: "NOOP"
        case .quit: "QUIT"
        case .vrfy: "VRFY"
        case .expn: "EXPN"
        case .help: "HELP"
        case .starttls: "STARTTLS"
        case .auth: "AUTH"
        case .xclient: "XCLIENT"
        case .xforward: "XFORWARD"
        case .unknown(let verb, _): verb.uppercased()
        }
    }

    /// The command line without CRLF, with SASL data replaced by "[redacted]": the only form that may
    /// be logged or written to a transcript.
    public var redactedLine: String {
        switch self {
        case .auth(let mechanism, let initial):
            initial == nil ? "AUTH \(mechanism)" : "AUTH \(mechanism) [redacted]"
        default:
            wireLine
        }
    }

    /// The command line as it goes on the wire, without CRLF.
    public var wireLine: String {
        func withParameters(_ base: String, _ parameters: [ESMTPParameter]) -> String {
            parameters.reduce(base) { line, parameter in
                line + " " + parameter.keyword + (parameter.value.map { "=" + $0 } ?? "")
            }
        }
        switch self {
        case .helo(let domain): return "HELO \(domain)"
        case .ehlo(let domain): return "EHLO \(domain)"
        case .lhlo(let domain): return "LHLO \(domain)"
        case .mail(let path, let parameters): return withParameters("MAIL FROM:\(path.wireForm)", parameters)
        case .rcpt(let path, let parameters): return withParameters("RCPT TO:\(path.wireForm)", parameters)
        case .data: return "DATA"
        case .bdat(let size, let last): return last ? "BDAT \(size) LAST" : "BDAT \(size)"
        case .rset: return "RSET"
        case .noop: return "NOOP"
        case .quit: return "QUIT"
        case .vrfy(let argument): return "VRFY \(argument)"
        case .expn(let argument): return "EXPN \(argument)"
        case .help(let argument): return argument.map { "HELP \($0)" } ?? "HELP"
        case .starttls: return "STARTTLS"
        case .auth(let mechanism, let initial): return initial.map { "AUTH \(mechanism) \($0.base64Text)" } ?? "AUTH \(mechanism)"
        case .xclient(let attributes): return "XCLIENT \(attributes)"
        case .xforward(let attributes): return "XFORWARD \(attributes)"
        case .unknown(let verb, let arguments): return arguments.isEmpty ? verb : "\(verb) \(arguments)"
        }
    }
}
