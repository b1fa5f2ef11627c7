import SMTPCore
import SMTPRules
import SenderLimits

/// The rules and limits answering Postfix's policy requests (`smtpd_access_policy`), one request at
/// a time, without I/O of its own: the server hands it requests, it hands back the action line and
/// the record of the decision.
///
/// - `protocol_state` picks the stage: CONNECT, EHLO/HELO, MAIL, RCPT, DATA, END-OF-MESSAGE
///   (`message`, where only the size is known: a rule reading header fields or the body is not
///   judged). Any other state (VRFY, ETRN) gets `DUNNO`.
/// - Attributes become facts: `client_address`/`client_port`, `server_address`/`server_port`,
///   `helo_name`, `sasl_username`/`sasl_method`, `sender`, `recipient`, `recipient_count`
///   (which Postfix sends from DATA on), `size`, `encryption_protocol`.
/// - Verdicts become actions: reject and tempfail `CODE X.Y.Z text`, disconnect `421 ...` (Postfix
///   disconnects after a 421), discard `DISCARD`, quarantine `HOLD`; accept and no verdict `DUNNO`.
///   Rewrites, bcc and header actions are not Postfix policy actions: their verdicts are recorded as
///   not enforced.
/// - Limits count when the answer lets the thing through: a session at CONNECT, a recipient at
///   RCPT (once per message `instance`), a message and its `size` at END-OF-MESSAGE (once per
///   instance). Postfix asks at those states only when `check_policy_service` is in the matching
///   restriction list (README, "Policy service"); a recipient Postfix refuses later is still counted,
///   an error on the safe side.
public struct PostfixPolicyService: Sendable {
    public let rules: RuleSet
    public let limits: LimitLedger
    let clock: any LimitClock

    public init(rules: RuleSet, limits: LimitLedger = LimitLedger(store: MemoryLimitStore()), clock: any LimitClock = SystemLimitClock()) {
        self.rules = rules
        self.limits = limits
        self.clock = clock
    }

    /// What one policy connection remembers between requests: Postfix reuses a connection for one
    /// SMTP session after another, and `instance` names the message a request is about.
    public struct Connection: Sendable {
        var instance: String?
        var countedRecipients: Set<String> = []
        var messageCounted = false
        /// The recipients answered DUNNO for this instance: the `rcpt` facts at DATA and after.
        var recipients: [String] = []

        public init() {}

        mutating func enter(_ instance: String?) {
            guard instance != self.instance else { return }
            self = Connection()
            self.instance = instance
        }
    }

    /// The answer: the action (`DUNNO`, `451 4.7.1 text`, ...) and the decision's record.
    public func answer(_ request: PolicyRequest, connection: inout Connection) -> PolicyDecisionRecord {
        let now = clock.now()
        connection.enter(request["instance"])
        var record = PolicyDecisionRecord(time: Timestamp(microsecondsSinceEpoch: now.milliseconds * 1000), request: request)
        guard request["request"] == "smtpd_access_policy", let stage = Self.stage(of: request["protocol_state"]) else {
            record.note = request["request"] == "smtpd_access_policy" ? "no rules apply at this protocol state" : "not an smtpd_access_policy request"
            return record
        }
        record.stage = stage
        var facts = Self.facts(request, at: stage, recipients: connection.recipients)
        let read = rules.limits(readAt: stage)
        if !read.isEmpty { limits.fillCounts(&facts, for: read, at: now) }
        let outcome = rules.stages.contains(stage) ? rules.evaluate(stage, facts) : .none
        record.verdicts = outcome.verdicts.map { verdict in
            var verdict = verdict
            if verdict.enforced, !Self.isPolicyAction(verdict.action) {
                verdict.enforced = false
                verdict.detail = [verdict.detail, "not a Postfix policy action"].compactMap { $0 }.joined(separator: "; ")
            }
            return verdict
        }
        record.unjudged = outcome.unjudged.map(\.rule)
        if let terminal = outcome.terminal, terminal != .accept {
            record.action = Self.action(for: terminal)
            record.rule = outcome.terminalVerdict?.rule
            return record
        }
        // Let through: count what this state lets through.
        switch stage {
        case .connect:
            record.counted = limits.record(.sessionOpened, facts: facts, limits: rules.limits, at: now)
        case .rcpt:
            if let recipient = facts.recipient, connection.countedRecipients.insert(recipient.lowercased()).inserted {
                connection.recipients.append(recipient)
                record.counted = limits.record(.recipientAccepted, facts: facts, limits: rules.limits, at: now)
            }
        case .message:
            if !connection.messageCounted {
                connection.messageCounted = true
                record.counted = limits.record(.messageAccepted(octets: facts.message?.size ?? 0), facts: facts, limits: rules.limits, at: now)
            }
        default:
            break
        }
        return record
    }

    static func stage(of state: String?) -> RuleStage? {
        switch state?.uppercased() {
        case "CONNECT": .connect
        case "EHLO", "HELO": .helo
        case "MAIL": .mail
        case "RCPT": .rcpt
        case "DATA": .data
        case "END-OF-MESSAGE": .message
        default: nil
        }
    }

    static func facts(_ request: PolicyRequest, at stage: RuleStage, recipients: [String]) -> RuleFacts {
        var facts = RuleFacts()
        facts.clientIP = request["client_address"]
        facts.clientPort = request["client_port"].flatMap { Int($0) }
        facts.serverIP = request["server_address"]
        facts.serverPort = request["server_port"].flatMap { Int($0) }
        if stage >= .helo { facts.helo = request["helo_name"] }
        facts.tlsVersion = request["encryption_protocol"]
        facts.tls = facts.tlsVersion != nil
        facts.authUser = request["sasl_username"]
        facts.authMechanism = facts.authUser == nil ? nil : request["sasl_method"]
        if stage >= .mail {
            // Postfix sends `sender=` for the null reverse-path.
            facts.mailFrom = request.attributes["sender"] ?? ""
            if let size = request["size"], stage < .message { facts.mailParameters["SIZE"] = .some(size) }
        }
        switch stage {
        case .rcpt:
            facts.recipient = request["recipient"]
            facts.rcptCount = recipients.count
        case .data, .message:
            facts.recipients = recipients
            facts.rcptCount = request["recipient_count"].flatMap { Int($0) } ?? recipients.count
        default:
            break
        }
        if stage == .message {
            // Postfix sends no header field and no body: rules reading them are not judged.
            var message = RuleMessageFacts(size: request["size"].flatMap { Int($0) } ?? 0, knownHeaderFields: [], bodyKnown: false)
            message.attachmentsKnown = false
            facts.message = message
        }
        return facts
    }

    static func isPolicyAction(_ action: String) -> Bool {
        ["accept", "reject", "tempfail", "disconnect", "discard", "quarantine", "tag", "log"].contains(action)
    }

    /// The `action=` value (Postfix's access(5) actions).
    static func action(for terminal: RuleTerminal) -> String {
        func reply(_ code: Int, _ enhanced: EnhancedStatusCode?, _ text: String?) -> String {
            [String(code), enhanced?.description, text.map(Self.oneLine)].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        }
        switch terminal {
        case .accept: return "DUNNO"
        case .reject(let code, let enhanced, let text), .tempfail(let code, let enhanced, let text): return reply(code, enhanced, text)
        case .disconnect(let code, let enhanced, let text):
            // Postfix disconnects after a 421 or 521 from a policy (access(5)).
            guard let code, code == 421 || code == 521 else { return reply(421, enhanced ?? EnhancedStatusCode(statusClass: 4, subject: 7, detail: 0), text ?? "Service not available, closing transmission channel") }
            return reply(code, enhanced, text)
        case .discard: return "DISCARD"
        case .quarantine(let reason): return "HOLD \(Self.oneLine(reason))"
        }
    }

    /// A response is one line: whatever a rule built never carries a line break to Postfix.
    static func oneLine(_ text: String) -> String {
        String(text.unicodeScalars.map { $0 == "\n" || $0 == "\r" || $0 == "\0" ? " " : Character($0) })
    }
}
