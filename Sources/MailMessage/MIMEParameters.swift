/// A `Content-Type` (RFC 2045 §5.1) or `Content-Disposition` (RFC 2183 §2) field body: a value and its
/// parameters.
///
/// Parameter values may be tokens or quoted strings (RFC 2045 §5.1, with `\` escapes per RFC 5322
/// §3.2.4), and may use RFC 2231: continuations (`name*0=`, `name*1=`), and charset and language with
/// percent-encoding (`name*=utf-8'en'%E2%82%AC`, `name*0*=`), sections joined in order before the
/// charset is applied. Parsing is lenient, as mail readers are: unquoted values run to the next `;`
/// (filenames with spaces are common), RFC 2047 encoded words in plain values are decoded (as most
/// mailers write non-ASCII filenames), and anything malformed is skipped. It never fails.
public struct MIMEParameters: Sendable, Equatable {
    /// The part before the first `;`, lowercased, whitespace and comments removed (`multipart/mixed`,
    /// `attachment`).
    public var value: String
    /// Decoded parameter values by lowercased name.
    public var parameters: [String: String]

    /// Parameters kept at most, and the highest RFC 2231 section number followed.
    public static let maxParameters = 64
    public static let maxSectionNumber = 999

    public init(value: String, parameters: [String: String] = [:]) {
        self.value = value
        self.parameters = parameters
    }

    /// The parameter's decoded value; `name` is compared case-insensitively.
    public subscript(_ name: String) -> String? {
        parameters[ASCII.lowercased(name)]
    }

    /// The `type/subtype` of a `Content-Type` value, or nil if ``value`` is not of that form.
    public var mediaType: String? {
        let pieces = value.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count == 2, !pieces[0].isEmpty, !pieces[1].isEmpty else { return nil }
        return value
    }

    public static func parse(_ text: String) -> MIMEParameters {
        var scanner = ParameterScanner(Array(text.utf8))
        let value = scanner.readValue()
        var rawParameters: [(name: String, value: String)] = []
        while rawParameters.count < maxParameters, let parameter = scanner.readParameter() {
            rawParameters.append(parameter)
        }
        return MIMEParameters(value: value, parameters: assemble(rawParameters))
    }

    private struct Section {
        var number: Int
        var value: String
        var isEncoded: Bool
    }

    /// Applies RFC 2231: `name*` and `name*N[*]` take precedence over a plain `name`.
    private static func assemble(_ raw: [(name: String, value: String)]) -> [String: String] {
        var plain: [String: String] = [:]
        var extended: [String: String] = [:]
        var sections: [String: [Section]] = [:]
        for (name, value) in raw {
            guard let star = name.firstIndex(of: "*") else {
                if plain[name] == nil { plain[name] = value }
                continue
            }
            let base = String(name[..<star])
            let rest = name[name.index(after: star)...]
            if rest.isEmpty {
                if extended[base] == nil { extended[base] = value }
                continue
            }
            let isEncoded = rest.hasSuffix("*")
            let digits = isEncoded ? rest.dropLast() : rest
            guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                let number = Int(digits), number <= maxSectionNumber
            else { continue }
            sections[base, default: []].append(Section(number: number, value: value, isEncoded: isEncoded))
        }
        var result: [String: String] = [:]
        for (name, value) in plain {
            result[name] = value.contains("=?") ? EncodedWord.decode(value) : value
        }
        for (name, value) in extended {
            result[name] = decodeExtended(value)
        }
        for (name, list) in sections {
            result[name] = joinSections(list)
        }
        return result
    }

    /// ext-value = charset "'" [language] "'" extended-other-values (RFC 2231 §4).
    private static func decodeExtended(_ value: String) -> String {
        let (charset, encoded) = splitCharset(value)
        return Charset(name: charset ?? "utf-8").decode(percentDecoded(encoded))
    }

    private static func joinSections(_ list: [Section]) -> String {
        let ordered = list.sorted { $0.number < $1.number }
        var charset: String?
        var octets: [UInt8] = []
        for (position, section) in ordered.enumerated() {
            if section.isEncoded {
                var encoded = section.value[...]
                if position == 0 {
                    let split = splitCharset(section.value)
                    charset = split.charset
                    encoded = split.rest
                }
                octets.append(contentsOf: percentDecoded(encoded))
            } else {
                octets.append(contentsOf: section.value.utf8)
            }
        }
        let text = Charset(name: charset ?? "utf-8").decode(octets)
        return charset == nil && text.contains("=?") ? EncodedWord.decode(text) : text
    }

    private static func splitCharset(_ value: String) -> (charset: String?, rest: Substring) {
        let parts = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return (nil, value[...]) }
        return (parts[0].isEmpty ? nil : String(parts[0]), parts[2])
    }

    private static func percentDecoded(_ text: Substring) -> [UInt8] {
        let input = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var index = 0
        while index < input.count {
            if input[index] == 0x25, index + 2 < input.count,
                let high = ASCII.hexValue(input[index + 1]), let low = ASCII.hexValue(input[index + 2])
            {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(input[index])
                index += 1
            }
        }
        return out
    }
}

/// Reads `value *(";" name "=" (token / quoted-string))` leniently.
private struct ParameterScanner {
    private let input: [UInt8]
    private var index = 0

    private static let semicolon: UInt8 = 0x3B
    private static let quote: UInt8 = 0x22
    private static let backslash: UInt8 = 0x5C
    private static let openParenthesis: UInt8 = 0x28
    private static let closeParenthesis: UInt8 = 0x29

    init(_ input: [UInt8]) {
        self.input = input
    }

    mutating func readValue() -> String {
        var out: [UInt8] = []
        while index < input.count, input[index] != Self.semicolon {
            let octet = input[index]
            if octet == Self.openParenthesis {
                skipComment()
                continue
            }
            if !(ASCII.isWhitespace(octet) || octet == ASCII.cr || octet == ASCII.lf) {
                out.append(ASCII.lowercased(octet))
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func readParameter() -> (name: String, value: String)? {
        while true {
            while index < input.count, input[index] == Self.semicolon || isSpace(input[index]) {
                index += 1
            }
            guard index < input.count else { return nil }
            var name: [UInt8] = []
            while index < input.count, input[index] != 0x3D, input[index] != Self.semicolon {
                if !isSpace(input[index]) { name.append(ASCII.lowercased(input[index])) }
                index += 1
            }
            guard index < input.count, input[index] == 0x3D else {
                continue  // "name" without "=": not a parameter; skip it.
            }
            index += 1
            while index < input.count, isSpace(input[index]) { index += 1 }
            let value = index < input.count && input[index] == Self.quote ? readQuoted() : readToken()
            guard !name.isEmpty else {
                continue  // "=value" without a name: skipped, value and all.
            }
            return (String(decoding: name, as: UTF8.self), value)
        }
    }

    private mutating func readQuoted() -> String {
        index += 1
        var out: [UInt8] = []
        while index < input.count, input[index] != Self.quote {
            if input[index] == Self.backslash, index + 1 < input.count {
                index += 1
            }
            if input[index] != ASCII.cr, input[index] != ASCII.lf {
                out.append(input[index])
            }
            index += 1
        }
        // Whatever follows the closing quote up to the next ";" (a comment, junk) is dropped.
        while index < input.count, input[index] != Self.semicolon { index += 1 }
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func readToken() -> String {
        let start = index
        while index < input.count, input[index] != Self.semicolon { index += 1 }
        var value = input[start..<index]
        while let last = value.last, isSpace(last) { value.removeLast() }
        // A trailing comment, as in `charset=us-ascii (Plain text)`.
        if value.last == Self.closeParenthesis, let open = value.lastIndex(of: Self.openParenthesis),
            open > value.startIndex, isSpace(value[open - 1])
        {
            value = value[value.startIndex..<open]
            while let last = value.last, isSpace(last) { value.removeLast() }
        }
        return String(decoding: value, as: UTF8.self)
    }

    /// comment = "(" *(ctext / quoted-pair / comment) ")" (RFC 5322 §3.2.2), nesting bounded by input.
    private mutating func skipComment() {
        var depth = 0
        while index < input.count {
            let octet = input[index]
            if octet == Self.backslash {
                index += 2
                continue
            }
            if octet == Self.openParenthesis { depth += 1 }
            if octet == Self.closeParenthesis {
                depth -= 1
                if depth == 0 {
                    index += 1
                    return
                }
            }
            index += 1
        }
    }

    private func isSpace(_ octet: UInt8) -> Bool {
        ASCII.isWhitespace(octet) || octet == ASCII.cr || octet == ASCII.lf
    }
}
