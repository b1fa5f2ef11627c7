import NIOCore

/// Assembles reply lines into complete replies (RFC 5321 §4.2:
/// `Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF`).
///
/// Continuation lines beyond `maxLines` are counted, not kept, so a 10 000-line reply costs a
/// bounded amount of memory.
public struct ReplyAssembler: Sendable {
    public enum Output: Sendable, Hashable {
        case reply(SMTPReply)
        /// A line that is not a reply line (no three-digit code from 2xx to 5xx, or a bad
        /// separator). Any reply being assembled is abandoned.
        case malformed(String)
    }

    public var maxLines: Int
    private var lines: [String] = []
    private var firstCode: Int?
    private var mixedCodes = false
    private var droppedLines = 0
    private var controlOctets = false

    public init(maxLines: Int = SMTPLimits().maxReplyLines) {
        self.maxLines = maxLines
    }

    /// True while a multi-line reply has started but not ended.
    public var isInsideReply: Bool { firstCode != nil }

    public mutating func receive(line: ByteBuffer) -> Output? {
        let view = line.readableBytesView
        guard view.count >= 3,
            let d0 = asciiDigit(view[view.startIndex]), (2...5).contains(d0),
            let d1 = asciiDigit(view[view.startIndex + 1]),
            let d2 = asciiDigit(view[view.startIndex + 2])
        else {
            reset()
            return .malformed(String(decoding: view, as: UTF8.self))
        }
        let code = d0 * 100 + d1 * 10 + d2
        let separator: UInt8? = view.count > 3 ? view[view.startIndex + 3] : nil
        guard separator == nil || separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else {
            reset()
            return .malformed(String(decoding: view, as: UTF8.self))
        }
        // RFC 5321 §4.2 `textstring` holds no CR and no NUL (the framer has taken the CRLF off).
        // The reply is still a reply, as its server meant it (a passive reader follows the server),
        // but it is marked: relayed, such a line would reach the client as a line break of its own
        // (found by RelayFuzzer: "220 up ESMTP\rBoo").
        if !controlOctets, view.contains(where: { $0 == UInt8(ascii: "\r") || $0 == 0 }) { controlOctets = true }
        let text = view.count > 4 ? String(decoding: view.dropFirst(4), as: UTF8.self) : ""
        if let firstCode, firstCode != code { mixedCodes = true }
        if firstCode == nil { firstCode = code }
        if lines.count < maxLines {
            lines.append(text)
        } else {
            droppedLines += 1
        }
        if separator == UInt8(ascii: "-") { return nil }
        var reply = SMTPReply(code: code, lines: lines, droppedLines: droppedLines, hasMixedCodes: mixedCodes)
        reply.hasControlOctets = controlOctets
        reset()
        return .reply(reply)
    }

    public mutating func reset() {
        lines.removeAll(keepingCapacity: true)
        firstCode = nil
        mixedCodes = false
        controlOctets = false
        droppedLines = 0
    }
}
