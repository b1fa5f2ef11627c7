import NIOCore
import SMTPCore
import SMTPTranscript

extension RelayStateMachine {
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
        /// Close the upstream leg: before a terminating dot this aborts the upstream transaction.
        case closeUpstream
        /// Flush what was written to the client, then close the client leg.
        case closeClient
        case record(RelayEvent)
    }

    /// What the transcript needs to know, in order.
    public enum RelayEvent: Sendable {
        /// Client-leg facts in the SMTP core's vocabulary (commands, content, anomalies, TLS).
        case client(SMTPInspector.EventKind)
        /// A reply sent to the client; `origin` is `.server` when relayed, `.proxy` when the
        /// proxy made it.
        case clientReply(SMTPReply, answering: SMTPInspector.Answered, origin: SessionRecord.Party)
        /// A command line the proxy sent upstream (redacted).
        case upstreamCommand(String)
        /// Message content sent upstream, counted at the end of data.
        case upstreamContent(octets: Int)
        /// A reply the upstream sent; 334 challenges are redacted by the transcript.
        case upstreamReply(SMTPReply)
        /// The upstream leg is encrypted from here on.
        case upstreamTLSStarted
        case ruleVerdicts([SessionRecord.RuleVerdict])
        case close(by: SessionRecord.Party, reason: SessionRecord.Close.Reason)
    }

    public enum Leg: Sendable, Hashable {
        case client
        case upstream
    }
}
