/// Writes a `SessionRecord` as one line of the `smtpscope.session/1` JSON Lines transcript
/// (RFC 8259 JSON; the normative form is `session.v1.schema.json`).
///
/// Hand-written rather than `JSONEncoder`: the key order is fixed (the order of the schema), `nil`
/// is always `null`, numbers never use an exponent, and one record costs one pass over its strings.
/// The line ends in a single LF.
public enum SessionRecordEncoder {
    /// Appends `record` as JSON followed by "\n".
    public static func encode(_ record: SessionRecord, into out: inout [UInt8]) {
        writeRecord(record, into: &out)
        out.append(UInt8(ascii: "\n"))
    }

    /// The record as one line of JSON, without the trailing newline.
    public static func jsonLine(_ record: SessionRecord) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(1024 + record.events.count * 64)
        writeRecord(record, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Record

    static func writeRecord(_ r: SessionRecord, into out: inout [UInt8]) {
        JSONOutput.writeRaw(#"{"schema":"#, into: &out)
        JSONOutput.writeString(SessionRecord.schemaName, into: &out)
        JSONOutput.writeRaw(#","session_id":"#, into: &out)
        JSONOutput.writeString(r.sessionID, into: &out)
        JSONOutput.writeRaw(#","source":""#, into: &out)
        writeASCII(r.source.rawValue, into: &out)
        JSONOutput.writeRaw(#"","start":""#, into: &out)
        RFC3339.write(r.start, into: &out)
        JSONOutput.writeRaw(#"","end":"#, into: &out)
        if let end = r.end {
            out.append(UInt8(ascii: "\""))
            RFC3339.write(end, into: &out)
            out.append(UInt8(ascii: "\""))
        } else {
            JSONOutput.writeNull(into: &out)
        }
        JSONOutput.writeRaw(#","client":"#, into: &out)
        writeEndpoint(r.client, into: &out)
        JSONOutput.writeRaw(#","server":"#, into: &out)
        writeEndpoint(r.server, into: &out)
        JSONOutput.writeRaw(#","upstream":"#, into: &out)
        writeEndpoint(r.upstream, into: &out)
        JSONOutput.writeRaw(#","greeting":"#, into: &out)
        writeReply(r.greeting, into: &out)
        JSONOutput.writeRaw(#","helo":"#, into: &out)
        if let helo = r.helo {
            JSONOutput.writeRaw(#"{"verb":"#, into: &out)
            JSONOutput.writeString(helo.verb, into: &out)
            JSONOutput.writeRaw(#","name":"#, into: &out)
            JSONOutput.writeString(helo.name, into: &out)
            out.append(UInt8(ascii: "}"))
        } else {
            JSONOutput.writeNull(into: &out)
        }
        JSONOutput.writeRaw(#","extensions":"#, into: &out)
        if let extensions = r.extensions {
            writeStrings(extensions, into: &out)
        } else {
            JSONOutput.writeNull(into: &out)
        }
        JSONOutput.writeRaw(#","tls":"#, into: &out)
        writeTLS(r.tls, into: &out)
        if let upstreamTLS = r.upstreamTLS {
            // Only when present: records without it read as before the key existed.
            JSONOutput.writeRaw(#","upstream_tls":"#, into: &out)
            writeUpstreamTLS(upstreamTLS, into: &out)
        }
        JSONOutput.writeRaw(#","auth":"#, into: &out)
        writeAuth(r.auth, into: &out)
        JSONOutput.writeRaw(#","transactions":["#, into: &out)
        for (i, transaction) in r.transactions.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            writeTransaction(transaction, into: &out)
        }
        JSONOutput.writeRaw(#"],"rules":"#, into: &out)
        writeVerdicts(r.rules, into: &out)
        JSONOutput.writeRaw(#","events":["#, into: &out)
        for (i, event) in r.events.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            writeEvent(event, into: &out)
        }
        JSONOutput.writeRaw(#"],"outcome":""#, into: &out)
        writeASCII(r.outcome.rawValue, into: &out)
        JSONOutput.writeRaw(#"","close":"#, into: &out)
        if let close = r.close {
            JSONOutput.writeRaw(#"{"by":"#, into: &out)
            writeOptionalASCII(close.by?.rawValue, into: &out)
            JSONOutput.writeRaw(#","reason":""#, into: &out)
            writeASCII(close.reason.rawValue, into: &out)
            JSONOutput.writeRaw(#""}"#, into: &out)
        } else {
            JSONOutput.writeNull(into: &out)
        }
        JSONOutput.writeRaw(#","anomalies":["#, into: &out)
        for (i, anomaly) in r.anomalies.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONOutput.writeRaw(#"{"kind":"#, into: &out)
            JSONOutput.writeString(anomaly.kind, into: &out)
            JSONOutput.writeRaw(#","t":"#, into: &out)
            JSONOutput.writeSeconds(microseconds: anomaly.t, into: &out)
            JSONOutput.writeRaw(#","detail":"#, into: &out)
            writeOptionalString(anomaly.detail, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        JSONOutput.writeRaw(#"],"bytes":{"client":"#, into: &out)
        JSONOutput.writeInt(r.bytes.client, into: &out)
        JSONOutput.writeRaw(#","server":"#, into: &out)
        JSONOutput.writeInt(r.bytes.server, into: &out)
        JSONOutput.writeRaw("}}", into: &out)
    }

    // MARK: - Parts

    static func writeEndpoint(_ endpoint: SessionRecord.Endpoint?, into out: inout [UInt8]) {
        guard let endpoint else { return JSONOutput.writeNull(into: &out) }
        JSONOutput.writeRaw(#"{"ip":"#, into: &out)
        JSONOutput.writeString(endpoint.ip, into: &out)
        JSONOutput.writeRaw(#","port":"#, into: &out)
        JSONOutput.writeInt(endpoint.port, into: &out)
        out.append(UInt8(ascii: "}"))
    }

    static func writeReply(_ reply: SessionRecord.Reply?, into out: inout [UInt8]) {
        guard let reply else { return JSONOutput.writeNull(into: &out) }
        JSONOutput.writeRaw(#"{"code":"#, into: &out)
        JSONOutput.writeInt(reply.code, into: &out)
        JSONOutput.writeRaw(#","enhanced":"#, into: &out)
        writeOptionalString(reply.enhanced, into: &out)
        JSONOutput.writeRaw(#","text":"#, into: &out)
        JSONOutput.writeString(reply.text, into: &out)
        out.append(UInt8(ascii: "}"))
    }

    static func writeTLS(_ tls: SessionRecord.TLS, into out: inout [UInt8]) {
        JSONOutput.writeRaw(#"{"mode":""#, into: &out)
        writeASCII(tls.mode.rawValue, into: &out)
        JSONOutput.writeRaw(#"","established":"#, into: &out)
        if let established = tls.established {
            JSONOutput.writeBool(established, into: &out)
        } else {
            JSONOutput.writeNull(into: &out)
        }
        JSONOutput.writeRaw(#","version":"#, into: &out)
        writeOptionalString(tls.version, into: &out)
        JSONOutput.writeRaw(#","cipher":"#, into: &out)
        writeOptionalString(tls.cipher, into: &out)
        JSONOutput.writeRaw(#","sni":"#, into: &out)
        writeOptionalString(tls.sni, into: &out)
        JSONOutput.writeRaw(#","failure":"#, into: &out)
        writeOptionalString(tls.failure, into: &out)
        out.append(UInt8(ascii: "}"))
    }

    static func writeUpstreamTLS(_ tls: SessionRecord.UpstreamTLS, into out: inout [UInt8]) {
        JSONOutput.writeRaw(#"{"mode":""#, into: &out)
        writeASCII(tls.mode.rawValue, into: &out)
        JSONOutput.writeRaw(#"","established":"#, into: &out)
        JSONOutput.writeBool(tls.established, into: &out)
        JSONOutput.writeRaw(#","version":"#, into: &out)
        writeOptionalString(tls.version, into: &out)
        JSONOutput.writeRaw(#","cipher":"#, into: &out)
        writeOptionalString(tls.cipher, into: &out)
        JSONOutput.writeRaw(#","sni":"#, into: &out)
        writeOptionalString(tls.sni, into: &out)
        JSONOutput.writeRaw(#","certificate":"#, into: &out)
        writeOptionalString(tls.certificate?.rawValue, into: &out)
        JSONOutput.writeRaw(#","failure":"#, into: &out)
        writeOptionalString(tls.failure, into: &out)
        out.append(UInt8(ascii: "}"))
    }

    static func writeAuth(_ auth: SessionRecord.Auth?, into out: inout [UInt8]) {
        guard let auth else { return JSONOutput.writeNull(into: &out) }
        JSONOutput.writeRaw(#"{"mechanism":"#, into: &out)
        JSONOutput.writeString(auth.mechanism, into: &out)
        JSONOutput.writeRaw(#","user":"#, into: &out)
        writeOptionalString(auth.user, into: &out)
        JSONOutput.writeRaw(#","result":"#, into: &out)
        writeOptionalASCII(auth.result?.rawValue, into: &out)
        JSONOutput.writeRaw(#","code":"#, into: &out)
        if let code = auth.code {
            JSONOutput.writeInt(code, into: &out)
        } else {
            JSONOutput.writeNull(into: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    static func writeTransaction(_ t: SessionRecord.Transaction, into out: inout [UInt8]) {
        JSONOutput.writeRaw(#"{"mail_from":"#, into: &out)
        if let mailFrom = t.mailFrom {
            JSONOutput.writeRaw(#"{"address":"#, into: &out)
            writeOptionalString(mailFrom.address, into: &out)
            JSONOutput.writeRaw(#","params":"#, into: &out)
            writeParameters(mailFrom.params, into: &out)
            JSONOutput.writeRaw(#","reply":"#, into: &out)
            writeReply(mailFrom.reply, into: &out)
            JSONOutput.writeRaw(#","rewritten_to":"#, into: &out)
            writeOptionalString(mailFrom.rewrittenTo, into: &out)
            out.append(UInt8(ascii: "}"))
        } else {
            JSONOutput.writeNull(into: &out)
        }
        JSONOutput.writeRaw(#","rcpt_to":["#, into: &out)
        for (i, recipient) in t.rcptTo.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONOutput.writeRaw(#"{"address":"#, into: &out)
            writeOptionalString(recipient.address, into: &out)
            JSONOutput.writeRaw(#","params":"#, into: &out)
            writeParameters(recipient.params, into: &out)
            JSONOutput.writeRaw(#","reply":"#, into: &out)
            writeReply(recipient.reply, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        JSONOutput.writeRaw(#"],"data":"#, into: &out)
        if let data = t.data {
            JSONOutput.writeRaw(#"{"command":""#, into: &out)
            writeASCII(data.command.rawValue, into: &out)
            JSONOutput.writeRaw(#"","size":"#, into: &out)
            if let size = data.size {
                JSONOutput.writeInt(size, into: &out)
            } else {
                JSONOutput.writeNull(into: &out)
            }
            JSONOutput.writeRaw(#","chunks":"#, into: &out)
            JSONOutput.writeInt(data.chunks, into: &out)
            JSONOutput.writeRaw(#","initial_reply":"#, into: &out)
            writeReply(data.initialReply, into: &out)
            JSONOutput.writeRaw(#","reply":"#, into: &out)
            writeReply(data.reply, into: &out)
            out.append(UInt8(ascii: "}"))
        } else {
            JSONOutput.writeNull(into: &out)
        }
        JSONOutput.writeRaw(#","message":"#, into: &out)
        if let message = t.message {
            writeMessage(message, into: &out)
        } else {
            JSONOutput.writeNull(into: &out)
        }
        JSONOutput.writeRaw(#","rules":"#, into: &out)
        writeVerdicts(t.rules, into: &out)
        JSONOutput.writeRaw(#","outcome":""#, into: &out)
        writeASCII(t.outcome.rawValue, into: &out)
        JSONOutput.writeRaw(#""}"#, into: &out)
    }

    static func writeVerdicts(_ verdicts: [SessionRecord.RuleVerdict], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (i, verdict) in verdicts.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONOutput.writeRaw(#"{"rule":"#, into: &out)
            JSONOutput.writeString(verdict.rule, into: &out)
            JSONOutput.writeRaw(#","file":"#, into: &out)
            JSONOutput.writeString(verdict.file, into: &out)
            JSONOutput.writeRaw(#","line":"#, into: &out)
            if let line = verdict.line {
                JSONOutput.writeInt(line, into: &out)
            } else {
                JSONOutput.writeNull(into: &out)
            }
            JSONOutput.writeRaw(#","stage":"#, into: &out)
            JSONOutput.writeString(verdict.stage, into: &out)
            JSONOutput.writeRaw(#","action":"#, into: &out)
            JSONOutput.writeString(verdict.action, into: &out)
            JSONOutput.writeRaw(#","enforced":"#, into: &out)
            JSONOutput.writeBool(verdict.enforced, into: &out)
            JSONOutput.writeRaw(#","mode":"#, into: &out)
            writeOptionalString(verdict.mode?.rawValue, into: &out)
            JSONOutput.writeRaw(#","detail":"#, into: &out)
            writeOptionalString(verdict.detail, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "]"))
    }

    static func writeMessage(_ m: SessionRecord.Message, into out: inout [UInt8]) {
        JSONOutput.writeRaw(#"{"message_id":"#, into: &out)
        writeOptionalString(m.messageID, into: &out)
        JSONOutput.writeRaw(#","subject":"#, into: &out)
        writeOptionalString(m.subject, into: &out)
        JSONOutput.writeRaw(#","from":"#, into: &out)
        writeStrings(m.from, into: &out)
        JSONOutput.writeRaw(#","to":"#, into: &out)
        writeStrings(m.to, into: &out)
        JSONOutput.writeRaw(#","cc":"#, into: &out)
        writeStrings(m.cc, into: &out)
        JSONOutput.writeRaw(#","date":"#, into: &out)
        writeOptionalString(m.date, into: &out)
        JSONOutput.writeRaw(#","size":"#, into: &out)
        JSONOutput.writeInt(m.size, into: &out)
        JSONOutput.writeRaw(#","sha256":"#, into: &out)
        writeOptionalString(m.sha256, into: &out)
        JSONOutput.writeRaw(#","attachments":["#, into: &out)
        for (i, attachment) in m.attachments.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONOutput.writeRaw(#"{"filename":"#, into: &out)
            writeOptionalString(attachment.filename, into: &out)
            JSONOutput.writeRaw(#","content_type":"#, into: &out)
            JSONOutput.writeString(attachment.contentType, into: &out)
            JSONOutput.writeRaw(#","size":"#, into: &out)
            JSONOutput.writeInt(attachment.size, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        JSONOutput.writeRaw("]}", into: &out)
    }

    static func writeEvent(_ e: SessionRecord.Event, into out: inout [UInt8]) {
        JSONOutput.writeRaw(#"{"t":"#, into: &out)
        JSONOutput.writeSeconds(microseconds: e.t, into: &out)
        JSONOutput.writeRaw(#","from":""#, into: &out)
        writeASCII(e.from.rawValue, into: &out)
        JSONOutput.writeRaw(#"","to":""#, into: &out)
        writeASCII(e.to.rawValue, into: &out)
        JSONOutput.writeRaw(#"","text":"#, into: &out)
        JSONOutput.writeString(e.text, into: &out)
        if let octets = e.octets {
            JSONOutput.writeRaw(#","octets":"#, into: &out)
            JSONOutput.writeInt(octets, into: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// ESMTP parameters as an object in the order sent; a keyword without "=" maps to `null`.
    /// A keyword sent twice is written twice: the record shows what the peer sent.
    static func writeParameters(_ params: [SessionRecord.Parameter], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (i, param) in params.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONOutput.writeString(param.keyword, into: &out)
            out.append(UInt8(ascii: ":"))
            writeOptionalString(param.value, into: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    static func writeStrings(_ values: [String], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (i, value) in values.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONOutput.writeString(value, into: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    static func writeOptionalString(_ value: String?, into out: inout [UInt8]) {
        if let value {
            JSONOutput.writeString(value, into: &out)
        } else {
            JSONOutput.writeNull(into: &out)
        }
    }

    /// Enum raw values are known ASCII without characters that need escaping.
    @inline(__always)
    static func writeASCII(_ value: String, into out: inout [UInt8]) {
        out.append(contentsOf: value.utf8)
    }

    static func writeOptionalASCII(_ value: String?, into out: inout [UInt8]) {
        if let value {
            out.append(UInt8(ascii: "\""))
            writeASCII(value, into: &out)
            out.append(UInt8(ascii: "\""))
        } else {
            JSONOutput.writeNull(into: &out)
        }
    }
}
