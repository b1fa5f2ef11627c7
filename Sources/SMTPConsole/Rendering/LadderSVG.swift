/// Draws a `Ladder` as an SVG element, for the session page and the HTML report. Colours come
/// from the stylesheet's classes (`r2xx` ... `r5xx`, `mark-tls`, `mark-rule`, `mark-anomaly`,
/// `gap`), never from inline style, so the page's Content-Security-Policy holds. Every label is
/// text through `HTML` (SVG `<text>` is XML: the same escaping); a label too long for the
/// picture is shortened, and the whole line is in the arrow's `<title>`.
public enum LadderSVG {
    static let width = 960
    static let header = 48
    static let timeMargin = 70
    static let sideMargin = 110
    static let arrowHeight = 26
    static let markHeight = 24
    static let gapHeight = 44
    static let longestLabel = 100

    /// The x of each column's lifeline.
    static func columnX(count: Int) -> [Int] {
        guard count > 1 else { return [width / 2] }
        let left = timeMargin + sideMargin
        let right = width - sideMargin
        return (0..<count).map { left + $0 * (right - left) / (count - 1) }
    }

    /// The height of each row, in order.
    static func height(of row: Ladder.Row) -> Int {
        switch row {
        case .arrow: return arrowHeight
        case .mark(let mark): return mark.kind == .gap ? gapHeight : markHeight
        }
    }

    public static func render(_ ladder: Ladder, title: String) -> HTML {
        let xs = columnX(count: ladder.columns.count)
        let totalHeight = header + ladder.rows.reduce(0) { $0 + height(of: $1) } + 16
        var body: HTML = .empty
        for (column, x) in zip(ladder.columns, xs) {
            body += "<text class=\"col-title\" x=\"\(x)\" y=\"18\" text-anchor=\"middle\">\(column.title)</text>"
            if let address = column.address {
                body += "<text class=\"col-address\" x=\"\(x)\" y=\"34\" text-anchor=\"middle\">\(address)</text>"
            }
        }
        // Lifelines run from the header to the end, broken where the capture lost bytes.
        var segmentStart = header
        var y = header
        var rows: HTML = .empty
        for (sequence, row) in ladder.rows.enumerated() {
            let rowHeight = height(of: row)
            switch row {
            case .arrow(let arrow):
                rows += Self.arrow(arrow, sequence: sequence, xs: xs, top: y)
            case .mark(let mark) where mark.kind == .gap:
                body += lifelines(xs, from: segmentStart, to: y + 6)
                rows += "<g class=\"mark gap\"><text x=\"\(timeMargin + 8)\" y=\"\(y + rowHeight / 2 + 4)\">\(time(mark.t))  \(shortened(mark.text))</text></g>"
                segmentStart = y + rowHeight - 6
            case .mark(let mark):
                rows += Self.mark(mark, xs: xs, top: y)
            }
            y += rowHeight
        }
        body += lifelines(xs, from: segmentStart, to: y + 8)
        return """
            <svg xmlns="http://www.w3.org/2000/svg" class="ladder" width="\(width)" height="\(totalHeight)" \
            viewBox="0 0 \(width) \(totalHeight)" role="img" aria-label="\(title)">\(body)\(rows)</svg>
            """
    }

    static func lifelines(_ xs: [Int], from top: Int, to bottom: Int) -> HTML {
        HTML.joined(xs.map { x in "<line class=\"lifeline\" x1=\"\(x)\" y1=\"\(top)\" x2=\"\(x)\" y2=\"\(bottom)\"/>" })
    }

    static func arrow(_ arrow: Ladder.Arrow, sequence: Int, xs: [Int], top: Int) -> HTML {
        let from = xs[arrow.from]
        let to = xs[arrow.to]
        let lineY = top + arrowHeight - 6
        let direction = to >= from ? 1 : -1
        let head = "\(to),\(lineY) \(to - direction * 8),\(lineY - 4) \(to - direction * 8),\(lineY + 4)"
        let middle = (from + to) / 2
        return """
            <g class="arrow \(className(arrow.kind))" data-seq="\(sequence)"><title>\(arrow.text)</title>\
            <text class="t" x="4" y="\(lineY + 4)">\(time(arrow.t))</text>\
            <line x1="\(from)" y1="\(lineY)" x2="\(to - direction * 6)" y2="\(lineY)"/>\
            <polygon points="\(head)"/>\
            <text class="label" x="\(middle)" y="\(lineY - 5)" text-anchor="middle">\(shortened(arrow.text))</text></g>
            """
    }

    static func mark(_ mark: Ladder.Mark, xs: [Int], top: Int) -> HTML {
        let left = (xs.first ?? 0) - 40
        let right = (xs.last ?? width) + 40
        return """
            <g class="mark mark-\(mark.kind.rawValue)"><rect x="\(left)" y="\(top + 3)" width="\(right - left)" height="\(markHeight - 6)" rx="3"/>\
            <text class="t" x="4" y="\(top + markHeight / 2 + 4)">\(time(mark.t))</text>\
            <text x="\(left + 8)" y="\(top + markHeight / 2 + 4)">\(shortened(mark.text))</text></g>
            """
    }

    public static func className(_ kind: Ladder.Arrow.Kind) -> String {
        switch kind {
        case .command: return "command"
        case .content: return "content"
        case .note: return "note"
        case .reply(let replyClass): return "reply r\(replyClass.rawValue)"
        }
    }

    /// Seconds since the session's start, to the millisecond.
    static func time(_ t: Int64?) -> String {
        guard let t else { return "" }
        let milliseconds = max(t, 0) / 1000
        let fraction = String(milliseconds % 1000)
        return "\(milliseconds / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    static func shortened(_ text: String) -> String {
        text.count <= longestLabel ? text : String(text.prefix(longestLabel - 1)) + "…"
    }
}
