/// A checked, compiled rule set: immutable, `Sendable`, and safe to evaluate from many
/// threads at once (compiled regexes are shared; each match allocates its own match data).
public struct RuleSet: Sendable {
    /// Rules per stage, in load order.
    let rulesByStage: [RuleStage: [CompiledRule]]
    /// Whether a condition or an action's text reads `body`.
    public let readsMessageBody: Bool

    init(rules: [CompiledRule]) {
        var byStage: [RuleStage: [CompiledRule]] = [:]
        for rule in rules { byStage[rule.stage, default: []].append(rule) }
        rulesByStage = byStage
        readsMessageBody = rules.contains { $0.reads { $0 == .body } }
    }

    public static let empty = RuleSet(rules: [])

    public var ruleCount: Int { rulesByStage.values.reduce(0) { $0 + $1.count } }

    /// Stages with at least one rule.
    public var stages: Set<RuleStage> { Set(rulesByStage.keys) }

    /// Any rule on `message`: the proxy must spool each message whole to evaluate them.
    public var evaluatesMessages: Bool { rulesByStage[.message]?.isEmpty == false }

    /// Evaluates the rules of `stage` in load order. A matching rule applies all its actions; the first
    /// enforced terminal action ends the stage. `mode monitor` rules only add verdicts.
    public func evaluate(_ stage: RuleStage, _ facts: RuleFacts) -> RuleOutcome {
        var outcome = RuleOutcome()
        guard let rules = rulesByStage[stage] else { return outcome }
        var captures: [String?] = []
        for rule in rules {
            captures.removeAll(keepingCapacity: true)
            if let message = facts.message, message.lacksSomething, rule.reads(where: { !message.knows($0) }) {
                outcome.unjudged.append(UnjudgedRule(rule: rule.name, file: rule.file, line: rule.line, stage: stage))
                continue
            }
            if let condition = rule.condition, !condition.evaluate(facts, captures: &captures) { continue }
            for action in rule.actions {
                switch action.render(facts, captures: captures) {
                case .terminal(let terminal):
                    let verdict = RuleVerdict(rule: rule.name, file: rule.file, line: rule.line, stage: stage,
                                              action: terminal.actionName, enforced: rule.enforced, detail: terminal.verdictDetail)
                    outcome.verdicts.append(verdict)
                    if rule.enforced, outcome.terminal == nil {
                        outcome.terminal = terminal
                        outcome.terminalVerdict = verdict
                    }
                case .effect(let effect):
                    outcome.verdicts.append(RuleVerdict(rule: rule.name, file: rule.file, line: rule.line, stage: stage,
                                                        action: effect.actionName, enforced: rule.enforced, detail: effect.verdictDetail))
                    if rule.enforced { outcome.effects.append(effect) }
                }
            }
            if outcome.terminal != nil { break }
        }
        return outcome
    }
}
