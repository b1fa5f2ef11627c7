import SMTPCore
import SMTPRules
import SMTPTranscript
import SenderLimits
import Testing

@testable import RuleSimulation

/// Limits replayed over records in time order, on the records' own times.
@Suite struct RuleSimulatorLimitsTests {
    static let rules = """
        limit "sender-hourly" counts messages per mail_from over 1h max 2
        rule "throttle" on mail when over_limit("sender-hourly") tempfail 451 4.7.1 "slow down"
        """

    /// A session started `minutes` after the first, with one message from `from`.
    static func session(_ id: String, at minutes: Int64, from: String) -> SessionRecord {
        var record = RuleSimulatorTests.record(id: id, [(from, ["b@example.com"])])
        record.start = Timestamp(microsecondsSinceEpoch: 1_700_000_000_000_000 + minutes * 60_000_000)
        return record
    }

    @Test func aBudgetStopsTheThirdMessageOfTheHourAndTheWindowSlides() throws {
        let simulator = RuleSimulator(rules: try RuleSimulatorTests.rules(Self.rules), limits: LimitLedger(store: MemoryLimitStore()))
        let sessions = [
            Self.session("S1", at: 0, from: "alice@example.org"),
            Self.session("S2", at: 10, from: "alice@example.org"),
            Self.session("S3", at: 20, from: "bob@example.org"),
            Self.session("S4", at: 30, from: "Alice@Example.org"),
            Self.session("S5", at: 40, from: "alice@example.org"),
            Self.session("S6", at: 62, from: "alice@example.org"),
        ]
        let results = sessions.map { simulator.simulate($0) }
        #expect(results.map { $0.decisions.first?.action } == [nil, nil, nil, "tempfail", "tempfail", nil])
        let stops = results.flatMap(\.limitStops)
        #expect(stops.map(\.reading.key) == ["alice@example.org", "alice@example.org"])
        #expect(stops.map(\.time) == [sessions[3].start, sessions[4].start])
        #expect(stops.first?.reading.description == "mail_from alice@example.org reached sender-hourly: 2 messages in 1h")
    }

    @Test func whatTheServerRefusedDoesNotCount() throws {
        let simulator = RuleSimulator(rules: try RuleSimulatorTests.rules(Self.rules), limits: LimitLedger(store: MemoryLimitStore()))
        var refused = Self.session("S1", at: 0, from: "alice@example.org")
        refused.transactions[0].data?.reply = SessionRecord.Reply(code: 554, enhanced: "5.7.1", text: "spam")
        _ = simulator.simulate(refused)
        _ = simulator.simulate(Self.session("S2", at: 1, from: "alice@example.org"))
        _ = simulator.simulate(Self.session("S3", at: 2, from: "alice@example.org"))
        #expect(simulator.simulate(Self.session("S4", at: 3, from: "alice@example.org")).decisions.map(\.action) == ["tempfail"])
    }

    @Test func aMonitorRuleStopsNothingButListsTheSender() throws {
        let simulator = RuleSimulator(rules: try RuleSimulatorTests.rules("""
            limit "sender-hourly" counts messages per mail_from over 1h max 1
            rule "throttle" on mail when over_limit("sender-hourly")
              mode monitor
              tempfail 451 4.7.1 "slow down"
            """), limits: LimitLedger(store: MemoryLimitStore()))
        let results = (0..<3).map { simulator.simulate(Self.session("S\($0)", at: Int64($0), from: "alice@example.org")) }
        #expect(results.allSatisfy { $0.decisions.isEmpty })
        // Nothing was stopped, so every message counted: 1, then 2 over a budget of 1.
        #expect(results.flatMap(\.limitStops).map(\.reading.count) == [1, 2])
        #expect(results.flatMap(\.limitStops).allSatisfy { !$0.enforced })
    }
}
