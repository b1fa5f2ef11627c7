import SMTPTranscript

/// `smtpscope trace`'s table: one row per transaction (per session when it had none), newest session
/// first: time, client, sender, recipients each with its reply code, outcome, the deciding reply,
/// and the rule when smtpscope itself refused, discarded or quarantined the message. Every value from
/// mail is shown with its control characters escaped, so a hostile address cannot drive the terminal.
public enum TraceTable {
    public static let header = ["TIME", "CLIENT", "FROM", "TO (REPLY)", "OUTCOME", "DECIDING REPLY", "RULE", "SESSION"]

    /// The rows of one hit; `record` is its line decoded.
    public static func rows(_ hit: TraceHit, record: SessionRecord) -> [[String]] {
        let indexed = IndexedSession(record, line: hit.line)
        let time = String(RFC3339.format(record.start).prefix(19)) + "Z"
        let client = record.client.map { $0.ip } ?? "-"
        let messages = indexed.messages.filter { hit.matchingPositions?.contains($0.position) ?? true }
        if messages.isEmpty {
            let rule = record.rules.first { $0.enforced }?.rule
            let reply = record.greeting.flatMap { $0.code >= 400 ? IndexedSession.Message.render($0) : nil }
            return [[time, client, "-", "-", "session " + record.outcome.rawValue, reply.map(escape) ?? "-", rule.map(escape) ?? "-", record.sessionID]]
        }
        return messages.map { message in
            let sender = message.sender.map { $0.isEmpty ? "<>" : escape($0) } ?? "-"
            let recipients = message.recipients.map { recipient in
                escape(recipient.address ?? "?") + " " + (recipient.replyCode.map(String.init) ?? "-")
            }
            return [
                time, client, sender, recipients.isEmpty ? "-" : recipients.joined(separator: ", "), message.outcome,
                message.decidingReply.map(escape) ?? "-", message.decidingRule.map(escape) ?? "-", record.sessionID,
            ]
        }
    }

    /// The rows aligned in columns under the header; the last column is not padded.
    public static func render(_ rows: [[String]]) -> String {
        let all = [header] + rows
        var widths = Array(repeating: 0, count: header.count)
        for row in all {
            for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        var out = ""
        for row in all {
            var line = ""
            for (column, cell) in row.enumerated() {
                line += cell
                if column < row.count - 1 { line += String(repeating: " ", count: widths[column] - cell.count + 2) }
            }
            out += line + "\n"
        }
        return out
    }

    /// C0 and C1 controls and DEL as `\u{XX}`; a backslash doubled, so the escape is unambiguous.
    public static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x5C: out += "\\\\"
            case 0..<0x20, 0x7F..<0xA0: out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
