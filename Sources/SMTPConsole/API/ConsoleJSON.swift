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
    /// "refusals":{"by_cause":{...},"by_rule":{...}}}`; keys sorted, times RFC 3339 or null.
    public static func stats(_ stats: TraceStats, since: Int64?, until: Int64?) -> String {
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
        out += Array("}}".utf8)
        return String(decoding: out, as: UTF8.self)
    }

    /// `{"error":"..."}`.
    public static func error(_ message: String) -> String {
        var out = Array("{\"error\":".utf8)
        JSONOutput.writeString(message, into: &out)
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }
}
