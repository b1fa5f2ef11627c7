import NIOCore
import SMTPCore

/// Replies the proxy writes itself, and any reply as it goes on the wire.
extension SMTPReply {
    /// A reply the proxy makes itself: `code enhanced text` on one line.
    static func proxy(_ code: Int, _ enhanced: String?, _ text: String) -> SMTPReply {
        SMTPReply(code: code, lines: [enhanced.map { "\($0) \(text)" } ?? text])
    }

    /// A CR, LF or NUL in rule text becomes a space; it never reaches the wire.
    init(_ reply: PolicyReply) {
        let text = String(String.UnicodeScalarView(reply.text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
        self.init(code: reply.code, lines: [reply.enhanced.map { "\($0) \(text)" } ?? text])
    }

    /// The reply as it goes on the wire, CRLF after each line.
    func write(into buffer: inout ByteBuffer) {
        for line in wireLines {
            buffer.writeString(line)
            buffer.writeStaticString("\r\n")
        }
    }
}
