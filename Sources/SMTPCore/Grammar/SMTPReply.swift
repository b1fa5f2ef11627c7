/// A complete SMTP reply, single- or multi-line (RFC 5321 §4.2).
///
/// `lines` hold each line's text after the code and its separator, without CRLF.
public struct SMTPReply: Sendable, Hashable {
    /// The three-digit reply code of the last line, which is the one that counts (RFC 5321 §4.2.1).
    public var code: Int
    public var lines: [String]
    /// The enhanced status code at the start of the first line, if any (RFC 2034 §4).
    public var enhancedStatusCode: EnhancedStatusCode?
    /// Lines beyond `SMTPLimits.maxReplyLines` that were counted but not kept.
    public var droppedLines: Int
    /// True when continuation lines carried a code other than the final one (RFC 5321 §4.2.1 says
    /// they must agree; a proxy treats it as an upstream protocol error).
    public var hasMixedCodes: Bool
    /// True when a line's text held a CR or a NUL, which RFC 5321 §4.2 `textstring` excludes: a
    /// proxy treats it as an upstream protocol error, a passive reader keeps the reply.
    public var hasControlOctets = false

    public init(code: Int, lines: [String], droppedLines: Int = 0, hasMixedCodes: Bool = false) {
        self.code = code
        self.lines = lines
        self.droppedLines = droppedLines
        self.hasMixedCodes = hasMixedCodes
        if let first = lines.first {
            self.enhancedStatusCode = EnhancedStatusCode.parse(prefixOf: Substring(first).utf8)?.0
        } else {
            self.enhancedStatusCode = nil
        }
    }

    /// 2, 3, 4 or 5 (RFC 5321 §4.2.1 first digit).
    public var codeClass: Int { code / 100 }
    public var isPositiveCompletion: Bool { codeClass == 2 }
    public var isPositiveIntermediate: Bool { codeClass == 3 }
    public var isTransientNegative: Bool { codeClass == 4 }
    public var isPermanentNegative: Bool { codeClass == 5 }

    /// The text of all lines joined with "\n", the enhanced code left in place.
    public var text: String { lines.joined(separator: "\n") }

    /// The text with the enhanced status code removed from the first line.
    public var textWithoutEnhancedCode: String {
        guard let first = lines.first, let (_, length) = EnhancedStatusCode.parse(prefixOf: Substring(first).utf8) else {
            return text
        }
        let rest = first.utf8.dropFirst(length).drop { $0 == UInt8(ascii: " ") }
        let stripped = String(Substring(rest))
        // Most replies are one line: no array to build and join.
        guard lines.count > 1 else { return stripped }
        return ([stripped] + lines.dropFirst()).joined(separator: "\n")
    }

    /// The reply as one line per text line, as it appears on the wire without CRLF.
    public var wireLines: [String] {
        if lines.isEmpty { return ["\(code)"] }
        return lines.enumerated().map { index, line in
            let separator = index == lines.count - 1 ? " " : "-"
            return line.isEmpty && index == lines.count - 1 ? "\(code)" : "\(code)\(separator)\(line)"
        }
    }
}

extension SMTPReply {
    /// EHLO keywords and parameters, from the lines after the first (RFC 5321 §4.1.1.1).
    public var ehloExtensions: [String] {
        lines.dropFirst().map { $0.trimmingASCIISpaces() }.filter { !$0.isEmpty }
    }
}

extension String {
    func trimmingASCIISpaces() -> String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }
}
