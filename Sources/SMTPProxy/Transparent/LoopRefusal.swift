import NIOCore
import SMTPCore
import SMTPTranscript

/// The whole session of a client whose connection `LoopGuard` refused: no upstream, a `554`
/// greeting, then what RFC 5321 §3.1 asks of a server that refuses a session that way ("MUST
/// still wait for the client to send a QUIT before closing the connection and SHOULD respond to
/// any intervening commands with 503").
///
/// `554 5.4.6` is RFC 3463's "Routing loop detected". Like Postfix's smtpd after a 554 greeting,
/// the refusal ends after `maxCommands` commands (Postfix `smtpd_hard_error_limit`: 20), so a
/// client that never sends QUIT cannot hold the connection.
struct LoopRefusal: Sendable {
    enum Output: Sendable {
        /// A reply to send to the client and record.
        case reply(SMTPReply, answering: AwaitedReply)
        /// A client-leg fact for the transcript.
        case record(ConversationEvent.Kind)
        /// Close the connection once the replies are out.
        case close(by: SessionRecord.Party, reason: SessionRecord.Close.Reason)
    }

    static let maxCommands = 20

    private let hostname: String
    private let detail: String
    private var nextCommandID = 0
    private var closed = false

    /// `detail` says, for the transcript, why the destination is the proxy itself.
    init(hostname: String, detail: String) {
        self.hostname = hostname
        self.detail = detail
    }

    var isClosed: Bool { closed }

    mutating func start() -> [Output] {
        [
            .record(.anomaly(SMTPAnomaly(.proxyLoop, detail))),
            .reply(.proxy(554, "5.4.6", "\(hostname) Service refused: routing loop, this connection's destination is the proxy itself"), answering: .greeting),
        ]
    }

    /// One framed client line.
    mutating func receive(_ frame: LineFramer.Frame) -> [Output] {
        guard !closed else { return [] }
        let id = nextCommandID
        nextCommandID += 1
        var outputs: [Output] = []
        let answering: AwaitedReply
        switch frame {
        case .overlong(_, let total):
            let error = SMTPCommandError(code: 500, enhanced: .init(statusClass: 5, subject: 5, detail: 2), text: "Error: line too long")
            outputs.append(.record(.invalidCommand(id: id, error, line: "[\(total) octets]")))
            answering = .invalidCommand(id: id, verb: nil)
        case .line(let line, _):
            switch CommandParser.parse(line: line.readableBytesView) {
            case .success(.quit):
                closed = true
                return [
                    .record(.command(id: id, .quit, line: SMTPCommand.quit.redactedLine)),
                    .reply(.proxy(221, "2.0.0", "\(hostname) Bye"), answering: .command(id: id, .quit)),
                    .close(by: .client, reason: .quit),
                ]
            case .success(let command):
                outputs.append(.record(.command(id: id, command, line: command.redactedLine)))
                answering = .command(id: id, command)
            case .failure(let error):
                // AUTH's arguments may carry a credential, and no secret is ever written down.
                let shown = error.verb == "AUTH" ? "AUTH [redacted]" : String(decoding: line.readableBytesView.prefix(512), as: UTF8.self)
                outputs.append(.record(.invalidCommand(id: id, error, line: shown)))
                answering = .invalidCommand(id: id, verb: error.verb)
            }
        }
        if nextCommandID >= Self.maxCommands {
            closed = true
            outputs.append(.reply(.proxy(421, "4.7.0", "\(hostname) Error: too many errors"), answering: answering))
            outputs.append(.close(by: .proxy, reason: .error))
        } else {
            outputs.append(.reply(.proxy(503, "5.5.1", "Error: bad sequence of commands: this session was refused, send QUIT"), answering: answering))
        }
        return outputs
    }

    /// The client went away without QUIT.
    mutating func receiveClientClosed() -> [Output] {
        guard !closed else { return [] }
        closed = true
        return [.close(by: .client, reason: .fin)]
    }

    /// The client stayed silent for the idle timeout.
    mutating func receiveTimeout() -> [Output] {
        guard !closed else { return [] }
        closed = true
        return [
            .reply(.proxy(421, "4.4.2", "\(hostname) Error: timeout exceeded"), answering: .unknown),
            .close(by: .proxy, reason: .timeout),
        ]
    }
}
