import MessageTrace
import SMTPCore
import SMTPTranscript

/// The JSON API's bodies. Records are the index's stored lines, exactly as the transcript had
/// them: the console never re-encodes a record.
public enum ConsoleJSON {
    /// `{"sessions":[record,...]}`, in the order given (newest first).
    public static func sessions(_ lines: [String]) -> String {
        "{\"sessions\":[" + lines.joined(separator: ",") + "]}"
    }

    /// `{"since":...,"until":...,"sessions":{outcome:n},"messages":{outcome:n},
    /// "refusals":{"by_cause":{...},"by_rule":{...}},"top":{"senders":{...},"recipient_domains":{...}}}`; keys sorted, times RFC 3339 or null. With a
    /// bucket width (microseconds), also `"messages_per_bucket":{"<bucket's start, RFC 3339>":n}`.
    public static func stats(_ stats: TraceStats, since: Int64?, until: Int64?, bucket: Int64? = nil) -> String {
        var out: [UInt8] = []
        func time(_ value: Int64?) {
            if let value {
                out.append(UInt8(ascii: "\""))
                RFC3339.write(Timestamp(microsecondsSinceEpoch: value), into: &out)
                out.append(UInt8(ascii: "\""))
            } else {
                JSONOutput.writeNull(into: &out)
            }
        }
        func counts(_ counts: [String: Int]) {
            out.append(UInt8(ascii: "{"))
            for (position, key) in counts.keys.sorted().enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                JSONOutput.writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                JSONOutput.writeInt(counts[key] ?? 0, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        out += Array("{\"since\":".utf8)
        time(since)
        out += Array(",\"until\":".utf8)
        time(until)
        out += Array(",\"sessions\":".utf8)
        counts(stats.sessions)
        out += Array(",\"messages\":".utf8)
        counts(stats.messages)
        out += Array(",\"refusals\":{\"by_cause\":".utf8)
        counts(stats.refusalsByCause)
        out += Array(",\"by_rule\":".utf8)
        counts(stats.refusalsByRule)
        out += Array("},\"top\":{\"senders\":".utf8)
        counts(stats.topSenders)
        out += Array(",\"recipient_domains\":".utf8)
        counts(stats.topRecipientDomains)
        out.append(UInt8(ascii: "}"))
        if let bucket {
            var byStart: [String: Int] = [:]
            for (index, count) in stats.messagesPerBucket {
                byStart[RFC3339.format(Timestamp(microsecondsSinceEpoch: index * bucket))] = count
            }
            out += Array(",\"messages_per_bucket\":".utf8)
            counts(byStart)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// `{"messages":[{"id":...,"session_id":...,"quarantined":...,"reason":...,"rules":[...],
    /// "mail_from":...,"rcpt_to":[...],"size":n},...]}`, newest first.
    public static func quarantine(_ entries: [QuarantineEntry]) -> String {
        var out = Array("{\"messages\":[".utf8)
        for (position, entry) in entries.enumerated() {
            if position > 0 { out.append(UInt8(ascii: ",")) }
            out += Array("{\"id\":".utf8)
            JSONOutput.writeString(entry.id, into: &out)
            out += Array(",\"session_id\":".utf8)
            JSONOutput.writeString(entry.sessionID, into: &out)
            out += Array(",\"quarantined\":".utf8)
            JSONOutput.writeString(entry.quarantined, into: &out)
            out += Array(",\"reason\":".utf8)
            JSONOutput.writeString(entry.reason, into: &out)
            out += Array(",\"rules\":".utf8)
            strings(entry.rules, into: &out)
            out += Array(",\"mail_from\":".utf8)
            if let from = entry.mailFrom { JSONOutput.writeString(from, into: &out) } else { JSONOutput.writeNull(into: &out) }
            out += Array(",\"rcpt_to\":".utf8)
            strings(entry.rcptTo, into: &out)
            out += Array(",\"size\":".utf8)
            JSONOutput.writeInt(entry.size, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        out += Array("]}".utf8)
        return String(decoding: out, as: UTF8.self)
    }

    /// `{"action":"released","id":...,"reply":...}`.
    public static func quarantineAction(_ action: String, id: String, reply: String?) -> String {
        var out = Array("{\"action\":".utf8)
        JSONOutput.writeString(action, into: &out)
        out += Array(",\"id\":".utf8)
        JSONOutput.writeString(id, into: &out)
        out += Array(",\"reply\":".utf8)
        if let reply { JSONOutput.writeString(reply, into: &out) } else { JSONOutput.writeNull(into: &out) }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    static func strings(_ values: [String], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (position, value) in values.enumerated() {
            if position > 0 { out.append(UInt8(ascii: ",")) }
            JSONOutput.writeString(value, into: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    /// `{"error":"..."}`.
    public static func error(_ message: String) -> String {
        var out = Array("{\"error\":".utf8)
        JSONOutput.writeString(message, into: &out)
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }
}
