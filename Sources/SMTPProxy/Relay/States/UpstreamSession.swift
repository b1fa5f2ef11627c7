import NIOCore
import SMTPCore

extension RelaySessionStateMachine {
    /// The upstream leg: where its session stands, the replies it owes (`expectations`, in the
    /// order the commands went), the commands held back for it, and what it offered.
    struct UpstreamSession: Sendable {
        enum Phase: Sendable, Hashable {
            /// The connection is being opened (the first one, or a reconnection: `greetingSlot`
            /// tells them apart).
            case connecting
            /// Connected; its 220 is owed.
            case greeting
            /// EHLO, STARTTLS or XCLIENT under way before the client's commands may pass: nothing
            /// of the client's goes upstream until the upstream session is settled, so a command
            /// pipelined after EHLO can never reach the upstream in plaintext ahead of its STARTTLS.
            case negotiating
            /// The upstream said 220 to the proxy's STARTTLS; `then` is what its EHLO exchange is for.
            case tlsHandshake(then: EHLOPurpose)
            case ready
            /// `--client-tls passthrough`: after the upstream's 220 to the client's STARTTLS.
            case passthrough
            /// Closed by the proxy (aborted transaction) or by the upstream between commands:
            /// reopened on demand.
            case lost
            case closed
        }

        /// The phase as the relay's guards see it: `connecting` is every phase in which the
        /// client's commands wait.
        enum Kind: Sendable, Hashable {
            case connecting
            case ready
            case tlsHandshake
            case passthrough
            case lost
            case closed
        }

        private(set) var phase = Phase.connecting
        var buffer = ByteBuffer()
        var framer = LineFramer(maxLineOctets: SMTPLimits().maxReplyLineOctets)
        var replyAssembler = ReplyAssembler()
        /// Paired as every reader of SMTP pairs (SMTPCore's conversation layer), each entry with
        /// the proxy's plan for its reply.
        var expectations = PendingReplies<Expectation>()
        /// Numbers the commands sent upstream, for `AwaitedReply`.
        var nextCommandID = 1
        /// Commands waiting for the reply to the one before: an upstream that does not offer
        /// PIPELINING gets one command at a time (RFC 2920 §3.1: a client SHOULD NOT pipeline
        /// otherwise, and Postfix's `smtpd_forbid_unauth_pipelining` disconnects one that does).
        var unpipelined = CircularBuffer<UpstreamCommand>(initialCapacity: 4)
        var tlsActive = false
        var tlsTried = false
        /// What the last EHLO reply offered, kept across a reconnection until the new connection's
        /// EHLO replaces it.
        var extensions = ServiceExtensions()
        /// The upstream's 250 to the EHLO that ended the last EHLO exchange on this connection: the
        /// upstream session is identified, and a strict server refuses a second EHLO on it (RFC 5321
        /// §4.1.4 allows that; OpenSMTPD: `503 5.5.1 Already identified`). A client's later EHLO or
        /// HELO (the one RFC 3207 §4.2 requires after its STARTTLS, or any other) is answered from it.
        /// A new connection, STARTTLS or XCLIENT towards the upstream starts its session again.
        var identified: SMTPReply?
        /// The client's greeting slot, until the first connection's 220 (or its failure) fills it.
        var greetingSlot: Int?
        /// `--xclient`: XCLIENT went (or was tried) on this upstream connection; a reconnection resets it.
        var xclientTried = false
        /// Set from DATA for a spooled message until the spool is on its way: no other command may
        /// reach the upstream in between, or it would read as message content.
        var spoolReleasePending = false

        /// The upstream's deadline runs from the last change of this number: it changes when a
        /// reply arrives and when a command is sent with none outstanding, so each reply the
        /// upstream owes gets its RFC 5321 §4.5.3.2 time, whatever else happens meanwhile.
        private(set) var deadlineEpoch = 0

        var kind: Kind {
            switch phase {
            case .connecting, .greeting, .negotiating: .connecting
            case .tlsHandshake: .tlsHandshake
            case .ready: .ready
            case .passthrough: .passthrough
            case .lost: .lost
            case .closed: .closed
            }
        }

        mutating func enter(_ next: Phase) { phase = next }

        mutating func restartDeadline() { deadlineEpoch &+= 1 }

        /// A new connection replaces a lost one: nothing of the old session carries over but what
        /// it offered, which the new EHLO replaces.
        mutating func reconnect() {
            phase = .connecting
            tlsActive = false
            tlsTried = false
            identified = nil
            xclientTried = false
            buffer.clear()
            replyAssembler.reset()
            framer = LineFramer(maxLineOctets: SMTPLimits().maxReplyLineOctets)
        }

        /// The upstream's TLS is up (RFC 3207 §4.2): its reply stream starts again.
        mutating func tlsEstablished() {
            tlsActive = true
            phase = .ready
            framer = LineFramer(maxLineOctets: SMTPLimits().maxReplyLineOctets)
            replyAssembler.reset()
        }

        /// Forgets what was sent or held for an upstream connection that is over. Held commands are
        /// answered with the rest: every caller fails the client's open replies or, mid-content,
        /// holds none (DATA and BDAT go upstream only after every earlier reply).
        mutating func forgetCommands() {
            expectations.removeAll()
            unpipelined.removeAll()
        }
    }
}
