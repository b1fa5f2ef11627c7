import NIOCore
import SMTPCore
import Testing

@testable import SMTPProxy

/// What a sink session answered and kept for one client byte stream.
private struct SinkRun: Equatable {
    /// The first wire line of each reply, in order.
    var replies: [String] = []
    var delivered: [SinkEnvelope] = []
    /// The content passed on for each delivered message.
    var messages: [[UInt8]] = []
    var closed = false
}

/// Feeds `input` to a fresh machine in pieces of `pieceSize` octets (nil: all at once).
private func runSink(_ input: [UInt8], pieceSize: Int? = nil, configuration: SinkConfiguration = SinkConfiguration()) -> SinkRun {
    var machine = SinkSessionStateMachine(configuration: configuration)
    var run = SinkRun()
    var content: [UInt8] = []
    var pending = ByteBuffer()
    let step = pieceSize ?? max(input.count, 1)
    var offset = 0
    while offset < input.count {
        pending.writeBytes(input[offset..<min(offset + step, input.count)])
        offset += step
        while let action = machine.receive(&pending, content: { content.append(contentsOf: $0.readableBytesView) }) {
            switch action {
            case .reply(let reply):
                run.replies.append(reply.wireLines[0])
            case .discardMessage(let reply):
                content = []
                run.replies.append(reply.wireLines[0])
            case .deliverMessage(let envelope):
                run.delivered.append(envelope)
                run.messages.append(content)
                content = []
                run.replies.append("250 2.0.0 Ok: queued as ID")
            case .replyAndClose(let reply):
                run.replies.append(reply.wireLines[0])
                run.closed = true
            }
        }
    }
    return run
}

/// Runs the input whole and one octet at a time, insists both give the same result, and returns it.
private func runBothWays(_ text: String, configuration: SinkConfiguration = SinkConfiguration()) -> SinkRun {
    let bytes = Array(text.utf8)
    let whole = runSink(bytes, configuration: configuration)
    let dripped = runSink(bytes, pieceSize: 1, configuration: configuration)
    #expect(whole == dripped, "feeding one octet at a time changed the outcome")
    return whole
}

private let envelopeLines = "EHLO client.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"
private let envelopeReplies = ["250-localhost", "250 2.1.0 Ok", "250 2.1.5 Ok"]

@Suite struct SinkSessionStateMachineTests {
    @Test func greetingNamesTheHostAndTheSink() {
        var configuration = SinkConfiguration()
        configuration.hostname = "mx.test"
        let machine = SinkSessionStateMachine(configuration: configuration)
        #expect(machine.greeting.wireLines == ["220 mx.test ESMTP smtpscope sink"])
    }

    @Test func ehloAdvertisesTheSinkExtensions() {
        var machine = SinkSessionStateMachine(configuration: SinkConfiguration())
        var input = ByteBuffer(string: "EHLO client.test\r\n")
        let action = machine.receive(&input, content: { _ in })
        #expect(action == .reply(SMTPReply(code: 250, lines: [
            "localhost", "PIPELINING", "SIZE 10240000", "8BITMIME", "CHUNKING", "ENHANCEDSTATUSCODES", "SMTPUTF8",
        ])))
    }

    @Test func dataTransactionIsQueuedWithUnstuffedContent() {
        let run = runBothWays(envelopeLines + "DATA\r\nSubject: x\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n")
        #expect(run.replies == envelopeReplies + ["354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as ID", "221 2.0.0 Bye"])
        #expect(run.delivered == [SinkEnvelope(helo: "client.test", mailFrom: "a@example.com", mailParameters: [], recipients: ["b@example.org"], command: "DATA", size: 26)])
        #expect(run.messages == [Array("Subject: x\r\n\r\n.dot\r\nbody\r\n".utf8)])
        #expect(run.closed)
    }

    @Test func pipelinedTransactionsAreAnsweredInOrder() {
        let message = "MAIL FROM:<>\r\nRCPT TO:<x@y>\r\nRCPT TO:<z@y>\r\nDATA\r\nhi\r\n.\r\nRSET\r\nNOOP\r\n"
        let run = runBothWays("EHLO c\r\n" + message + message + "QUIT\r\n")
        let one = ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as ID", "250 2.0.0 Ok", "250 2.0.0 Ok"]
        #expect(run.replies == ["250-localhost"] + one + one + ["221 2.0.0 Bye"])
        #expect(run.delivered.map(\.mailFrom) == ["", ""])
        #expect(run.delivered.map(\.recipients) == [["x@y", "z@y"], ["x@y", "z@y"]])
    }

    @Test(arguments: [
        ("MAIL FROM:<a@b>\r\n", "503 5.5.1 Error: send HELO/EHLO first"),
        ("DATA\r\n", "503 5.5.1 Error: send HELO/EHLO first"),
        ("HELO c\r\nRCPT TO:<a@b>\r\n", "503 5.5.1 Error: need MAIL command"),
        ("HELO c\r\nDATA\r\n", "503 5.5.1 Error: need MAIL command"),
        ("HELO c\r\nMAIL FROM:<a@b>\r\nDATA\r\n", "503 5.5.1 Error: need RCPT command"),
        ("HELO c\r\nMAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\n", "503 5.5.1 Error: nested MAIL command"),
        ("HELO c\r\nMAIL FROM:<a@b> SIZE=10\r\n", "555 5.5.4 Unsupported option: SIZE"),
        ("EHLO c\r\nMAIL FROM:<a@b> SIZE=10240001\r\n", "552 5.3.4 Message size exceeds fixed limit"),
        ("EHLO c\r\nMAIL FROM:<a@b> SIZE=99999999999999999999\r\n", "552 5.3.4 Message size exceeds fixed limit"),
        ("EHLO c\r\nMAIL FROM:<a@b> SIZE=abc\r\n", "501 5.5.4 Bad message size syntax"),
        ("EHLO c\r\nMAIL FROM:<a@b> BODY=BINARYMIME\r\n", "501 5.5.4 Bad BODY parameter syntax"),
        ("EHLO c\r\nMAIL FROM:<a@b> RET=FULL\r\n", "555 5.5.4 Unsupported option: RET"),
        ("EHLO c\r\nMAIL FROM: a@b\r\n", "501 5.1.7 Bad sender address syntax"),
        ("EHLO c\r\nMAIL FROM:<ü@b>\r\n", "553 5.6.7 Error: non-ASCII address needs SMTPUTF8"),
        ("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<>\r\n", "501 5.1.3 Bad recipient address syntax"),
        ("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y> NOTIFY=NEVER\r\n", "555 5.5.4 Unsupported option: NOTIFY"),
        ("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<ü@y>\r\n", "553 5.6.7 Error: non-ASCII address needs SMTPUTF8"),
        ("MAIL\u{0}\r\n", "501 5.5.2 Error: NUL character in command"),
        ("FROB\r\n", "500 5.5.2 Error: command not recognized"),
        ("STARTTLS\r\n", "502 5.5.1 Error: command not implemented"),
        ("AUTH PLAIN\r\n", "503 5.5.1 Error: authentication not enabled"),
        ("VRFY root\r\n", "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery"),
        ("EHLO c\r\nMAIL FROM:<ü@b> SMTPUTF8\r\nRCPT TO:<ö@y>\r\n", "250 2.1.5 Ok"),
        ("EHLO c\r\nMAIL FROM:<@a,@b:u@c> SIZE=100 BODY=8BITMIME\r\n", "250 2.1.0 Ok"),
    ])
    func commandIsAnsweredAsAStrictServerWould(input: String, expected: String) {
        let run = runBothWays(input)
        #expect(run.replies.last == expected)
        #expect(!run.closed)
    }

    @Test(arguments: [
        ("hello\n.\n", "550 5.5.2 Error: bare <LF> received"),
        ("hello\n.\r\n", "550 5.5.2 Error: bare <LF> received"),
        ("hello\r\n.\n", "550 5.5.2 Error: bare <LF> received"),
        ("hello\r.\r", "550 5.5.2 Error: bare <CR> received"),
        ("hello\r.\n", "550 5.5.2 Error: bare <LF> received"),
        ("hello\n.\r", "550 5.5.2 Error: bare <LF> received"),
        ("hello\r.\r\n", "550 5.5.2 Error: bare <CR> received"),
        ("nul\u{0}here\r\n", "550 5.5.2 Error: NUL character received"),
    ])
    func smuggledTransactionIsRefusedAndNeverDelivered(terminator: String, expected: String) {
        let smuggled = "MAIL FROM:<s@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nsmuggled\r\n"
        let run = runBothWays(envelopeLines + "DATA\r\n" + terminator + smuggled + ".\r\nNOOP\r\n")
        #expect(run.replies == envelopeReplies + ["354 End data with <CR><LF>.<CR><LF>", expected, "250 2.0.0 Ok"])
        #expect(run.delivered.isEmpty)
    }

    @Test func bdatChunksAreDeliveredVerbatim() {
        let run = runBothWays(envelopeLines + "BDAT 7\r\n.a\r\nb\r\nBDAT 6 LAST\r\nc.\r\n\r\nQUIT\r\n")
        #expect(run.replies == envelopeReplies + ["250 2.0.0 Ok: 7 octets received", "250 2.0.0 Ok: queued as ID", "221 2.0.0 Bye"])
        #expect(run.messages == [Array(".a\r\nb\r\nc.\r\n\r\n".utf8)])
        #expect(run.delivered.first?.command == "BDAT")
        #expect(run.delivered.first?.size == 13)
    }

    @Test func refusedChunkIsReadAndDroppedSoTheSessionStaysInSync() {
        let run = runBothWays("EHLO c\r\nBDAT 6\r\nNOOP\r\nBDAT 0 LAST\r\nQUIT\r\n")
        #expect(run.replies == ["250-localhost", "503 5.5.1 Error: need MAIL command", "503 5.5.1 Error: need MAIL command", "221 2.0.0 Bye"])
    }

    @Test func emptyLastChunkDeliversAnEmptyMessage() {
        let run = runBothWays(envelopeLines + "BDAT 0 LAST\r\n")
        #expect(run.replies.last == "250 2.0.0 Ok: queued as ID")
        #expect(run.messages == [[]])
    }

    @Test func bareLineEndInAChunkFailsTheTransaction() {
        let run = runBothWays(envelopeLines + "BDAT 4\r\na\nb\nBDAT 3 LAST\r\nxyzRCPT TO:<c@d>\r\n")
        #expect(run.replies == envelopeReplies + ["550 5.5.2 Error: bare <LF> received", "503 5.5.1 Error: need MAIL command", "503 5.5.1 Error: need MAIL command"])
        #expect(run.delivered.isEmpty)
    }

    @Test func dataAfterBdatIsASequenceError() {
        let run = runBothWays(envelopeLines + "BDAT 3\r\nabcDATA\r\n")
        #expect(run.replies.last == "503 5.5.1 Error: DATA after BDAT in the same transaction")
    }

    @Test func rsetDiscardsAChunkedMessage() {
        let run = runBothWays(envelopeLines + "BDAT 3\r\nabcRSET\r\nMAIL FROM:<a@b>\r\n")
        #expect(run.replies.suffix(3) == ["250 2.0.0 Ok: 3 octets received", "250 2.0.0 Ok", "250 2.1.0 Ok"])
        #expect(run.delivered.isEmpty)
    }

    @Test func overlongCommandLineIsRefusedAndTheSessionStaysInSync() {
        let long = "NOOP " + String(repeating: "x", count: 2049 - 5 - 2) + "\r\n"
        let atLimit = "NOOP " + String(repeating: "x", count: 2048 - 5 - 2) + "\r\n"
        let run = runBothWays(long + atLimit + "NOOP\r\n")
        #expect(run.replies == ["500 5.5.2 Error: line too long", "250 2.0.0 Ok", "250 2.0.0 Ok"])
    }

    @Test func tenMegabytesWithoutALineEndKeepMemoryFlat() {
        var machine = SinkSessionStateMachine(configuration: SinkConfiguration())
        var pending = ByteBuffer()
        let piece = [UInt8](repeating: UInt8(ascii: "x"), count: 65536)
        for _ in 0..<160 {
            pending.writeBytes(piece)
            #expect(machine.receive(&pending, content: { _ in }) == nil)
            #expect(pending.readableBytes < 4096)
        }
        pending.writeString("\r\nNOOP\r\n")
        #expect(machine.receive(&pending, content: { _ in }) == .reply(SinkReplies.lineTooLong))
        #expect(machine.receive(&pending, content: { _ in }) == .reply(SinkReplies.ok))
    }

    @Test func twentyErrorsThenTheSessionIsClosedWith421() {
        let run = runBothWays(String(repeating: "FROB\r\n", count: 21) + "NOOP\r\n")
        #expect(run.replies.count == 21)
        #expect(run.replies.dropLast().allSatisfy { $0 == "500 5.5.2 Error: command not recognized" })
        #expect(run.replies.last == "421 4.7.0 localhost Error: too many errors")
        #expect(run.closed)
    }

    @Test func recipientOverTheLimitGets452() {
        var configuration = SinkConfiguration()
        configuration.maxRecipients = 2
        let run = runBothWays("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<1@b>\r\nRCPT TO:<2@b>\r\nRCPT TO:<3@b>\r\n", configuration: configuration)
        #expect(run.replies.last == "452 4.5.3 Error: too many recipients")
    }

    @Test func messageOverTheLimitGets552AfterTheEndOfData() {
        var configuration = SinkConfiguration()
        configuration.maxMessageOctets = 10
        let run = runBothWays(envelopeLines + "DATA\r\n0123456789abcdef\r\n.\r\nNOOP\r\n", configuration: configuration)
        #expect(run.replies.suffix(2) == ["552 5.3.4 Error: message file too big", "250 2.0.0 Ok"])
        #expect(run.delivered.isEmpty)
    }

    @Test func inputAfterQuitIsIgnored() {
        let run = runBothWays("QUIT\r\nNOOP\r\n")
        #expect(run.replies == ["221 2.0.0 Bye"])
        #expect(run.closed)
    }

    @Test func idleTimeoutAnswers421AndCloses() {
        var machine = SinkSessionStateMachine(configuration: SinkConfiguration())
        #expect(machine.receiveIdleTimeout() == .replyAndClose(SMTPReply(code: 421, lines: ["4.4.2 localhost Error: timeout exceeded"])))
        #expect(machine.isClosed)
    }
}
