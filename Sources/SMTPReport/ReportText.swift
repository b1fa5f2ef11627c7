import SMTPTranscript

/// Turning untrusted record values into safe, stable plain text for a report.
enum ReportText {
    /// Characters kept of one line.
    static let maximumLineLength = 1000

    /// Replaces control characters (C0, DEL, C1) and bidirectional overrides with "?", so text from
    /// the network cannot drive a terminal (escape sequences) or reorder what the reader sees.
    static func sanitize(_ text: Substring) -> String {
        var scalars = String.UnicodeScalarView()
        // Binary lines (another protocol, or a server quoting it) are summarised, not printed.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let shown = lines.contains { NotText.summary(of: String($0)) != nil }
            ? lines.map { NotText.summary(of: String($0)) ?? String($0) }.joined(separator: "\n")[...]
            : text
        for scalar in shown.unicodeScalars {
            switch scalar.value {
            case 0x09: scalars.append(" ")
            case 0x00..<0x20, 0x7F..<0xA0, 0x202A...0x202E, 0x2066...0x2069: scalars.append("?")
            default: scalars.append(scalar)
            }
        }
        return String(scalars)
    }

    static func sanitize(_ text: String) -> String { sanitize(text[...]) }

    /// At most `lines` lines of at most `maximumLineLength` characters each, with a note of what
    /// was cut. Bounds the memory a kept entry holds.
    static func clip(_ text: String, lines limit: Int) -> String {
        var kept: [Substring] = []
        var omitted = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if kept.count < limit {
                kept.append(line.count > maximumLineLength ? line.prefix(maximumLineLength) + "..." : line)
            } else {
                omitted += 1
            }
        }
        var result = kept.joined(separator: "\n")
        if omitted > 0 { result += "\n... (\(omitted) more line\(omitted == 1 ? "" : "s"))" }
        return result
    }

    /// Seconds from microseconds: three decimals below 10 s, one above ("0.012 s", "30.1 s").
    static func seconds(_ microseconds: Int64) -> String {
        let sign = microseconds < 0 ? "-" : ""
        let value = microseconds.magnitude
        if value < 10_000_000 {
            let millis = (value + 500) / 1000
            return "\(sign)\(millis / 1000).\(pad(millis % 1000, 3)) s"
        }
        let tenths = (value + 50_000) / 100_000
        return "\(sign)\(tenths / 10).\(tenths % 10) s"
    }

    /// A span for the header: "45.2 s", "7 min 9 s", "3 h 12 min", "2 d 4 h".
    static func span(_ microseconds: Int64) -> String {
        let total = microseconds.magnitude / 1_000_000
        switch total {
        case ..<60: return seconds(microseconds)
        case ..<3600: return "\(total / 60) min \(total % 60) s"
        case ..<86400: return "\(total / 3600) h \(total % 3600 / 60) min"
        default: return "\(total / 86400) d \(total % 86400 / 3600) h"
        }
    }

    /// RFC 3339 UTC to the second, e.g. "2026-11-29T06:45:01Z".
    static func time(_ microsecondsSinceEpoch: Int64) -> String {
        let secondsSinceEpoch = floorDivide(microsecondsSinceEpoch, 1_000_000)
        let days = floorDivide(secondsSinceEpoch, 86400)
        let secondOfDay = secondsSinceEpoch - days * 86400
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
            + "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2))Z"
    }

    /// "192.0.2.10:51234", "[2001:db8::1]:25", or "?" when unknown.
    static func endpoint(_ endpoint: SessionRecord.Endpoint?) -> String {
        guard let endpoint else { return "?" }
        let host = endpoint.ip.contains(":") ? "[\(endpoint.ip)]" : endpoint.ip
        return sanitize(host) + ":\(endpoint.port)"
    }

    /// Breaks `text` into lines of at most `width` characters at the last space that fits, keeping
    /// the spacing inside a line; a word longer than the width is cut. Always returns at least one line.
    static func wrap(_ text: String, width firstWidth: Int, then laterWidth: Int? = nil) -> [String] {
        var width = max(firstWidth, 10)
        var lines: [String] = []
        var remaining = Substring(text)
        while remaining.count > width {
            defer { width = max(laterWidth ?? firstWidth, 10) }
            let window = remaining.prefix(width + 1)
            if let space = window.lastIndex(of: " "), space > remaining.startIndex {
                var line = remaining[..<space]
                while line.last == " " { line = line.dropLast() }
                lines.append(String(line))
                remaining = remaining[space...].drop(while: { $0 == " " })
            } else {
                lines.append(String(remaining.prefix(width)))
                remaining = remaining.dropFirst(width)
            }
        }
        lines.append(String(remaining))
        return lines
    }

    private static func pad<T: BinaryInteger>(_ value: T, _ digits: Int) -> String {
        let text = String(value)
        return text.count >= digits ? text : String(repeating: "0", count: digits - text.count) + text
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let quotient = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
    }

    /// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
    private static func civilDate(daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
        let z = daysSinceEpoch + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}
