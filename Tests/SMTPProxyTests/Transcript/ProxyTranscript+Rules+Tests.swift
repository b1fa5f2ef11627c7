import NIOCore
import SMTPCore
@testable import SMTPProxy
import SMTPTranscript
import Testing

/// The record places the rules' verdicts, settlements and rewrites by the command they were about,
/// through the same recorder as a capture: a transaction is the one that command belongs to, not the
/// one the last MAIL opened.
@Suite struct ProxyTranscriptRulesTests {
    typealias H = RelayHarness

    /// Tags every recipient at `rcpt`, naming it in the verdict.
    struct TagRecipients: SessionPolicy {
        var evaluatesMessages: Bool { false }
        func decide(at stage: PolicyStage, facts: PolicyFacts) -> PolicyDecision {
            guard stage == .rcpt, let recipient = facts.recipient else { return .continue }
            let verdict = SessionRecord.RuleVerdict(rule: "seen", file: "t.rules", line: 1, stage: "rcpt", action: "tag", enforced: true, mode: .enforce, detail: recipient.address)
            return PolicyDecision(verdicts: [verdict])
        }
    }

    @Test func aVerdictAfterARefusedNestedMAILGoesWithTheTransactionStillOpen() {
        var h = H.greeted(policy: TagRecipients(), upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nMAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.org>\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<d@example.org>\r\n")
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n")
        #expect(h.takeClient() == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n503 5.5.1 Error: nested MAIL command\r\n250 2.1.5 Ok\r\n")
        let record = ProxyTranscriptTruncationTests.record(of: h)
        try? #require(record.transactions.count == 2)
        #expect(record.transactions[0].rcptTo.map(\.address) == ["b@example.org", "d@example.org"])
        #expect(record.transactions[0].rules.map(\.detail) == ["b@example.org", "d@example.org"])
        #expect(record.transactions[1].mailFrom?.reply?.code == 503)
        #expect(record.transactions[1].rules.isEmpty)
    }

    /// One cap on the events, and one anomaly when it is reached, although the proxy writes its
    /// four legs itself.
    @Test func theEventCapIsTheRecordersAndIsReportedOnce() {
        var h = H.greeted(upstreamEHLO: H.plainEHLO)
        // The proxy answers NOOP itself: two events each, beside the upstream's greeting and EHLO.
        for _ in 0..<5100 { h.client("NOOP\r\n") }
        let record = ProxyTranscriptTruncationTests.record(of: h)
        #expect(record.events.count == 10_000)
        #expect(record.anomalies.filter { $0.kind == "events_truncated" }.count == 1)
        let legs = Set(record.events.map { "\($0.from.rawValue)>\($0.to.rawValue)" })
        #expect(legs == ["server>proxy", "proxy>server", "client>proxy", "proxy>client"])
    }
}
