import NIOCore
import SMTPCore
import Testing

/// SMTP smuggling, and following the server (README, "How pcap mode reads a session"): the client's
/// bytes hold a lenient end of data followed by a second transaction; the server's replies decide which
/// reading is kept.
@Suite("SMTPInspector smuggling")
struct SMTPInspectorSmugglingTests {
    typealias Step = InspectorScenario.Step

    static let firstMessage = "Subject: a\r\n\r\nbody"
    static let smuggledCommands = "MAIL FROM:<s@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n"

    static func clientBytes(_ sequence: String, quit: Bool) -> String {
        firstMessage + sequence + smuggledCommands + "smuggled\r\n.\r\n" + (quit ? "QUIT\r\n" : "")
    }

    /// Greeting, EHLO with PIPELINING, MAIL, RCPT, DATA and 354 at t1-t9; the content at t10.
    static func steps(_ sequence: String = "\n.\n", quit: Bool, replies: [String]) -> [Step] {
        var steps: [Step] = SMTPInspectorTests.opening() + [
            .client("MAIL FROM:<a@b>\r\n", at: 4),
            .server("250 2.1.0 Ok\r\n", at: 5),
            .client("RCPT TO:<c@d>\r\n", at: 6),
            .server("250 2.1.5 Ok\r\n", at: 7),
            .client("DATA\r\n", at: 8),
            .server("354 Go\r\n", at: 9),
            .client(clientBytes(sequence, quit: quit), at: 10),
        ]
        for (index, reply) in replies.enumerated() {
            steps.append(.server(reply + "\r\n", at: Int64(11 + index)))
        }
        return steps
    }

    static let lenientReplies = ["250 2.0.0 queued as A", "250 2.1.0 Ok", "250 2.1.5 Ok", "354 Go", "250 2.0.0 queued as B"]

    static let prelude = SMTPInspectorTests.openingTranscript() + [
        "t4 C#2 MAIL FROM:<a@b>",
        "t5 R 250 2.1.0 Ok -> #2 MAIL",
        "t6 C#3 RCPT TO:<c@d>",
        "t7 R 250 2.1.5 Ok -> #3 RCPT",
        "t8 C#4 DATA",
        "t9 R 354 Go -> #4 DATA",
        "t9 begin #4 data",
    ]

    /// The transcript without the first message's content and size, which the dedicated test below pins.
    static func withoutFirstMessageDetail(_ lines: [String]) -> [String] {
        lines.filter { !$0.hasPrefix("t10 content") }.map { $0.hasPrefix("t10 end #4 ") ? "t10 end #4" : $0 }
    }

    static func count(_ kind: SMTPAnomalyKind, in events: [ConversationEvent]) -> Int {
        events.filter { if case .anomaly(let anomaly) = $0.kind { anomaly.kind == kind } else { false } }.count
    }

    @Test("a lenient server that ends the message at \\n.\\n is followed: two messages", arguments: [true, false])
    func lenientServerFollowed(quit: Bool) {
        let scenario = InspectorScenario(Self.steps(quit: quit, replies: Self.lenientReplies + (quit ? ["221 Bye"] : [])) + [.finish(at: 20)])
        let events = scenario.run(.whole)
        let expected = Self.prelude + [
            "t10 ! smuggling_suspected",
            "t10 end #4",
            "t10 ! bare_lf_in_data",
            "t10 C#5 MAIL FROM:<s@x>",
            "t10 C#6 RCPT TO:<v@y>",
            "t10 C#7 DATA",
            "t11 R 250 2.0.0 queued as A -> #4 end of data",
            "t12 R 250 2.1.0 Ok -> #5 MAIL",
            "t13 R 250 2.1.5 Ok -> #6 RCPT",
            "t14 R 354 Go -> #7 DATA",
            "t14 begin #7 data",
            "t14 content \"smuggled\\r\\n\"",
            "t14 end #7 10 octets",
        ] + (quit ? ["t14 C#8 QUIT"] : []) + [
            "t15 R 250 2.0.0 queued as B -> #7 end of data",
        ] + (quit ? ["t16 R 221 Bye -> #8 QUIT"] : [])
        #expect(Self.withoutFirstMessageDetail(InspectorScenario.render(events)) == expected)
        let messages = InspectorScenario.messages(events)
        #expect(messages.count == 2)
        #expect(messages.last == Array("smuggled\r\n".utf8))
        #expect(Self.count(.smugglingSuspected, in: events) == 1)
        scenario.expectSameWhateverTheChunking()
    }

    @Test("the replies decide before the session ends: no finish is needed", arguments: [true, false])
    func lenientDecidedWithoutFinish(quit: Bool) {
        let finished = InspectorScenario(Self.steps(quit: quit, replies: Self.lenientReplies) + [.finish(at: 20)])
        let waiting = InspectorScenario(Self.steps(quit: quit, replies: Self.lenientReplies))
        #expect(waiting.transcript() == finished.transcript())
        waiting.expectSameWhateverTheChunking()
    }

    @Test("the lenient reading's first message ends before its lenient end-of-data line")
    func lenientFirstMessageContent() {
        let scenario = InspectorScenario(Self.steps(quit: true, replies: Self.lenientReplies + ["221 Bye"]) + [.finish(at: 20)])
        let events = scenario.run(.whole)
        let messages = InspectorScenario.messages(events)
        #expect(messages.first.map { CoreTestSupport.escaped($0) } == CoreTestSupport.escaped(Array((Self.firstMessage + "\n").utf8)))
        #expect(InspectorScenario.render(events).contains("t10 end #4 \((Self.firstMessage + "\n").utf8.count) octets"))
    }

    @Test("a strict server that ends the message at CRLF.CRLF is followed: one message, no smuggling", arguments: [true, false])
    func strictServerFollowed(quit: Bool) {
        let replies = ["250 2.0.0 queued as A"] + (quit ? ["221 Bye"] : [])
        let scenario = InspectorScenario(Self.steps(quit: quit, replies: replies) + [.finish(at: 20)])
        let content = Self.firstMessage + "\n.\n" + Self.smuggledCommands + "smuggled\r\n"
        let expected = Self.prelude + [
            "t10 content \"\(CoreTestSupport.escaped(content.utf8))\"",
            "t10 end #4 \(content.utf8.count) octets",
            "t10 ! bare_lf_in_data",
        ] + (quit ? ["t10 C#5 QUIT"] : []) + [
            "t11 R 250 2.0.0 queued as A -> #4 end of data",
        ] + (quit ? ["t12 R 221 Bye -> #5 QUIT"] : [])
        scenario.expect(expected)
        let events = scenario.run(.whole)
        #expect(InspectorScenario.messages(events).count == 1)
        #expect(Self.count(.smugglingSuspected, in: events) == 0)
        #expect(Self.count(.bareLFInData, in: events) == 1)
    }

    @Test("while the replies have not decided, events after the ambiguity are held, then released by the finish")
    func strictServerHeldUntilFinish() {
        let waiting = InspectorScenario(Self.steps(quit: false, replies: ["250 2.0.0 queued as A"]))
        let finished = InspectorScenario(Self.steps(quit: false, replies: ["250 2.0.0 queued as A"]) + [.finish(at: 20)])
        // Content lines are left out: the held part of the content merges differently.
        let held = waiting.transcript().filter { !$0.contains(" content ") }
        let all = finished.transcript().filter { !$0.contains(" content ") }
        #expect(held.count <= all.count)
        #expect(Array(all.prefix(held.count)) == held)
        #expect(all.last == "t11 R 250 2.0.0 queued as A -> #4 end of data")
    }

    /// Hostile-input cases 1-3: every lenient end-of-data sequence.
    @Test("each lenient sequence, answered by a lenient server, yields the smuggled message", arguments: ["\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\n", "\n.\r", "\r.\r\n"])
    func everyLenientSequence(sequence: String) {
        let scenario = InspectorScenario(Self.steps(sequence, quit: true, replies: Self.lenientReplies + ["221 Bye"]) + [.finish(at: 20)])
        let events = scenario.run(.whole)
        let messages = InspectorScenario.messages(events)
        #expect(messages.count == 2)
        #expect(messages.last == Array("smuggled\r\n".utf8))
        #expect(Self.count(.smugglingSuspected, in: events) == 1)
        #expect(!InspectorScenario.render(events).contains { $0.contains("unexpected_reply") || $0.contains("reply_without_command") })
        scenario.expectSameWhateverTheChunking()
    }

    @Test("each lenient sequence, answered by a strict server, is one message", arguments: ["\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\n", "\n.\r", "\r.\r\n"])
    func everyLenientSequenceStrictServer(sequence: String) {
        let scenario = InspectorScenario(Self.steps(sequence, quit: true, replies: ["250 2.0.0 queued as A", "221 Bye"]) + [.finish(at: 20)])
        let events = scenario.run(.whole)
        #expect(InspectorScenario.messages(events).count == 1)
        #expect(Self.count(.smugglingSuspected, in: events) == 0)
        scenario.expectSameWhateverTheChunking()
    }

    /// Hostile-input case 4: a NUL never makes an end of data, so there is nothing to follow.
    @Test("NUL sequences are never an end of data", arguments: ["\r\n\0.\r\n", "\r\n.\0\r\n"])
    func nulSequences(sequence: String) {
        let scenario = InspectorScenario(Self.steps(sequence, quit: true, replies: ["250 2.0.0 queued as A", "221 Bye"]) + [.finish(at: 20)])
        let events = scenario.run(.whole)
        #expect(InspectorScenario.messages(events).count == 1)
        #expect(Self.count(.smugglingSuspected, in: events) == 0)
        #expect(Self.count(.nulInData, in: events) == 1)
        scenario.expectSameWhateverTheChunking()
    }
}
