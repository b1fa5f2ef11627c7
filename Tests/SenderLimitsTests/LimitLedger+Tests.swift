import SMTPRules
import Testing
@testable import SenderLimits

/// The ledger between rules and store: counts go into the facts, events into the counters of the
/// limits that count them, under the facts' key.
struct LimitLedgerTests {
    static func rules() throws -> RuleSet {
        let result = RuleSet.compile([RuleSource(path: "t.rules", text: """
            limit "user-hourly" counts messages   per auth.user over 1h max 2
            limit "user-rcpts"  counts recipients per auth.user over 1h max 5
            limit "ip-bytes"    counts bytes      per client.ip over 1h max 1MB
            rule "throttle" on mail when over_limit("user-hourly") or over_limit("user-rcpts") or over_limit("ip-bytes")
              tempfail 451 4.7.1 "later"
            """)]) { _ in "" }
        return try #require(result.ruleSet, "\(result.diagnostics)")
    }

    @Test func eventsCountUnderTheFactsKeyAndStopTheBudget() throws {
        let rules = try Self.rules()
        let ledger = LimitLedger(store: MemoryLimitStore())
        let now = LimitInstant(seconds: 1_700_000_000)
        var facts = RuleFacts(clientIP: "192.0.2.1", helo: "x", authUser: "alice", mailFrom: "alice@example.com")
        var delivered = 0
        for _ in 0..<5 {
            var probe = facts
            ledger.fillCounts(&probe, for: rules.limits(readAt: .mail), at: now)
            guard rules.evaluate(.mail, probe).terminal == nil else { continue }
            ledger.record(.recipientAccepted, facts: facts, limits: rules.limits, at: now)
            let added = ledger.record(.messageAccepted(octets: 100), facts: facts, limits: rules.limits, at: now)
            #expect(Set(added.map(\.limit)) == ["user-hourly", "ip-bytes"])
            delivered += 1
        }
        #expect(delivered == 2)
        facts.authUser = "bob"
        var probe = facts
        ledger.fillCounts(&probe, for: rules.limits(readAt: .mail), at: now)
        #expect(probe.limitCounts == ["user-hourly": 0, "user-rcpts": 0, "ip-bytes": 200])
        // A session without the key has no count, and is not counted.
        facts.authUser = nil
        probe = facts
        ledger.fillCounts(&probe, for: rules.limits(readAt: .mail), at: now)
        #expect(probe.limitCounts["user-hourly"] == nil)
        #expect(ledger.record(.messageAccepted(octets: 1), facts: facts, limits: rules.limits, at: now).map(\.limit) == ["ip-bytes"])
    }
}
