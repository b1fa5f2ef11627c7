/// An enhanced mail system status code, `class "." subject "." detail` (RFC 3463 §2, RFC 2034 §4).
public struct EnhancedStatusCode: Sendable, Hashable, CustomStringConvertible {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    public var statusClass: Int
    public var subject: Int
    public var detail: Int

    public init(statusClass: Int, subject: Int, detail: Int) {
        self.statusClass = statusClass
        self.subject = subject
        self.detail = detail
    }

    public var description: String { "\(statusClass).\(subject).\(detail)" }
}

extension EnhancedStatusCode {
    /// Parses a code at the start of reply text, followed by a space or the end of the text.
    ///
    /// ABNF (RFC 3463 §2): `status-code = class "." subject "." detail`;
    /// `class = "2" / "4" / "5"`; `subject = 1*3digit`; `detail = 1*3digit`.
    /// Returns the code and the number of UTF-8 units it occupied (without the separator).
    public static func parse(prefixOf text: Substring.UTF8View) -> (EnhancedStatusCode, Int)? {
        var index = text.startIndex
        func readNumber(maxDigits: Int) -> Int? {
            var value = 0
            var digits = 0
            while index < text.endIndex, digits < maxDigits, let digit = asciiDigit(text[index]) {
                value = value * 10 + digit
                digits += 1
                index = text.index(after: index)
            }
            return digits == 0 ? nil : value
        }
        func readDot() -> Bool {
            guard index < text.endIndex, text[index] == UInt8(ascii: ".") else { return false }
            index = text.index(after: index)
            return true
        }
        guard let statusClass = readNumber(maxDigits: 1), [2, 4, 5].contains(statusClass), readDot(),
            let subject = readNumber(maxDigits: 3), readDot(),
            let detail = readNumber(maxDigits: 3)
        else { return nil }
        if index < text.endIndex, text[index] != UInt8(ascii: " "), text[index] != UInt8(ascii: "\t") {
            return nil
        }
        return (EnhancedStatusCode(statusClass: statusClass, subject: subject, detail: detail), text.distance(from: text.startIndex, to: index))
    }
}

@inline(__always)
func asciiDigit(_ byte: UInt8) -> Int? {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte &- UInt8(ascii: "0")) : nil
}
