/// A syslog collector named as `syslog+tcp://HOST:PORT` (`proxy --transcripts`).
///
/// HOST is a name, an IPv4 address, or an IPv6 address in brackets (`[::1]:514`, as RFC 3986
/// writes it). The port is required: RFC 6587 has no assigned port, and collectors use 514, 601
/// or their own, so guessing would send records into the void.
public struct SyslogTarget: Sendable, Equatable, CustomStringConvertible {
    public static let scheme = "syslog+tcp://"

    /// Without brackets.
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// True when `text` is meant as a syslog URL (it starts with a scheme), so that a malformed one
    /// is a usage error rather than a directory name.
    public static func looksLikeURL(_ text: String) -> Bool {
        text.contains("://")
    }

    /// Parses `syslog+tcp://HOST:PORT`; the error says what is wrong, for a usage message.
    public static func parse(_ text: String) -> Result<SyslogTarget, SyslogTargetError> {
        guard text.lowercased().hasPrefix(scheme) else {
            return .failure(.init(reason: "only syslog+tcp://HOST:PORT is supported"))
        }
        var rest = Substring(text.dropFirst(scheme.count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        let host: Substring
        let portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                return .failure(.init(reason: "an IPv6 address needs its closing bracket, e.g. syslog+tcp://[::1]:514"))
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let afterBracket = rest[rest.index(after: close)...]
            guard afterBracket.hasPrefix(":") else {
                return .failure(.init(reason: "the port is missing, e.g. syslog+tcp://[::1]:514"))
            }
            portText = afterBracket.dropFirst()
            guard host.contains(":"), host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                return .failure(.init(reason: "[\(host)] is not an IPv6 address"))
            }
        } else {
            guard let colon = rest.lastIndex(of: ":") else {
                return .failure(.init(reason: "the port is missing, e.g. syslog+tcp://127.0.0.1:514"))
            }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
            guard !host.contains(":") else {
                return .failure(.init(reason: "write an IPv6 address in brackets, e.g. syslog+tcp://[::1]:514"))
            }
            let allowed = host.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "." || $0 == "_" }
            guard allowed else {
                return .failure(.init(reason: "\"\(host)\" is not a host name or address"))
            }
        }
        guard !host.isEmpty else {
            return .failure(.init(reason: "the host is missing, e.g. syslog+tcp://127.0.0.1:514"))
        }
        guard portText.allSatisfy(\.isASCII), let port = Int(portText), (1...65535).contains(port) else {
            return .failure(.init(reason: "\"\(portText)\" is not a port (1-65535)"))
        }
        return .success(SyslogTarget(host: String(host), port: port))
    }

    /// `syslog+tcp://HOST:PORT`, brackets around an IPv6 address.
    public var description: String {
        host.contains(":") ? "\(Self.scheme)[\(host)]:\(port)" : "\(Self.scheme)\(host):\(port)"
    }
}

public struct SyslogTargetError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}
