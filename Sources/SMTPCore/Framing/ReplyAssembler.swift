import NIOCore

/// Assembles reply lines into complete replies (RFC 5321 §4.2:
/// `Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF`).
///
/// Continuation lines beyond `maxLines` are counted, not kept, so a 10 000-line reply costs a
/// bounded amount of memory.
public struct ReplyAssembler: Sendable {
    public enum Output: Sendable, Hashable {
        case reply(SMTPReply)
        /// A line that is not a reply line (no three-digit code from 2xx to 5xx, a bad separator,
        /// or a CR or NUL in it). Any reply being assembled is abandoned.
        case malformed(String)
    }

    public var maxLines: Int
    private var lines: [String] = []
    private var firstCode: Int?
    private var mixedCodes = false
    private var droppedLines = 0

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
        // RFC 5321 §4.2 `textstring` holds no CR and no NUL (the framer has taken the CRLF off): a
        // reply that carries one would reach the client as a line break of its own when relayed
        // (found by RelayFuzzer: "220 up ESMTP\rBoo").
        guard !view.contains(UInt8(ascii: "\r")), !view.contains(0) else {
            reset()
            return .malformed(String(decoding: view, as: UTF8.self))
        }
        let text = view.count > 4 ? String(decoding: view.dropFirst(4), as: UTF8.self) : ""
        if let firstCode, firstCode != code { mixedCodes = true }
        if firstCode == nil { firstCode = code }
        if lines.count < maxLines {
            lines.append(text)
        } else {
            droppedLines += 1
        }
        if separator == UInt8(ascii: "-") { return nil }
        let reply = SMTPReply(code: code, lines: lines, droppedLines: droppedLines, hasMixedCodes: mixedCodes)
        reset()
        return .reply(reply)
    }

    public mutating func reset() {
        lines.removeAll(keepingCapacity: true)
        firstCode = nil
        mixedCodes = false
        droppedLines = 0
    }
}
