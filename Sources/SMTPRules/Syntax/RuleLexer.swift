/// Splits a rules file into tokens with positions. The language is free-form: newlines are white
/// space, `#` starts a comment to the end of the line, strings and regexes stay on one line.
///
/// ```
/// word    = (ALPHA / DIGIT / "_" / "::") *(ALPHA / DIGIT / "_" / "." / ":" / "/" DIGIT)
/// string  = DQUOTE *(char / "\" ("\" / DQUOTE / "n" / "r" / "t" / "0" / "$") / "${" name "}") DQUOTE
/// regex   = "/" *(char / "\" char) "/" *ALPHA          ; only right after the word `matches`
/// symbol  = "(" / ")" / "[" / "]" / "," / "=" / "==" / "!=" / "<" / "<=" / ">" / ">="
/// ```
struct RuleLexer {
    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var lineStart = 0
    private(set) var diagnostics: [(RulePosition, String, String?)] = []

    init(_ text: String) {
        bytes = Array(text.utf8)
    }

    /// Every token of the file, ending with `.end`.
    static func tokenize(_ text: String) -> (tokens: [RuleToken], errors: [(RulePosition, String, String?)]) {
        var lexer = RuleLexer(text)
        var tokens: [RuleToken] = []
        while true {
            let token = lexer.next(after: tokens.last)
            tokens.append(token)
            if token.kind == .end { break }
        }
        return (tokens, lexer.diagnostics)
    }

    /// The last computed column and its offset, so columns on a long line cost O(line) in total, not
    /// O(line) per token.
    private var columnCache: (offset: Int, column: Int) = (0, 1)

    private var position: RulePosition {
        mutating get { position(at: index) }
    }

    private mutating func position(at offset: Int) -> RulePosition {
        var (cursor, column) = columnCache
        if cursor < lineStart || cursor > offset {
            (cursor, column) = (lineStart, 1)
        }
        while cursor < offset {
            // Count scalars: skip UTF-8 continuation bytes.
            if bytes[cursor] & 0xC0 != 0x80 { column += 1 }
            cursor += 1
        }
        columnCache = (offset, column)
        return RulePosition(line: line, column: column)
    }

    private mutating func error(_ at: RulePosition, _ message: String, hint: String? = nil) {
        diagnostics.append((at, message, hint))
    }

    private mutating func skipSpaceAndComments() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0D:
                index += 1
            case 0x0A:
                index += 1
                line += 1
                lineStart = index
            case UInt8(ascii: "#"):
                while index < bytes.count, bytes[index] != 0x0A { index += 1 }
            default:
                return
            }
        }
    }

    private static func isWordStart(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: "_")
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A)
    }

    private func byte(at offset: Int) -> UInt8? {
        offset < bytes.count ? bytes[offset] : nil
    }

    /// The next token; unexpected characters are reported and skipped (in a loop: a file of garbage must
    /// not recurse once per character).
    mutating func next(after previous: RuleToken?) -> RuleToken {
        while true {
            if let token = nextOrSkip(after: previous) { return token }
        }
    }

    private mutating func nextOrSkip(after previous: RuleToken?) -> RuleToken? {
        skipSpaceAndComments()
        let start = position
        guard index < bytes.count else { return RuleToken(.end, start) }
        let first = bytes[index]
        if first == UInt8(ascii: "/"), previous?.word == "matches" {
            return lexRegex(start)
        }
        if Self.isWordStart(first) || (first == UInt8(ascii: ":") && byte(at: index + 1) == UInt8(ascii: ":")) {
            let begin = index
            while let byte = byte(at: index) {
                if Self.isWordStart(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":") {
                    index += 1
                } else if byte == UInt8(ascii: "/"), let after = self.byte(at: index + 1), after >= 0x30, after <= 0x39 {
                    index += 1
                } else {
                    break
                }
            }
            return RuleToken(.word(String(decoding: bytes[begin..<index], as: UTF8.self)), start)
        }
        switch first {
        case UInt8(ascii: "\""):
            return lexString(start)
        case UInt8(ascii: "("):
            index += 1
            return RuleToken(.leftParen, start)
        case UInt8(ascii: ")"):
            index += 1
            return RuleToken(.rightParen, start)
        case UInt8(ascii: "["):
            index += 1
            return RuleToken(.leftBracket, start)
        case UInt8(ascii: "]"):
            index += 1
            return RuleToken(.rightBracket, start)
        case UInt8(ascii: ","):
            index += 1
            return RuleToken(.comma, start)
        case UInt8(ascii: "="):
            index += 1
            if byte(at: index) == UInt8(ascii: "=") {
                index += 1
                return RuleToken(.comparison(.equal), start)
            }
            return RuleToken(.assign, start)
        case UInt8(ascii: "!"):
            if byte(at: index + 1) == UInt8(ascii: "=") {
                index += 2
                return RuleToken(.comparison(.notEqual), start)
            }
        case UInt8(ascii: "<"), UInt8(ascii: ">"):
            let orEqual = byte(at: index + 1) == UInt8(ascii: "=")
            index += orEqual ? 2 : 1
            let symbol: RuleComparisonSymbol =
                first == UInt8(ascii: "<") ? (orEqual ? .lessOrEqual : .less) : (orEqual ? .greaterOrEqual : .greater)
            return RuleToken(.comparison(symbol), start)
        case UInt8(ascii: "/"):
            error(start, "a regex must follow 'matches'", hint: "write: field matches /pattern/flags")
            index += 1
            return nil
        default:
            break
        }
        // One unexpected scalar: report it and go on.
        let begin = index
        index += 1
        while let byte = byte(at: index), byte & 0xC0 == 0x80 { index += 1 }
        let character = String(decoding: bytes[begin..<index], as: UTF8.self)
        let shown = first < 0x20 || first == 0x7F ? "control character 0x\(String(first, radix: 16))" : "'\(character)'"
        error(start, "unexpected \(shown)", hint: first == UInt8(ascii: "'") ? "strings are written in double quotes" : nil)
        return nil
    }

    private mutating func lexString(_ start: RulePosition) -> RuleToken {
        index += 1  // opening quote
        var parts: [RuleStringLiteral.Part] = []
        var text: [UInt8] = []
        func flush() {
            if !text.isEmpty {
                parts.append(.text(String(decoding: text, as: UTF8.self)))
                text.removeAll()
            }
        }
        while true {
            guard let byte = byte(at: index), byte != 0x0A else {
                error(start, "unterminated string", hint: "close it with \" on the same line")
                flush()
                return RuleToken(.string(RuleStringLiteral(parts: parts)), start)
            }
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                flush()
                return RuleToken(.string(RuleStringLiteral(parts: parts)), start)
            case UInt8(ascii: "\\"):
                let escapePosition = position
                index += 1
                let escaped = self.byte(at: index)
                switch escaped {
                case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "$"):
                    text.append(escaped ?? 0)
                case UInt8(ascii: "n"): text.append(0x0A)
                case UInt8(ascii: "r"): text.append(0x0D)
                case UInt8(ascii: "t"): text.append(0x09)
                case UInt8(ascii: "0"): text.append(0x00)
                default:
                    error(escapePosition, "unknown escape in string", hint: "escapes are \\\\ \\\" \\$ \\n \\r \\t \\0")
                    if escaped == nil || escaped == 0x0A { continue }
                }
                index += 1
            case UInt8(ascii: "$") where self.byte(at: index + 1) == UInt8(ascii: "{"):
                flush()
                index += 2
                let namePosition = position
                let begin = index
                while let c = self.byte(at: index), Self.isWordStart(c) || c == UInt8(ascii: ".") { index += 1 }
                let name = String(decoding: bytes[begin..<index], as: UTF8.self)
                if name == "limit_count", self.byte(at: index) == UInt8(ascii: "(") {
                    if let part = lexLimitCount(at: namePosition) { parts.append(part) }
                    continue
                }
                guard self.byte(at: index) == UInt8(ascii: "}"), !name.isEmpty else {
                    error(namePosition, "interpolation '${' is not closed by '}' after a field name or capture number",
                          hint: "write ${mail_from.domain} or ${1}; a literal $ is \\$")
                    continue
                }
                index += 1
                if name.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
                    if let number = Int(name), number <= 99 {
                        parts.append(.capture(number, namePosition))
                    } else {
                        error(namePosition, "capture number \(name) is too large", hint: "captures are ${0} to ${99}")
                    }
                } else {
                    parts.append(.field(name, namePosition))
                }
            default:
                text.append(byte)
                index += 1
            }
        }
    }

    /// `(name)}` after `${limit_count`: a limit name is unquoted here, since a quote would end the
    /// string. On a mistake the rest of the interpolation is left as text, as for `${`.
    private mutating func lexLimitCount(at position: RulePosition) -> RuleStringLiteral.Part? {
        index += 1  // "("
        let namePosition = self.position
        let begin = index
        while let c = byte(at: index), LimitName.isNameByte(c) { index += 1 }
        let name = String(decoding: bytes[begin..<index], as: UTF8.self)
        guard !name.isEmpty, byte(at: index) == UInt8(ascii: ")"), byte(at: index + 1) == UInt8(ascii: "}") else {
            error(position, "'${limit_count(' is not closed by a limit name and ')}'",
                  hint: "write ${limit_count(user-hourly)}: the limit's name without quotes")
            return nil
        }
        index += 2
        return .limitCount(name, namePosition)
    }

    private mutating func lexRegex(_ start: RulePosition) -> RuleToken {
        index += 1
        let inner = position
        var pattern: [UInt8] = []
        while true {
            guard let byte = byte(at: index), byte != 0x0A else {
                error(start, "unterminated regex", hint: "close it with / on the same line; write \\/ for a slash")
                return RuleToken(.regex(pattern: String(decoding: pattern, as: UTF8.self), flags: ""), start, inner: inner)
            }
            if byte == UInt8(ascii: "/") {
                index += 1
                break
            }
            pattern.append(byte)
            index += 1
            if byte == UInt8(ascii: "\\"), let escaped = self.byte(at: index), escaped != 0x0A {
                pattern.append(escaped)
                index += 1
            }
        }
        let flagsBegin = index
        while let byte = byte(at: index), Self.isAlphanumeric(byte) { index += 1 }
        let flags = String(decoding: bytes[flagsBegin..<index], as: UTF8.self)
        return RuleToken(.regex(pattern: String(decoding: pattern, as: UTF8.self), flags: flags), start, inner: inner)
    }
}
