import SMTPCore
/// Files a failure reply (RFC 5321 §4.2) under a `FailureCause`.
///
/// Order of evidence: an enhanced status code (RFC 3463) whose detail names one cause decides alone;
/// then the server's text, matched case-insensitively against phrases real servers use (Postfix, Exim,
/// Exchange/Microsoft 365, Gmail, Yahoo/AOL), because generic codes such as 5.7.1 or 550 cover many
/// causes; then what a broad enhanced code suggests; then the basic reply code with the stage it
/// answered. A reply code no standard defines, or an enhanced class that contradicts the reply code,
/// is a `nonStandardReply` when nothing more specific was found.
public struct FailureClassifier: Sendable {
    /// Only this many characters of the text are searched, so hostile replies cost bounded work.
    public static let maximumTextScanned = 4096

    /// - Parameters:
    ///   - stage: the `SMTPStage` raw value the reply answered ("connect", "helo", "auth", "mail",
    ///     "rcpt", "data", "end-of-data", "bdat", ...); unknown stages are treated as "other".
    ///   - code: the basic reply code.
    ///   - enhanced: "class.subject.detail", if the reply carried one.
    ///   - text: the reply text, lines joined with "\n".
    public static func classify(stage: String, code: Int, enhanced: String?, text: String) -> FailureCause {
        let stage = SMTPStage(rawValue: stage) ?? .other
        let cause = evidence(stage: stage, code: code, enhanced: enhanced, text: text)
        // An address that "does not exist" at MAIL is the sender's (RFC 3463 X.1.7, X.1.8): the
        // fix is on the sending side, not the recipient's.
        return cause == .mailboxUnknown && stage == .mail ? .senderRejected : cause
    }

    private static func evidence(stage: SMTPStage, code: Int, enhanced: String?, text: String) -> FailureCause {
        var parsed = enhanced.flatMap { EnhancedStatusCode($0) }
        var contradictory = false
        if let status = parsed, status.statusClass != code / 100 {
            // "550 4.7.1": one of the two is wrong, so the enhanced code is not evidence.
            contradictory = true
            parsed = nil
        }
        var suggestion: FailureCause?
        if let status = parsed {
            switch enhancedEvidence(statusClass: status.statusClass, subject: status.subject, detail: status.detail, stage: stage) {
            case .decisive(let cause): return cause
            case .suggests(let cause): suggestion = cause
            case .none: break
            }
        }
        if let cause = textCause(text) { return cause }
        if let suggestion { return suggestion }
        if contradictory || ReplyCode(code).meaning == nil { return .nonStandardReply }
        return basicCause(code: code, stage: stage) ?? .other
    }

    private enum Evidence {
        case decisive(FailureCause)
        case suggests(FailureCause)
        case none
    }

    private static func enhancedEvidence(statusClass: Int, subject: Int, detail: Int, stage: SMTPStage) -> Evidence {
        switch (subject, detail) {
        case (1, 1), (1, 2), (1, 3), (1, 6), (1, 10): return .decisive(.mailboxUnknown)
        case (1, 7), (1, 8): return .decisive(.senderRejected)
        case (2, 1):
            // "Mailbox disabled" after the content was seen is a content verdict (AOL 521 5.2.1).
            return .suggests(stage == .endOfData || stage == .bdat ? .contentRejected : .mailboxUnknown)
        case (2, 2): return .decisive(.mailboxFull)
        case (2, 3), (3, 4): return .decisive(.messageTooLarge)
        case (3, 1), (3, 2), (4, 2), (4, 5): return .suggests(.serviceUnavailable)
        case (4, 7): return .suggests(.timeout)
        case (5, 1), (5, 2), (5, 4), (5, 5): return .suggests(.protocolError)
        case (5, 3): return .decisive(.rateLimited)
        case (5, 6): return .decisive(.protocolError)
        case (6, 7), (6, 8), (6, 9): return .suggests(.protocolError)
        case (6, _): return .suggests(.contentRejected)
        case (7, 1), (7, 2), (7, 14), (7, 15), (7, 27): return .suggests(.policyRejection)
        case (7, 3), (7, 4), (7, 5), (7, 6): return .suggests(.tlsRequired)
        case (7, 7): return .suggests(.contentRejected)
        case (7, 8), (7, 9), (7, 12), (7, 13): return .decisive(.authenticationFailed)
        case (7, 10), (7, 11), (7, 30): return .decisive(.tlsRequired)
        case (7, 16): return .decisive(.messageTooLarge)
        case (7, 17), (7, 18): return .suggests(.mailboxUnknown)
        case (7, 20), (7, 21), (7, 22): return .decisive(.dkimFailure)
        case (7, 23), (7, 24): return .decisive(.spfFailure)
        case (7, 25): return .decisive(.policyRejection)
        case (7, 26): return .decisive(.dmarcFailure)
        case (7, 28): return .decisive(.rateLimited)
        case (7, 29): return .suggests(.dkimFailure)
        // Microsoft 365 details outside the IANA registry.
        case (7, 57): return .decisive(.authenticationRequired)
        case (7, 64): return .decisive(.relayDenied)
        case (7, 511), (7, 606...609), (7, 708): return .decisive(.blocklisted)
        case (7, 500...699) where statusClass == 4: return .decisive(.rateLimited)
        default: return .none
        }
    }

    /// Phrases in the order they are tried; the first group with a match wins. Specific phrases come
    /// before broad words ("pipelining" before "error", "spamhaus" before "spam").
    static let phrases: [(FailureCause, [String])] = [
        (.pipeliningMisuse, ["pipelining", "synchronization error", "synchronisation error"]),
        (.greylisted, ["greylist", "graylist", "grey-list", "gray-list", "grey list", "gray list", "postgrey"]),
        (.senderLoginMismatch, [
            "not owned by user", "not owned by auth user", "sender login mismatch", "sendasdenied",
            "not authorized to send as", "not allowed to send as", "not permitted to send as",
        ]),
        (.policyRejection, ["sender verify failed", "could not complete sender verify", "sender verification failed"]),
        (.tlsRequired, [
            "starttls", "tls required", "requires tls", "tls is required", "encryption required",
            "must use tls", "secure connection required", "requiretls",
        ]),
        (.dmarcFailure, ["dmarc"]),
        (.dkimFailure, ["dkim", "domainkeys"]),
        (.spfFailure, ["spf", "sender policy framework"]),
        (.blocklisted, [
            "blocked using", "blocklist", "blacklist", "block list", "black list", "dnsbl", "spamhaus",
            "spamcop", "barracudacentral", "sorbs.net", "uceprotect", "banned sending ip", "(s3140)", "(s3150)",
            "[bl21]", "[bl22]", "[bl23]", "[tss09]", "listed at", "listed on", "listed by", "poor reputation",
            "bad reputation", "ip reputation", "[ipts04]", "due to user complaints",
        ]),
        (.rateLimited, [
            "rate limit", "ratelimit", "rate-limit", "too many connections", "too many messages",
            "too many recipients", "too many concurrent", "too many sessions", "too many mails",
            "receiving mail at a rate", "unusual rate", "rate that prevents", "sending rate", "message rate",
            "connection rate", "unexpected volume", "[tss04]", "[ts01]", "[ts02]", "[ts03]", "throttl",
            "mail flood", "sending quota",
        ]),
        (.mailboxFull, [
            "mailbox full", "mailbox is full", "inbox is full", "quota", "mailbox size limit", "out of storage",
            "storage full", "insufficient space",
        ]),
        (.messageTooLarge, [
            "size exceeds", "message size", "too large", "too big", "exceeds fixed limit", "maximum message size",
            "message length exceeds", "size limit",
        ]),
        (.relayDenied, [
            "relay access denied", "relaying denied", "relay denied", "relay not permitted", "not permitted to relay",
            "unable to relay", "relaying not allowed", "relay not allowed", "not allowed to relay", "we do not relay",
            "relay prohibited", "relaying prohibited", "relaying disallowed", "no relaying",
        ]),
        (.authenticationFailed, [
            "authentication failed", "authentication unsuccessful", "credentials invalid", "invalid credentials",
            "bad credentials", "username and password not accepted", "incorrect authentication", "invalid login",
            "login failed", "incorrect password", "password incorrect",
        ]),
        (.authenticationRequired, [
            "authentication required", "authentication is required", "not authenticated", "not logged in",
            "must authenticate", "please authenticate", "unauthenticated", "auth required", "authentication needed",
            "requires authentication", "must be authenticated", "login required", "smtp auth",
        ]),
        (.mailboxUnknown, [
            "user unknown", "unknown user", "no such user", "does not exist", "doesn't exist", "mailbox unavailable",
            "mailbox not found", "invalid recipient", "unknown recipient", "recipient unknown", "recipient not found",
            "no such recipient", "unrouteable address", "unroutable address", "unknown local part", "user not found",
            "address unknown", "unknown address", "no mailbox", "invalid mailbox", "recipnotfound",
            "not a valid recipient", "mailbox disabled", "account has been disabled", "account is disabled",
        ]),
        (.contentRejected, [
            "spam", "virus", "malware", "infected", "phish", "content rejected", "message content", "unsolicited",
            "bulk mail", "suspicious", "content filter", "will not accept delivery of this message",
        ]),
        (.timeout, ["timeout", "timed out", "time out", "too slow"]),
        (.serviceUnavailable, [
            "service not available", "service unavailable", "closing transmission channel", "too busy",
            "server busy", "system busy", "temporarily unavailable", "shutting down", "try again later",
            "try later", "local problem", "local error",
        ]),
        (.protocolError, [
            "syntax error", "command unrecognized", "unrecognized command", "unrecognised command", "bad sequence",
            "need mail", "need rcpt", "not implemented", "invalid command", "bad command", "line too long",
            "out of sequence",
        ]),
        (.policyRejection, [
            "policy", "client host rejected", "access denied", "reverse dns", "reverse-dns", "rdns", "ptr record",
            "helo command rejected", "sender address rejected", "recipient address rejected", "not allowed",
            "prohibit", "refused", "denied", "rejected", "blocked",
        ]),
    ]

    static func textCause(_ text: String) -> FailureCause? {
        let haystack = String(text.prefix(maximumTextScanned)).lowercased()
        for (cause, needles) in phrases {
            for needle in needles where haystack.contains(needle) {
                return cause
            }
        }
        return nil
    }

    private static func basicCause(code: Int, stage: SMTPStage) -> FailureCause? {
        switch code {
        case 421: return .serviceUnavailable
        case 432, 534, 535: return .authenticationFailed
        case 452: return stage == .rcpt ? .rateLimited : .serviceUnavailable
        case 454: return stage == .auth ? .authenticationFailed : .tlsRequired
        case 455, 555, 500, 501, 502, 503, 504: return .protocolError
        case 521, 556: return .policyRejection
        case 530: return .authenticationRequired
        case 538: return .tlsRequired
        case 550: return stage == .rcpt ? .mailboxUnknown : nil
        case 551, 553: return .mailboxUnknown
        case 552: return stage == .rcpt ? .rateLimited : .messageTooLarge
        case 554: return stage == .endOfData || stage == .bdat ? .contentRejected : .policyRejection
        default: return nil
        }
    }
}
