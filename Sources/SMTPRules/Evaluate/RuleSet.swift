/// A checked, compiled rule set: immutable, `Sendable`, and safe to evaluate from many
/// threads at once (compiled regexes are shared; each match allocates its own match data).
public struct RuleSet: Sendable {
    /// Rules per stage, in load order.
    let rulesByStage: [RuleStage: [CompiledRule]]
    /// Whether a condition or an action's text reads `body`.
    public let readsMessageBody: Bool
    /// The `limit` declarations, in file order.
    public let limits: [RuleLimit]
    /// The limits the rules of each stage read.
    let limitsByStage: [RuleStage: [RuleLimit]]

    init(rules: [CompiledRule], limits: [RuleLimit] = []) {
        var byStage: [RuleStage: [CompiledRule]] = [:]
        var limitsByStage: [RuleStage: [RuleLimit]] = [:]
        for var rule in rules {
            rule.limits = limits.filter { limit in rule.reads { $0.readsLimit(named: limit.name) } }
            for limit in rule.limits where !(limitsByStage[rule.stage] ?? []).contains(limit) {
                limitsByStage[rule.stage, default: []].append(limit)
            }
            byStage[rule.stage, default: []].append(rule)
        }
        rulesByStage = byStage
        self.limitsByStage = limitsByStage
        self.limits = limits
        readsMessageBody = rules.contains { $0.reads { $0 == .body } }
    }

    public static let empty = RuleSet(rules: [])

    /// The limits the rules of `stage` read: the counts the caller puts in `RuleFacts.limitCounts`
    /// before evaluating the stage.
    public func limits(readAt stage: RuleStage) -> [RuleLimit] {
        limitsByStage[stage] ?? []
    }

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
            let readings = rule.limits.compactMap { $0.reading(facts, at: stage) }
            let limitNotes = readings.isEmpty ? nil : readings.map(\.description).joined(separator: "; ")
            for action in rule.actions {
                switch action.render(facts, captures: captures) {
                case .terminal(let terminal):
                    var verdict = RuleVerdict(rule: rule.name, file: rule.file, line: rule.line, stage: stage,
                                              action: terminal.actionName, enforced: rule.enforced, detail: Self.join(terminal.verdictDetail, limitNotes))
                    verdict.limits = readings
                    outcome.verdicts.append(verdict)
                    if rule.enforced, outcome.terminal == nil {
                        outcome.terminal = terminal
                        outcome.terminalVerdict = verdict
                    }
                case .effect(let effect):
                    var verdict = RuleVerdict(rule: rule.name, file: rule.file, line: rule.line, stage: stage,
                                              action: effect.actionName, enforced: rule.enforced, detail: Self.join(effect.verdictDetail, limitNotes))
                    verdict.limits = readings
                    outcome.verdicts.append(verdict)
                    if rule.enforced { outcome.effects.append(effect) }
                }
            }
            if outcome.terminal != nil { break }
        }
        return outcome
    }

    private static func join(_ detail: String?, _ notes: String?) -> String? {
        guard let notes else { return detail }
        guard let detail, !detail.isEmpty else { return notes }
        return "\(detail); \(notes)"
    }
}

extension FieldAccessor {
    func readsLimit(named name: String) -> Bool {
        switch self {
        case .overLimit(let probe): probe.limit.name == name
        case .limitCount(let limit): limit == name
        default: false
        }
    }
}
