import SMTPCore

/// A position in a rules file: 1-based line and column (columns count Unicode scalars).
struct RulePosition: Sendable, Hashable {
    var line: Int
    var column: Int
}

/// A double-quoted string of the rule language, split into literal text and `${...}` interpolations.
struct RuleStringLiteral: Sendable, Hashable {
    enum Part: Sendable, Hashable {
        case text(String)
        /// `${field}`; the position is that of the field name.
        case field(String, RulePosition)
        /// `${1}`: a capture of the rule's last successful `matches`.
        case capture(Int, RulePosition)
        /// `${limit_count(name)}`: a limit's current count (the name unquoted: a quote would end the
        /// string); the position is that of the limit's name.
        case limitCount(String, RulePosition)
    }

    var parts: [Part]

    var isInterpolated: Bool {
        parts.contains { if case .text = $0 { false } else { true } }
    }

    /// The literal text, interpolations left out.
    var text: String {
        parts.reduce(into: "") { result, part in
            if case .text(let text) = part { result += text }
        }
    }

    /// CR, LF or NUL in the literal text: a check-time error in an action string.
    var containsLineBreakOrNUL: Bool { text.containsLineBreakOrNUL }
}

/// The comparison operators spelled with symbols.
enum RuleComparisonSymbol: String, Sendable, Hashable {
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
}

/// One lexical token of a rules file.
struct RuleToken: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        /// A bare word: keyword, field, list name, number, size, IP address or CIDR, enhanced code.
        case word(String)
        case string(RuleStringLiteral)
        /// `/pattern/flags`; only directly after `matches`.
        case regex(pattern: String, flags: String)
        case leftParen, rightParen, leftBracket, rightBracket, comma, assign
        case comparison(RuleComparisonSymbol)
        case end
    }

    var kind: Kind
    var position: RulePosition
    /// For a regex, the position of the first character of the pattern (after the opening slash).
    var innerPosition: RulePosition

    init(_ kind: Kind, _ position: RulePosition, inner: RulePosition? = nil) {
        self.kind = kind
        self.position = position
        self.innerPosition = inner ?? position
    }

    var word: String? {
        if case .word(let word) = kind { return word }
        return nil
    }

    /// How the token reads in an error message.
    var spelling: String {
        switch kind {
        case .word(let word): "'\(word)'"
        case .string(let literal): "string \"\(literal.text.prefix(40))\""
        case .regex: "a regex"
        case .leftParen: "'('"
        case .rightParen: "')'"
        case .leftBracket: "'['"
        case .rightBracket: "']'"
        case .comma: "','"
        case .assign: "'='"
        case .comparison(let symbol): "'\(symbol.rawValue)'"
        case .end: "the end of the file"
        }
    }
}
