/// Markup whose every interpolated `String` is escaped. The literal parts are this module's own
/// source; a value from mail (an address, a Subject, a reply's text, a file name) can only enter
/// through interpolation, and so only as text. `HTML` interpolated into `HTML` is kept as it is,
/// which is how pages are composed from parts.
///
/// One escaping serves element text, double- or single-quoted attribute values, and SVG `<text>`
/// (XML): `&`, `<`, `>`, `"` and `'` become character references (HTML Living Standard §13.1.2.3,
/// XML 1.0 §2.4). Control characters other than tab and line feed become U+FFFD, so that a value
/// cannot carry a form feed or NUL into a document, and a lone CR cannot fold a line.
public struct HTML: Sendable, Equatable, ExpressibleByStringInterpolation, CustomStringConvertible {
    public private(set) var rendered: String

    public init(stringLiteral value: String) {
        rendered = value
    }

    public init(stringInterpolation: Interpolation) {
        rendered = stringInterpolation.rendered
    }

    /// Escaped text.
    public init(text: String) {
        rendered = HTML.escape(text)
    }

    private init(trusted: String) {
        rendered = trusted
    }

    /// The console's own stylesheet, for a `<style>` element: this module's constant, never a
    /// value from mail. It must hold no `</style`, which would end the element.
    init(trustedStyle: String) {
        precondition(!trustedStyle.lowercased().contains("</style"), "a stylesheet that closes its element")
        rendered = trustedStyle
    }

    public static let empty = HTML(trusted: "")

    public var description: String { rendered }

    public static func + (left: HTML, right: HTML) -> HTML {
        HTML(trusted: left.rendered + right.rendered)
    }

    public static func += (left: inout HTML, right: HTML) {
        left.rendered += right.rendered
    }

    /// Parts one after another.
    public static func joined(_ parts: some Sequence<HTML>, separator: HTML = .empty) -> HTML {
        HTML(trusted: parts.map(\.rendered).joined(separator: separator.rendered))
    }

    public struct Interpolation: StringInterpolationProtocol {
        var rendered = ""

        public init(literalCapacity: Int, interpolationCount: Int) {
            rendered.reserveCapacity(literalCapacity + interpolationCount * 16)
        }

        public mutating func appendLiteral(_ literal: String) {
            rendered += literal
        }

        /// Every string is text, whatever it holds.
        public mutating func appendInterpolation(_ text: String) {
            rendered += HTML.escape(text)
        }

        public mutating func appendInterpolation(_ number: Int) {
            rendered += String(number)
        }

        public mutating func appendInterpolation(_ markup: HTML) {
            rendered += markup.rendered
        }
    }

    /// The one escaping function (see the type's comment).
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n": out.unicodeScalars.append(scalar)
            case "\u{0}"..."\u{1F}", "\u{7F}"..."\u{9F}": out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
