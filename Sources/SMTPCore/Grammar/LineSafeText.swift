/// CR, LF and NUL: the octets that would end an SMTP line early or that RFC 5321 §4.1.1 keeps out
/// of commands and replies. Text a rule or a template puts on the wire is checked (or made safe)
/// for them here, once.
extension String {
    /// Whether the text holds a CR, an LF or a NUL.
    public var containsLineBreakOrNUL: Bool {
        utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }

    /// The text with each CR, LF and NUL made a space, so it stays inside one line.
    public var lineBreaksAndNULAsSpaces: String {
        guard containsLineBreakOrNUL else { return self }
        return String(decoding: utf8.map { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 ? 0x20 : $0 }, as: UTF8.self)
    }
}
