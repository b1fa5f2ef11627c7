import SMTPRules
import SenderLimits
import Testing
@testable import PostfixPolicy

/// Decisions on requests: attributes to facts, verdicts to actions, limits counted once per thing
/// let through, on a clock the test sets.
struct PostfixPolicyServiceTests {
    final class TestClock: LimitClock, @unchecked Sendable {
        var current = LimitInstant(seconds: 1_700_000_000)
        func now() -> LimitInstant { current }
    }

    static func service(_ text: String, clock: TestClock = TestClock()) throws -> PostfixPolicyService {
        let result = RuleSet.compile([RuleSource(path: "t.rules", text: text)]) { _ in "" }
        let rules = try #require(result.ruleSet, "\(result.diagnostics)")
        return PostfixPolicyService(rules: rules, limits: LimitLedger(store: MemoryLimitStore()), clock: clock)
    }

    static func request(_ state: String, _ extra: [String: String] = [:]) -> PolicyRequest {
        var attributes = [
            "request": "smtpd_access_policy", "protocol_state": state, "client_address": "192.0.2.7", "helo_name": "client.example.org",
            "sender": "alice@example.org", "sasl_username": "alice", "instance": "1.1.1", "queue_id": "ABC123",
        ]
        attributes.merge(extra) { $1 }
        return PolicyRequest(attributes)
    }

    @Test func aRefusedSenderGetsTheRulesReply() throws {
        let service = try Self.service("""
            rule "no-evil" on mail when mail_from.domain == "evil.test" reject 550 5.7.1 "Sender ${mail_from} refused"
            """)
        var connection = PostfixPolicyService.Connection()
        let refused = service.answer(Self.request("MAIL", ["sender": "x@evil.test"]), connection: &connection)
        #expect(refused.response == "action=550 5.7.1 Sender x@evil.test refused\n\n")
        #expect(refused.rule == "no-evil")
        let passed = service.answer(Self.request("MAIL"), connection: &connection)
        #expect(passed.response == "action=DUNNO\n\n")
    }

    @Test func aBudgetOfNLetsExactlyNMessagesThroughAcrossInstances() throws {
        let service = try Self.service("""
            limit "user-hourly" counts messages per auth.user over 1h max 3
            rule "throttle" on message when over_limit("user-hourly") tempfail 451 4.7.1 "${auth.user} sent ${limit_count(user-hourly)} messages"
            """)
        var connection = PostfixPolicyService.Connection()
        var actions: [String] = []
        for i in 0..<5 {
            let request = Self.request("END-OF-MESSAGE", ["instance": "i\(i)", "size": "100", "recipient_count": "1"])
            actions.append(service.answer(request, connection: &connection).action)
            // Postfix may ask twice about one message: counted once.
            _ = service.answer(request, connection: &connection)
        }
        #expect(actions == ["DUNNO", "DUNNO", "DUNNO", "451 4.7.1 alice sent 3 messages", "451 4.7.1 alice sent 3 messages"])
    }

    @Test func recipientsCountOncePerInstanceAndTheWindowSlides() throws {
        let clock = TestClock()
        let service = try Self.service("""
            limit "rcpts" counts recipients per mail_from over 10m max 2
            rule "cap" on rcpt when over_limit("rcpts") tempfail 452 4.5.3 "too many recipients"
            """, clock: clock)
        var connection = PostfixPolicyService.Connection()
        func rcpt(_ address: String) -> String {
            service.answer(Self.request("RCPT", ["recipient": address]), connection: &connection).action
        }
        #expect(rcpt("a@example.com") == "DUNNO")
        #expect(rcpt("a@example.com") == "DUNNO")
        #expect(rcpt("b@example.com") == "DUNNO")
        #expect(rcpt("c@example.com") == "452 4.5.3 too many recipients")
        clock.current = clock.current.adding(seconds: 11 * 60)
        #expect(rcpt("c@example.com") == "DUNNO")
    }

    @Test func actionsForEveryTerminal() {
        #expect(PostfixPolicyService.action(for: .discard) == "DISCARD")
        #expect(PostfixPolicyService.action(for: .quarantine(reason: "look\r\nat it")) == "HOLD look  at it")
        #expect(PostfixPolicyService.action(for: .disconnect(code: nil, enhanced: nil, text: nil)) == "421 4.7.0 Service not available, closing transmission channel")
        #expect(PostfixPolicyService.action(for: .accept) == "DUNNO")
    }

    @Test func headerRulesAreNotJudgedAtEndOfMessageAndRewritesAreNotEnforced() throws {
        let service = try Self.service("""
            rule "subject" on message when subject contains "x" reject 550 "no"
            rule "rewrite" on mail set mail_from "other@example.org"
            """)
        var connection = PostfixPolicyService.Connection()
        let end = service.answer(Self.request("END-OF-MESSAGE", ["size": "10"]), connection: &connection)
        #expect(end.action == "DUNNO")
        #expect(end.unjudged == ["subject"])
        let mail = service.answer(Self.request("MAIL"), connection: &connection)
        #expect(mail.action == "DUNNO")
        #expect(mail.verdicts.map(\.enforced) == [false])
    }

    @Test func theRecordIsOneJSONLine() throws {
        let service = try Self.service("""
            rule "no-evil" on mail when mail_from.domain == "evil.test" reject 550 5.7.1 "no \\"quotes\\""
            """)
        var connection = PostfixPolicyService.Connection()
        let record = service.answer(Self.request("MAIL", ["sender": "x@evil.test"]), connection: &connection)
        let line = String(decoding: record.jsonLine(), as: UTF8.self)
        #expect(line.hasPrefix("{\"schema\":\"smtpscope.policy/1\",\"time\":\"2023-11-14T22:13:20.000000Z\",\"queue_id\":\"ABC123\""))
        #expect(line.contains("\"stage\":\"mail\",\"action\":\"550 5.7.1 no \\\"quotes\\\"\",\"rule\":\"no-evil\""))
        #expect(line.hasSuffix("}\n"))
        #expect(line.filter { $0 == "\n" }.count == 1)
    }

    @Test func otherStatesAndRequestsGetDUNNO() throws {
        let service = try Self.service("rule \"a\" on mail reject 550 \"no\"")
        var connection = PostfixPolicyService.Connection()
        #expect(service.answer(Self.request("VRFY"), connection: &connection).action == "DUNNO")
        #expect(service.answer(PolicyRequest(["request": "junk", "protocol_state": "MAIL"]), connection: &connection).action == "DUNNO")
    }
}
