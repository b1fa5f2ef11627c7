import SMTPCore

/// The replies the relay writes itself in several places, by name (RFC 5321 §4.2, RFC 3463 codes).
extension SMTPReply {
    /// The session ends here (RFC 5321 §3.8): a rule's `disconnect` without its own reply.
    static func serviceNotAvailable(_ hostname: String) -> SMTPReply {
        .proxy(421, "4.7.0", "\(hostname) Service not available, closing transmission channel")
    }

    /// The upstream went away: nothing more can be relayed in this session.
    static func upstreamConnectionLost(_ hostname: String) -> SMTPReply {
        .proxy(421, "4.4.2", "\(hostname) Error: upstream connection lost")
    }

    /// The client broke the command/reply lock-step where RFC 2920 §3.1 forbids it.
    static let synchronizationError = SMTPReply.proxy(554, "5.5.0", "Error: SMTP protocol synchronization")

    /// The proxy could not keep the message (spool or quarantine): the client keeps it and retries.
    static let messageNotStored = SMTPReply.proxy(451, "4.3.0", "Error: message not stored, try again later")
}

extension RelaySessionStateMachine {
    /// The reply to a rule's `disconnect`: its own, or the standard 421.
    func disconnectReply(_ reply: PolicyReply?) -> SMTPReply {
        reply.map(SMTPReply.init) ?? .serviceNotAvailable(configuration.hostname)
    }
}
