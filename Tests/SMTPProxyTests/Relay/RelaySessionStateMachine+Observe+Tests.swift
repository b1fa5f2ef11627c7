import NIOConcurrencyHelpers
import SMTPCore
import SMTPProxy
import SMTPRules
import SMTPTranscript
import SenderLimits
import Testing

/// What the relay reports to `SessionPolicy.observe`: a session let in, and each recipient and
/// message the upstream accepted; never a refused or tempfailed one.
struct RelayObserveTests {
    final class Recorder: SessionPolicy, Sendable {
        let seen = NIOLockedValueBox<[String]>([])
        let refuseSender: String?

        init(refuseSender: String? = nil) {
            self.refuseSender = refuseSender
        }

        var evaluatesMessages: Bool { false }

        func decide(at stage: PolicyStage, facts: PolicyFacts) -> PolicyDecision {
            if stage == .mail, let refuseSender, facts.mailFrom?.address == refuseSender {
                return PolicyDecision(action: .tempfail(PolicyReply(code: 451, enhanced: nil, text: "later")))
            }
            return .continue
        }

        func observe(_ event: PolicyObservation, facts: PolicyFacts) {
            let text: String
            switch event {
            case .sessionAccepted: text = "session"
            case .recipientAccepted(let path): text = "rcpt \(path.address) from \(facts.mailFrom?.address ?? "?")"
            case .messageAccepted(let octets): text = "message \(octets) from \(facts.mailFrom?.address ?? "?") to \(facts.recipients.map(\.address))"
            }
            seen.withLockedValue { $0.append(text) }
        }
    }

    @Test func acceptedThingsAreObservedOnceAndRefusedOnesNever() {
        let recorder = Recorder(refuseSender: "no@example.com")
        var h = RelayHarness.greeted(policy: recorder, upstreamEHLO: RelayHarness.plainEHLO)
        h.client("MAIL FROM:<no@example.com>\r\n")
        #expect(h.takeClient().hasPrefix("451"))
        h.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n")
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n")
        h.client("DATA\r\n")
        h.upstream("354 go ahead\r\n")
        // The end of data, then a pipelined MAIL before the upstream answers it: the message is
        // still reported with its own envelope.
        h.client("Subject: x\r\n\r\nhello\r\n.\r\nMAIL FROM:<next@example.com>\r\n")
        h.upstream("250 2.0.0 Ok: queued\r\n250 2.1.0 Ok\r\n")
        h.client("RCPT TO:<d@example.org>\r\nDATA\r\n")
        h.upstream("250 2.1.5 Ok\r\n354 go ahead\r\n")
        h.client("x\r\n.\r\n")
        h.upstream("452 4.3.1 insufficient storage\r\n")
        #expect(recorder.seen.withLockedValue { $0 } == [
            "session",
            "rcpt b@example.org from a@example.com",
            "message 21 from a@example.com to [\"b@example.org\"]",
            "rcpt d@example.org from next@example.com",
        ])
    }

    /// Through `RulesPolicy`: a session the `connect` rules let in counts, a refused one does not.
    @Test(arguments: [("192.0.2.1", 1), ("203.0.113.9", 0)])
    func sessionsCountOnlyWhenLetIn(_ client: String, _ counted: Int) throws {
        let result = RuleSet.compile([RuleSource(path: "t.rules", text: """
            limit "ip-sessions" counts sessions per client.ip over 1h max 10
            rule "no" on connect when client.ip == 203.0.113.9 or over_limit("ip-sessions") reject 554 5.7.1 "go away"
            """)]) { _ in "" }
        let rules = try #require(result.ruleSet, "\(result.diagnostics)")
        let store = MemoryLimitStore()
        let policy = RulesPolicy(rules: rules, limits: LimitLedger(store: store))
        var machine = RelaySessionStateMachine(configuration: RelayConfiguration(), policy: policy,
                                               facts: PolicyFacts(client: .init(ip: client, port: 40000)))
        _ = machine.start()
        let counter = try #require(rules.limits.first).counter(forKey: client)
        #expect(store.count(counter, at: SystemLimitClock().now()) == counted)
    }
}

/// Pipelined RCPTs are decided before the upstream answers any: those not yet accepted count as
/// if they were, so a batch cannot pass a recipients budget.
struct RulesPolicyInFlightTests {
    @Test(arguments: [(2, 0, true), (3, 0, false), (3, 3, false), (1, 1, true)])
    func pipelinedRecipientsHoldTheBudget(_ given: Int, _ accepted: Int, _ passes: Bool) throws {
        let result = RuleSet.compile([RuleSource(path: "t.rules", text: """
            limit "rcpts" counts recipients per mail_from over 1h max 3
            rule "cap" on rcpt when over_limit("rcpts") tempfail 452 4.5.3 "too many recipients"
            """)]) { _ in "" }
        let rules = try #require(result.ruleSet, "\(result.diagnostics)")
        let store = MemoryLimitStore()
        let ledger = LimitLedger(store: store)
        let policy = RulesPolicy(rules: rules, limits: ledger)
        var facts = PolicyFacts(client: .init(ip: "192.0.2.1", port: 40000))
        facts.greeted(as: "client.test")
        facts.beganTransaction(mailFrom: SMTPPath(address: "a@example.com"), parameters: [])
        // What the store already counted: the recipients the upstream accepted.
        for index in 0..<given {
            facts.gaveRecipient()
            guard index < accepted else { continue }
            let path = SMTPPath(address: "r\(index)@example.org")
            facts.acceptedRecipient(path)
            policy.observe(.recipientAccepted(path), facts: facts)
        }
        facts = facts.probing(recipient: SMTPPath(address: "next@example.org"))
        let decision = policy.decide(at: .rcpt, facts: facts)
        if passes {
            #expect(decision.action == .continue)
        } else {
            #expect(decision.action == .tempfail(PolicyReply(code: 452, enhanced: EnhancedStatusCode("4.5.3"), text: "too many recipients")))
        }
    }
}

/// A message whose end the upstream has not answered yet counts in a messages budget read at
/// `mail`, under its own sender: a client that pipelines the next MAIL after the end of data
/// (Exim does) cannot get one message past the budget.
struct RulesPolicyMessageInFlightTests {
    static func policy() throws -> RulesPolicy {
        let result = RuleSet.compile([RuleSource(path: "t.rules", text: """
            limit "per-sender" counts messages per mail_from over 1h max 1
            rule "budget" on mail when over_limit("per-sender") tempfail 451 4.7.1 "too much mail"
            """)]) { _ in "" }
        let rules = try #require(result.ruleSet, "\(result.diagnostics)")
        return RulesPolicy(rules: rules, limits: LimitLedger(store: MemoryLimitStore()))
    }

    static func sendOne(_ h: inout RelayHarness, from sender: String, pipelining next: String) {
        h.client("MAIL FROM:<\(sender)>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        // DATA goes upstream once a recipient is accepted.
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        h.upstream("354 go ahead\r\n")
        #expect(h.takeClient() == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
        // The end of data and the next MAIL in one write, before the upstream answers the end.
        h.client("Subject: x\r\n\r\nhello\r\n.\r\n" + next)
    }

    @Test func theSameSenderIsHeldWhileItsLastMessageAwaitsTheUpstream() throws {
        var h = RelayHarness.greeted(policy: try Self.policy(), upstreamEHLO: RelayHarness.plainEHLO)
        Self.sendOne(&h, from: "a@example.com", pipelining: "MAIL FROM:<a@example.com>\r\n")
        h.upstream("250 2.0.0 Ok: queued\r\n")
        #expect(h.takeClient() == "250 2.0.0 Ok: queued\r\n451 4.7.1 too much mail\r\n")
    }

    @Test func anotherSenderIsNotHeldByIt() throws {
        var h = RelayHarness.greeted(policy: try Self.policy(), upstreamEHLO: RelayHarness.plainEHLO)
        Self.sendOne(&h, from: "a@example.com", pipelining: "MAIL FROM:<other@example.com>\r\n")
        h.upstream("250 2.0.0 Ok: queued\r\n250 2.1.0 Ok\r\n")
        #expect(h.takeClient() == "250 2.0.0 Ok: queued\r\n250 2.1.0 Ok\r\n")
    }

    /// A message refused at its end never counts, in flight or after.
    @Test func aRefusedMessageDoesNotHoldTheSender() throws {
        var h = RelayHarness.greeted(policy: try Self.policy(), upstreamEHLO: RelayHarness.plainEHLO)
        Self.sendOne(&h, from: "a@example.com", pipelining: "")
        h.upstream("554 5.7.1 no thanks\r\n")
        _ = h.takeClient()
        h.client("MAIL FROM:<a@example.com>\r\n")
        h.upstream("250 2.1.0 Ok\r\n")
        #expect(h.takeClient() == "250 2.1.0 Ok\r\n")
    }
}
