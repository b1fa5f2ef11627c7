import NIOCore
import SMTPCore

extension RelaySessionStateMachine {
    /// The client leg: how its next bytes read, what is held of its input, and what it has
    /// established (TLS, AUTH). The mode carries the data only that mode has (the SASL exchange,
    /// the chunk being discarded), so neither can outlive it.
    struct ClientLeg: Sendable {
        enum Mode: Sendable {
            /// No greeting yet: any byte is a synchronisation error (`554 5.5.0`, hostile-input case 7).
            case beforeGreeting
            case commands
            /// A command's reply decides how the next bytes read (DATA, BDAT, AUTH).
            case awaitingReply(Awaiting)
            /// The next line is a SASL response (after a 334).
            case sasl(SASLInProgress)
            case content
            /// Consuming a BDAT chunk that will not be relayed; its reply waits for its last octet.
            case discardingChunk(ChunkDiscard)
            case tlsHandshake
            /// `--client-tls passthrough`: TLS runs end to end; the channel layer relays octets blind.
            case passthrough
            case closed
        }

        enum Awaiting: Sendable {
            case data
            case bdat
            /// The exchange under way, or `nil` once the client cancelled it (RFC 4954 §4) and only
            /// the proxy's `501` is owed.
            case auth(SASLInProgress?)
            /// Nothing after STARTTLS is read in plaintext: STARTTLS wipes the slate.
            case starttls
            /// Nothing after QUIT is acted on.
            case quit
        }

        /// The mode without its data: what guards test, and what decides when the deadline restarts.
        enum Kind: Sendable, Hashable {
            case beforeGreeting
            case commands
            case awaitingReply(AwaitingKind)
            case sasl
            case content
            case discardingChunk
            case tlsHandshake
            case passthrough
            case closed
        }

        enum AwaitingKind: Sendable, Hashable {
            case data
            case bdat
            case auth
            case starttls
            case quit
        }

        private(set) var mode = Mode.beforeGreeting
        var buffer = ByteBuffer()
        var commandFramer: LineFramer
        var saslFramer: LineFramer
        /// A command read but not yet acted on: it waits for earlier replies or for the upstream.
        var deferred: (id: Int, command: SMTPCommand)?
        var nextCommandID = 1
        var errors = 0
        var droppedOverlongOctets = 0
        var tlsActive = false
        /// The client half-closed the connection: all it will send is in `buffer`.
        var inputClosed = false
        var authenticated = false
        /// Bytes the client sent after DATA before the 354: a synchronisation error (hostile-input case 7).
        var earlyContent = false
        /// The client's greeting verb, for XCLIENT's PROTO.
        var greetingProtocol: XCLIENTCommand.ClientProtocol?

        /// The client's deadline runs from the last change of this number, not from the last read:
        /// it changes when a command or SASL line is complete, when the mode changes (`enter`), and
        /// in content after each `minDataRate × dataBlock` octets. So a client that trickles a
        /// command or a message one octet at a time still hits the deadline (hostile-input case 15).
        private(set) var deadlineEpoch = 0
        var contentOctetsSinceDeadline = 0

        init(limits: ProxyLimits) {
            commandFramer = LineFramer(maxLineOctets: limits.maxCommandLineOctets)
            saslFramer = LineFramer(maxLineOctets: limits.maxAuthLineOctets + 2)
        }

        var kind: Kind { Self.kind(of: mode) }

        /// The transition to `next`: a new mode starts a new client deadline; the same mode with
        /// new data (a chunk read further, an exchange answered) does not.
        mutating func enter(_ next: Mode) {
            if Self.kind(of: next) != kind { restartDeadline() }
            mode = next
        }

        mutating func restartDeadline() {
            deadlineEpoch &+= 1
            contentOctetsSinceDeadline = 0
        }

        /// The AUTH exchange under way, while the client is in one.
        var sasl: SASLInProgress? {
            switch mode {
            case .sasl(let exchange), .awaitingReply(.auth(let exchange?)): exchange
            default: nil
            }
        }

        /// The upstream's 334 challenge, read into the exchange under way.
        mutating func receiveChallenge(_ challenge: String) {
            guard case .awaitingReply(.auth(var exchange?)) = mode else { return }
            exchange.exchange.receiveChallenge(challenge)
            mode = .awaitingReply(.auth(exchange))
        }

        /// The upstream's final reply ended the exchange; the reply's follow-up moves the client on.
        mutating func endSASL() {
            switch mode {
            case .awaitingReply(.auth):
                mode = .awaitingReply(.auth(nil))
            case .sasl:
                preconditionFailure("a final AUTH reply while the client owes a SASL response")
            default:
                break
            }
        }

        private static func kind(of mode: Mode) -> Kind {
            switch mode {
            case .beforeGreeting: .beforeGreeting
            case .commands: .commands
            case .awaitingReply(.data): .awaitingReply(.data)
            case .awaitingReply(.bdat): .awaitingReply(.bdat)
            case .awaitingReply(.auth): .awaitingReply(.auth)
            case .awaitingReply(.starttls): .awaitingReply(.starttls)
            case .awaitingReply(.quit): .awaitingReply(.quit)
            case .sasl: .sasl
            case .content: .content
            case .discardingChunk: .discardingChunk
            case .tlsHandshake: .tlsHandshake
            case .passthrough: .passthrough
            case .closed: .closed
            }
        }
    }

    /// An AUTH exchange relayed to the upstream: the AUTH command's id, what the exchange showed
    /// of the user (never the secrets), and the reply slot of the line that waits for an answer.
    struct SASLInProgress: Sendable {
        var authID: Int
        var exchange: SASLExchange
        var slot: Int
    }

    /// A refused BDAT chunk being read: its reply waits until its octets are consumed (RFC 3030 §3).
    struct ChunkDiscard: Sendable {
        var remaining: UInt64
        var slot: Int
        var reply: SMTPReply
    }
}
