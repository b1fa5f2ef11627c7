import SMTPTranscript

/// One line of the Sessions list: what an administrator scans for. The page draws it in Swift;
/// the live list's script draws new ones from the JSON record the same way (`console.js`,
/// `sessionRow`), so both must change together.
public struct SessionRow: Sendable, Equatable {
    public var sessionID: String
    /// RFC 3339, as the record has it (sorts as text).
    public var start: String
    public var client: String
    public var senders: String
    public var recipients: String
    public var subject: String
    public var outcome: String

    public init(_ record: SessionRecord) {
        sessionID = record.sessionID
        start = RFC3339.format(record.start)
        client = record.client?.ip ?? "?"
        senders = Self.unique(record.transactions.map { Self.address($0.mailFrom?.address) }).joined(separator: ", ")
        recipients = Self.unique(record.transactions.flatMap { $0.rcptTo.map { Self.address($0.address) } }).joined(separator: ", ")
        subject = record.transactions.lazy.compactMap { $0.message?.subject }.first ?? ""
        outcome = record.outcome.rawValue
    }

    /// `<>` for the null reverse-path, `?` for an address the record could not see.
    static func address(_ address: String?) -> String {
        guard let address else { return "?" }
        return address.isEmpty ? "<>" : address
    }

    static func unique(_ values: [String]) -> [String] {
        var seen: Set<String> = []
        return values.filter { seen.insert($0).inserted }
    }

    public var html: HTML {
        """
        <tr data-session="\(sessionID)" data-start="\(start)"><td class="time">\(start)</td><td>\(client)</td>\
        <td>\(senders)</td><td>\(recipients)</td><td>\(subject)</td>\
        <td class="outcome o-\(outcome)">\(outcome)</td><td><a href="/sessions/\(PathComponent.encode(sessionID))">open</a></td></tr>
        """
    }
}

/// Percent-encoding of one URL path segment (RFC 3986 §3.3): only unreserved characters stay.
public enum PathComponent {
    public static func encode(_ text: String) -> String {
        var out = ""
        for octet in text.utf8 {
            switch octet {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(octet))
            default:
                let digits = Array("0123456789ABCDEF")
                out += "%" + String(digits[Int(octet >> 4)]) + String(digits[Int(octet & 0x0F)])
            }
        }
        return out
    }
}
