/// Bar charts drawn by the server as SVG, for the Overview page: no script, no library, the
/// stylesheet's colours. Labels are text through `HTML`, like every value from mail.
public enum Charts {
    public struct Bar: Sendable, Equatable {
        public var label: String
        public var value: Int
        /// A stylesheet class for the bar's colour (`o-rejected`, `r5xx`, ...).
        public var kind: String

        public init(label: String, value: Int, kind: String = "") {
            self.label = label
            self.value = value
            self.kind = kind
        }
    }

    static let width = 640
    static let labelWidth = 220
    static let barHeight = 20

    /// Horizontal bars, longest first as given, each with its count; "none" when there are none.
    public static func bars(_ bars: [Bar], title: String) -> HTML {
        guard !bars.isEmpty else { return "<p class=\"note\">None in this period.</p>" }
        let largest = max(bars.map(\.value).max() ?? 1, 1)
        let height = bars.count * (barHeight + 6) + 6
        var body: HTML = .empty
        for (position, bar) in bars.enumerated() {
            let y = 6 + position * (barHeight + 6)
            let length = max(1, (width - labelWidth - 70) * bar.value / largest)
            body += """
                <g class="bar \(bar.kind)"><title>\(bar.label): \(bar.value)</title>\
                <text class="bar-label" x="\(labelWidth - 8)" y="\(y + 14)" text-anchor="end">\(shortened(bar.label, 30))</text>\
                <rect x="\(labelWidth)" y="\(y)" width="\(length)" height="\(barHeight)"/>\
                <text class="bar-value" x="\(labelWidth + length + 6)" y="\(y + 14)">\(bar.value)</text></g>
                """
        }
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(title)\">\(body)</svg>"
    }

    /// Vertical bars over time: one per bucket from `start`, `bucket` microseconds each, `count`
    /// of them; `counts` maps a bucket's index (start_us / bucket) to its count.
    public static func timeline(_ counts: [Int64: Int], start: Int64, bucket: Int64, count: Int, title: String, label: (Int64) -> String) -> HTML {
        let height = 180
        let plotTop = 10
        let plotBottom = height - 30
        let left = 50
        let plotWidth = width - left - 10
        let largest = max(counts.values.max() ?? 0, 1)
        let first = start / bucket
        let step = max(plotWidth / max(count, 1), 1)
        var body: HTML = """
            <line class="axis" x1="\(left)" y1="\(plotBottom)" x2="\(width - 10)" y2="\(plotBottom)"/>\
            <text class="bar-value" x="\(left - 6)" y="\(plotTop + 10)" text-anchor="end">\(largest)</text>\
            <text class="bar-value" x="\(left - 6)" y="\(plotBottom)" text-anchor="end">0</text>
            """
        for index in 0..<count {
            let value = counts[first + Int64(index)] ?? 0
            guard value > 0 else { continue }
            let barHeight = max(1, (plotBottom - plotTop) * value / largest)
            let x = left + index * plotWidth / max(count, 1)
            body += "<g class=\"bar o-delivered\"><title>\(label((first + Int64(index)) * bucket)): \(value)</title><rect x=\"\(x)\" y=\"\(plotBottom - barHeight)\" width=\"\(max(step - 1, 1))\" height=\"\(barHeight)\"/></g>"
        }
        body += "<text class=\"bar-value\" x=\"\(left)\" y=\"\(height - 10)\">\(label(first * bucket))</text>"
        body += "<text class=\"bar-value\" x=\"\(width - 10)\" y=\"\(height - 10)\" text-anchor=\"end\">\(label((first + Int64(count)) * bucket))</text>"
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(title)\">\(body)</svg>"
    }

    static func shortened(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }
}
