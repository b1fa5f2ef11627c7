/// Parses one command line (without its CRLF) into an `SMTPCommand` (RFC 5321 §4.1.1, RFC 3030 §2,
/// RFC 3207 §4, RFC 4954 §4).
///
/// The parser decides syntax only. Whether a command is allowed now (sequence, TLS, limits) is the
/// caller's decision, and the reply codes in `SMTPCommandError` are the ones Postfix uses.
public enum CommandParser {
    public static func parse(line: some Collection<UInt8>) -> Result<SMTPCommand, SMTPCommandError> {
        if line.contains(0) {
            // RFC 5321 §4.1.1: commands are text; a NUL is never stripped (that would change what
            // the peers see) but refused.
            return .failure(SMTPCommandError(code: 501, enhanced: .init(statusClass: 5, subject: 5, detail: 2), text: "Error: NUL character in command"))
        }
        guard let text = String(validating: line, as: UTF8.self) else {
            return .failure(SMTPCommandError(code: 500, enhanced: .init(statusClass: 5, subject: 5, detail: 2), text: "Error: invalid UTF-8 in command"))
        }
        return parse(text)
    }

    public static func parse(_ text: String) -> Result<SMTPCommand, SMTPCommandError> {
        let trimmed = Substring(text).dropLast(while: { $0 == " " || $0 == "\t" })
        let verbEnd = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }) ?? trimmed.endIndex
        let verb = trimmed[..<verbEnd].uppercased()
        let arguments = trimmed[verbEnd...].drop(while: { $0 == " " || $0 == "\t" })

        func noArguments(_ command: SMTPCommand) -> Result<SMTPCommand, SMTPCommandError> {
            arguments.isEmpty ? .success(command) : .failure(.syntax(verb, "Syntax: \(verb)"))
        }
        func hostname(_ make: (String) -> SMTPCommand) -> Result<SMTPCommand, SMTPCommandError> {
            arguments.isEmpty ? .failure(.syntax(verb, "Syntax: \(verb) hostname")) : .success(make(String(arguments)))
        }

        switch verb {
        case "HELO": return hostname { .helo(domain: $0) }
        case "EHLO": return hostname { .ehlo(domain: $0) }
        case "LHLO": return hostname { .lhlo(domain: $0) }
        case "MAIL": return parseMail(arguments)
        case "RCPT": return parseRcpt(arguments)
        case "DATA": return noArguments(.data)
        case "BDAT": return parseBdat(arguments)
        case "RSET": return noArguments(.rset)
        case "NOOP": return .success(.noop)
        case "QUIT": return noArguments(.quit)
        case "STARTTLS": return noArguments(.starttls)
        case "VRFY": return arguments.isEmpty ? .failure(.syntax(verb, "Syntax: VRFY address")) : .success(.vrfy(String(arguments)))
        case "EXPN": return arguments.isEmpty ? .failure(.syntax(verb, "Syntax: EXPN address")) : .success(.expn(String(arguments)))
        case "HELP": return .success(.help(arguments.isEmpty ? nil : String(arguments)))
        case "AUTH": return parseAuth(arguments)
        case "XCLIENT": return .success(.xclient(String(arguments)))
        case "XFORWARD": return .success(.xforward(String(arguments)))
        default:
            guard !verb.isEmpty, verb.utf8.allSatisfy({ isASCIIAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }) else {
                return .failure(.unrecognized())
            }
            return .success(.unknown(verb: String(trimmed[..<verbEnd]), arguments: String(arguments)))
        }
    }

    /// `mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF`
    private static func parseMail(_ arguments: Substring) -> Result<SMTPCommand, SMTPCommandError> {
        guard let rest = dropKeyword("FROM:", from: arguments) else {
            return .failure(.syntax("MAIL", "Syntax: MAIL FROM:<address>"))
        }
        guard let (path, parameterText) = SMTPPath.parse(rest) else {
            return .failure(.badSender("Bad sender address syntax"))
        }
        guard let parameters = parseESMTPParameters(parameterText) else {
            return .failure(.syntax("MAIL", "Bad MAIL parameter syntax"))
        }
        return .success(.mail(from: path, parameters: parameters))
    }

    /// `rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path ) [SP Rcpt-parameters] CRLF`
    private static func parseRcpt(_ arguments: Substring) -> Result<SMTPCommand, SMTPCommandError> {
        guard let rest = dropKeyword("TO:", from: arguments) else {
            return .failure(.syntax("RCPT", "Syntax: RCPT TO:<address>"))
        }
        guard let (parsedPath, parameterText) = SMTPPath.parse(rest), !parsedPath.isNull || parsedPath.sourceRoute != nil else {
            return .failure(.badRecipient("Bad recipient address syntax"))
        }
        var path = parsedPath
        if path.address.lowercased() == "postmaster" { path.isSyntacticallyValid = path.hadAngleBrackets }
        guard let parameters = parseESMTPParameters(parameterText) else {
            return .failure(.syntax("RCPT", "Bad RCPT parameter syntax"))
        }
        return .success(.rcpt(to: path, parameters: parameters))
    }

    /// `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF`; `chunk-size = 1*DIGIT`;
    /// `end-marker = "LAST"` (RFC 3030 §2).
    private static func parseBdat(_ arguments: Substring) -> Result<SMTPCommand, SMTPCommandError> {
        let words = arguments.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count == 1 || (words.count == 2 && words[1].uppercased() == "LAST") else {
            return .failure(.syntax("BDAT", "Syntax: BDAT chunk-size [LAST]"))
        }
        switch NumericParameter(parsing: String(words[0])) {
        case .valid(let size):
            return .success(.bdat(size: size, last: words.count == 2))
        case .overflow, .invalid, .absent:
            // A size past 2^64-1 is as unreadable as a negative one: either way nobody can tell
            // where the chunk ends.
            return .failure(.syntax("BDAT", "Syntax: BDAT chunk-size [LAST]"))
        }
    }

    /// `auth-command = "AUTH" SP sasl-mech [SP initial-response]`; `sasl-mech = 1*20mech-char`
    /// (RFC 4954 §4, RFC 4422 §3.1).
    private static func parseAuth(_ arguments: Substring) -> Result<SMTPCommand, SMTPCommandError> {
        let words = arguments.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard let mechanism = words.first, words.count <= 2, mechanism.utf8.count <= 20,
            mechanism.utf8.allSatisfy({ isASCIIAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") })
        else {
            return .failure(.syntax("AUTH", "Syntax: AUTH mechanism [initial-response]"))
        }
        let initial = words.count == 2 ? SASLResponse(base64Text: String(words[1])) : nil
        return .success(.auth(mechanism: mechanism.uppercased(), initialResponse: initial))
    }

    private static func dropKeyword(_ keyword: String, from text: Substring) -> Substring? {
        guard text.utf8.count >= keyword.utf8.count,
            text.prefix(keyword.count).uppercased() == keyword
        else { return nil }
        return text.dropFirst(keyword.count)
    }
}

extension Substring {
    fileprivate func dropLast(while predicate: (Character) -> Bool) -> Substring {
        var result = self
        while let last = result.last, predicate(last) { result = result.dropLast() }
        return result
    }
}
