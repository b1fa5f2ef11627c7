import MailMessage
import SMTPCore
import SMTPRules
import SMTPTranscript
import Testing

@testable import RuleSimulation

/// Replays of recorded sessions through a rule set (`rules test`, `pcap --rules`).
@Suite struct RuleSimulatorTests {
    static func rules(_ text: String) throws -> RuleSet {
        let result = RuleSet.compile([RuleSource(path: "rules/10-test.rules", text: text)]) { _ in "" }
        return try #require(result.ruleSet, "\(result.diagnostics)")
    }

    /// One client session: EHLO, then one transaction per (from, recipients) pair, each delivered.
    static func record(id: String = "S1", client: String = "203.0.113.9", _ transactions: [(String, [String])], subject: String? = nil) -> SessionRecord {
        var record = SessionRecord(sessionID: id, source: .pcap, start: Timestamp(microsecondsSinceEpoch: 0))
        record.client = SessionRecord.Endpoint(ip: client, port: 40000)
        record.server = SessionRecord.Endpoint(ip: "198.51.100.5", port: 25)
        record.helo = SessionRecord.Helo(verb: "EHLO", name: "client.example")
        let ok = SessionRecord.Reply(code: 250, enhanced: "2.0.0", text: "Ok")
        record.transactions = transactions.map { from, recipients in
            var transaction = SessionRecord.Transaction(
                mailFrom: SessionRecord.MailFrom(address: from, reply: ok),
                rcptTo: recipients.map { SessionRecord.Recipient(address: $0, reply: ok) },
                outcome: .delivered
            )
            transaction.data = SessionRecord.DataTransfer(command: .data, size: 100, chunks: 1, reply: ok)
            transaction.message = SessionRecord.Message(subject: subject, from: [from], size: 100)
            return transaction
        }
        return record
    }

    @Test func aRejectAtMailEndsThatTransactionOnly() throws {
        let simulator = RuleSimulator(rules: try Self.rules("""
            rule "outsiders" on mail
              when mail_from.domain == "evil.test"
              reject 550 5.7.1 "no"
            rule "count" on rcpt
              tag "seen"
            """))
        let result = simulator.simulate(Self.record([("a@evil.test", ["b@example.com"]), ("c@good.test", ["d@example.com"])]))
        #expect(result.decisions.map(\.description) == ["reject at mail (transaction 1) by \"outsiders\": 550 5.7.1 no"])
        #expect(result.record.transactions[0].rules.map(\.action) == ["reject"])
        #expect(result.record.transactions[1].rules.map(\.action) == ["tag"])
        #expect(result.verdicts.allSatisfy { !$0.enforced })
        #expect(result.verdicts.first?.mode == .enforce)
    }

    @Test func heloRulesAreAskedAtEveryGreetingWithTLSAsItStoodThen() throws {
        // As the proxy asks them: at the EHLO before STARTTLS without TLS, at the one after with it.
        let simulator = RuleSimulator(rules: try Self.rules("""
            rule "greeting" on helo
              when tls
              tag "over TLS"
            rule "any greeting" on helo
              tag "greeted"
            """))
        var record = Self.record([])
        record.source = .proxy
        record.tls = SessionRecord.TLS(mode: .starttls, established: true, version: "TLSv1.3")
        func proxy(_ t: Int64, _ text: String) -> SessionRecord.Event { SessionRecord.Event(t: t, from: .proxy, to: .client, text: text) }
        func client(_ t: Int64, _ text: String) -> SessionRecord.Event { SessionRecord.Event(t: t, from: .client, to: .proxy, text: text) }
        record.events = [
            proxy(0, "220 proxy ESMTP"), client(1, "EHLO first.example"), proxy(2, "250-proxy"), proxy(2, "250 STARTTLS"),
            client(3, "STARTTLS"), proxy(4, "220 2.0.0 Ready to start TLS"),
            client(5, "EHLO second.example"), proxy(6, "250 proxy"), client(7, "QUIT"), proxy(8, "221 Bye"),
        ]
        let greetings = RuleSimulator.greetings(in: record)
        #expect(greetings.map(\.name) == ["first.example", "second.example"])
        #expect(greetings.map(\.tls) == [false, true])
        let result = simulator.simulate(record)
        #expect(result.record.rules.map(\.rule) == ["any greeting", "greeting", "any greeting"])
    }

    @Test func a220ThatDoesNotAnswerSTARTTLSStartsNoTLS() throws {
        // STARTTLS refused, then a pipelined group whose replies are read in order.
        var record = Self.record([])
        func server(_ t: Int64, _ text: String) -> SessionRecord.Event { SessionRecord.Event(t: t, from: .server, to: .client, text: text) }
        func client(_ t: Int64, _ text: String) -> SessionRecord.Event { SessionRecord.Event(t: t, from: .client, to: .server, text: text) }
        record.events = [
            server(0, "220 mx ESMTP"), client(1, "EHLO a.example"), server(2, "250 mx"),
            client(3, "STARTTLS"), server(4, "454 4.7.0 TLS not available"),
            client(5, "HELO b.example"), server(6, "250 mx"),
        ]
        #expect(RuleSimulator.greetings(in: record).map(\.tls) == [false, false])
    }

    @Test func monitorRulesSayMonitor() throws {
        let simulator = RuleSimulator(rules: try Self.rules("""
            rule "watch" on mail
              mode monitor
              reject 550 5.7.1 "no"
            """))
        let result = simulator.simulate(Self.record([("a@x.test", ["b@example.com"])]))
        #expect(result.decisions.isEmpty)
        #expect(result.verdicts.map(\.mode) == [.monitor])
    }

    @Test func rcptCountIsTheRecipientsBeforeThisOne() throws {
        let simulator = RuleSimulator(rules: try Self.rules("""
            rule "cap" on rcpt
              when rcpt_count >= 2
              tempfail 452 4.5.3 "Too many recipients"
            rule "after" on data
              when rcpt_count == 2
              tag "two accepted"
            """))
        let result = simulator.simulate(Self.record([("a@x.test", ["r1@example.com", "r2@example.com", "r3@example.com"])]))
        #expect(result.decisions.count == 1)
        #expect(result.record.transactions[0].rules.map(\.action) == ["tempfail", "tag"])
    }

    @Test func messageRulesSeeTheRecordedSubject() throws {
        let simulator = RuleSimulator(rules: try Self.rules("""
            rule "confidential" on message
              when subject matches /(?i)\\bconfidential\\b/
              prefix_subject "[SECURE] "
            """))
        let result = simulator.simulate(Self.record([("a@x.test", ["b@example.com"])], subject: "Confidential figures"))
        #expect(result.verdicts.map(\.action) == ["prefix_subject"])
        #expect(result.decisions.isEmpty)
    }

    static let contentRules = """
        rule "mailer" on message
          when header("X-Mailer") contains "bulk"
          tag "bulk mailer"
        rule "word" on message
          when body contains "invoice"
          tag "invoice"
        rule "subject" on message
          when subject != none
          tag "has a subject"
        """

    @Test func aWholeMessageReadingJudgesHeaderAndBodyRules() throws {
        let simulator = RuleSimulator(rules: try Self.rules(Self.contentRules))
        let summary = MessageSummary(
            header: HeaderSection(fields: [HeaderField(name: "X-Mailer", rawValue: " bulk-o-matic"), HeaderField(name: "Subject", rawValue: " Hi")]),
            subject: "Hi",
            size: 100,
            bodyText: "Your invoice is attached."
        )
        let result = simulator.simulate(Self.record([("a@x.test", ["b@example.com"])], subject: "Hi"), messages: [0: summary])
        #expect(result.record.transactions[0].rules.map(\.rule) == ["mailer", "word", "subject"])
        #expect(result.unjudged.isEmpty)
    }

    @Test func onARecordAloneRulesThatReadWhatItDoesNotKeepAreNotJudged() throws {
        let simulator = RuleSimulator(rules: try Self.rules(Self.contentRules))
        let result = simulator.simulate(Self.record([("a@x.test", ["b@example.com"])], subject: "Hi"))
        // Neither matched nor not: a record keeps no X-Mailer and no body text.
        #expect(result.record.transactions[0].rules.map(\.rule) == ["subject"])
        #expect(result.unjudged.map(\.rule) == ["mailer", "word"])
    }

    @Test func aDisconnectAtConnectEndsTheSession() throws {
        let simulator = RuleSimulator(rules: try Self.rules("""
            list bad = [203.0.113.0/24]
            rule "blocklist" on connect
              when client.ip in bad
              disconnect 421 "go away"
            rule "never" on mail
              tag "unreachable for this client"
            """))
        let result = simulator.simulate(Self.record([("a@x.test", ["b@example.com"])]))
        #expect(result.record.rules.map(\.rule) == ["blocklist"])
        #expect(result.record.transactions[0].rules.isEmpty)
    }

    @Test func theComparisonListsExactlyTheSessionsThatChange() throws {
        let old = RuleSimulator(rules: try Self.rules("""
            rule "outsiders" on mail
              when mail_from.domain == "evil.test"
              reject 550 5.7.1 "no"
            """))
        let new = RuleSimulator(rules: try Self.rules("""
            rule "outsiders" on mail
              when mail_from.domain == "evil.test" or mail_from.domain == "worse.test"
              reject 550 5.7.1 "no"
            """))
        var comparison = RuleSetComparison()
        let sessions = [
            Self.record(id: "A", [("a@evil.test", ["b@example.com"])]),
            Self.record(id: "B", [("a@worse.test", ["b@example.com"])]),
            Self.record(id: "C", [("a@fine.test", ["b@example.com"])]),
        ]
        for session in sessions { comparison.compare(old: old.simulate(session), new: new.simulate(session)) }
        #expect(comparison.sessions == 3)
        #expect(comparison.changes.map(\.sessionID) == ["B"])
        #expect(comparison.changes.first?.before.isEmpty == true)
        #expect(comparison.changes.first?.added.map(\.action) == ["reject"])
    }
}
