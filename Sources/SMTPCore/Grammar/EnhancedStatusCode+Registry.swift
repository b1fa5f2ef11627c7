/// The IANA "SMTP Enhanced Status Codes" registry (RFC 3463, 3886, 4468, 4954, 5248, 6531, 6710,
/// 7293, 7372, 7505, 8617, 8689) in words, for reports that explain a refusal.
extension EnhancedStatusCode {
    /// A whole string that is one code, e.g. "5.1.1"; `nil` for anything else.
    public init?(_ text: String) {
        let utf8 = Substring(text).utf8
        guard let (code, length) = Self.parse(prefixOf: utf8), length == utf8.count else { return nil }
        self = code
    }

    /// The registered meaning of `subject.detail`, e.g. 5.1.1 -> "Bad destination mailbox address";
    /// `nil` for a code outside the registry.
    public var meaning: String? { Self.detailMeaning(subject: subject, detail: detail) }

    /// The meaning of the class digit (RFC 3463 §3.1).
    public var classMeaning: String {
        switch statusClass {
        case 2: "success"
        case 4: "persistent transient failure"
        default: "permanent failure"
        }
    }

    /// The meaning of the subject (RFC 3463 §3.2 ff.); `nil` for an unknown subject.
    public var subjectMeaning: String? {
        switch subject {
        case 0: "other or undefined status"
        case 1: "addressing status"
        case 2: "mailbox status"
        case 3: "mail system status"
        case 4: "network and routing status"
        case 5: "mail delivery protocol status"
        case 6: "message content or media status"
        case 7: "security or policy status"
        default: nil
        }
    }

    /// One line for a report: "Bad destination mailbox address (permanent failure)", or for a code
    /// outside the registry "not in the IANA registry; security or policy status, permanent failure".
    public var explanation: String {
        if let meaning { return "\(meaning) (\(classMeaning))" }
        return "not in the IANA registry; \(subjectMeaning ?? "unknown subject"), \(classMeaning)"
    }

    private static func detailMeaning(subject: Int, detail: Int) -> String? {
        switch (subject, detail) {
        case (0, 0): "Other undefined status"
        case (1, 0): "Other address status"
        case (1, 1): "Bad destination mailbox address"
        case (1, 2): "Bad destination system address"
        case (1, 3): "Bad destination mailbox address syntax"
        case (1, 4): "Destination mailbox address ambiguous"
        case (1, 5): "Destination address valid"
        case (1, 6): "Destination mailbox has moved, no forwarding address"
        case (1, 7): "Bad sender's mailbox address syntax"
        case (1, 8): "Bad sender's system address"
        case (1, 9): "Message relayed to non-compliant mailer"
        case (1, 10): "Recipient address has null MX"
        case (2, 0): "Other or undefined mailbox status"
        case (2, 1): "Mailbox disabled, not accepting messages"
        case (2, 2): "Mailbox full"
        case (2, 3): "Message length exceeds administrative limit"
        case (2, 4): "Mailing list expansion problem"
        case (3, 0): "Other or undefined mail system status"
        case (3, 1): "Mail system full"
        case (3, 2): "System not accepting network messages"
        case (3, 3): "System not capable of selected features"
        case (3, 4): "Message too big for system"
        case (3, 5): "System incorrectly configured"
        case (3, 6): "Requested priority was changed"
        case (4, 0): "Other or undefined network or routing status"
        case (4, 1): "No answer from host"
        case (4, 2): "Bad connection"
        case (4, 3): "Directory server failure"
        case (4, 4): "Unable to route"
        case (4, 5): "Mail system congestion"
        case (4, 6): "Routing loop detected"
        case (4, 7): "Delivery time expired"
        case (5, 0): "Other or undefined protocol status"
        case (5, 1): "Invalid command"
        case (5, 2): "Syntax error"
        case (5, 3): "Too many recipients"
        case (5, 4): "Invalid command arguments"
        case (5, 5): "Wrong protocol version"
        case (5, 6): "Authentication exchange line is too long"
        case (6, 0): "Other or undefined media error"
        case (6, 1): "Media not supported"
        case (6, 2): "Conversion required and prohibited"
        case (6, 3): "Conversion required but not supported"
        case (6, 4): "Conversion with loss performed"
        case (6, 5): "Conversion failed"
        case (6, 6): "Message content not available"
        case (6, 7): "Non-ASCII addresses not permitted for that sender/recipient"
        case (6, 8): "UTF-8 string reply is required, but not permitted by the SMTP client"
        case (6, 9): "UTF-8 header message cannot be transferred to one or more recipients"
        case (7, 0): "Other or undefined security status"
        case (7, 1): "Delivery not authorized, message refused"
        case (7, 2): "Mailing list expansion prohibited"
        case (7, 3): "Security conversion required but not possible"
        case (7, 4): "Security features not supported"
        case (7, 5): "Cryptographic failure"
        case (7, 6): "Cryptographic algorithm not supported"
        case (7, 7): "Message integrity failure"
        case (7, 8): "Authentication credentials invalid"
        case (7, 9): "Authentication mechanism is too weak"
        case (7, 10): "Encryption needed"
        case (7, 11): "Encryption required for requested authentication mechanism"
        case (7, 12): "A password transition is needed"
        case (7, 13): "User account disabled"
        case (7, 14): "Trust relationship required"
        case (7, 15): "Priority level is too low"
        case (7, 16): "Message is too big for the specified priority"
        case (7, 17): "Mailbox owner has changed"
        case (7, 18): "Domain owner has changed"
        case (7, 19): "RRVS test cannot be completed"
        case (7, 20): "No passing DKIM signature found"
        case (7, 21): "No acceptable DKIM signature found"
        case (7, 22): "No valid author-matched DKIM signature found"
        case (7, 23): "SPF validation failed"
        case (7, 24): "SPF validation error"
        case (7, 25): "Reverse DNS validation failed"
        case (7, 26): "Multiple authentication checks failed"
        case (7, 27): "Sender address has null MX"
        case (7, 28): "Mail flood detected"
        case (7, 29): "ARC validation failure"
        case (7, 30): "REQUIRETLS support required"
        default: nil
        }
    }
}
