import MailMessage
import SMTPCore
import SMTPRules
import SMTPTranscript

/// The rules hook of the proxy: asked at every stage of a session, it decides whether the command
/// goes on, is answered by the proxy (in command order, like any reply), or changes.
///
/// Policies are synchronous and never do I/O: they see `PolicyFacts` and return a
/// `PolicyDecision`, so the relay state machine can call them in place. The only state they keep
/// is in memory, behind a lock (sender limits' counters, fed by `observe`). A command a policy
/// refuses is answered by the proxy and never sent upstream.
public protocol SessionPolicy: Sendable {
    /// True when a `message` stage needs the whole message before anything is sent upstream. With
    /// no message stage content streams through (cut-through).
    var evaluatesMessages: Bool { get }

    /// Whether the `message` stage reads the decoded text parts (`PolicyFacts.message`'s
    /// `body`). When it does not, the relay's reading of a spooled message keeps none, up to
    /// 1 MiB less per message.
    var readsMessageBody: Bool { get }

    func decide(at stage: PolicyStage, facts: PolicyFacts) -> PolicyDecision

    /// What happened after a decision, for a policy that keeps state across sessions (sender
    /// limits): the relay reports a session let in, and a recipient or message the upstream
    /// accepted. Never refused or tempfailed attempts. The default does nothing.
    func observe(_ event: PolicyObservation, facts: PolicyFacts)
}

/// Something a policy may count, reported by the relay once it happened.
public enum PolicyObservation: Sendable, Hashable {
    /// The `connect` stage let the session in.
    case sessionAccepted
    /// The upstream accepted this recipient (a 2xx to RCPT); `facts` are the transaction's.
    case recipientAccepted(SMTPPath)
    /// The upstream accepted the message (a 2xx to the end of data); `octets` as the client sent
    /// them, `facts` the envelope of that message.
    case messageAccepted(octets: Int)
}

extension SessionPolicy {
    public func observe(_ event: PolicyObservation, facts: PolicyFacts) {}

    /// A policy that does not say is given the body whenever it evaluates messages.
    public var readsMessageBody: Bool { evaluatesMessages }
}

/// The stage a policy is asked at: the rule language's stages (rules/README.md, "Stages"), so a
/// policy other than the rules (a test's, a future policy service's) is asked at the same points.
public typealias PolicyStage = RuleStage

/// What is known of the session when a stage is decided: the rules' own fact builder, which the
/// relay moves along through its transitions (`SessionFacts`), as the simulator does on records.
public typealias PolicyFacts = SessionFacts

extension SessionFacts {
    /// The facts of a new connection between `client` and `server`.
    public init(client: SessionRecord.Endpoint?, server: SessionRecord.Endpoint? = nil) {
        self.init(clientIP: client?.ip, clientPort: client?.port, serverIP: server?.ip, serverPort: server?.port)
    }
}

/// A reply a policy gives instead of the upstream's (RFC 5321 §4.2, RFC 3463 enhanced code).
public struct PolicyReply: Sendable, Hashable {
    public var code: Int
    public var enhanced: EnhancedStatusCode?
    public var text: String

    public init(code: Int, enhanced: EnhancedStatusCode?, text: String) {
        precondition((200...599).contains(code), "a reply code is three digits, 2xx to 5xx")
        self.code = code
        self.enhanced = enhanced
        self.text = text
    }
}

/// The outcome of one stage: a terminal action plus non-terminal effects.
public struct PolicyDecision: Sendable {
    public enum Action: Sendable, Hashable {
        /// Go on: the command is relayed (with the effects below applied).
        case `continue`
        /// Answer 5xx; the command is not relayed.
        case reject(PolicyReply)
        /// Answer 4xx; the command is not relayed.
        case tempfail(PolicyReply)
        /// Answer (421 by default) and close the session.
        case disconnect(PolicyReply?)
        /// `message` stage (and later stages of the transaction): answer 250 as if delivered, send
        /// nothing upstream.
        case discard
        /// `message` stage: keep the message in the quarantine, answer 250, send nothing upstream.
        case quarantine(reason: String)
    }

    public var action: Action
    /// `mail` stage: the reverse-path sent upstream instead of the client's.
    public var rewriteMailFrom: SMTPPath?
    /// `rcpt` stage: the forward-path sent upstream instead of the client's.
    public var rewriteRecipient: SMTPPath?
    /// Recipients added upstream only (bcc): never shown to the client.
    public var addRecipients: [SMTPPath]
    /// `data` and `message` stages: the one recipient the message goes to upstream instead of the
    /// accepted ones (the client still sees its recipients accepted).
    public var redirect: SMTPPath?
    /// `message` stage: changes to the header section, applied to the spooled message.
    public var headerEdits: [HeaderEdit]
    /// What each rule decided, for the transcript's `rules`.
    public var verdicts: [SessionRecord.RuleVerdict]

    public init(
        action: Action = .continue,
        rewriteMailFrom: SMTPPath? = nil,
        rewriteRecipient: SMTPPath? = nil,
        addRecipients: [SMTPPath] = [],
        redirect: SMTPPath? = nil,
        headerEdits: [HeaderEdit] = [],
        verdicts: [SessionRecord.RuleVerdict] = []
    ) {
        self.action = action
        self.rewriteMailFrom = rewriteMailFrom
        self.rewriteRecipient = rewriteRecipient
        self.addRecipients = addRecipients
        self.redirect = redirect
        self.headerEdits = headerEdits
        self.verdicts = verdicts
    }

    public static let `continue` = PolicyDecision()
}
