/// What a reply answers: the thing on the client's side that is owed a reply. Identifiers are the
/// `id` of the command event concerned.
///
/// Replies answer strictly in order, also under pipelining (RFC 5321 §4.1.1, RFC 2920 §3): the
/// oldest thing still waiting is answered by the next complete reply. The proxy's legs, a capture's
/// reader and the report all pair replies this way (`PendingReplies`).
public enum AwaitedReply: Sendable, Hashable {
    case greeting
    case command(id: Int, SMTPCommand)
    /// A line that did not parse as a command; the server answers it all the same.
    case invalidCommand(id: Int, verb: String?)
    /// The end of DATA content (the DATA command's id).
    case endOfData(id: Int)
    /// One BDAT chunk (the BDAT command's id): a BDAT is answered once its chunk is read (RFC 3030 §2).
    case bdatChunk(id: Int, last: Bool)
    /// A SASL response line (the AUTH command's id).
    case saslResponse(id: Int)
    /// Nothing the reader saw: the command was lost in a capture, or the reply is unsolicited.
    case unknown
}

extension AwaitedReply {
    /// Whether a reply with this code can answer it. A positive code must be one the command can get
    /// (RFC 5321 §4.3.2, RFC 3030 §4, RFC 3207 §4, RFC 4954 §4); a negative reply fits anything.
    ///
    /// A passive reader uses this to notice a reply that does not belong to the command at the head
    /// (a lost segment, a server out of step) and to realign.
    public func accepts(_ code: Int) -> Bool {
        if code / 100 >= 4 { return true }
        switch self {
        case .greeting: return code == 220
        case .unknown, .invalidCommand: return true
        case .endOfData, .bdatChunk: return code == 250
        case .saslResponse: return code == 334 || code == 235
        case .command(_, let command):
            switch command {
            case .helo, .ehlo, .lhlo, .mail, .rset, .noop, .xforward: return code == 250
            case .rcpt, .vrfy, .expn: return code == 250 || code == 251 || code == 252
            case .data: return code == 354
            case .bdat: return code == 250
            case .quit: return code == 221
            case .starttls: return code == 220
            case .auth: return code == 334 || code == 235
            case .help: return code == 211 || code == 214
            case .xclient: return code == 220 || code == 250
            case .unknown: return true
            }
        }
    }

    /// The id of the command (or of the DATA, BDAT or AUTH that led to this line) the reply answers;
    /// `nil` for the greeting and for what the reader could not place.
    public var commandID: Int? {
        switch self {
        case .command(let id, _), .invalidCommand(let id, _), .endOfData(let id), .bdatChunk(let id, _), .saslResponse(let id): id
        case .greeting, .unknown: nil
        }
    }

    /// The AUTH command's id, for the AUTH command itself and each SASL response it led to.
    public var saslAuthID: Int? {
        switch self {
        case .command(let id, .auth): id
        case .saslResponse(let id): id
        default: nil
        }
    }

    /// Words for an anomaly's detail: "RCPT", "the end of data".
    public var description: String {
        switch self {
        case .greeting: "the greeting"
        case .command(_, let command): command.verb
        case .invalidCommand(_, let verb): "an invalid \(verb ?? "command")"
        case .endOfData: "the end of data"
        case .bdatChunk: "a BDAT chunk"
        case .saslResponse: "a SASL response"
        case .unknown: "an unseen command"
        }
    }
}
