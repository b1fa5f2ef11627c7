import SMTPTranscript

/// The metadata file next to each quarantined message (`ID.json` beside `ID.eml` in
/// `--quarantine DIR`): why it is there and the envelope it came with, so an administrator can
/// release it by hand (for example with `sendmail -f FROM RCPT... < ID.eml`).
struct QuarantineRecord: Codable, Sendable {
    static let schemaName = "smtpscope.quarantine/1"

    var schema = QuarantineRecord.schemaName
    var sessionID: String
    var quarantined: String
    var reason: String
    var rules: [String]
    var clientIP: String?
    var clientPort: Int?
    var helo: String?
    var authUser: String?
    var mailFrom: String?
    var rcptTo: [String]
    var size: Int

    enum CodingKeys: String, CodingKey {
        case schema
        case sessionID = "session_id"
        case quarantined
        case reason
        case rules
        case clientIP = "client_ip"
        case clientPort = "client_port"
        case helo
        case authUser = "auth_user"
        case mailFrom = "mail_from"
        case rcptTo = "rcpt_to"
        case size
    }
}
