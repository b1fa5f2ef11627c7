import SMTPCore

/// What a session has revealed so far, changed only by the session's own events: the one builder of
/// the rules' facts. The proxy moves it along as its client leg goes on, and `RuleSimulator` as it
/// replays a record or a capture, through the same transitions, so a rule sees the same facts live and
/// on last week's traffic. `RuleFacts(_:at:)` is the one reading of it for a stage.
///
/// Addresses are RFC 5321 paths as the client sent them (before any rule rewrote them).
public struct SessionFacts: Sendable {
    public private(set) var clientIP: String?
    public private(set) var clientPort: Int?
    public private(set) var serverIP: String?
    public private(set) var serverPort: Int?
    /// The most recent HELO/EHLO name the session accepted (RFC 5321 §4.1.1.1).
    public private(set) var helo: String?
    public private(set) var tls: Bool
    public private(set) var tlsVersion: String?
    /// The AUTH mechanism in use or in progress (RFC 4954).
    public private(set) var authMechanism: String?
    /// The authorization identity as soon as the exchange shows it; never a credential.
    public private(set) var authUser: String?
    public private(set) var mailFrom: SMTPPath?
    public private(set) var mailParameters: [ESMTPParameter]
    /// RCPT commands given in this transaction, refused ones included.
    public private(set) var recipientCount: Int
    /// Recipients accepted in this transaction.
    public private(set) var recipients: [SMTPPath]

    /// The previous message of this session whose end went upstream and whose reply has not come
    /// yet: a pipelining client may already be starting the next transaction (RFC 2920), and a
    /// budget must count the message before the upstream's 250 makes it count.
    public private(set) var messageAwaitingReply: MessageAwaitingReply?

    /// What the command being decided would add: a stage is judged on the facts so far plus its
    /// own command (`probing`), which become facts only once the command is accepted.
    public private(set) var recipient: SMTPPath?
    /// At `message`: the reading of the message (RFC 5322 header fields, MIME structure).
    public private(set) var message: RuleMessageFacts?

    public init(clientIP: String? = nil, clientPort: Int? = nil, serverIP: String? = nil, serverPort: Int? = nil, tls: Bool = false) {
        self.clientIP = clientIP
        self.clientPort = clientPort
        self.serverIP = serverIP
        self.serverPort = serverPort
        self.tls = tls
        self.mailParameters = []
        self.recipientCount = 0
        self.recipients = []
    }

    // MARK: Transitions

    /// The session accepted a HELO or EHLO: the session starts over with this name (RFC 5321 §4.1.4).
    public mutating func greeted(as name: String) {
        helo = name
    }

    /// The connection is under TLS, from its first octet (RFC 8314 §3.3), or from a handshake whose
    /// dialogue the caller cannot see (a capture shows no command after STARTTLS): nothing learnt
    /// before is forgotten, because nothing else is known.
    public mutating func becameEncrypted() {
        tls = true
    }

    /// STARTTLS's handshake ended: everything learnt before it is forgotten, the HELO name and the
    /// AUTH identity included (RFC 3207 §4.2).
    public mutating func startedTLS() {
        tls = true
        helo = nil
        authMechanism = nil
        authUser = nil
        endTransaction()
    }

    /// The TLS version the handshake agreed, which `tls.version` reads.
    public mutating func negotiatedTLS(version: String?) {
        tlsVersion = version
    }

    /// An AUTH exchange began with `mechanism`; `user` when its first response already names one.
    public mutating func authenticating(mechanism: String, user: String? = nil) {
        authMechanism = mechanism
        authUser = user
    }

    /// A later SASL response revealed the authorization identity (RFC 4954 §4).
    public mutating func identified(user: String) {
        authUser = user
    }

    /// The AUTH exchange failed, or the identity was refused: the session has no identity.
    public mutating func unauthenticated() {
        authMechanism = nil
        authUser = nil
    }

    /// MAIL was accepted: a transaction starts (RFC 5321 §3.3), with no recipient yet. A capture
    /// that lost the MAIL command knows no reverse-path (`nil`).
    public mutating func beganTransaction(mailFrom path: SMTPPath?, parameters: [ESMTPParameter]) {
        mailFrom = path
        mailParameters = parameters
        recipientCount = 0
        recipients = []
    }

    /// A RCPT was given and decided, whatever its fate.
    public mutating func gaveRecipient() {
        recipientCount += 1
    }

    /// A recipient was accepted (by the upstream, or by the proxy for a settled transaction).
    public mutating func acceptedRecipient(_ path: SMTPPath) {
        recipients.append(path)
    }

    /// A message's end went upstream and awaits its reply (`nil`: no message does).
    public mutating func awaitingReply(to message: MessageAwaitingReply?) {
        messageAwaitingReply = message
    }

    /// The transaction is over (RSET, a new HELO, the end of a message): its envelope is forgotten.
    public mutating func endTransaction() {
        mailFrom = nil
        mailParameters = []
        recipientCount = 0
        recipients = []
    }

    // MARK: The command being decided

    /// The facts a `helo` stage judges: the name offered.
    public func probing(helo name: String) -> SessionFacts {
        var probe = self
        probe.helo = name
        return probe
    }

    /// The facts a `mail` stage judges: the reverse-path and parameters offered.
    public func probing(mailFrom path: SMTPPath?, parameters: [ESMTPParameter]) -> SessionFacts {
        var probe = self
        probe.beganTransaction(mailFrom: path, parameters: parameters)
        return probe
    }

    /// The facts a `rcpt` stage judges: the recipient offered (`nil` when a capture lost it), after
    /// `recipientCount` others.
    public func probing(recipient path: SMTPPath?) -> SessionFacts {
        var probe = self
        probe.recipient = path
        return probe
    }

    /// The facts a `message` stage judges: the message read.
    public func probing(message: RuleMessageFacts?) -> SessionFacts {
        var probe = self
        probe.message = message
        return probe
    }
}

/// A message sent upstream whose reply is awaited: its envelope, for the limits' keys, and size.
public struct MessageAwaitingReply: Sendable, Hashable {
    public var mailFrom: SMTPPath?
    public var parameters: [ESMTPParameter]
    public var octets: Int

    public init(mailFrom: SMTPPath?, parameters: [ESMTPParameter], octets: Int) {
        self.mailFrom = mailFrom
        self.parameters = parameters
        self.octets = octets
    }
}

extension RuleFacts {
    /// What the rules see at `stage`: the one reading of a session's facts, for the proxy and the
    /// simulator alike.
    public init(_ facts: SessionFacts, at stage: RuleStage) {
        self.init()
        clientIP = facts.clientIP
        clientPort = facts.clientPort
        serverIP = facts.serverIP
        serverPort = facts.serverPort
        helo = facts.helo
        tls = facts.tls
        tlsVersion = facts.tls ? facts.tlsVersion : nil
        authUser = facts.authUser
        authMechanism = facts.authMechanism
        mailFrom = facts.mailFrom?.address
        for parameter in facts.mailParameters { mailParameters[parameter.keyword.uppercased()] = parameter.value }
        recipient = stage == .rcpt ? facts.recipient?.address : nil
        recipients = facts.recipients.map(\.address)
        // At `rcpt` the recipients given before this one; later, the accepted ones (rules README).
        rcptCount = stage == .rcpt ? facts.recipientCount : facts.recipients.count
        if stage == .message { message = facts.message }
    }
}
