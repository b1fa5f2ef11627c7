import MailMessage
import NIOCore
import SMTPCore
import SMTPTranscript
import Testing

/// Drives an `SMTPInspector` with a scripted dialogue and records it, as pcap mode does.
private func recordDialogue(_ exchanges: [(SMTPInspector.Side, String)], close: SessionRecord.Close? = SessionRecord.Close(by: .client, reason: .fin)) -> SessionRecord {
    var inspector = SMTPInspector()
    var recorder = SessionRecorder(
        sessionID: "01JD0000000000000000000000",
        source: .pcap,
        start: Timestamp(microsecondsSinceEpoch: 1_000_000),
        client: SessionRecord.Endpoint(ip: "192.0.2.10", port: 51234),
        server: SessionRecord.Endpoint(ip: "198.51.100.5", port: 25)
    )
    var time: Int64 = 1_000_000
    for (side, text) in exchanges {
        time += 1000
        let bytes = ByteBuffer(string: text)
        switch side {
        case .client:
            recorder.noteClientOctets(bytes.readableBytes)
            inspector.receiveClientBytes(bytes, at: Timestamp(microsecondsSinceEpoch: time))
        case .server:
            recorder.noteServerOctets(bytes.readableBytes)
            inspector.receiveServerBytes(bytes, at: Timestamp(microsecondsSinceEpoch: time))
        }
        for event in inspector.drainEvents() { recorder.record(event) }
    }
    inspector.finish(at: Timestamp(microsecondsSinceEpoch: time + 1000))
    for event in inspector.drainEvents() { recorder.record(event) }
    return recorder.finish(at: Timestamp(microsecondsSinceEpoch: time + 1000), close: close)
}

private let greeting: [(SMTPInspector.Side, String)] = [
    (.server, "220 mx.example ESMTP\r\n"),
    (.client, "EHLO client.example\r\n"),
    (.server, "250-mx.example\r\n250 PIPELINING\r\n"),
]

struct OutcomeCase: Sendable, CustomTestStringConvertible {
    var name: String
    var dialogue: [(SMTPInspector.Side, String)]
    var transaction: SessionRecord.TransactionOutcome
    var session: SessionRecord.SessionOutcome
    var close: SessionRecord.Close? = SessionRecord.Close(by: .client, reason: .fin)
    var testDescription: String { name }
}

private let envelope = "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n"

@Suite struct SessionRecorderTests {
    static let outcomes: [OutcomeCase] = [
        OutcomeCase(
            name: "delivered to one of two recipients is delivered and completed",
            dialogue: greeting + [
                (.client, envelope),
                (.server, "250 2.1.0 Ok\r\n550 5.1.1 User unknown\r\n250 2.1.5 Ok\r\n354 go\r\n"),
                (.client, "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n"),
                (.server, "250 2.0.0 queued\r\n221 bye\r\n"),
            ],
            transaction: .delivered, session: .completed
        ),
        OutcomeCase(
            name: "every recipient refused, then 554 to DATA, is rejected by the recipients",
            dialogue: greeting + [
                (.client, envelope),
                (.server, "250 Ok\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n554 5.5.1 no valid recipients\r\n"),
                (.client, "QUIT\r\n"), (.server, "221 bye\r\n"),
            ],
            transaction: .rejected, session: .rejected
        ),
        OutcomeCase(
            name: "greylisted recipients make a tempfailed transaction",
            dialogue: greeting + [
                (.client, envelope),
                (.server, "250 Ok\r\n450 4.2.0 Greylisted\r\n450 4.2.0 Greylisted\r\n554 5.5.1 no valid recipients\r\n"),
                (.client, "QUIT\r\n"), (.server, "221 bye\r\n"),
            ],
            transaction: .tempfailed, session: .tempfail
        ),
        OutcomeCase(
            name: "a refusal after the end of data is rejected",
            dialogue: greeting + [
                (.client, envelope),
                (.server, "250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n"),
                (.client, "x\r\n.\r\n"),
                (.server, "554 5.7.1 Message contains virus\r\n"),
                (.client, "QUIT\r\n"), (.server, "221 bye\r\n"),
            ],
            transaction: .rejected, session: .rejected
        ),
        OutcomeCase(
            name: "a reset in the middle of the content is aborted and reset",
            dialogue: greeting + [
                (.client, envelope),
                (.server, "250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n"),
                (.client, "partial content\r\n"),
            ],
            transaction: .aborted, session: .reset,
            close: SessionRecord.Close(by: .client, reason: .rst)
        ),
        OutcomeCase(
            name: "an RST after the 221 to QUIT is the teardown of a completed session",
            dialogue: greeting + [
                (.client, envelope),
                (.server, "250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n"),
                (.client, "x\r\n.\r\nQUIT\r\n"),
                (.server, "250 2.0.0 queued\r\n221 bye\r\n"),
            ],
            transaction: .delivered, session: .completed,
            close: SessionRecord.Close(by: .client, reason: .rst)
        ),
        OutcomeCase(
            name: "an RST after QUIT but before its 221 is a reset",
            dialogue: greeting + [
                (.client, envelope),
                (.server, "250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n"),
                (.client, "x\r\n.\r\nQUIT\r\n"),
                (.server, "250 2.0.0 queued\r\n"),
            ],
            transaction: .delivered, session: .reset,
            close: SessionRecord.Close(by: .client, reason: .rst)
        ),
        OutcomeCase(
            name: "the end of data sent but its reply never seen is unknown",
            dialogue: greeting + [
                (.client, envelope),
                (.server, "250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n"),
                (.client, "x\r\n.\r\n"),
            ],
            transaction: .unknown, session: .completed
        ),
        OutcomeCase(
            name: "RSET before DATA aborts the transaction",
            dialogue: greeting + [
                (.client, "MAIL FROM:<a@example.com>\r\nRSET\r\nQUIT\r\n"),
                (.server, "250 Ok\r\n250 Ok\r\n221 bye\r\n"),
            ],
            transaction: .aborted, session: .completed
        ),
        OutcomeCase(
            name: "a refused sender is rejected",
            dialogue: greeting + [
                (.client, "MAIL FROM:<a@nowhere.invalid>\r\n"),
                (.server, "553 5.1.8 Domain of sender address does not exist\r\n"),
                (.client, "QUIT\r\n"), (.server, "221 bye\r\n"),
            ],
            transaction: .rejected, session: .rejected
        ),
    ]

    @Test(arguments: outcomes)
    func transactionAndSessionOutcomes(_ example: OutcomeCase) {
        let record = recordDialogue(example.dialogue, close: example.close)
        #expect(record.transactions.count == 1)
        #expect(record.transactions.first?.outcome == example.transaction)
        #expect(record.outcome == example.session)
    }

    @Test func anRSTAfterTheServers421IsTheTeardownOfAServerClose() {
        let record = recordDialogue(
            [(.server, "421 4.3.2 mx.example closing\r\n"), (.client, "QUIT\r\n")],
            close: SessionRecord.Close(by: .client, reason: .rst)
        )
        #expect(record.outcome == .serverClosed)
    }

    @Test func theTeardownRSTAfterQuitAndItsReplyIsRecordedAsTheQuit() {
        let record = recordDialogue(
            greeting + [(.client, "QUIT\r\n"), (.server, "221 bye\r\n")],
            close: SessionRecord.Close(by: .client, reason: .rst)
        )
        #expect(record.close == SessionRecord.Close(by: .client, reason: .quit))
        #expect(record.outcome == .completed)
    }

    @Test func aRefusedMailInsideAnOpenTransactionLeavesItsCommandsToThatTransaction() {
        // Exim's "503 sender already given": the server keeps the open transaction.
        let record = recordDialogue(greeting + [
            (.client, "MAIL FROM:<a@example.com>\r\n"), (.server, "250 OK\r\n"),
            (.client, "MAIL FROM:<a@example.com>\r\n"), (.server, "503 sender already given\r\n"),
            (.client, "RCPT TO:<b@example.org>\r\n"), (.server, "250 Accepted\r\n"),
            (.client, "DATA\r\n"), (.server, "354 go\r\n"),
            (.client, "x\r\n.\r\n"), (.server, "250 OK id=1\r\n"),
        ])
        #expect(record.transactions.map(\.outcome) == [.delivered, .rejected])
        #expect(record.transactions[0].rcptTo.map(\.address) == ["b@example.org"])
    }

    @Test func outOfSequenceCommandsInAFullySeenSessionOpenNoTransaction() {
        let record = recordDialogue(greeting + [
            (.client, "RCPT TO:<b@example.org>\r\n"), (.server, "503 5.5.1 need MAIL\r\n"),
            (.client, "QUIT\r\n"), (.server, "221 bye\r\n"),
        ])
        #expect(record.transactions.isEmpty)
        #expect(record.events.contains { $0.text == "503 5.5.1 need MAIL" })
    }

    @Test func saslSecretsNeverReachTheRecord() {
        // PLAIN: "\0alice\0s3cret" and LOGIN's 334 challenges.
        let record = recordDialogue(greeting + [
            (.client, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n"), (.server, "235 2.7.0 ok\r\n"),
            (.client, "AUTH LOGIN\r\n"), (.server, "334 VXNlcm5hbWU6\r\n"),
            (.client, "Ym9i\r\n"), (.server, "334 UGFzc3dvcmQ6\r\n"),
            (.client, "cGFzc3dvcmQ=\r\n"), (.server, "535 5.7.8 no\r\n"),
        ])
        let encoded = SessionRecordEncoder.jsonLine(record)
        for secret in ["AGFsaWNlAHMzY3JldA==", "s3cret", "cGFzc3dvcmQ=", "password", "VXNlcm5hbWU6", "UGFzc3dvcmQ6"] {
            #expect(!encoded.contains(secret), "\(secret) leaked")
        }
        #expect(record.auth?.user == "bob")
        #expect(record.auth?.result == .failure)
        #expect(record.events.contains { $0.text == "AUTH PLAIN [redacted]" })
        #expect(record.events.contains { $0.text == "334 [redacted]" })
    }

    @Test func aLostReplyInAnAuthExchangeNeitherLeaksTheSecretNorMisreportsTheResult() {
        // The 334 asking for the password is lost: the password line is later read as a command.
        var inspector = SMTPInspector()
        var recorder = SessionRecorder(
            sessionID: "01JD0000000000000000000000", source: .pcap,
            start: Timestamp(microsecondsSinceEpoch: 0), client: nil, server: nil
        )
        func feed(_ side: SMTPInspector.Side, _ text: String, _ t: Int64) {
            let bytes = ByteBuffer(string: text)
            let time = Timestamp(microsecondsSinceEpoch: t)
            if side == .client { inspector.receiveClientBytes(bytes, at: time) } else { inspector.receiveServerBytes(bytes, at: time) }
            for event in inspector.drainEvents() { recorder.record(event) }
        }
        feed(.server, "220 mx ESMTP\r\n", 1)
        feed(.client, "EHLO c\r\n", 2)
        feed(.server, "250-mx\r\n250 AUTH LOGIN\r\n", 3)
        feed(.client, "AUTH LOGIN\r\n", 4)
        feed(.server, "334 VXNlcm5hbWU6\r\n", 5)
        feed(.client, "YWxpY2U=\r\n", 6)
        inspector.receiveGap(from: .server, octets: 18, at: Timestamp(microsecondsSinceEpoch: 7))
        feed(.client, "U3cwcmRmaXNo\r\n", 8)
        feed(.server, "235 2.7.0 ok\r\n", 9)
        feed(.client, "MAIL FROM:<alice@example.com>\r\n", 10)
        feed(.server, "250 OK\r\n", 11)
        inspector.finish(at: Timestamp(microsecondsSinceEpoch: 12))
        for event in inspector.drainEvents() { recorder.record(event) }
        let record = recorder.finish(at: Timestamp(microsecondsSinceEpoch: 12), close: nil)
        let encoded = SessionRecordEncoder.jsonLine(record)
        #expect(!encoded.contains("U3cwcmRmaXNo"))
        #expect(!encoded.contains("YWxpY2U="))
        #expect(record.auth?.code != 250)
        #expect(record.outcome == .incomplete)
    }
}

/// The proxy reads a spooled message once, for its `message` rules, and hands that reading to the
/// recorder instead of letting it read the content again.
@Suite struct SessionRecorderAdoptedSummaryTests {
    @Test func aMessageReadElsewhereIsRecordedFromTheAdoptedSummary() {
        var recorder = SessionRecorder(sessionID: "01JD0000000000000000000001", source: .proxy, start: Timestamp(microsecondsSinceEpoch: 0),
                                       client: nil, server: nil)
        var inspector = SMTPInspector()
        var reader = MessageInspector()
        reader.receive(ByteBuffer(string: "Subject: as the proxy read it\r\n\r\nlong body text\r\n"))
        let summary = reader.finish()
        let dialogue: [(SMTPInspector.Side, String)] = greeting + [
            (.client, envelope),
            (.server, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n"),
            (.client, "Subject: what the recorder would read\r\n\r\nbody\r\n.\r\n"),
            (.server, "250 2.0.0 queued\r\n"),
        ]
        var time: Int64 = 0
        for (side, text) in dialogue {
            time += 1000
            switch side {
            case .client: inspector.receiveClientBytes(ByteBuffer(string: text), at: Timestamp(microsecondsSinceEpoch: time))
            case .server: inspector.receiveServerBytes(ByteBuffer(string: text), at: Timestamp(microsecondsSinceEpoch: time))
            }
            for event in inspector.drainEvents() {
                if case .messageEnd = event.kind { recorder.adoptMessageSummary(summary) }
                recorder.record(event)
                if case .messageBegin = event.kind { recorder.messageReadElsewhere() }
            }
        }
        let record = recorder.finish(at: Timestamp(microsecondsSinceEpoch: time + 1000), close: nil)
        let message = record.transactions.first?.message
        #expect(message?.subject == "as the proxy read it")
        #expect(message?.sha256 == summary.sha256)
        #expect(message?.size == summary.size)
    }
}
