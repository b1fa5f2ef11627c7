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
        var pairs: [CommandReplyPair] = []
        var dropped = Set<Int>()
        // Indices into `pairs` still waiting, oldest first; `head` avoids O(n) removal.
        var pending: [Int] = []
        var head = 0
        // For a content event sent before DATA was answered: the DATA pair it depends on.
        var dependsOnData: [Int: Int] = [:]
        var lastDataPair: Int?
        var lastCommandWasData = false
        var lastContentPair: Int?
        var currentStage = SMTPStage.connect
        var reply = ReplyAccumulator()

        if expectsGreeting {
            pairs.append(CommandReplyPair(command: nil, stage: .connect, sentAt: 0))
            pending.append(0)
        }

        func enqueue(_ pair: CommandReplyPair) -> Int {
            pairs.append(pair)
            pending.append(pairs.count - 1)
            return pairs.count - 1
        }

        for event in events {
            if event.to == .server, event.from != .server {
                if let octets = event.octets {
                    lastContentPair = nil
                    guard lastCommandWasData, let dataIndex = lastDataPair else { continue }
                    if let code = pairs[dataIndex].reply?.code, code != 354 { continue }
                    let index = enqueue(CommandReplyPair(
                        command: "<CRLF>.<CRLF> after \(octets) octets",
                        stage: .endOfData,
                        sentAt: event.t
                    ))
                    if pairs[dataIndex].reply == nil { dependsOnData[dataIndex] = index }
                    lastContentPair = index
                    lastCommandWasData = false
                    continue
                }
                if event.text == ".", let contentIndex = lastContentPair, pairs[contentIndex].reply == nil {
                    pairs[contentIndex].sentAt = event.t
                    lastContentPair = nil
                    continue
                }
                lastContentPair = nil
                var stage = SMTPStage(commandLine: event.text)
                if stage == .other, let previous = pairs.last, previous.stage == .auth,
                    event.text.hasPrefix("[redacted]") || previous.reply?.code == 334 || previous.reply == nil
                {
                    // An AUTH continuation line (RFC 4954 §4): answered by 334, 235 or a failure.
                    stage = .auth
                }
                currentStage = stage
                let index = enqueue(CommandReplyPair(command: event.text, stage: stage, sentAt: event.t))
                lastCommandWasData = stage == .data
                if stage == .data { lastDataPair = index }
                if stage == .bdat { lastCommandWasData = false }
                continue
            }
            guard event.from == .server else { continue }
            guard let complete = reply.receive(line: event.text, at: event.t) else { continue }
            if head < pending.count {
                let index = pending[head]
                head += 1
                pairs[index].reply = complete.reply
                pairs[index].repliedAt = complete.at
                if pairs[index].stage == .data, complete.reply.code != 354, let contentIndex = dependsOnData[index] {
                    // The content was sent early (a client not waiting for 354); it awaits nothing.
                    dropped.insert(contentIndex)
                    if let position = pending[head...].firstIndex(of: contentIndex) {
                        pending.remove(at: position)
                    }
                }
            } else {
                pairs.append(CommandReplyPair(
                    command: nil,
                    stage: currentStage,
                    sentAt: complete.at,
                    reply: complete.reply,
                    repliedAt: complete.at,
                    isUnsolicited: true
                ))
            }
        }
        if dropped.isEmpty { return pairs }
        return pairs.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
    }
}

/// Collects the lines of one multi-line reply (RFC 5321 §4.2.1: "ddd-" continues, "ddd " ends).
struct ReplyAccumulator {
    private var code: Int?
    private var enhanced: String?
    private var lines: [String] = []
    private var droppedLines = 0

    /// Takes one reply line; returns the reply when this line completed it. A line without a
    /// three-digit code is kept as text of a reply in progress and otherwise ignored.
    mutating func receive(line: String, at t: Int64) -> (reply: SessionRecord.Reply, at: Int64)? {
        guard let parsed = Self.parse(line) else {
            if code != nil { append(line) }
            return nil
        }
        if code == nil {
            code = parsed.code
            enhanced = parsed.enhanced
        }
        append(parsed.text)
        guard parsed.isLast, let code else { return nil }
        var text = lines.joined(separator: "\n")
        if droppedLines > 0 { text += "\n... (\(droppedLines) more lines)" }
        let reply = SessionRecord.Reply(code: code, enhanced: enhanced, text: text)
        self = ReplyAccumulator()
        return (reply, t)
    }

    private mutating func append(_ text: String) {
        if lines.count < ReplyPairing.maximumReplyLines {
            lines.append(String(text.prefix(ReplyPairing.maximumLineLength)))
        } else {
            droppedLines += 1
        }
    }

    /// "250-text", "550 5.1.1 text", "250"; the enhanced code is lifted out of every line that has one.
    static func parse(_ line: String) -> (code: Int, isLast: Bool, enhanced: String?, text: String)? {
        let bytes = Array(line.utf8.prefix(4))
        guard bytes.count >= 3, bytes[0...2].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return nil
        }
        let code = bytes[0...2].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        if bytes.count == 3 { return (code, true, nil, "") }
        guard bytes[3] == UInt8(ascii: " ") || bytes[3] == UInt8(ascii: "-") else { return nil }
        let isLast = bytes[3] == UInt8(ascii: " ")
        var text = Substring(line.dropFirst(4))
        var enhanced: String?
        let token = text.prefix(while: { $0 != " " })
        if token.count <= 11, EnhancedStatusCode.parse(String(token)) != nil, String(token).first == line.first {
            enhanced = String(token)
            text = text.dropFirst(token.count).drop(while: { $0 == " " })
        }
        return (code, isLast, enhanced, String(text))
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
