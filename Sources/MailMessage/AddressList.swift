/// Parses RFC 5322 §3.4 `address-list` / `mailbox-list` field bodies into ``Mailbox`` values.
///
/// Groups (`undisclosed-recipients:;`, `Team: a@x, b@y;`) are flattened to their members. Display
/// names may be atoms, quoted strings (with `\` escapes) and RFC 2047 encoded words; comments are
/// dropped, except that the obsolete `addr (Name)` form takes the comment as the display name; an
/// obsolete route in an angle-addr (`<@a,@b:u@c>`, RFC 5322 §4.4) is dropped. Parsing is lenient
/// and never fails: unparseable pieces are skipped.
public enum AddressList {
    /// Mailboxes returned at most.
    public static let maxMailboxes = 1000

    public static func parse(_ text: String) -> [Mailbox] {
        var tokens = AddressTokenizer(Array(text.utf8))
        var mailboxes: [Mailbox] = []
        var phrase: [AddressToken] = []
        // The tokens of the item's angle-addr, once "<" was seen.
        var angle: [AddressToken]?
        var insideAngle = false

        func finishItem() {
            if mailboxes.count < maxMailboxes, let mailbox = makeMailbox(phrase: phrase, angle: angle) {
                mailboxes.append(mailbox)
            }
            phrase.removeAll()
            angle = nil
            insideAngle = false
        }

        while let token = tokens.next() {
            if insideAngle {
                if token == .special(0x3E) {
                    insideAngle = false
                    // Junk between ">" and the next separator is ignored.
                    tokens.skipToSeparator()
                } else if token == .special(0x2C), angle?.first != .special(0x40) {
                    // A comma ends an unclosed angle-addr, unless it is inside an obsolete route.
                    finishItem()
                } else {
                    angle?.append(token)
                }
                continue
            }
            switch token {
            case .special(0x3C):
                angle = []
                insideAngle = true
            case .special(0x2C), .special(0x3B):
                finishItem()
            case .special(0x3A):
                // The display name of a group: its members follow.
                phrase.removeAll()
            default:
                phrase.append(token)
            }
        }
        finishItem()
        return mailboxes
    }

    private static func makeMailbox(phrase: [AddressToken], angle: [AddressToken]?) -> Mailbox? {
        if var spec = angle {
            if spec.first == .special(0x40), let colon = spec.firstIndex(of: .special(0x3A)) {
                spec.removeSubrange(...colon)
            }
            let (address, domain) = render(spec)
            guard !address.isEmpty else { return nil }
            let name = displayName(phrase)
            return Mailbox(displayName: name, address: address, domain: domain)
        }
        let (address, domain) = render(phrase)
        guard !address.isEmpty else { return nil }
        var name: String?
        for case .comment(let text) in phrase {
            let decoded = ASCII.trimmed(EncodedWord.decode(text))
            if !decoded.isEmpty {
                name = decoded
                break
            }
        }
        return Mailbox(displayName: name, address: address, domain: domain)
    }

    /// The addr-spec as written, and the part after its last `@`.
    private static func render(_ tokens: [AddressToken]) -> (address: String, domain: String?) {
        var out = ""
        var domainStart: String.Index?
        for token in tokens {
            switch token {
            case .atom(let text), .quoted(_, raw: let text), .domainLiteral(let text):
                out += text
            case .special(let octet):
                if octet == 0x40 {
                    out += "@"
                    domainStart = out.endIndex
                } else if octet == 0x2E {
                    out += "."
                }
            case .comment:
                break
            }
        }
        guard let domainStart else { return (out, nil) }
        let domain = String(out[domainStart...])
        return (out, domain.isEmpty ? nil : domain)
    }

    /// display-name = phrase (RFC 5322 §3.2.5): words joined by single spaces, then RFC 2047-decoded.
    private static func displayName(_ tokens: [AddressToken]) -> String? {
        var words: [String] = []
        for token in tokens {
            switch token {
            case .atom(let text), .domainLiteral(let text):
                words.append(text)
            case .quoted(let text, _):
                words.append(text)
            case .special(let octet):
                // obs-phrase allows "." between words; other specials here are junk.
                if octet == 0x2E {
                    if let last = words.popLast() { words.append(last + ".") } else { words.append(".") }
                }
            case .comment:
                break
            }
        }
        let name = ASCII.trimmed(EncodedWord.decode(words.joined(separator: " ")))
        return name.isEmpty ? nil : name
    }
}

enum AddressToken: Equatable {
    case atom(String)
    /// The unescaped content, and the quoted string as written.
    case quoted(String, raw: String)
    case comment(String)
    case domainLiteral(String)
    /// One of the specials `< > , : ; @ .` (RFC 5322 §3.2.3).
    case special(UInt8)
}

/// Splits an address field body into RFC 5322 §3.2 lexical tokens, dropping whitespace.
struct AddressTokenizer {
    private let input: [UInt8]
    private var index = 0

    private static let quote: UInt8 = 0x22
    private static let backslash: UInt8 = 0x5C
    private static let specials: Set<UInt8> = [0x3C, 0x3E, 0x2C, 0x3A, 0x3B, 0x40, 0x2E]

    init(_ input: [UInt8]) {
        self.input = input
    }

    mutating func next() -> AddressToken? {
        while index < input.count, input[index] <= ASCII.space || input[index] == 0x7F {
            index += 1
        }
        guard index < input.count else { return nil }
        let octet = input[index]
        if Self.specials.contains(octet) {
            index += 1
            return .special(octet)
        }
        if octet == Self.quote {
            return readQuoted()
        }
        if octet == 0x28 {
            return .comment(readComment())
        }
        if octet == 0x5B {
            let start = index
            while index < input.count, input[index] != 0x5D { index += 1 }
            index = min(index + 1, input.count)
            return .domainLiteral(String(decoding: input[start..<index], as: UTF8.self))
        }
        let start = index
        while index < input.count {
            let current = input[index]
            if current <= ASCII.space || current == 0x7F || Self.specials.contains(current)
                || current == Self.quote || current == 0x28 || current == 0x5B
            {
                break
            }
            index += 1
        }
        if index == start {
            // Cannot happen (every stop octet is handled above), but never loop or recurse on it.
            index += 1
            return .atom(String(decoding: input[start..<index], as: UTF8.self))
        }
        return .atom(String(decoding: input[start..<index], as: UTF8.self))
    }

    /// Skips to the next "," or ";" without consuming it (junk after an angle-addr).
    mutating func skipToSeparator() {
        while let peeked = peekSpecialOrAdvance() {
            if peeked == 0x2C || peeked == 0x3B { return }
        }
    }

    private mutating func peekSpecialOrAdvance() -> UInt8? {
        guard index < input.count else { return nil }
        let octet = input[index]
        if octet == 0x2C || octet == 0x3B { return octet }
        if octet == Self.quote {
            _ = readQuoted()
        } else if octet == 0x28 {
            _ = readComment()
        } else {
            index += 1
        }
        return 0
    }

    private mutating func readQuoted() -> AddressToken {
        let start = index
        index += 1
        var content: [UInt8] = []
        while index < input.count, input[index] != Self.quote {
            if input[index] == Self.backslash, index + 1 < input.count { index += 1 }
            if input[index] != ASCII.cr, input[index] != ASCII.lf { content.append(input[index]) }
            index += 1
        }
        index = min(index + 1, input.count)
        return .quoted(
            String(decoding: content, as: UTF8.self),
            raw: String(decoding: input[start..<index], as: UTF8.self)
        )
    }

    /// A comment, nested comments flattened into it, without the outer parentheses.
    private mutating func readComment() -> String {
        var depth = 0
        var content: [UInt8] = []
        while index < input.count {
            let octet = input[index]
            if octet == Self.backslash, index + 1 < input.count {
                content.append(input[index + 1])
                index += 2
                continue
            }
            index += 1
            if octet == 0x28 {
                depth += 1
                if depth == 1 { continue }
            } else if octet == 0x29 {
                depth -= 1
                if depth == 0 { break }
            }
            content.append(octet)
        }
        return String(decoding: content, as: UTF8.self)
    }
}
