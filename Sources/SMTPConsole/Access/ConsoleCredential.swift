/// How a request proved it may use the console.
public enum ConsoleCredential: Sendable, Equatable {
    /// `Authorization: Bearer TOKEN`: a script, not a browser. A browser never adds this header by
    /// itself, so another site cannot make one send it: such requests need no CSRF token.
    case bearer
    /// The login cookie: a browser, whose POSTs must carry the session's CSRF token.
    case session(id: String)

    /// The credential a request carries, if any is valid: a bearer token first, else the cookie.
    public static func of(cookieHeader: String?, authorization: String?, token: ConsoleToken, sessions: ConsoleSessions) -> ConsoleCredential? {
        if let authorization {
            let prefix = "bearer "
            guard authorization.count > prefix.count, authorization.prefix(prefix.count).lowercased() == prefix else { return nil }
            return token.matches(String(authorization.dropFirst(prefix.count))) ? .bearer : nil
        }
        if let id = cookie(named: ConsoleSessions.cookieName, in: cookieHeader), sessions.isOpen(id) {
            return .session(id: id)
        }
        return nil
    }

    /// A POST that changes state: allowed for a bearer token, or a session with its CSRF token.
    public func mayChangeState(csrf: String?, sessions: ConsoleSessions) -> Bool {
        switch self {
        case .bearer: return true
        case .session(let id): return sessions.isValidCSRF(csrf, for: id)
        }
    }

    /// The value of one cookie in a `Cookie` header (RFC 6265 §5.4: `name=value; name=value`).
    public static func cookie(named name: String, in header: String?) -> String? {
        guard let header else { return nil }
        for pair in header.split(separator: ";") {
            let trimmed = pair.drop { $0 == " " }
            guard let equals = trimmed.firstIndex(of: "=") else { continue }
            if trimmed[..<equals] == name { return String(trimmed[trimmed.index(after: equals)...]) }
        }
        return nil
    }
}
