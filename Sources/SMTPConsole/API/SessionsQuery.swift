import MessageTrace

/// `GET /api/sessions?...` (and the Sessions page's search form) as a `TraceQuery`: the same
/// filters as `smtpscope trace`, with the same meanings. An empty value is no filter (a form's
/// empty field); the null sender `<>` is written `<>`. A parameter the console does not know is
/// an error, so a misspelt filter never silently widens a search.
public enum SessionsQuery {
    public static let names = ["from", "to", "client", "user", "status", "rule", "subject", "message_id", "session", "since", "until", "limit"]
    public static let defaultLimit = 100
    public static let maximumLimit = 1000

    /// Why a parameter cannot be used; `description` names it (a 400's body).
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// `now` is microseconds since the epoch, for ages such as `since=24h`.
    public static func parse(_ parameters: [(name: String, value: String)], now: Int64) -> Result<TraceQuery, Problem> {
        var query = TraceQuery(limit: defaultLimit)
        var seen: Set<String> = []
        for (name, value) in parameters {
            guard names.contains(name) else {
                return .failure(Problem(description: "unknown parameter '\(name)'; known: \(names.joined(separator: ", "))"))
            }
            guard seen.insert(name).inserted else { return .failure(Problem(description: "parameter '\(name)' given twice")) }
            guard !value.isEmpty else { continue }
            switch name {
            case "from": query.from = AddressPattern(parsing: value == "<>" ? "" : value)
            case "to": query.to = AddressPattern(parsing: value)
            case "client":
                guard let range = ClientRange(parsing: value) else {
                    return .failure(Problem(description: "client '\(value)': expected an IP address or a CIDR block, e.g. 192.0.2.7 or 192.0.2.0/24"))
                }
                query.client = range
            case "user": query.user = value
            case "status":
                guard let status = Status(parsing: value) else {
                    return .failure(Problem(description: "status '\(value)': expected one of \(Status.names.joined(separator: ", "))"))
                }
                query.status = status
            case "rule": query.rule = value
            case "subject": query.subject = value
            case "message_id": query.messageID = value
            case "session": query.session = value
            case "since", "until":
                guard let time = TraceTime.parse(value, now: now) else {
                    return .failure(Problem(description: "\(name) '\(value)': expected RFC 3339 (2026-01-31T12:00:00Z) or an age (7d, 24h, 30m)"))
                }
                if name == "since" { query.since = time } else { query.until = time }
            case "limit":
                guard let limit = Int(value), limit > 0, limit <= maximumLimit else {
                    return .failure(Problem(description: "limit '\(value)': expected a number from 1 to \(maximumLimit)"))
                }
                query.limit = limit
            default: break
            }
        }
        return .success(query)
    }

    /// `application/x-www-form-urlencoded` pairs (a URL's query, a form's body): `+` is a space and
    /// `%XX` an octet; invalid UTF-8 becomes U+FFFD.
    public static func formPairs(_ text: some StringProtocol) -> [(name: String, value: String)] {
        text.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    static func decode(_ text: some StringProtocol) -> String {
        var octets: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let octet = utf8.popFirst() {
            switch octet {
            case UInt8(ascii: "+"): octets.append(0x20)
            case UInt8(ascii: "%"):
                if utf8.count >= 2, let high = hexValue(utf8[utf8.startIndex]), let low = hexValue(utf8[utf8.startIndex + 1]) {
                    octets.append(high << 4 | low)
                    utf8 = utf8.dropFirst(2)
                } else {
                    octets.append(octet)
                }
            default: octets.append(octet)
            }
        }
        return String(decoding: octets, as: UTF8.self)
    }

    private static func hexValue(_ octet: UInt8) -> UInt8? {
        switch octet {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return octet - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return octet - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return octet - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
