import SMTPCore

/// An action's string with its `${field}` and `${1}` interpolations bound. Rendering replaces CR, LF
/// and NUL with spaces and caps the length, so no value from the envelope or a
/// header can put a line break on the wire.
struct RuleTemplate: Sendable, Hashable {
    enum Part: Sendable, Hashable {
        case text(String)
        case field(FieldAccessor)
        case capture(Int)
    }

    var parts: [Part]
    var maxLength: Int

    func reads(where matches: (FieldAccessor) -> Bool) -> Bool {
        parts.contains { if case .field(let field) = $0 { matches(field) } else { false } }
    }

    func render(_ facts: RuleFacts, captures: [String?]) -> String {
        var result = ""
        var length = 0
        // Each piece is cut to the remaining budget before it is copied, so interpolating a 10 MB body
        // costs no more than interpolating a short one.
        func append(_ piece: String) {
            guard length < maxLength else { return }
            let cut = Self.prefix(piece, maxOctets: maxLength - length)
            result += cut
            length += cut.utf8.count
        }
        for part in parts {
            switch part {
            case .text(let text):
                append(text)
            case .field(let field):
                for (i, value) in field.values(facts).enumerated() {
                    if i > 0 { append(", ") }
                    append(value.text)
                    if length >= maxLength { break }
                }
            case .capture(let number):
                if number < captures.count, let capture = captures[number] { append(capture) }
            }
        }
        return Self.sanitise(result, maxLength: maxLength)
    }

    /// At most `maxOctets` octets of `text`, cut on a Unicode scalar boundary.
    static func prefix(_ text: String, maxOctets: Int) -> String {
        let utf8 = text.utf8
        guard utf8.count > maxOctets else { return text }
        var end = utf8.index(utf8.startIndex, offsetBy: maxOctets)
        while end > utf8.startIndex, utf8[end] & 0xC0 == 0x80 { end = utf8.index(before: end) }
        return String(decoding: utf8[..<end], as: UTF8.self)
    }

    /// CR, LF and NUL become spaces; the text is cut at `maxLength` octets on a scalar boundary.
    static func sanitise(_ text: String, maxLength: Int) -> String {
        prefix(text.lineBreaksAndNULAsSpaces, maxOctets: maxLength)
    }
}
