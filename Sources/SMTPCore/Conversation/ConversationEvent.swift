import NIOCore

/// One thing that happened in an SMTP conversation, as the session recorder and the rules take it.
///
/// Both modes speak this: a capture's reader (`SMTPInspector`) derives the events from the two
/// directions' octets; the proxy's relay emits them for what it read and sent on each leg. So a
/// session's record is built by the same code whichever mode saw it.
public struct ConversationEvent: Sendable {
    /// The command that carries a message's content.
    public enum ContentCommand: Sendable, Hashable {
        case data
        case bdat
    }

    public enum Kind: Sendable {
        /// `line` is the redacted command line, safe for a transcript.
        case command(id: Int, SMTPCommand, line: String)
        case invalidCommand(id: Int, SMTPCommandError, line: String)
        /// A SASL response line: its content is never reported.
        case saslResponse(authID: Int)
        case authIdentity(authID: Int, mechanism: String, user: String)
        case reply(SMTPReply, answering: AwaitedReply)
        case messageBegin(commandID: Int, ContentCommand)
        case messageContent(ByteBuffer)
        /// `complete` is false when the capture lost part of the content.
        case messageEnd(commandID: Int, octets: Int, complete: Bool, DataContentParser.Observations)
        /// The session ended before the end of data: the client never finished the message.
        case messageAbandoned(commandID: Int, octets: Int)
        /// The server accepted STARTTLS (or the session is implicit TLS): what follows is encrypted.
        case tlsStarted(implicit: Bool)
        /// The TLS handshake as far as it was seen; sent when the session finishes.
        case tlsSummary(TLSSummary)
        case anomaly(SMTPAnomaly)
    }

    public var time: Timestamp
    public var kind: Kind

    public init(time: Timestamp, kind: Kind) {
        self.time = time
        self.kind = kind
    }
}
