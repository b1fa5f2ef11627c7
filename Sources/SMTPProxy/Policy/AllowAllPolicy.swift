/// The policy with no rules: every stage continues, content streams through.
public struct AllowAllPolicy: SessionPolicy {
    public init() {}

    public var evaluatesMessages: Bool { false }

    public func decide(at stage: PolicyStage, facts: PolicyFacts) -> PolicyDecision {
        .continue
    }
}
