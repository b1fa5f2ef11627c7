/// What a reply does to the rest of the conversation, by what it answers.
///
/// The turns are the protocol's, not any reader's: the relay's client leg, its upstream leg and a
/// capture's reader all switch how they read the next octets on the same replies, and the report
/// follows the same turns through a recorded dialogue.
public enum ConversationTurn: Sendable, Hashable {
    /// Nothing changes: the next client line is a command.
    case none
    /// 250 to EHLO, HELO or LHLO: the session starts over (RFC 5321 §4.1.4) with the service
    /// extensions offered (none after HELO).
    case greeted(ServiceExtensions)
    /// 354 to DATA: the client's next octets are message content, up to `<CRLF>.<CRLF>`
    /// (RFC 5321 §4.1.1.4), and the end of data is owed a reply.
    case messageContent
    /// A refusal of DATA: no content follows, and octets already sent are commands again.
    case dataRefused
    /// 334 to AUTH or to a SASL response: the next client line is a SASL response (RFC 4954 §4).
    case saslChallenge(String)
    /// The SASL exchange ended: 235 (`succeeded`) or a failure.
    case saslEnded(succeeded: Bool)
    /// 220 to STARTTLS: the TLS handshake starts at once, and nothing sent before it in plaintext
    /// counts (RFC 3207 §4.2).
    case tlsHandshake
    /// STARTTLS refused: the session goes on in plaintext.
    case tlsRefused
    /// A 4xx or 5xx to a BDAT chunk: the whole transaction failed, and no later chunk of it
    /// counts (RFC 3030 §2).
    case messageFailed
    /// 221 to QUIT, or 421 to anything: the server is closing the connection (RFC 5321 §3.8).
    case closing

    /// The turn a reply `code` (first line `firstLine`, EHLO keywords `extensions`) makes, answering `awaited`.
    public init(code: Int, firstLine: String = "", extensions: @autoclosure () -> ServiceExtensions = ServiceExtensions(), answering awaited: AwaitedReply) {
        let reply = ReplyCode(code)
        if reply == .serviceNotAvailable {
            self = .closing
            return
        }
        switch awaited {
        case .command(_, let command):
            switch command {
            case .ehlo, .lhlo: self = reply == .ok ? .greeted(extensions()) : .none
            case .helo: self = reply == .ok ? .greeted(ServiceExtensions()) : .none
            case .data: self = reply == .startMailInput ? .messageContent : .dataRefused
            case .starttls: self = reply == .serviceReady ? .tlsHandshake : .tlsRefused
            case .auth: self = Self.sasl(reply, firstLine: firstLine)
            case .quit: self = reply == .closing ? .closing : .none
            case .bdat: self = reply.isNegative ? .messageFailed : .none
            default: self = .none
            }
        case .saslResponse:
            self = Self.sasl(reply, firstLine: firstLine)
        case .bdatChunk:
            self = reply.isNegative ? .messageFailed : .none
        case .greeting, .invalidCommand, .endOfData, .unknown:
            self = .none
        }
    }

    /// The turn a whole reply makes.
    public init(_ reply: SMTPReply, answering awaited: AwaitedReply) {
        self.init(code: reply.code, firstLine: reply.lines.first ?? "", extensions: ServiceExtensions(reply), answering: awaited)
    }

    private static func sasl(_ reply: ReplyCode, firstLine: String) -> ConversationTurn {
        reply == .authenticationChallenge ? .saslChallenge(firstLine) : .saslEnded(succeeded: reply == .authenticationSucceeded)
    }
}
