import MailMessage
import SMTPCore
import SMTPRules
import SMTPTranscript
import SenderLimits

/// The proxy's policy from a compiled `rules/` folder: each stage asks the rule set, and its outcome
/// becomes the relay's decision.
///
/// Only enforced actions change the session; `mode monitor` rules only leave verdicts. An address a
/// rule builds that is not a valid RFC 5321 path is not used: the verdict stays in the transcript
/// with `enforced` false, so nothing malformed ever reaches the upstream.
///
/// Sender limits: before a stage whose rules read a limit, the counts for the session's keys come
/// from `limits` (`RuleFacts.limitCounts`); `observe` adds what the upstream accepted. The same
/// ledger passes from one rule set to the next on a reload, so counters survive it.
public struct RulesPolicy: SessionPolicy {
    public let rules: RuleSet
    public let limits: LimitLedger
    let clock: any LimitClock
    let metrics: ProxyMetrics?

    public init(rules: RuleSet, limits: LimitLedger = LimitLedger(store: MemoryLimitStore()), clock: any LimitClock = SystemLimitClock(), metrics: ProxyMetrics? = nil) {
        self.rules = rules
        self.limits = limits
        self.clock = clock
        self.metrics = metrics
    }

    public var evaluatesMessages: Bool { rules.evaluatesMessages }

    public var readsMessageBody: Bool { rules.readsMessageBody }

    public func decide(at stage: PolicyStage, facts: PolicyFacts) -> PolicyDecision {
        guard rules.stages.contains(stage) else { return .continue }
        var ruleFacts = RuleFacts(facts, at: stage)
        let read = rules.limits(readAt: stage)
        if !read.isEmpty {
            limits.fillCounts(&ruleFacts, for: read, at: clock.now())
            Self.addInFlight(to: &ruleFacts, for: read, at: stage, facts)
            if let metrics {
                for limit in read where limit.isOver(ruleFacts, at: stage) { metrics.limitOver(limit.name) }
            }
        }
        let outcome = rules.evaluate(stage, ruleFacts)
        var decision = PolicyDecision()
        var verdicts = outcome.verdicts
        if let terminal = outcome.terminal { decision.action = Self.action(for: terminal) }
        for effect in outcome.effects {
            switch effect {
            case .setMailFrom(let address):
                if let path = Self.path(address) { decision.rewriteMailFrom = path } else { unenforce(&verdicts, "set_mail_from", address) }
            case .setRcpt(let address):
                if let path = Self.path(address) { decision.rewriteRecipient = path } else { unenforce(&verdicts, "set_rcpt", address) }
            case .bcc(let address):
                if let path = Self.path(address) { decision.addRecipients.append(path) } else { unenforce(&verdicts, "bcc", address) }
            case .redirect(let address):
                if let path = Self.path(address) { decision.redirect = path } else { unenforce(&verdicts, "redirect", address) }
            case .addHeader(let name, let value):
                decision.headerEdits.append(.add(name: name, value: value))
            case .setHeader(let name, let value):
                decision.headerEdits.append(.set(name: name, value: value))
            case .removeHeader(let name):
                decision.headerEdits.append(.remove(name: name))
            case .prefixSubject(let prefix):
                decision.headerEdits.append(.prefixSubject(prefix))
            case .tag, .log:
                // Bookkeeping: the verdict in the transcript (and the log) is the whole effect.
                break
            }
        }
        decision.verdicts = verdicts.map(SessionRecord.RuleVerdict.init)
        return decision
    }

    /// What the session let through that the counters do not hold yet, for the limits read.
    /// - RCPTs of this transaction not accepted yet: with PIPELINING they may all still await the
    ///   upstream's reply (or were refused by it: then they hold the budget until the transaction
    ///   ends, an error on the safe side).
    /// - The previous message, while its end awaits the upstream's reply, under the key it will be
    ///   counted under (its own sender's, for a limit per `mail_from`).
    static func addInFlight(to ruleFacts: inout RuleFacts, for limits: [RuleLimit], at stage: RuleStage, _ facts: PolicyFacts) {
        for limit in limits {
            switch limit.unit {
            case .recipients:
                if stage == .rcpt { ruleFacts.limitsInFlight[limit.name] = max(facts.recipientCount - facts.recipients.count, 0) }
            case .messages, .bytes:
                guard let previous = facts.messageAwaitingReply else { continue }
                // The facts that message will be counted with, read as every stage reads them.
                let counted = RuleFacts(facts.probing(mailFrom: previous.mailFrom, parameters: previous.parameters), at: .data)
                guard let key = limit.key(in: counted), key == limit.key(in: ruleFacts) else { continue }
                ruleFacts.limitsInFlight[limit.name] = limit.unit == .messages ? 1 : previous.octets
            case .sessions:
                break
            }
        }
    }

    /// Counts what happened in every limit that counts it, under the keys of `facts`.
    public func observe(_ event: PolicyObservation, facts: PolicyFacts) {
        guard !rules.limits.isEmpty else { return }
        var facts = facts
        var stage = RuleStage.connect
        var counted = LimitEvent.sessionOpened
        switch event {
        case .sessionAccepted:
            break
        case .recipientAccepted(let path):
            facts = facts.probing(recipient: path)
            stage = .rcpt
            counted = .recipientAccepted
        case .messageAccepted(let octets):
            stage = .data
            counted = .messageAccepted(octets: octets)
        }
        let additions = limits.record(counted, facts: RuleFacts(facts, at: stage), limits: rules.limits, at: clock.now())
        if let metrics {
            for addition in additions { metrics.limitCounted(addition.limit, amount: addition.amount) }
        }
    }

    private static func action(for terminal: RuleTerminal) -> PolicyDecision.Action {
        switch terminal {
        case .accept:
            .continue
        case .reject(let code, let enhanced, let text):
            .reject(PolicyReply(code: code, enhanced: enhanced, text: text))
        case .tempfail(let code, let enhanced, let text):
            .tempfail(PolicyReply(code: code, enhanced: enhanced, text: text))
        case .disconnect(let code, let enhanced, let text):
            code.map { .disconnect(PolicyReply(code: $0, enhanced: enhanced, text: text ?? "Service not available, closing transmission channel")) } ?? .disconnect(nil)
        case .discard:
            .discard
        case .quarantine(let reason):
            .quarantine(reason: reason)
        }
    }

    /// The address as an RFC 5321 path, checked by the same parser that reads the client's
    /// commands; nil when it would not read back as one.
    static func path(_ address: String) -> SMTPPath? {
        var text = Substring(address)
        if text.hasPrefix("<") && text.hasSuffix(">") && text.count >= 2 { text = text.dropFirst().dropLast() }
        guard case .success(.rcpt(let path, let parameters)) = CommandParser.parse("RCPT TO:<\(text)>"),
            parameters.isEmpty, path.isSyntacticallyValid, !path.address.isEmpty
        else { return nil }
        return path
    }

    private func unenforce(_ verdicts: inout [RuleVerdict], _ action: String, _ address: String) {
        guard let index = verdicts.lastIndex(where: { $0.action == action && $0.enforced }) else { return }
        verdicts[index].enforced = false
        verdicts[index].detail = "not an address: \(address)"
    }
}

extension SessionRecord.RuleVerdict {
    init(_ verdict: RuleVerdict) {
        self.init(
            rule: verdict.rule,
            file: verdict.file,
            line: verdict.line,
            stage: verdict.stage.rawValue,
            action: verdict.action,
            enforced: verdict.enforced,
            mode: verdict.enforced ? .enforce : .monitor,
            detail: verdict.detail
        )
    }
}
