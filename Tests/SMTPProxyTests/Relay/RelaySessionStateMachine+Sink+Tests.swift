import NIOCore
import SMTPCore
import Testing

@testable import SMTPProxy

/// The relay's state machine against the built-in sink's, with no channel between them: what the
/// relay sends upstream is read by the sink's machine, and the sink's replies go back to the relay,
/// until neither has anything more to say. The test plays the client.
private struct RelayAgainstSink {
    var relay: RelaySessionStateMachine
    let sinkConfiguration: SinkConfiguration
    /// The sink session of the current upstream connection; `nil` when none is open.
    var sink: SinkSessionStateMachine?
    var toClient = ""
    var clientClosed = false
    var upstreamConnections = 0
    /// Bytes the relay sent upstream that the sink has not read yet, and the sink's replies the
    /// relay has not read yet.
    var toSink = ByteBuffer()
    var toRelay = ByteBuffer()
    var sinkClosedConnection = false
    /// The content the sink kept for the message being received, and the messages it stored.
    var keeping = ""
    var stored: [(envelope: SinkEnvelope, content: String)] = []

    init(sink: SinkConfiguration = SinkConfiguration()) {
        relay = RelaySessionStateMachine(configuration: RelayConfiguration())
        sinkConfiguration = sink
        run(relay.start())
    }

    mutating func client(_ text: String) {
        run(relay.receiveClientBytes(ByteBuffer(string: text)))
    }

    mutating func takeClient() -> String {
        defer { toClient = "" }
        return toClient
    }

    /// Performs the relay's actions as the channel layer would, then lets the two machines talk
    /// until both are quiet.
    private mutating func run(_ actions: [RelaySessionStateMachine.Action]) {
        var pending = actions
        while !pending.isEmpty {
            let batch = pending
            pending = []
            for action in batch {
                pending += perform(action)
            }
            readAtSink()
            if toRelay.readableBytes > 0 {
                let replies = toRelay
                toRelay.clear()
                pending += relay.receiveUpstreamBytes(replies)
            }
            if sinkClosedConnection && pending.isEmpty {
                sinkClosedConnection = false
                sink = nil
                pending += relay.receiveUpstreamClosed()
            }
        }
    }

    private mutating func perform(_ action: RelaySessionStateMachine.Action) -> [RelaySessionStateMachine.Action] {
        switch action {
        case .sendToClient(let bytes):
            toClient += String(buffer: bytes)
        case .sendUpstream(var bytes):
            toSink.writeBuffer(&bytes)
        case .connectUpstream:
            upstreamConnections += 1
            let session = SinkSessionStateMachine(configuration: sinkConfiguration)
            sink = session
            send(session.greeting)
            return relay.receiveUpstreamConnected()
        case .closeUpstream:
            sink = nil
            toSink.clear()
        case .closeClient:
            clientClosed = true
        case .startClientTLS, .startUpstreamTLS, .startPassthrough, .spool, .releaseSpool, .dropSpool, .quarantineSpool:
            Issue.record("the relay asked for \(action), which this session never needs")
        case .record:
            break
        }
        return []
    }

    /// The sink reads everything the relay sent, as its channel handler does.
    private mutating func readAtSink() {
        guard var session = sink else {
            toSink.clear()
            return
        }
        var kept = keeping
        while !session.isClosed, let action = session.receive(&toSink, content: { kept += String(buffer: $0) }) {
            switch action {
            case .reply(let reply):
                send(reply)
            case .discardMessage(let reply):
                kept = ""
                send(reply)
            case .deliverMessage(let envelope):
                stored.append((envelope, kept))
                kept = ""
                send(SinkReplies.queued("Q\(stored.count)"))
            case .replyAndClose(let reply):
                send(reply)
                sinkClosedConnection = true
            }
        }
        keeping = kept
        toSink.discardReadBytes()
        sink = session
    }

    private mutating func send(_ reply: SMTPReply) {
        for line in reply.wireLines {
            toRelay.writeString(line)
            toRelay.writeString("\r\n")
        }
    }
}

@Suite struct RelaySessionStateMachineSinkTests {
    private static func greeted(sink: SinkConfiguration = SinkConfiguration()) -> RelayAgainstSink {
        var session = RelayAgainstSink(sink: sink)
        #expect(session.upstreamConnections == 1)
        #expect(session.takeClient() == "220 localhost ESMTP smtpscope sink\r\n")
        session.client("EHLO client.example\r\n")
        let ehlo = session.takeClient()
        #expect(ehlo.hasPrefix("250-"))
        #expect(ehlo.contains("PIPELINING\r\n"))
        #expect(ehlo.contains("CHUNKING\r\n"))
        return session
    }

    @Test func twoPipelinedMessagesReachTheSinkAndTheClientHearsEachReplyInOrder() {
        var session = Self.greeted()
        session.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        #expect(session.takeClient() == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
        // The end of the first message and the whole second transaction in one write.
        session.client("Subject: one\r\n\r\n..first\r\n.\r\nMAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.org>\r\nDATA\r\n")
        #expect(session.takeClient() == "250 2.0.0 Ok: queued as Q1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
        session.client("Subject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
        #expect(session.takeClient() == "250 2.0.0 Ok: queued as Q2\r\n221 2.0.0 Bye\r\n")
        #expect(session.clientClosed)
        #expect(session.stored.map(\.envelope.mailFrom) == ["a@example.com", "c@example.com"])
        #expect(session.stored.map(\.envelope.recipients) == [["b@example.org"], ["d@example.org"]])
        #expect(session.stored.map(\.envelope.command) == ["DATA", "DATA"])
        #expect(session.stored.map(\.content) == ["Subject: one\r\n\r\n.first\r\n", "Subject: two\r\n\r\nsecond\r\n"])
    }

    @Test func bdatChunksAreRelayedAsChunksAndTheSinkStoresTheWholeMessage() {
        var session = Self.greeted()
        session.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nBDAT 14\r\nSubject: x\r\n\r\n")
        #expect(session.takeClient() == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: 14 octets received\r\n")
        session.client("BDAT 6 LAST\r\nbody\r\n")
        #expect(session.takeClient() == "250 2.0.0 Ok: queued as Q1\r\n")
        #expect(session.stored.count == 1)
        #expect(session.stored.first?.envelope.command == "BDAT")
        #expect(session.stored.first?.content == "Subject: x\r\n\r\nbody\r\n")
        #expect(session.stored.first?.envelope.size == 20)
    }

    @Test func aRecipientTheSinkRefusesIsRefusedToTheClientAndTheMessageGoesToTheOthers() {
        var sink = SinkConfiguration()
        sink.maxRecipients = 1
        var session = Self.greeted(sink: sink)
        session.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n")
        #expect(session.takeClient() == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n452 4.5.3 Error: too many recipients\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
        session.client("Subject: r\r\n\r\nhi\r\n.\r\n")
        #expect(session.takeClient() == "250 2.0.0 Ok: queued as Q1\r\n")
        #expect(session.stored.map(\.envelope.recipients) == [["b@example.org"]])
    }

    @Test func rsetForgetsTheTransactionAtBothEnds() {
        var session = Self.greeted()
        session.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRSET\r\nMAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.org>\r\nDATA\r\n")
        #expect(session.takeClient() == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
        session.client("Subject: s\r\n\r\nafter RSET\r\n.\r\n")
        #expect(session.takeClient() == "250 2.0.0 Ok: queued as Q1\r\n")
        #expect(session.stored.map(\.envelope.mailFrom) == ["c@example.com"])
        #expect(session.stored.map(\.envelope.recipients) == [["d@example.org"]])
    }

    @Test func quitEndsBothLegsWithTheSinksGoodbye() {
        var session = Self.greeted()
        session.client("QUIT\r\n")
        #expect(session.takeClient() == "221 2.0.0 Bye\r\n")
        #expect(session.clientClosed)
        #expect(session.sink == nil)
        #expect(session.relay.isClosed)
        #expect(session.stored.isEmpty)
    }
}
