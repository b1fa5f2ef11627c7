/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE[&sslrootcert=FILE]]`
/// (`postgresql://` too; `[::1]` for IPv6). `sslmode` and `sslrootcert` mean what they mean to libpq
/// (www.postgresql.org/docs/15/libpq-connect.html): `disable`, `prefer` (the default: TLS when the
/// server offers it), `require`, `verify-ca` and `verify-full`.
public struct PostgresTarget: Sendable, Equatable, CustomStringConvertible {
    public enum TLS: Sendable, Equatable {
        case disable
        case prefer
        case require
        /// The server's certificate chain is checked against `rootCertificate` (a PEM file), or the
        /// system's roots when nil; not its name.
        case verifyCA(rootCertificate: String?)
        /// The chain and the server's name (`HOST`) are checked.
        case verifyFull(rootCertificate: String?)
    }

    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var tls: TLS

    public init?(url text: String) {
        var rest: Substring
        if text.hasPrefix("postgres://") {
            rest = text.dropFirst("postgres://".count)
        } else if text.hasPrefix("postgresql://") {
            rest = text.dropFirst("postgresql://".count)
        } else {
            return nil
        }
        var parameters: [Substring: Substring] = [:]
        if let question = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: question)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, parameters[parts[0]] == nil else { return nil }
                parameters[parts[0]] = parts[1]
            }
            rest = rest[..<question]
        }
        guard let tls = Self.tls(parameters) else { return nil }
        self.tls = tls
        guard let at = rest.lastIndex(of: "@"), let slash = rest[at...].firstIndex(of: "/") else { return nil }
        let credentials = rest[..<at]
        let userPart = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        user = String(userPart[0])
        password = userPart.count > 1 ? String(userPart[1]) : nil
        var hostPort = rest[rest.index(after: at)..<slash]
        database = String(rest[rest.index(after: slash)...])
        port = 5432
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            hostPort = hostPort[hostPort.index(after: close)...]
            if hostPort.hasPrefix(":") {
                guard let number = Int(hostPort.dropFirst()), (1...65535).contains(number) else { return nil }
                port = number
            } else if !hostPort.isEmpty {
                return nil
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let number = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(number) else { return nil }
            port = number
        } else {
            host = String(hostPort)
        }
        if user.isEmpty || host.isEmpty || database.isEmpty || database.contains("/") { return nil }
    }

    /// The TLS the query asks for; nil for an unknown parameter or mode, or a root certificate
    /// without a mode that checks it.
    private static func tls(_ parameters: [Substring: Substring]) -> TLS? {
        guard parameters.keys.allSatisfy({ $0 == "sslmode" || $0 == "sslrootcert" }) else { return nil }
        let root = parameters["sslrootcert"].map(String.init)
        if root?.isEmpty == true { return nil }
        switch parameters["sslmode"] ?? "prefer" {
        case "disable": return root == nil ? .disable : nil
        case "prefer": return root == nil ? .prefer : nil
        // As libpq: `require` with a root certificate checks the chain.
        case "require": return root.map { .verifyCA(rootCertificate: $0) } ?? .require
        case "verify-ca": return .verifyCA(rootCertificate: root)
        case "verify-full": return .verifyFull(rootCertificate: root)
        default: return nil
        }
    }

    /// Without the password, which never reaches a log.
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        var text = "postgres://\(user)@\(shownHost):\(port)/\(database)"
        switch tls {
        case .prefer: break
        case .disable: text += "?sslmode=disable"
        case .require: text += "?sslmode=require"
        case .verifyCA(let root): text += "?sslmode=verify-ca" + (root.map { "&sslrootcert=\($0)" } ?? "")
        case .verifyFull(let root): text += "?sslmode=verify-full" + (root.map { "&sslrootcert=\($0)" } ?? "")
        }
        return text
    }
}
