import MailMessage
import NIOCore
import SMTPCore

extension RelaySessionStateMachine {
    /// A command for the upstream, with what its reply will answer.
    struct UpstreamCommand: Sendable {
        var bytes: ByteBuffer
        var line: String
        var awaited: AwaitedReply
        var expecting: Expectation
    }

    /// What an upstream reply answers.
    enum Expectation: Sendable {
        case greeting(resuming: Bool)
        case relay(slot: Int)
        case ehlo(slot: Int, verb: String, name: String)
        case mail(slot: Int)
        case rcpt(slot: Int, path: SMTPPath)
        case data(slot: Int, kind: ConversationEvent.ContentCommand)
        case endOfData(slot: Int)
        /// A client chunk relayed as `BDAT n` (`Content.relaysChunks`). Its 2xx fills the client's
        /// slot, except for the client's LAST chunk (`ofLast`), which waits for `lastChunk`.
        case chunk(slot: Int, message: Int, octets: UInt64, ofLast: Bool)
        /// The proxy's `BDAT 0 LAST` (or `BDAT 2 LAST`) ending a relayed message.
        case lastChunk(slot: Int)
        /// DATA for a spooled message: on 354 the channel layer sends the spool with its edits.
        case spooledData(slot: Int, edits: [HeaderEdit], octets: Int)
        case auth(slot: Int)
        case starttls(ehloReply: SMTPReply, then: EHLOPurpose)
        /// The client's own STARTTLS, relayed under `--client-tls passthrough`.
        case passthroughSTARTTLS(slot: Int)
        case resumeEHLO
        /// XCLIENT (`--xclient`): the commands still to send, whether one was accepted, and the
        /// EHLO exchange it belongs to, with the EHLO reply to fall back on when it is refused.
        case xclient(remaining: [String], accepted: Bool, then: EHLOPurpose, ehloReply: SMTPReply)
        /// QUIT, the client's (its reply slot) or the proxy's for a client that half-closed
        /// without one (`nil`): the session ends at the upstream's reply.
        case quit(slot: Int?)
        /// Replies the client never sees (bcc RCPT, SASL cancel).
        case internalOnly
    }

    /// What an upstream EHLO exchange is for: the client's EHLO, or a reconnection. It says what to
    /// do once the upstream leg is encrypted or has accepted XCLIENT: EHLO again, for the same end.
    enum EHLOPurpose: Sendable, Hashable {
        case ehlo(slot: Int, verb: String, name: String)
        case resumeEHLO
    }
}
