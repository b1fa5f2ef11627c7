/// A reverse-path or forward-path of MAIL or RCPT (RFC 5321 §4.1.2).
///
/// `address` is the mailbox as sent, without angle brackets and without a source route; "" is the
/// null reverse-path `<>`. The parser is lenient the way Postfix is by default
/// (`smtpd_strict_rfc821_envelopes = no`): a space after the colon is accepted, and a path without
/// angle brackets is accepted but marked not valid; neither is ever rewritten, so the server's own
/// verdict decides.
public struct SMTPPath: Sendable, Hashable {
    public var address: String
    /// The `A-d-l` source route, e.g. "@a,@b", which RFC 5321 §4.1.1.3 says to accept and ignore.
    public var sourceRoute: String?
    public var hadAngleBrackets: Bool
    /// True when `address` is `Mailbox` per RFC 5321 §4.1.2 (or the null path).
    public var isSyntacticallyValid: Bool

    public init(address: String, sourceRoute: String? = nil, hadAngleBrackets: Bool = true, isSyntacticallyValid: Bool = true) {
        self.address = address
        self.sourceRoute = sourceRoute
        self.hadAngleBrackets = hadAngleBrackets
        self.isSyntacticallyValid = isSyntacticallyValid
    }

    public var isNull: Bool { address.isEmpty }

    /// Characters outside US-ASCII, which need SMTPUTF8 (RFC 6531 §3.2).
    public var isASCII: Bool { address.utf8.allSatisfy { $0 < 0x80 } }

    /// The part before the last "@" outside a quoted string; the whole address when there is none.
    public var localPart: String { split.local }
    /// The part after the last "@" outside a quoted string; `nil` when there is none.
    public var domain: String? { split.domain }

    private var split: (local: String, domain: String?) {
        let text = Substring(address)
        guard let at = indicesOutsideQuotedStrings(of: "@", in: text).last else { return (address, nil) }
        return (String(text[..<at]), String(text[text.index(after: at)...]))
    }

    /// The path as written in a command: `<source-route:address>`.
    public var wireForm: String {
        if let sourceRoute { return "<\(sourceRoute):\(address)>" }
        return "<\(address)>"
    }
}

extension SMTPPath {
    /// Parses `Path [SP Mail-parameters]` after "FROM:" or "TO:", returning the path and the text of
    /// the parameters.
    static func parse(_ text: Substring) -> (SMTPPath, Substring)? {
        var rest = text.drop(while: { $0 == " " })
        guard !rest.isEmpty else { return nil }
        if rest.first == "<" {
            // The closing bracket is the first ">" outside a quoted string.
            let close = indicesOutsideQuotedStrings(of: ">", in: rest, stopAtFirst: true).first
            guard let close else { return nil }
            var inner = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(after: close)...]
            var sourceRoute: String?
            if inner.first == "@", let colon = inner.firstIndex(of: ":") {
                sourceRoute = String(inner[..<colon])
                inner = inner[inner.index(after: colon)...]
            }
            let address = String(inner)
            let valid = address.isEmpty ? sourceRoute == nil : isMailbox(address) && (sourceRoute.map(isADL) ?? true)
            let parameters = rest.drop(while: { $0 == " " })
            // Text glued to ">" without a space is malformed ("<a@b>SIZE=1").
            if !rest.isEmpty && rest.first != " " {
                return (SMTPPath(address: address, sourceRoute: sourceRoute, hadAngleBrackets: true, isSyntacticallyValid: false), parameters)
            }
            return (SMTPPath(address: address, sourceRoute: sourceRoute, hadAngleBrackets: true, isSyntacticallyValid: valid), parameters)
        }
        // RFC 821-style bare address, accepted leniently.
        let end = rest.firstIndex(of: " ") ?? rest.endIndex
        let address = String(rest[..<end])
        return (SMTPPath(address: address, hadAngleBrackets: false, isSyntacticallyValid: false), rest[end...].drop(while: { $0 == " " }))
    }
}

/// Where `character` stands in `text` outside RFC 5321 quoted strings (`DQUOTE *QcontentSMTP
/// DQUOTE`, with backslash quoted-pairs), so that "@" or ">" inside `"u@b"` is never taken for a
/// separator.
func indicesOutsideQuotedStrings(of character: Character, in text: Substring, stopAtFirst: Bool = false) -> [Substring.Index] {
    var found: [Substring.Index] = []
    var inQuotes = false
    var escaped = false
    var index = text.startIndex
    while index < text.endIndex {
        let current = text[index]
        if escaped {
            escaped = false
        } else if current == "\\" && inQuotes {
            escaped = true
        } else if current == "\"" {
            inQuotes.toggle()
        } else if current == character && !inQuotes {
            found.append(index)
            if stopAtFirst { break }
        }
        index = text.index(after: index)
    }
    return found
}

/// `Mailbox = Local-part "@" ( Domain / address-literal )` (RFC 5321 §4.1.2), allowing UTF-8 as
/// RFC 6531 §3.3 does; whether SMTPUTF8 was requested is the caller's check.
func isMailbox(_ text: String) -> Bool {
    let path = SMTPPath(address: text)
    guard let domain = path.domain, !domain.isEmpty else { return false }
    let local = path.localPart
    // RFC 5321 §4.5.3.1.1 caps a local part at 64 octets but asks receivers to accept longer ones,
    // so length is left to the server.
    guard !local.isEmpty else { return false }
    return isLocalPart(local) && (isDomain(domain) || isAddressLiteral(domain))
}

private func isAtext(_ byte: UInt8) -> Bool {
    if byte >= 0x80 { return true }
    if isASCIIAlphanumeric(byte) { return true }
    return "!#$%&'*+-/=?^_`{|}~".utf8.contains(byte)
}

private func isLocalPart(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    if bytes.first == UInt8(ascii: "\"") {
        // Quoted-string = DQUOTE *QcontentSMTP DQUOTE
        guard bytes.count >= 2, bytes.last == UInt8(ascii: "\"") else { return false }
        var index = 1
        while index < bytes.count - 1 {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < bytes.count - 1, bytes[index + 1] >= 32, bytes[index + 1] <= 126 else { return false }
                index += 2
                continue
            }
            guard byte == 32 || byte == 33 || (byte >= 35 && byte <= 91) || (byte >= 93 && byte <= 126) || byte >= 0x80 else {
                return false
            }
            index += 1
        }
        return true
    }
    // Dot-string = Atom *("." Atom)
    return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { atom in
        !atom.isEmpty && atom.utf8.allSatisfy(isAtext)
    }
}

private func isDomain(_ text: String) -> Bool {
    text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
        guard let first = label.utf8.first, let last = label.utf8.last else { return false }
        return (isASCIIAlphanumeric(first) || first >= 0x80) && (isASCIIAlphanumeric(last) || last >= 0x80)
            && label.utf8.allSatisfy { isASCIIAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 >= 0x80 }
    }
}

private func isAddressLiteral(_ text: String) -> Bool {
    guard text.first == "[", text.last == "]", text.count > 2 else { return false }
    let inner = text.dropFirst().dropLast()
    return inner.utf8.allSatisfy { $0 >= 33 && $0 <= 126 && $0 != UInt8(ascii: "[") && $0 != UInt8(ascii: "]") && $0 != UInt8(ascii: "\\") }
}

private func isADL(_ text: String) -> Bool {
    text.split(separator: ",", omittingEmptySubsequences: false).allSatisfy { part in
        part.first == "@" && isDomain(String(part.dropFirst()))
    }
}
