import NIOCore
import SMTPCore

/// The replies `smtpscope sink` gives, with the codes and texts Postfix's smtpd uses
/// (RFC 5321 §4.2.2-§4.2.3, enhanced codes RFC 3463 / RFC 2034).
enum SinkReplies {
    static func greeting(_ hostname: String) -> SMTPReply {
        SMTPReply(code: 220, lines: ["\(hostname) ESMTP smtpscope sink"])
    }

    static func ehlo(_ hostname: String, _ configuration: SinkConfiguration) -> SMTPReply {
        SMTPReply(code: 250, lines: [
            hostname,
            "PIPELINING",
            "SIZE \(configuration.maxMessageOctets)",
            "8BITMIME",
            "CHUNKING",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
        ])
    }

    static func helo(_ hostname: String) -> SMTPReply { SMTPReply(code: 250, lines: [hostname]) }
    static let ok = SMTPReply(code: 250, lines: ["2.0.0 Ok"])
    static let senderOk = SMTPReply(code: 250, lines: ["2.1.0 Ok"])
    static let recipientOk = SMTPReply(code: 250, lines: ["2.1.5 Ok"])
    static let startData = SMTPReply(code: 354, lines: ["End data with <CR><LF>.<CR><LF>"])
    static func chunkReceived(_ octets: UInt64) -> SMTPReply { SMTPReply(code: 250, lines: ["2.0.0 Ok: \(octets) octets received"]) }
    static func queued(_ queueID: String) -> SMTPReply { SMTPReply(code: 250, lines: ["2.0.0 Ok: queued as \(queueID)"]) }
    static func bye() -> SMTPReply { SMTPReply(code: 221, lines: ["2.0.0 Bye"]) }
    static let vrfy = SMTPReply(code: 252, lines: ["2.0.0 Cannot VRFY user, but will accept message and attempt delivery"])
    static let help = SMTPReply(code: 214, lines: ["2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP"])

    static let needHelo = SMTPReply(code: 503, lines: ["5.5.1 Error: send HELO/EHLO first"])
    static let nestedMail = SMTPReply(code: 503, lines: ["5.5.1 Error: nested MAIL command"])
    static let needMail = SMTPReply(code: 503, lines: ["5.5.1 Error: need MAIL command"])
    static let needRecipient = SMTPReply(code: 503, lines: ["5.5.1 Error: need RCPT command"])
    static let dataAfterBDAT = SMTPReply(code: 503, lines: ["5.5.1 Error: DATA after BDAT in the same transaction"])
    static let unrecognized = SMTPReply(code: 500, lines: ["5.5.2 Error: command not recognized"])
    static let recipientAfterBDAT = SMTPReply(code: 503, lines: ["5.5.1 Error: RCPT after BDAT in the same transaction"])
    static let commandNotImplemented = SMTPReply(code: 502, lines: ["5.5.1 Error: command not implemented"])
    static let authNotEnabled = SMTPReply(code: 503, lines: ["5.5.1 Error: authentication not enabled"])
    static let lineTooLong = SMTPReply(code: 500, lines: ["5.5.2 Error: line too long"])
    static let emptyChunkWithoutLast = SMTPReply(code: 501, lines: ["5.5.4 Error: BDAT 0 needs LAST"])
    static func unsupportedParameter(_ keyword: String) -> SMTPReply {
        SMTPReply(code: 555, lines: ["5.5.4 Unsupported option: \(keyword)"])
    }
    static let badSize = SMTPReply(code: 501, lines: ["5.5.4 Bad message size syntax"])
    static let badBody = SMTPReply(code: 501, lines: ["5.5.4 Bad BODY parameter syntax"])
    static let messageTooBig = SMTPReply(code: 552, lines: ["5.3.4 Message size exceeds fixed limit"])
    static let messageFileTooBig = SMTPReply(code: 552, lines: ["5.3.4 Error: message file too big"])
    static let badSender = SMTPReply(code: 501, lines: ["5.1.7 Bad sender address syntax"])
    static let badRecipient = SMTPReply(code: 501, lines: ["5.1.3 Bad recipient address syntax"])
    static let needSMTPUTF8 = SMTPReply(code: 553, lines: ["5.6.7 Error: non-ASCII address needs SMTPUTF8"])
    static let tooManyRecipients = SMTPReply(code: 452, lines: ["4.5.3 Error: too many recipients"])
    static let bareLF = SMTPReply(code: 550, lines: ["5.5.2 Error: bare <LF> received"])
    static let bareCR = SMTPReply(code: 550, lines: ["5.5.2 Error: bare <CR> received"])
    static let nul = SMTPReply(code: 550, lines: ["5.5.2 Error: NUL character received"])
    static func tooManyErrors(_ hostname: String) -> SMTPReply {
        SMTPReply(code: 421, lines: ["4.7.0 \(hostname) Error: too many errors"])
    }
    static func timeout(_ hostname: String) -> SMTPReply {
        SMTPReply(code: 421, lines: ["4.4.2 \(hostname) Error: timeout exceeded"])
    }
    static func tooManyConnections(_ hostname: String) -> SMTPReply {
        SMTPReply(code: 421, lines: ["4.3.2 \(hostname) Error: too many connections"])
    }
    static func shuttingDown(_ hostname: String) -> SMTPReply {
        SMTPReply(code: 421, lines: ["4.3.2 \(hostname) Service shutting down"])
    }
    static let storeFailed = SMTPReply(code: 451, lines: ["4.3.0 Error: queue file write error"])

    static func commandError(_ error: SMTPCommandError) -> SMTPReply {
        SMTPReply(code: error.code, lines: ["\(error.enhanced) \(error.text)"])
    }

    /// Appends the reply in wire form, every line ending in CRLF (RFC 5321 §4.2.1).
    static func write(_ reply: SMTPReply, to buffer: inout ByteBuffer) {
        for line in reply.wireLines {
            buffer.writeString(line)
            buffer.writeStaticString("\r\n")
        }
    }
}
