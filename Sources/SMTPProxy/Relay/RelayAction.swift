import MailMessage
import NIOCore
import SMTPCore
import SMTPTranscript

extension RelaySessionStateMachine {
    /// What the channel layer must do; the state machine itself does no I/O.
    public enum Action: Sendable {
        case sendToClient(ByteBuffer)
        case sendUpstream(ByteBuffer)
        /// Open (or reopen) the upstream connection; answer with `receiveUpstreamConnected` or
        /// `receiveUpstreamConnectFailed`.
        case connectUpstream
        /// Put TLS (server side) on the client leg now; the 220 has been written.
        case startClientTLS
        /// Put TLS (client side) on the upstream leg now.
        case startUpstreamTLS
        /// `--client-tls passthrough`: the client has the upstream's 220 to STARTTLS. From now on
        /// relay octets blind between the legs and only observe the TLS handshake; the end comes
        /// back as `receiveClientClosed`, `receiveUpstreamClosed` or `receiveTimeout(.client)`.
        case startPassthrough
        /// Close the upstream leg: before a terminating dot this aborts the upstream transaction.
        case closeUpstream
        /// Flush what was written to the client, then close the client leg.
        case closeClient
        /// Keep this piece of message content (un-stuffed) in the session's spool.
        case spool(ByteBuffer)
        /// Send the spooled message upstream with these header edits, dot-stuffed and ended with
        /// `CRLF.CRLF`; the upstream has answered DATA with 354. Then empty the spool.
        case releaseSpool([HeaderEdit])
        /// Forget the spooled message.
        case dropSpool
        /// Move the spooled message to the quarantine; answer with `receiveQuarantineStored`.
        case quarantineSpool(QuarantineRequest)
        case record(RelayEvent)
    }

    /// A message a rule quarantined, with its envelope for the metadata file.
    public struct QuarantineRequest: Sendable {
        public var reason: String
        /// The rules that asked for it.
        public var rules: [String]
        public var helo: String?
        public var authUser: String?
        public var mailFrom: SMTPPath?
        public var recipients: [SMTPPath]
        /// The reply slot of the end of data.
        var slot: Int
        /// The DATA or first BDAT command of the message.
        var commandID: Int
    }

    /// What the transcript needs to know, in order.
    public enum RelayEvent: Sendable {
        /// Client-leg facts in the SMTP core's vocabulary (commands, content, anomalies, TLS).
        case client(ConversationEvent.Kind)
        /// A reply sent to the client; `origin` is `.server` when relayed, `.proxy` when the
        /// proxy made it.
        case clientReply(SMTPReply, answering: AwaitedReply, origin: SessionRecord.Party)
        /// A command line the proxy sent upstream (redacted).
        case upstreamCommand(String)
        /// Message content sent upstream, counted at the end of data.
        case upstreamContent(octets: Int)
        /// A reply the upstream sent; 334 challenges are redacted by the transcript.
        case upstreamReply(SMTPReply)
        /// The upstream leg is encrypted from here on.
        case upstreamTLSStarted
        /// `--client-tls passthrough`: TLS runs end to end from here on; the proxy relays blind.
        case passthroughStarted
        /// The upstream refused XCLIENT (its reply is recorded too): it sees the proxy, not the
        /// client, as the connecting host, so its own checks and logs name the proxy.
        case xclientRefused(SMTPReply)
        /// The relay reads this message itself (it is spooled for `message` rules), so the record
        /// takes the relay's reading (`messageRead`) instead of reading the content again.
        case messageReadByRelay
        /// The relay's reading of the message whose end follows.
        case messageRead(MessageSummary)
        /// The current message failed part way (size limit, forbidden octet, upstream lost): the
        /// rest of its content is read but not recorded, so the record must not describe the part
        /// as the message (`SessionRecorder.messageTruncated`).
        case messageTruncated
        /// What the rules decided about the command `command` (nil at `connect`): the record puts
        /// them with the session or with the transaction that command belongs to.
        case ruleVerdicts([SessionRecord.RuleVerdict], command: Int?)
        /// A rule changed the reverse-path of the MAIL command `command` sent upstream.
        case mailFromRewritten(SMTPPath, command: Int?)
        /// A rule settled, instead of delivery, the transaction whose message began with `command`.
        case transactionSettled(SessionRecord.TransactionOutcome, command: Int)
        case close(by: SessionRecord.Party, reason: SessionRecord.Close.Reason)
    }

    public enum Leg: Sendable, Hashable {
        case client
        case upstream
    }
}
