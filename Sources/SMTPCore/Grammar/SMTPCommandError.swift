/// Why a command line could not be parsed, carrying the reply a server gives for it
/// (RFC 5321 §4.2.2, enhanced codes from RFC 3463 and Postfix's choices).
public struct SMTPCommandError: Error, Sendable, Hashable {
    public var code: Int
    public var enhanced: EnhancedStatusCode
    public var text: String
    /// The verb, when it was recognised.
    public var verb: String?

    public init(code: Int, enhanced: EnhancedStatusCode, text: String, verb: String? = nil) {
        self.code = code
        self.enhanced = enhanced
        self.text = text
        self.verb = verb
    }

    static func unrecognized() -> SMTPCommandError {
        SMTPCommandError(code: 500, enhanced: .init(statusClass: 5, subject: 5, detail: 2), text: "Error: command not recognized")
    }

    static func syntax(_ verb: String, _ text: String) -> SMTPCommandError {
        SMTPCommandError(code: 501, enhanced: .init(statusClass: 5, subject: 5, detail: 4), text: text, verb: verb)
    }

    static func badSender(_ text: String) -> SMTPCommandError {
        SMTPCommandError(code: 501, enhanced: .init(statusClass: 5, subject: 1, detail: 7), text: text, verb: "MAIL")
    }

    static func badRecipient(_ text: String) -> SMTPCommandError {
        SMTPCommandError(code: 501, enhanced: .init(statusClass: 5, subject: 1, detail: 3), text: text, verb: "RCPT")
    }
}
