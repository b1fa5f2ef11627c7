import FuzzHarness
import MailMessage
import NIOCore
import SMTPCore
import SMTPProxy
import SMTPRules
import SMTPTranscript

/// The relay state machine with both legs fuzzed (README, "Fuzzing and sanitizers"): the first octet
/// picks the configuration, the rest is split on the marker into chunks that alternate upstream,
/// client, upstream, ... (the upstream speaks first, with its greeting). The harness plays the channel
/// layer and a strict upstream server, and checks what the relay writes upstream:
/// - the upstream stream never holds a bare CR or LF, and every command is one line;
/// - message content goes only where the upstream reads content (after its 354 to DATA), commands
///   only where it reads commands, and `CRLF.CRLF` appears only at the real end of data;
/// - reading the content again gives the message the relay read from the client.
public enum RelayHarness {
    public static func run(_ input: [UInt8]) throws(FuzzInvariantViolation) {
        _ = try upstreamLog(input)
    }

    /// Runs the session and returns what the upstream was sent, one entry a write: `connect`, the
    /// command line, `content N` (octets), `end of data`, `spool N` (a released spool), `close`; and
    /// `after client close: REPLY` for a reply the relay asked to write to a client leg it had closed.
    public static func upstreamLog(_ input: [UInt8]) throws(FuzzInvariantViolation) -> [String] {
        guard let flags = input.first else { return [] }
        var session = Session(flags: flags)
        try session.start()
        var fromUpstream = true
        for chunk in FuzzInput.chunks(Array(input.dropFirst())) {
            if fromUpstream {
                try session.upstreamSends(chunk)
            } else {
                try session.clientSends(chunk)
            }
            fromUpstream.toggle()
        }
        try session.end()
        return session.log
    }

    /// Rules that make every kind of policy outcome reachable from the fuzzed session: spooling,
    /// header edits, settlements, envelope rewrites, refusals.
    static let rules: RuleSet? = RuleSet.compile([RuleSource(path: "fuzz.rules", text: rulesText)], listFile: { _ in "" }).ruleSet

    static let rulesText = """
        rule "edit" on message
          when subject contains "x"
          prefix_subject "[X] "
          add_header "X-Added" "${subject}"
          set_header "X-Set" "${mail_from}"
          remove_header "X-Remove"
        rule "discard" on message
          when subject contains "discard"
          discard
        rule "quarantine" on message
          when subject contains "quarantine"
          quarantine "held ${mail_from}"
        rule "refuse" on message
          when body contains "refuse"
          reject 550 5.7.1 "refused"
        rule "redirect" on message
          when subject contains "redirect"
          redirect "review@example.com"
        rule "bcc" on data
          when rcpt_count > 1
          bcc "archive@example.com"
        rule "sender" on mail
          when mail_from contains "rewrite"
          set mail_from "new@example.com"
        rule "recipient" on rcpt
          when rcpt contains "rewrite"
          set rcpt "new@example.com"
        rule "later" on rcpt
          when rcpt contains "later"
          tempfail 451 4.7.1 "later"
        rule "bye" on helo
          when helo == "bye"
          disconnect
        rule "auth" on auth
          when auth.user == "bad"
          reject 535 5.7.8 "no"

        """

    struct Session {
        var relay: RelaySessionStateMachine
        var upstream = UpstreamModel()
        var clientClosed = false
        /// `--client-tls passthrough` started: the channel layer relays blind from here, so the
        /// machine gets no more octets.
        var passthrough = false
        var failQuarantine: Bool
        /// The channel layer's spool: pieces the relay handed over, un-stuffed.
        var spool: [ByteBuffer] = []
        /// The client's message as the relay read it, and the last one it read whole.
        var clientMessage: [UInt8] = []
        var lastClientMessage: [UInt8]?
        /// The line of the `upstreamCommand` record just before: the next `sendUpstream` is it.
        var announcedCommand: String?
        var clientStream = StreamCheck()
        /// Follow-up inputs the channel layer owes the relay (connected, TLS established).
        var owed: [Owed] = []
        var log: [String] = []

        enum Owed {
            case upstreamConnected
            case clientTLS
            case upstreamTLS
            case quarantineStored(RelaySessionStateMachine.QuarantineRequest)
        }

        init(flags: UInt8) {
            var configuration = RelayConfiguration()
            configuration.xclient = flags & 0x02 != 0
            configuration.upstreamTLS = flags & 0x04 != 0 ? .opportunistic : .off
            configuration.clientTLS = flags & 0x80 != 0 ? .passthrough : flags & 0x08 != 0 ? .offer : .off
            if flags & 0x10 != 0 {
                configuration.limits.maxMessageOctets = 200
                configuration.limits.maxRecipients = 3
                configuration.limits.maxErrors = 4
                configuration.limits.maxCommandLineOctets = 64
                configuration.limits.maxAuthLineOctets = 32
                configuration.limits.maxOverlongLineOctets = 256
            }
            configuration.clientLegImplicitTLS = flags & 0x40 != 0
            failQuarantine = flags & 0x20 != 0
            let facts = PolicyFacts(client: .init(ip: "192.0.2.1", port: 40000), server: .init(ip: "192.0.2.25", port: 25))
            if flags & 0x01 != 0, let rules = RelayHarness.rules {
                relay = RelaySessionStateMachine(configuration: configuration, policy: RulesPolicy(rules: rules), facts: facts)
            } else {
                relay = RelaySessionStateMachine(configuration: configuration, facts: facts)
            }
        }

        mutating func start() throws(FuzzInvariantViolation) {
            try perform(relay.start())
        }

        mutating func clientSends(_ chunk: ArraySlice<UInt8>) throws(FuzzInvariantViolation) {
            guard !clientClosed, !passthrough else { return }
            try perform(relay.receiveClientBytes(ByteBuffer(bytes: chunk)))
        }

        mutating func upstreamSends(_ chunk: ArraySlice<UInt8>) throws(FuzzInvariantViolation) {
            guard upstream.connected, !passthrough else { return }
            try perform(relay.receiveUpstreamBytes(ByteBuffer(bytes: chunk)))
        }

        mutating func end() throws(FuzzInvariantViolation) {
            if !clientClosed { try perform(relay.receiveClientClosed()) }
            if upstream.connected { try perform(relay.receiveUpstreamClosed()) }
        }

        mutating func perform(_ actions: [RelaySessionStateMachine.Action]) throws(FuzzInvariantViolation) {
            var queue = actions[...]
            while true {
                guard let action = queue.popFirst() else {
                    guard !owed.isEmpty else { return }
                    let next = owed.removeFirst()
                    switch next {
                    case .upstreamConnected: queue = relay.receiveUpstreamConnected()[...]
                    case .clientTLS: queue = relay.receiveClientTLSEstablished()[...]
                    case .upstreamTLS: queue = relay.receiveUpstreamTLSEstablished()[...]
                    case .quarantineStored(let request):
                        queue = relay.receiveQuarantineStored(request, failure: failQuarantine ? "fuzz" : nil)[...]
                    }
                    continue
                }
                try act(action)
            }
        }

        mutating func act(_ action: RelaySessionStateMachine.Action) throws(FuzzInvariantViolation) {
            let announced = announcedCommand
            announcedCommand = nil
            switch action {
            case .sendToClient(let bytes):
                // A write after `closeClient` fails on the closed channel and reaches no one. (The
                // machine does ask for one: a command deferred behind the final 421 still runs and is
                // answered; reported with issue 6's fuzzing, not an invariant of the wire.)
                guard !clientClosed else {
                    log.append("after client close: \(Array(bytes.readableBytesView).shown)")
                    return
                }
                try clientStream.append(bytes.readableBytesView, leg: "client")
            case .sendUpstream(let bytes):
                let octets = Array(bytes.readableBytesView)
                switch announced {
                case "."?:
                    log.append("end of data")
                    try upstream.endOfData(octets, expected: expectedContent(edited: false))
                case let line?:
                    log.append(line)
                    try upstream.command(octets, line: line, expected: expectedContent(edited: false))
                case nil:
                    log.append("content \(octets.count)")
                    try upstream.content(octets)
                }
            case .connectUpstream:
                log.append("connect")
                upstream.connect()
                owed.append(.upstreamConnected)
            case .startClientTLS:
                owed.append(.clientTLS)
            case .startPassthrough:
                log.append("passthrough")
                passthrough = true
            case .startUpstreamTLS:
                try upstream.startTLS()
                owed.append(.upstreamTLS)
            case .closeUpstream:
                log.append("close")
                upstream.close()
            case .closeClient:
                clientClosed = true
            case .spool(let piece):
                spool.append(piece)
            case .releaseSpool(let edits):
                guard announced == "." else { throw FuzzInvariantViolation("spool released without its end of data") }
                log.append("spool \(spool.reduce(0) { $0 + $1.readableBytes })")
                try releaseSpool(edits)
                spool = []
            case .dropSpool:
                spool = []
            case .quarantineSpool(let request):
                spool = []
                owed.append(.quarantineStored(request))
            case .record(let event):
                try record(event)
            }
        }

        mutating func record(_ event: RelaySessionStateMachine.RelayEvent) throws(FuzzInvariantViolation) {
            switch event {
            case .upstreamCommand(let line):
                announcedCommand = line
            case .upstreamReply(let reply):
                upstream.reply(reply)
            case .client(.messageBegin):
                clientMessage = []
                lastClientMessage = nil
            case .client(.messageContent(let slice)):
                clientMessage += slice.readableBytesView
            case .client(.messageEnd(_, _, let complete, _)):
                lastClientMessage = complete ? clientMessage : nil
            default:
                break
            }
        }

        func expectedContent(edited: Bool) -> [UInt8]? {
            edited ? nil : lastClientMessage
        }

        /// What `RelayHandler.releaseSpool` does: the header section rewritten when there are edits,
        /// the content dot-stuffed and ended by `DataContentWriter`.
        mutating func releaseSpool(_ edits: [HeaderEdit]) throws(FuzzInvariantViolation) {
            var rewriter = edits.isEmpty ? nil : HeaderRewriter(edits: edits)
            var writer = DataContentWriter()
            var edited = ByteBuffer()
            var wire = ByteBuffer()
            do {
                for piece in spool {
                    if rewriter == nil {
                        try writer.write(piece, into: &wire)
                    } else {
                        rewriter?.receive(piece, into: &edited)
                        try writer.write(edited, into: &wire)
                        edited.clear()
                    }
                }
                rewriter?.finish(into: &edited)
                try writer.write(edited, into: &wire)
                try writer.finish(into: &wire)
            } catch {
                throw FuzzInvariantViolation("spooled content refused on release (\(error)): it was checked when spooled")
            }
            let spooled = spool.flatMap { Array($0.readableBytesView) }
            if let expected = lastClientMessage, expected != spooled {
                throw FuzzInvariantViolation("the spool holds \(spooled.shown), the client sent \(expected.shown)")
            }
            try upstream.endOfData(Array(wire.readableBytesView), expected: expectedContent(edited: !edits.isEmpty), wholeMessage: true)
        }
    }

    /// Bare CR and LF across the pieces of one stream.
    struct StreamCheck {
        var previousWasCR = false

        mutating func append(_ octets: some Collection<UInt8>, leg: String) throws(FuzzInvariantViolation) {
            if let offset = LineEnds.firstBareLineEnd(octets, previousWasCR: &previousWasCR) {
                throw FuzzInvariantViolation("bare CR or LF written to the \(leg) at \(offset): \(Array(octets).shown)")
            }
        }
    }

    /// A strict upstream server reading what the relay writes: one reply per command in order
    /// (RFC 2920), content after its 354 to DATA read by the RFC 5321 rule.
    struct UpstreamModel {
        var connected = false
        /// Commands sent and not yet answered; the connection itself waits for the greeting.
        var unanswered: [String] = []
        var stream = StreamCheck()
        /// Set between the 354 to DATA and the end of data.
        var reader: ContentReader?
        /// Set from the first `BDAT n` (RFC 3030) to the end of the LAST chunk.
        var chunks: ChunkReader?
        var closedWhileReading = false

        /// BDAT is length-delimited: the wire may split a CRLF between chunks, so line ends are
        /// checked over the chunks' content, not over the stream.
        struct ChunkReader {
            var remaining = 0
            var last = false
            var content: [UInt8] = []
            var lineEnds = StreamCheck()
            var expected: [UInt8]?
        }

        struct ContentReader {
            var parser = DataContentParser(reportsLenientEndCandidates: false)
            var content: [UInt8] = []
            var octets = 0
        }

        mutating func connect() {
            connected = true
            unanswered = ["(greeting)"]
            stream = StreamCheck()
            reader = nil
            chunks = nil
        }

        mutating func close() {
            connected = false
            unanswered = []
            reader = nil
            chunks = nil
        }

        mutating func startTLS() throws(FuzzInvariantViolation) {
            guard reader == nil else { throw FuzzInvariantViolation("TLS started upstream inside message content") }
            // The server starts afresh inside TLS: no greeting, nothing pending.
            unanswered = []
            stream = StreamCheck()
        }

        mutating func reply(_ reply: SMTPReply) {
            guard !unanswered.isEmpty, reader == nil else { return }
            let command = unanswered.removeFirst()
            if command.uppercased() == "DATA", reply.code == 354 { reader = ContentReader() }
        }

        mutating func command(_ octets: [UInt8], line: String, expected: [UInt8]? = nil) throws(FuzzInvariantViolation) {
            guard connected else { throw FuzzInvariantViolation("command \(line) written upstream on a closed connection") }
            try stream.append(octets, leg: "upstream")
            guard reader == nil, (chunks?.remaining ?? 0) == 0 else {
                throw FuzzInvariantViolation("command \(octets.shown) written upstream inside message content (smuggling)")
            }
            guard octets.count >= 2, octets.suffix(2).elementsEqual([13, 10]), !octets.dropLast(2).contains(13), !octets.dropLast(2).contains(10) else {
                throw FuzzInvariantViolation("command written upstream is not one line: \(octets.shown)")
            }
            unanswered.append(String(decoding: octets.dropLast(2).prefix(while: { $0 != 32 }), as: UTF8.self))
            let words = String(decoding: octets.dropLast(2), as: UTF8.self).uppercased().split(separator: " ")
            if words.first == "BDAT" {
                guard words.count >= 2, let size = Int(words[1]) else { throw FuzzInvariantViolation("BDAT without a size: \(line)") }
                var current = chunks ?? ChunkReader()
                current.remaining = size
                current.last = words.count == 3 && words[2] == "LAST"
                if current.last { current.expected = expected }
                chunks = current
                try endChunk()
            } else {
                // Any other command ends the transfer (RSET after a refused chunk).
                chunks = nil
            }
        }

        /// A chunk's octets all arrived: after the LAST one the upstream commits the message.
        mutating func endChunk() throws(FuzzInvariantViolation) {
            guard let current = chunks, current.remaining == 0, current.last else { return }
            chunks = nil
            if current.lineEnds.previousWasCR {
                throw FuzzInvariantViolation("a BDAT message committed upstream ends in a bare CR")
            }
            if let expected = current.expected, expected != current.content, expected + [13, 10] != current.content {
                throw FuzzInvariantViolation("the upstream commits \(current.content.shown), the client sent \(expected.shown)")
            }
        }

        mutating func content(_ octets: [UInt8]) throws(FuzzInvariantViolation) {
            guard connected else { throw FuzzInvariantViolation("content written upstream on a closed connection") }
            if var current = chunks, current.remaining > 0 {
                guard octets.count <= current.remaining else {
                    throw FuzzInvariantViolation("\(octets.count) octets written into a BDAT chunk with \(current.remaining) left (smuggling)")
                }
                try current.lineEnds.append(octets, leg: "upstream BDAT content")
                if octets.contains(0) { throw FuzzInvariantViolation("NUL written upstream in a BDAT chunk") }
                current.remaining -= octets.count
                current.content += octets
                chunks = current
                try endChunk()
                return
            }
            try stream.append(octets, leg: "upstream")
            guard var current = reader else {
                throw FuzzInvariantViolation("content \(octets.shown) written upstream where commands are read (smuggling)")
            }
            var buffer = ByteBuffer(bytes: octets)
            let stop = current.parser.parse(&buffer) { current.content += $0.readableBytesView }
            current.octets += octets.count
            guard stop == .needMoreBytes else {
                throw FuzzInvariantViolation("content written upstream ends the message early, \(current.octets - buffer.readableBytes) octets in")
            }
            reader = current
        }

        /// The last piece of a message: the end of data must come exactly at its end. `expected` is
        /// the content the upstream must read, when known.
        mutating func endOfData(_ octets: [UInt8], expected: [UInt8]?, wholeMessage: Bool = false) throws(FuzzInvariantViolation) {
            guard connected else { throw FuzzInvariantViolation("end of data written upstream on a closed connection") }
            try stream.append(octets, leg: "upstream")
            guard var current = reader else {
                throw FuzzInvariantViolation("end of data \(octets.shown) written upstream where commands are read")
            }
            if wholeMessage, current.octets > 0 { throw FuzzInvariantViolation("a spooled message after streamed content") }
            var buffer = ByteBuffer(bytes: octets)
            let stop = current.parser.parse(&buffer) { current.content += $0.readableBytesView }
            guard stop == .endOfData, buffer.readableBytes == 0 else {
                throw FuzzInvariantViolation("the end of data written upstream is not at the end: \(stop), \(buffer.readableBytes) octets left of \(octets.shown)")
            }
            if let expected, expected != current.content, expected + [13, 10] != current.content {
                throw FuzzInvariantViolation("the upstream reads \(current.content.shown), the client sent \(expected.shown)")
            }
            reader = nil
            unanswered.append(".")
        }
    }
}
