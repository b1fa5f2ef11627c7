/// One `esmtp-param` of MAIL or RCPT (RFC 5321 §4.1.2): `esmtp-keyword ["=" esmtp-value]`.
public struct ESMTPParameter: Sendable, Hashable {
    /// Upper-cased: keywords are case-insensitive (RFC 5321 §2.4).
    public var keyword: String
    /// As sent; `nil` for a keyword without "=".
    public var value: String?

    public init(keyword: String, value: String?) {
        self.keyword = keyword.uppercased()
        self.value = value
    }
}

/// The value of a numeric parameter such as SIZE (RFC 1870) as a receiver must judge it.
public enum NumericParameter: Sendable, Hashable {
    case absent
    case valid(UInt64)
    /// Digits, but more than fit in 64 bits: a size no server can take (552 5.3.4).
    case overflow
    /// Not `1*DIGIT` (501 5.5.4).
    case invalid
}

extension Array where Element == ESMTPParameter {
    public func first(_ keyword: String) -> ESMTPParameter? {
        let wanted = keyword.uppercased()
        return first { $0.keyword == wanted }
    }

    public func contains(keyword: String) -> Bool { first(keyword) != nil }

    /// SIZE of MAIL FROM (RFC 1870 §5: `size-value ::= 1*20DIGIT`).
    public var size: NumericParameter {
        guard let parameter = first("SIZE") else { return .absent }
        return NumericParameter(parsing: parameter.value)
    }
}

extension NumericParameter {
    public init(parsing text: String?) {
        guard let text, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            self = .invalid
            return
        }
        if let value = UInt64(text) {
            self = .valid(value)
        } else {
            self = .overflow
        }
    }
}

/// Parses the parameters after a path: `esmtp-param *(SP esmtp-param)`.
///
/// Returns `nil` when a parameter is malformed (keyword not `(ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`,
/// or a value with "=", controls or spaces), which a server answers with 501 5.5.4.
func parseESMTPParameters(_ text: Substring) -> [ESMTPParameter]? {
    var parameters: [ESMTPParameter] = []
    for word in text.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
        let keyword: Substring
        let value: Substring?
        if let equals = word.firstIndex(of: "=") {
            keyword = word[..<equals]
            value = word[word.index(after: equals)...]
        } else {
            keyword = word
            value = nil
        }
        guard let first = keyword.utf8.first, isASCIIAlphanumeric(first),
            keyword.utf8.allSatisfy({ isASCIIAlphanumeric($0) || $0 == UInt8(ascii: "-") })
        else { return nil }
        if let value {
            guard !value.isEmpty,
                value.utf8.allSatisfy({ ($0 >= 33 && $0 != UInt8(ascii: "=") && $0 != 127) })
            else { return nil }
        }
        parameters.append(ESMTPParameter(keyword: String(keyword), value: value.map(String.init)))
    }
    return parameters
}

@inline(__always)
func isASCIIAlphanumeric(_ byte: UInt8) -> Bool {
    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
}
