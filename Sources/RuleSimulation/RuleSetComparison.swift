import SMTPTranscript

/// How two rule sets differ over the same sessions (`rules test NEW --against FILE --diff OLD`):
/// the sessions whose verdicts change, so a policy change can be tried on last week's traffic
/// before it is deployed.
public struct RuleSetComparison: Sendable {
    /// One session whose verdicts differ.
    public struct Change: Sendable {
        public var sessionID: String
        public var client: SessionRecord.Endpoint?
        /// What the old rules decided, and what the new ones decide (empty: nothing ended a stage).
        public var before: [SimulatedDecision]
        public var after: [SimulatedDecision]
        /// Verdicts only the old rules gave, and only the new ones give.
        public var removed: [SessionRecord.RuleVerdict]
        public var added: [SessionRecord.RuleVerdict]
    }

    public private(set) var sessions = 0
    public private(set) var changes: [Change] = []

    public init() {}

    /// Compares the two replays of one session; they must be of the same record.
    public mutating func compare(old: SimulatedSession, new: SimulatedSession) {
        precondition(old.record.sessionID == new.record.sessionID, "both replays are of one session")
        sessions += 1
        let before = old.verdicts.map(Key.init)
        let after = new.verdicts.map(Key.init)
        guard before != after || old.decisions.map(DecisionKey.init) != new.decisions.map(DecisionKey.init) else { return }
        changes.append(
            Change(
                sessionID: new.record.sessionID,
                client: new.record.client,
                before: old.decisions,
                after: new.decisions,
                removed: Self.difference(old.verdicts, minus: after),
                added: Self.difference(new.verdicts, minus: before)
            )
        )
    }

    /// A verdict without what may move between rule sets without changing behaviour: the file and
    /// line a rule lives at.
    private struct Key: Hashable {
        var rule: String
        var stage: String
        var action: String
        var mode: SessionRecord.RuleVerdict.Mode?
        var detail: String?

        init(_ verdict: SessionRecord.RuleVerdict) {
            rule = verdict.rule
            stage = verdict.stage
            action = verdict.action
            mode = verdict.mode
            detail = verdict.detail
        }
    }

    /// A decision without the file its rule lives in.
    private struct DecisionKey: Hashable {
        var stage: String
        var transaction: Int?
        var rule: String?
        var action: String
        var detail: String?

        init(_ decision: SimulatedDecision) {
            stage = decision.stage.rawValue
            transaction = decision.transaction
            rule = decision.rule
            action = decision.action
            detail = decision.detail
        }
    }

    private static func difference(_ verdicts: [SessionRecord.RuleVerdict], minus other: [Key]) -> [SessionRecord.RuleVerdict] {
        var remaining = other
        return verdicts.filter { verdict in
            if let index = remaining.firstIndex(of: Key(verdict)) {
                remaining.remove(at: index)
                return false
            }
            return true
        }
    }
}
