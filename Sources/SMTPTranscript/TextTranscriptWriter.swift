/// The `--format text` rendering of a `smtpscope.session/1` record: the session as a
/// two-sided dialogue with times relative to its start, anomalies in place, then one summary per
/// transaction. Every line a peer controls is made safe for a terminal first (see `visible(_:)`).
///
/// ```
/// == session 01JD... pcap 2026-11-29T06:45:01.123456Z  192.0.2.10:51234 -> 198.51.100.5:25  outcome: rejected
///   +0.000000 S: 220 mx.example ESMTP
///   +0.010212 C: EHLO client.example
///   +0.511000 C: [message content: 1234 octets]
///   +0.511000 ! bare_lf_in_data: detail
///   transaction 1: a@example.com -> b@example.org (550 5.1.1 User unknown) : rejected
/// == end +0.612000 (close by client: QUIT)  bytes client 2048, server 512
/// ```
///
/// Direction labels: `C:` client to server and `S:` server to client (a capture); on the proxy's two
/// legs `C>P:`, `P>S:`, `S>P:` and `P>C:`. The layout is stable: scripts and tests may rely on it.
public enum TextTranscriptWriter {
    /// The session as text, each line ending in "\n".
    public static func render(_ r: SessionRecord) -> String {
        var out = ""
        out.reserveCapacity(256 + r.events.count * 48)
        write(r, into: &out)
        return out
    }

    /// Appends the rendering of `r` to `out`.
    public static func write(_ r: SessionRecord, into out: inout String) {
        writeHeader(r, into: &out)
        writeDialogue(r, into: &out)
        for verdict in r.rules { writeVerdict(verdict, indent: "  ", into: &out) }
        for (i, transaction) in r.transactions.enumerated() {
            writeTransaction(transaction, number: i + 1, into: &out)
        }
        writeFooter(r, into: &out)
    }

    // MARK: - Header and footer

    static func writeHeader(_ r: SessionRecord, into out: inout String) {
        out += "== session \(visible(r.sessionID)) \(r.source.rawValue) \(RFC3339.format(r.start))  "
        out += "\(endpoint(r.client)) -> \(endpoint(r.server))  outcome: \(r.outcome.rawValue)\n"
        if let upstream = r.upstream {
            out += "   upstream \(endpoint(upstream))\n"
        }
        if let helo = r.helo {
            out += "   helo: \(visible(helo.verb)) \(visible(helo.name))\n"
        }
        if r.tls.mode != .none || r.tls.established != nil || r.tls.failure != nil {
            var parts = [r.tls.mode.rawValue]
            switch r.tls.established {
            case true?: parts.append("established")
            case false?: parts.append("not established")
            case nil: break
            }
            if let version = r.tls.version { parts.append(visible(version)) }
            if let cipher = r.tls.cipher { parts.append(visible(cipher)) }
            if let sni = r.tls.sni { parts.append("sni \(visible(sni))") }
            if let failure = r.tls.failure { parts.append("failure: \(visible(failure))") }
            out += "   tls: \(parts.joined(separator: ", "))\n"
        }
        if let tls = r.upstreamTLS {
            var parts = [tls.mode.rawValue, tls.established ? "established" : "not established"]
            if let version = tls.version { parts.append(visible(version)) }
            if let cipher = tls.cipher { parts.append(visible(cipher)) }
            if let sni = tls.sni { parts.append("sni \(visible(sni))") }
            if let certificate = tls.certificate { parts.append("certificate \(certificate.rawValue)") }
            if let failure = tls.failure { parts.append("failure: \(visible(failure))") }
            out += "   upstream tls: \(parts.joined(separator: ", "))\n"
        }
        if let auth = r.auth {
            out += "   auth: \(visible(auth.mechanism))"
            if let user = auth.user { out += " user \(visible(user))" }
            out += ", \(auth.result?.rawValue ?? "no result")"
            if let code = auth.code { out += " (\(code))" }
            out += "\n"
        }
    }

    static func writeFooter(_ r: SessionRecord, into out: inout String) {
        out += "== end"
        if let end = r.end {
            out += " " + relative(end.microseconds(since: r.start))
        }
        if let close = r.close {
            if let by = close.by {
                out += " (close by \(by.rawValue): \(close.reason.rawValue))"
            } else {
                out += " (close: \(close.reason.rawValue))"
            }
        } else {
            out += " (close not seen)"
        }
        out += "  bytes client \(r.bytes.client), server \(r.bytes.server)\n"
    }

    // MARK: - Dialogue

    /// Events and anomalies merged by time; an anomaly follows the events of its instant, since it
    /// is usually noticed on the line that carries it.
    static func writeDialogue(_ r: SessionRecord, into out: inout String) {
        var anomalies = r.anomalies.enumerated().sorted { ($0.element.t, $0.offset) < ($1.element.t, $1.offset) }[...]
        for event in r.events {
            while let next = anomalies.first, next.element.t < event.t {
                writeAnomaly(next.element, into: &out)
                anomalies = anomalies.dropFirst()
            }
            out += "  \(relative(event.t)) \(label(from: event.from, to: event.to)): "
            let text = NotText.summary(of: event.text) ?? event.text
            if let octets = event.octets {
                let content = "[message content: \(octets) octets]"
                out += text.isEmpty || text == content ? content : "\(visible(text)) [\(octets) octets]"
            } else {
                out += visible(text)
            }
            out += "\n"
        }
        for anomaly in anomalies {
            writeAnomaly(anomaly.element, into: &out)
        }
    }

    static func writeAnomaly(_ anomaly: SessionRecord.Anomaly, into out: inout String) {
        out += "  \(relative(anomaly.t)) ! \(visible(anomaly.kind))"
        if let detail = anomaly.detail { out += ": \(visible(NotText.summary(of: detail) ?? detail))" }
        out += "\n"
    }

    static func label(from: SessionRecord.Party, to: SessionRecord.Party) -> String {
        switch (from, to) {
        case (.client, .server): return "C"
        case (.server, .client): return "S"
        default: return "\(initial(from))>\(initial(to))"
        }
    }

    static func initial(_ party: SessionRecord.Party) -> String {
        switch party {
        case .client: return "C"
        case .server: return "S"
        case .proxy: return "P"
        }
    }

    // MARK: - Transactions

    static func writeTransaction(_ t: SessionRecord.Transaction, number: Int, into out: inout String) {
        out += "  transaction \(number): "
        if let mailFrom = t.mailFrom {
            out += address(mailFrom.address)
            if let reply = mailFrom.reply, reply.code >= 300 {
                out += " (\(replyText(reply)))"
            }
        } else {
            out += "?"
        }
        out += " -> "
        if t.rcptTo.isEmpty {
            out += "(no recipients)"
        } else {
            out += t.rcptTo.map { recipient in
                "\(address(recipient.address)) (\(recipient.reply.map(replyText) ?? "no reply seen"))"
            }.joined(separator: ", ")
        }
        out += " : \(t.outcome.rawValue)\n"

        if let mailFrom = t.mailFrom {
            if !mailFrom.params.isEmpty {
                out += "    mail params: \(parameters(mailFrom.params))\n"
            }
            if let rewritten = mailFrom.rewrittenTo {
                out += "    sender rewritten to \(address(rewritten))\n"
            }
        }
        if let data = t.data {
            out += "    data: \(data.command.rawValue)"
            if let initial = data.initialReply {
                out += " refused (\(replyText(initial)))"
            } else {
                if let size = data.size { out += " \(size) octets" }
                out += ", \(data.chunks) \(data.chunks == 1 ? "chunk" : "chunks")"
                out += ": \(data.reply.map(replyText) ?? "no reply seen")"
            }
            out += "\n"
        }
        if let message = t.message {
            writeMessage(message, into: &out)
        }
        for verdict in t.rules { writeVerdict(verdict, indent: "    ", into: &out) }
    }

    static func writeVerdict(_ verdict: SessionRecord.RuleVerdict, indent: String, into out: inout String) {
        out += "\(indent)rule \(visible(verdict.rule)) (\(visible(verdict.file))\(verdict.line.map { ":\($0)" } ?? ""), \(visible(verdict.stage))): \(visible(verdict.action))"
        if let detail = verdict.detail { out += " \(visible(detail))" }
        if verdict.enforced {
            out += "\n"
        } else {
            out += verdict.mode == .monitor ? ", monitor only\n" : ", not enforced\n"
        }
    }

    static func writeMessage(_ m: SessionRecord.Message, into out: inout String) {
        var parts: [String] = []
        parts.append(m.subject.map { "subject \"\(visible($0))\"" } ?? "no subject")
        if let id = m.messageID { parts.append("id \(visible(id))") }
        if !m.from.isEmpty { parts.append("from \(m.from.map(visible).joined(separator: ", "))") }
        parts.append("\(m.size) octets")
        if let sha256 = m.sha256 { parts.append("sha256 \(visible(sha256))") }
        out += "    message: \(parts.joined(separator: ", "))\n"
        for attachment in m.attachments {
            out += "    attachment: \(attachment.filename.map { "\"\(visible($0))\"" } ?? "(no name)")"
            out += " \(visible(attachment.contentType)), \(attachment.size) octets\n"
        }
    }

    // MARK: - Pieces

    static func endpoint(_ endpoint: SessionRecord.Endpoint?) -> String {
        guard let endpoint else { return "?" }
        let ip = visible(endpoint.ip)
        return endpoint.ip.contains(":") ? "[\(ip)]:\(endpoint.port)" : "\(ip):\(endpoint.port)"
    }

    /// `<>` for the null reverse-path, `?` when the capture did not show the address.
    static func address(_ address: String?) -> String {
        guard let address else { return "?" }
        return address.isEmpty ? "<>" : visible(address)
    }

    static func replyText(_ reply: SessionRecord.Reply) -> String {
        var text = String(reply.code)
        if let enhanced = reply.enhanced { text += " " + visible(enhanced) }
        if !reply.text.isEmpty {
            // Multi-line replies are joined with "\n" in the record; one line reads better here.
            text += " " + reply.text.split(separator: "\n", omittingEmptySubsequences: false).map { visible(String($0)) }.joined(separator: " / ")
        }
        return text
    }

    static func parameters(_ params: [SessionRecord.Parameter]) -> String {
        params.map { param in
            param.value.map { "\(visible(param.keyword))=\(visible($0))" } ?? visible(param.keyword)
        }.joined(separator: " ")
    }

    /// Seconds with six decimals and an explicit sign: `+0.000312`.
    static func relative(_ microseconds: Int64) -> String {
        var bytes: [UInt8] = microseconds < 0 ? [] : [UInt8(ascii: "+")]
        JSONOutput.writeSeconds(microseconds: microseconds, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Peer-controlled text made safe to print: C0 and C1 controls and DEL become `\xHH`, and the
    /// characters that reorder or break lines (bidi overrides and isolates, U+2028, U+2029) become
    /// `\u{HHHH}`, so no terminal escape sequence or Trojan-Source reordering reaches the reader.
    public static func visible(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            let hex = String(scalar.value, radix: 16)
            if scalar.value < 0x100 {
                out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            } else {
                out += "\\u{\(hex)}"
            }
        }
        return out
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00..<0x20, 0x7F...0x9F, 0x200E, 0x200F, 0x2028...0x202E, 0x2066...0x2069:
            return true
        default:
            return false
        }
    }
}
