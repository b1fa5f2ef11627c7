import MailMessage

/// What a session has revealed so far, as plain values: the facts the rule fields read.
/// Addresses are RFC 5321 §4.1.2 mailboxes as sent, without angle brackets.
public struct RuleFacts: Sendable {
    public var clientIP: String?
    public var clientPort: Int?
    public var serverIP: String?
    public var serverPort: Int?
    /// The EHLO/HELO argument (RFC 5321 §4.1.1.1).
    public var helo: String?
    public var tls: Bool
    public var tlsVersion: String?
    /// The authorization identity after a successful AUTH (RFC 4954 §4); never a credential.
    public var authUser: String?
    public var authMechanism: String?
    /// The reverse-path without `<>`; "" is the null path; nil = not known yet.
    public var mailFrom: String?
    /// MAIL parameters (RFC 5321 §4.1.2): keyword uppercased -> value (nil for a bare keyword).
    public var mailParameters: [String: String?]
    /// At `rcpt`: the recipient being decided.
    public var recipient: String?
    /// At `data` and `message`: every accepted recipient.
    public var recipients: [String]
    /// At `rcpt`: recipients accepted before this one; at `data`/`message`: all accepted ones.
    public var rcptCount: Int
    /// At `message` only.
    public var message: RuleMessageFacts?
    /// Each limit's count for this session's key, filled by the caller from its counter store
    /// before a stage is evaluated (`RuleSet.limits(readAt:)`); a limit without an entry has no key
    /// here. The rules never touch a store.
    public var limitCounts: [String: Int] = [:]
    /// What this session has let through that a limit's counter does not hold yet, by limit name: a
    /// pipelining client's RCPTs still awaiting the upstream's reply, or the message whose end is
    /// (RFC 2920: the next MAIL may come first). `over_limit` counts them as if accepted, so a
    /// pipelined batch cannot pass a budget that one-at-a-time commands would not.
    public var limitsInFlight: [String: Int] = [:]

    public init(
        clientIP: String? = nil,
        clientPort: Int? = nil,
        serverIP: String? = nil,
        serverPort: Int? = nil,
        helo: String? = nil,
        tls: Bool = false,
        tlsVersion: String? = nil,
        authUser: String? = nil,
        authMechanism: String? = nil,
        mailFrom: String? = nil,
        mailParameters: [String: String?] = [:],
        recipient: String? = nil,
        recipients: [String] = [],
        rcptCount: Int = 0,
        message: RuleMessageFacts? = nil
    ) {
        self.clientIP = clientIP
        self.clientPort = clientPort
        self.serverIP = serverIP
        self.serverPort = serverPort
        self.helo = helo
        self.tls = tls
        self.tlsVersion = tlsVersion
        self.authUser = authUser
        self.authMechanism = authMechanism
        self.mailFrom = mailFrom
        self.mailParameters = mailParameters
        self.recipient = recipient
        self.recipients = recipients
        self.rcptCount = rcptCount
        self.message = message
    }
}

/// The message facts of the `message` stage: RFC 5322 header fields (unfolded, §2.2.3, and RFC 2047
/// decoded) and the MIME structure (RFC 2045/2046) summarised.
public struct RuleMessageFacts: Sendable {
    /// Top-level header fields in order.
    public var headers: [(name: String, value: String)]
    public var subject: String?
    /// Addresses of the header From (RFC 5322 §3.6.2).
    public var from: [String]
    public var messageID: String?
    /// Octets of the message as received.
    public var size: Int
    /// Decoded text parts.
    public var body: String
    public var attachments: [RuleAttachment]
    /// The header fields `headers` can tell about, by lowercased name; nil when it holds the whole
    /// header section. A record keeps only a few fields of a message: a rule that reads another
    /// one cannot be judged from it, and is not evaluated (`RuleOutcome.unjudged`).
    public var knownHeaderFields: Set<String>?
    /// False when `body` was not kept (a record keeps no body): rules that read it are not judged.
    public var bodyKnown: Bool
    /// False when the MIME structure was not read (Postfix's policy requests carry none): rules
    /// that read `attachment.*` are not judged.
    public var attachmentsKnown = true

    public init(
        headers: [(name: String, value: String)] = [],
        subject: String? = nil,
        from: [String] = [],
        messageID: String? = nil,
        size: Int = 0,
        body: String = "",
        attachments: [RuleAttachment] = [],
        knownHeaderFields: Set<String>? = nil,
        bodyKnown: Bool = true
    ) {
        self.headers = headers
        self.subject = subject
        self.from = from
        self.messageID = messageID
        self.size = size
        self.body = body
        self.attachments = attachments
        self.knownHeaderFields = knownHeaderFields
        self.bodyKnown = bodyKnown
    }

    /// Whether any field could be unknown: false for a whole message, as the proxy always has.
    var lacksSomething: Bool { knownHeaderFields != nil || !bodyKnown || !attachmentsKnown }

    /// Whether these facts hold what `field` reads.
    func knows(_ field: FieldAccessor) -> Bool {
        func knowsField(_ name: String) -> Bool { knownHeaderFields.map { $0.contains(name) } ?? true }
        return switch field {
        case .header(let name), .headers(let name): knowsField(name.lowercased())
        case .subject: knowsField("subject")
        case .from, .fromLocal, .fromDomain: knowsField("from")
        case .messageID: knowsField("message-id")
        case .attachmentFilename, .attachmentContentType, .attachmentSize: attachmentsKnown
        case .body: bodyKnown
        default: true
        }
    }
}

/// One attachment of a message: a MIME part with a filename or a non-text type (RFC 2183, RFC 2045).
/// An attachment as `attachment.filename`, `.type` and `.size` read it: the reader's own shape.
public typealias RuleAttachment = Attachment
