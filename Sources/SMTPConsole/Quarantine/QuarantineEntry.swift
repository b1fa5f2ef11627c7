import Foundation

/// One quarantined message: `ID.json` (schema `smtpscope.quarantine/1`, written by the proxy
/// beside `ID.eml`): why it is held and the envelope it came with.
public struct QuarantineEntry: Sendable, Equatable, Decodable {
    public var id: String = ""
    public var sessionID: String
    public var quarantined: String
    public var reason: String
    public var rules: [String]
    public var clientIP: String?
    public var helo: String?
    public var mailFrom: String?
    public var rcptTo: [String]
    public var size: Int

    enum CodingKeys: String, CodingKey {
        case sessionID = "session_id"
        case quarantined, reason, rules, helo, size
        case clientIP = "client_ip"
        case mailFrom = "mail_from"
        case rcptTo = "rcpt_to"
    }

    /// The entry of `ID.json`'s contents, or nil when they are not a quarantine record.
    public static func parse(_ data: Data, id: String) -> QuarantineEntry? {
        guard var entry = try? JSONDecoder().decode(QuarantineEntry.self, from: data) else { return nil }
        entry.id = id
        return entry
    }

    /// A quarantine id names files in the folder: letters, digits, `-`, `_` and `.`, not starting
    /// with a dot, so no id from a URL can reach outside the folder or a temporary file.
    public static func isValidID(_ id: String) -> Bool {
        guard let first = id.unicodeScalars.first, first != ".", id.utf8.count <= 200 else { return false }
        return id.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "A"..."Z", "a"..."z", "0"..."9", "-", "_", ".": return true
            default: return false
            }
        }
    }
}
