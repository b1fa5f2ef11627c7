import NIOCore
import SMTPCore
import SMTPTranscript

/// A command sent to the server and the reply that answered it, or a reply nobody asked for.
///
/// Replies answer commands strictly in order, also under pipelining (RFC 5321 §4.1.1, RFC 2920 §3):
/// the nth command still waiting is answered by the nth complete reply.
public struct CommandReplyPair: Sendable, Equatable {
    /// The command line as recorded (AUTH payloads already "[redacted]"); `nil` for the greeting and
    /// for an unsolicited reply.
    public var command: String?
    public var stage: SMTPStage
    /// Microseconds since the session's start; the reply's own time for an unsolicited reply.
    public var sentAt: Int64
    public var reply: SessionRecord.Reply?
    /// When the last line of the reply arrived.
    public var repliedAt: Int64?
    /// A reply that arrived while no command was waiting.
    public var isUnsolicited: Bool

    public init(
        command: String?,
        stage: SMTPStage,
        sentAt: Int64,
        reply: SessionRecord.Reply? = nil,
        repliedAt: Int64? = nil,
        isUnsolicited: Bool = false
    ) {
        self.command = command
        self.stage = stage
        self.sentAt = sentAt
        self.reply = reply
        self.repliedAt = repliedAt
        self.isUnsolicited = isUnsolicited
    }

    /// How long the server took to answer, in microseconds; `nil` without a reply.
    public var wait: Int64? {
        guard let repliedAt, !isUnsolicited else { return nil }
        return repliedAt &- sentAt
    }
}

/// Pairs the server leg's command and reply events of a session record by order.
///
/// Commands are events addressed to the server (from the client in captures, from the proxy in proxy
/// mode); replies are events from the server. Every command line awaits one reply, AUTH continuation
/// lines included. Message content awaits a reply after DATA's 354 (the end of data); after BDAT the
/// BDAT command itself is answered and the content is not. A separate "." line after the content,
/// should a writer record one, moves the end-of-data time rather than awaiting a second reply.
public enum ReplyPairing {
    /// Replies longer than this keep their first lines and a note of how many were dropped.
    public static let maximumReplyLines = 100
    /// Reply lines are cut at this many characters.
    public static let maximumLineLength = 1000

    /// The pairs of a record. A message the session ended inside (the client never sent its end of
    /// data) awaited no reply: its content is not paired as an unanswered end of data.
    public static func pair(_ record: SessionRecord) -> [CommandReplyPair] {
        var pairs = pair(record.events, expectsGreeting: record.greeting != nil)
        if record.transactions.last?.isBrokenOff == true,
            let index = pairs.lastIndex(where: { $0.stage == .endOfData && !$0.isUnsolicited }),
            pairs[index].reply == nil
        {
            pairs.remove(at: index)
        }
        return pairs
    }

    public static func pair(_ events: [SessionRecord.Event], expectsGreeting: Bool) -> [CommandReplyPair] {
        var reader = RecordedConversation(expectsGreeting: expectsGreeting)
        for event in events {
            if event.to == .server, event.from != .server {
                if let octets = event.octets {
                    reader.clientSentContent(octets: octets, at: event.t)
                } else {
                    reader.clientSent(line: event.text, at: event.t)
                }
            } else if event.from == .server {
                reader.serverSent(line: event.text, at: event.t)
            }
        }
        return reader.pairs
    }
}

/// The server leg of a recorded dialogue, read back as the conversation it was: each line goes
/// through SMTPCore's command parser and reply assembler, replies are paired by `PendingReplies`,
/// and a reply's `ConversationTurn` says how the next client line reads (a SASL response after 334,
/// message content after 354), exactly as the capture reader and the proxy decide it live.
private struct RecordedConversation {
    private var all: [CommandReplyPair] = []
    /// Content pairs that turned out to await nothing.
    private var dropped = Set<Int>()
    /// Context: the index of the pair in `all`.
    private var pending = PendingReplies<Int>()
    private var assembler = ReplyAssembler(maxLines: ReplyPairing.maximumReplyLines)
    private var nextID = 1
    private var currentStage = SMTPStage.connect
    /// The last command was DATA: content may follow (the 354 still to come, or come).
    private var dataPair: (index: Int, id: Int)?
    /// Content sent before DATA was answered: its end of data awaits a reply only if DATA got 354.
    private var contentBeforeDataReply: (dataIndex: Int, contentIndex: Int)?
    /// The end-of-data pair of the last content, until its reply comes: a recorded "." moves it.
    private var lastContentPair: Int?
    /// The AUTH command being answered, and whether its last reply was a 334 (so the next client
    /// line is a SASL response).
    private var auth: (id: Int, challenged: Bool)?

    var pairs: [CommandReplyPair] {
        dropped.isEmpty ? all : all.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
    }

    init(expectsGreeting: Bool) {
        if expectsGreeting {
            all.append(CommandReplyPair(command: nil, stage: .connect, sentAt: 0))
            pending.append(.greeting, 0)
        }
    }

    mutating func clientSentContent(octets: Int, at t: Int64) {
        lastContentPair = nil
        // After BDAT the command itself is answered, not its content (RFC 3030 §2).
        guard let data = dataPair else { return }
        dataPair = nil
        if let code = all[data.index].reply?.code, code != 354 { return }
        let index = enqueue(.endOfData(id: data.id), CommandReplyPair(command: "<CRLF>.<CRLF> after \(octets) octets", stage: .endOfData, sentAt: t))
        if all[data.index].reply == nil { contentBeforeDataReply = (data.index, index) }
        lastContentPair = index
    }

    mutating func clientSent(line: String, at t: Int64) {
        if line == ".", let index = lastContentPair, all[index].reply == nil {
            // A writer that records the end of data as a line of its own: the content was sent then.
            all[index].sentAt = t
            lastContentPair = nil
            return
        }
        lastContentPair = nil
        dataPair = nil
        let id = nextID
        nextID += 1
        let awaited: AwaitedReply
        if let auth, auth.challenged || line.hasPrefix("[redacted]") {
            // An AUTH continuation line (RFC 4954 §4), "[redacted]" in every record: answered by
            // 334, 235 or a failure.
            awaited = .saslResponse(id: auth.id)
            self.auth = (auth.id, false)
        } else {
            switch CommandParser.parse(line) {
            case .success(let command): awaited = .command(id: id, command)
            case .failure(let error): awaited = .invalidCommand(id: id, verb: error.verb)
            }
        }
        let stage = SMTPStage(awaited)
        currentStage = stage
        if case .command(let id, .auth) = awaited { auth = (id, false) } else if stage != .auth { auth = nil }
        let index = enqueue(awaited, CommandReplyPair(command: line, stage: stage, sentAt: t))
        if stage == .data { dataPair = (index, id) }
    }

    mutating func serverSent(line: String, at t: Int64) {
        guard case .reply(let reply)? = assembler.receive(line: ByteBuffer(string: line)) else { return }
        guard let entry = pending.take() else {
            all.append(CommandReplyPair(
                command: nil, stage: currentStage, sentAt: t, reply: Self.recordReply(reply), repliedAt: t, isUnsolicited: true
            ))
            return
        }
        all[entry.context].reply = Self.recordReply(reply)
        all[entry.context].repliedAt = t
        let turn = ConversationTurn(reply, answering: entry.awaited)
        switch turn {
        case .saslChallenge:
            if let id = entry.awaited.saslAuthID, auth?.id == id { auth = (id, true) }
        case .saslEnded:
            auth = nil
        default:
            break
        }
        if case .command(_, .data) = entry.awaited, turn != .messageContent,
            let early = contentBeforeDataReply, early.dataIndex == entry.context
        {
            // The content was sent early (a client not waiting for 354); it awaits nothing.
            pending.removeFirst { $0.context == early.contentIndex }
            dropped.insert(early.contentIndex)
        }
        if contentBeforeDataReply?.dataIndex == entry.context { contentBeforeDataReply = nil }
    }

    private mutating func enqueue(_ awaited: AwaitedReply, _ pair: CommandReplyPair) -> Int {
        all.append(pair)
        pending.append(awaited, all.count - 1)
        return all.count - 1
    }

    /// The reply as a record keeps it, each line cut for a report.
    private static func recordReply(_ reply: SMTPReply) -> SessionRecord.Reply {
        var text = reply.textWithoutEnhancedCode
            .split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.prefix(ReplyPairing.maximumLineLength) }
            .joined(separator: "\n")
        if reply.droppedLines > 0 { text += "\n... (\(reply.droppedLines) more lines)" }
        return SessionRecord.Reply(code: reply.code, enhanced: reply.enhancedStatusCode?.description, text: text)
    }
}

extension SessionRecord.Transaction {
    /// The session ended inside this transaction's DATA content: the server accepted DATA (or its
    /// reply was not seen) and the client never sent the end of data, so the message was not sent.
    var isBrokenOff: Bool {
        guard outcome == .aborted, let data, data.command == .data else { return false }
        return data.reply == nil && data.initialReply == nil && data.size == nil
    }
}
