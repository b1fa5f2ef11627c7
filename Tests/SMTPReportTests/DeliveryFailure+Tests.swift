import SMTPTranscript
import Testing

@testable import SMTPReport

@Suite struct DeliveryFailureTests {
    typealias F = SessionFixtures

    @Test func aCleanDeliveryHasNoFailures() {
        #expect(DeliveryFailure.extract(from: F.cleanDelivery).isEmpty)
    }

    @Test func listsOnlyTheRefusedRecipientOfAPartialDelivery() throws {
        let failures = DeliveryFailure.extract(from: F.partialDelivery)
        try #require(failures.count == 1)
        let failure = failures[0]
        #expect(failure.stage == .rcpt)
        #expect(failure.cause == .mailboxUnknown)
        #expect(failure.command == "RCPT TO:<nobody@example.net>")
        #expect(failure.recipients == ["nobody@example.net"])
        #expect(failure.isPartialDelivery)
        #expect(failure.acceptedRecipients == 2)
        #expect(failure.totalRecipients == 3)
        #expect(failure.sentAt == 40_000)
        #expect(failure.wait == 12_000)
        #expect(!failure.isTemporary)
    }

    @Test func greylistingIsATemporaryRecipientFailure() throws {
        let failures = DeliveryFailure.extract(from: F.greylisted)
        try #require(failures.count == 1)
        #expect(failures[0].cause == .greylisted)
        #expect(failures[0].isTemporary)
        #expect(!failures[0].isPartialDelivery)
        #expect(failures[0].wait == 30_100_000)
    }

    @Test func aRefusedGreetingIsAConnectFailure() throws {
        let failures = DeliveryFailure.extract(from: F.blocklistedAtConnect)
        try #require(failures.count == 1)
        #expect(failures[0].stage == .connect)
        #expect(failures[0].cause == .blocklisted)
        #expect(failures[0].recipients.isEmpty)
    }

    @Test func a421ThatEndsTheSessionFailsTheOpenTransaction() throws {
        let failures = DeliveryFailure.extract(from: F.serverTimeout)
        try #require(failures.count == 1)
        #expect(failures[0].cause == .timeout)
        #expect(failures[0].stage == .data)
        #expect(failures[0].reply?.code == 421)
        #expect(failures[0].recipients == ["bob@example.net"])
    }

    @Test func aCommandUnansweredUntilATimeoutIsATimeoutFailure() throws {
        var record = F.record("T", start: 0, length: 600)
        record.events = [F.s(0.01, "220 mx"), F.c(0.02, "HELO c"), F.s(0.03, "250 mx"), F.c(0.04, "MAIL FROM:<a@b>")]
        record.transactions = [SessionRecord.Transaction(mailFrom: SessionRecord.MailFrom(address: "a@b"), outcome: .aborted)]
        record.outcome = .timeout
        let failures = DeliveryFailure.extract(from: record)
        try #require(failures.count == 1)
        #expect(failures[0].cause == .timeout)
        #expect(failures[0].reply == nil)
        #expect(failures[0].command == "MAIL FROM:<a@b>")
    }

    @Test func refusalsThatOnlyFollowFromAnEarlierOneAreNotRepeated() {
        let reply = { (code: Int, text: String) in SessionRecord.Reply(code: code, text: text) }
        var record = F.record("R", start: 0, length: 1)
        record.transactions = [
            SessionRecord.Transaction(
                mailFrom: SessionRecord.MailFrom(address: "a@b", reply: reply(553, "Sender address rejected: not logged in")),
                rcptTo: [SessionRecord.Recipient(address: "x@y", reply: reply(503, "Error: need MAIL command"))],
                data: SessionRecord.DataTransfer(command: .data, initialReply: reply(503, "Error: need RCPT command")),
                outcome: .rejected
            ),
            SessionRecord.Transaction(
                mailFrom: SessionRecord.MailFrom(address: "a@b", reply: reply(250, "Ok")),
                rcptTo: [SessionRecord.Recipient(address: "x@y", reply: reply(554, "Relay access denied"))],
                data: SessionRecord.DataTransfer(command: .data, initialReply: reply(554, "Error: no valid recipients")),
                outcome: .rejected
            ),
        ]
        let failures = DeliveryFailure.extract(from: record)
        #expect(failures.map(\.stage) == [.mail, .rcpt])
        #expect(failures.map(\.cause) == [.authenticationRequired, .relayDenied])
        #expect(failures[0].recipients == ["x@y"])
    }

    @Test func aFailedAuthIsReportedWithoutItsPayload() throws {
        var record = F.record("A", start: 0, length: 1)
        record.auth = SessionRecord.Auth(mechanism: "LOGIN", user: "alice", result: .failure, code: 535)
        record.events = [
            F.s(0, "220 mx"), F.c(1, "AUTH LOGIN"), F.s(2, "334 VXNlcm5hbWU6"), F.c(3, "[redacted]"),
            F.s(4, "334 UGFzc3dvcmQ6"), F.c(5, "[redacted]"), F.s(6, "535 5.7.8 Error: authentication failed: authentication failure"),
        ]
        let failures = DeliveryFailure.extract(from: record)
        try #require(failures.count == 1)
        // The login is named (issue 15: a refused AUTH left out the user); never the payload.
        #expect(failures[0].command == "AUTH LOGIN (user alice)")
        #expect(failures[0].cause == .authenticationFailed)
        #expect(failures[0].reply?.text == "Error: authentication failed: authentication failure")
    }

    @Test func aBdatRefusalAtTheLastChunkIsABdatFailure() throws {
        var record = F.record("B", start: 0, length: 1)
        record.transactions = [SessionRecord.Transaction(
            mailFrom: SessionRecord.MailFrom(address: "a@b", reply: SessionRecord.Reply(code: 250, text: "Ok")),
            rcptTo: [SessionRecord.Recipient(address: "x@y", reply: SessionRecord.Reply(code: 250, text: "Ok"))],
            data: SessionRecord.DataTransfer(
                command: .bdat, size: 30_000_000, chunks: 3,
                reply: SessionRecord.Reply(code: 552, enhanced: "5.3.4", text: "Message size exceeds fixed limit")
            ),
            outcome: .rejected
        )]
        let failures = DeliveryFailure.extract(from: record)
        try #require(failures.count == 1)
        #expect(failures[0].stage == .bdat)
        #expect(failures[0].cause == .messageTooLarge)
        #expect(failures[0].command == "BDAT ... LAST (3 chunks after 30000000 octets)")
    }
}
