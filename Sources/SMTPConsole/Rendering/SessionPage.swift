import SMTPTranscript

/// One session: the ladder of its dialogue, and beside it the envelope with each recipient's
/// fate, the message as the record summarises it (headers kept, attachments with names and
/// sizes), TLS on each leg, AUTH (mechanism, user, result: the record never holds the secrets),
/// and the anomalies. Every value is the record's, escaped.
public enum SessionPage {
    public static func render(_ record: SessionRecord, csrf: String) -> HTML {
        let ladder = Ladder(record)
        return Page.document(title: "Session \(record.sessionID)", csrf: csrf, body: """
            <h1>Session <span class="id">\(record.sessionID)</span></h1>
            <p class="summary">\(record.source == .proxy ? "relayed by smtpscope" : "read from a capture"), \
            started \(RFC3339.format(record.start))\(record.end.map { ", ended " + RFC3339.format($0) } ?? ""); \
            outcome <strong class="outcome o-\(record.outcome.rawValue)">\(record.outcome.rawValue)</strong>\(close(record)). \
            <a href="/api/sessions/\(PathComponent.encode(record.sessionID))">JSON record</a></p>
            <div class="session"><section class="dialogue"><h2>Dialogue</h2>\(legend)\
            \(LadderSVG.render(ladder, title: "Dialogue of session \(record.sessionID)"))</section>
            <aside class="facts">\(endpoints(record))\(transactions(record))\(tls(record))\(auth(record))\
            \(verdicts(record.rules, title: "Session rules"))\(anomalies(record))</aside></div>
            """)
    }

    static let legend: HTML = """
        <p class="legend"><span class="command">command</span> <span class="reply r2xx">2xx</span> \
        <span class="reply r3xx">3xx</span> <span class="reply r4xx">4xx</span> <span class="reply r5xx">5xx</span> \
        <span class="mark-tls">TLS</span> <span class="mark-rule">rule</span> <span class="mark-anomaly">anomaly</span> \
        <span class="gap">capture gap</span></p>
        """

    static func close(_ record: SessionRecord) -> HTML {
        guard let close = record.close else { return .empty }
        return ", closed by \(close.by?.rawValue ?? "?") (\(close.reason.rawValue))"
    }

    static func definitions(_ pairs: [(String, String?)]) -> HTML {
        HTML.joined(pairs.compactMap { name, value in value.map { "<dt>\(name)</dt><dd>\($0)</dd>" } })
    }

    static func reply(_ reply: SessionRecord.Reply?) -> String? {
        guard let reply else { return nil }
        return "\(reply.code)\(reply.enhanced.map { " " + $0 } ?? "") \(reply.text)"
    }

    static func endpoints(_ record: SessionRecord) -> HTML {
        func endpoint(_ endpoint: SessionRecord.Endpoint?) -> String? {
            endpoint.map { "\($0.ip) port \($0.port)" }
        }
        return """
            <section><h2>Connection</h2><dl>\(definitions([
                ("Client", endpoint(record.client)), ("Server", endpoint(record.server)), ("Upstream", endpoint(record.upstream)),
                ("Greeting", reply(record.greeting)), ("HELO", record.helo.map { "\($0.verb) \($0.name)" }),
                ("Extensions", record.extensions.map { $0.joined(separator: ", ") }),
                ("Octets", "client \(record.bytes.client), server \(record.bytes.server)"),
            ]))</dl></section>
            """
    }

    static func transactions(_ record: SessionRecord) -> HTML {
        guard !record.transactions.isEmpty else { return "<section><h2>Messages</h2><p>No transaction.</p></section>" }
        var out: HTML = .empty
        for (position, transaction) in record.transactions.enumerated() {
            var recipients: HTML = .empty
            for recipient in transaction.rcptTo {
                let fate = reply(recipient.reply) ?? "no reply recorded"
                let refused = (recipient.reply?.code ?? 0) >= 400
                recipients += "<li class=\"\(refused ? "refused" : "accepted")\"><span class=\"address\">\(SessionRow.address(recipient.address))</span> → \(fate)</li>"
            }
            let sender = SessionRow.address(transaction.mailFrom?.address)
            out += """
                <section class="transaction"><h2>Message \(position + 1): <span class="outcome o-\(transaction.outcome.rawValue)">\(transaction.outcome.rawValue)</span></h2>
                <dl>\(definitions([
                    ("MAIL FROM", sender), ("Reply", reply(transaction.mailFrom?.reply)),
                    ("Rewritten to", transaction.mailFrom?.rewrittenTo),
                ]))</dl><h3>Recipients</h3><ul class="recipients">\(recipients)</ul>\
                <dl>\(definitions([
                    (transaction.data?.command.rawValue ?? "DATA", transaction.data.map { data in
                        "\(data.size.map { "\($0) octets" } ?? "size unknown")\(data.chunks > 1 ? " in \(data.chunks) chunks" : "")"
                    }),
                    ("354", reply(transaction.data?.initialReply)), ("Final reply", reply(transaction.data?.reply)),
                ]))</dl>\(message(transaction.message))\(verdicts(transaction.rules, title: "Rules"))</section>
                """
        }
        return out
    }

    static func message(_ message: SessionRecord.Message?) -> HTML {
        guard let message else { return .empty }
        func list(_ values: [String]) -> String? { values.isEmpty ? nil : values.joined(separator: ", ") }
        var attachments: HTML = .empty
        if !message.attachments.isEmpty {
            var rows: HTML = .empty
            for attachment in message.attachments {
                rows += "<tr><td class=\"filename\">\(attachment.filename ?? "(no name)")</td><td>\(attachment.contentType)</td><td>\(attachment.size)</td></tr>"
            }
            attachments = "<h3>Attachments</h3><table class=\"attachments\"><thead><tr><th>Name</th><th>Type</th><th>Octets</th></tr></thead><tbody>\(rows)</tbody></table>"
        }
        return """
            <h3>Headers</h3><dl class="headers">\(definitions([
                ("Subject", message.subject), ("From", list(message.from)), ("To", list(message.to)), ("Cc", list(message.cc)),
                ("Date", message.date), ("Message-ID", message.messageID), ("Size", "\(message.size) octets"), ("SHA-256", message.sha256),
            ]))</dl>\(attachments)
            """
    }

    static func tls(_ record: SessionRecord) -> HTML {
        let client = record.tls
        var legs: [(String, String?)] = [
            (record.source == .proxy ? "Client leg" : "Session", describe(mode: client.mode.rawValue, established: client.established, version: client.version, cipher: client.cipher, sni: client.sni, failure: client.failure)),
        ]
        if let upstream = record.upstreamTLS {
            var text = describe(mode: upstream.mode.rawValue, established: upstream.established, version: upstream.version, cipher: upstream.cipher, sni: upstream.sni, failure: upstream.failure)
            if let certificate = upstream.certificate { text += ", certificate \(certificate.rawValue)" }
            legs.append(("Upstream leg", text))
        }
        return "<section><h2>TLS</h2><dl>\(definitions(legs))</dl></section>"
    }

    static func describe(mode: String, established: Bool?, version: String?, cipher: String?, sni: String?, failure: String?) -> String {
        if mode == "none" { return "none (plain text)" }
        var parts = [mode]
        switch established {
        case true?: parts.append("established")
        case false?: parts.append("not established")
        case nil: parts.append("handshake not seen")
        }
        if let version { parts.append(version) }
        if let cipher { parts.append(cipher) }
        if let sni { parts.append("SNI \(sni)") }
        if let failure { parts.append("failure: \(failure)") }
        return parts.joined(separator: ", ")
    }

    static func auth(_ record: SessionRecord) -> HTML {
        guard let auth = record.auth else { return .empty }
        return """
            <section><h2>AUTH</h2><dl>\(definitions([
                ("Mechanism", auth.mechanism), ("User", auth.user), ("Result", auth.result?.rawValue), ("Reply", auth.code.map(String.init)),
            ]))</dl><p class="note">The exchange's payloads are never recorded.</p></section>
            """
    }

    static func verdicts(_ verdicts: [SessionRecord.RuleVerdict], title: String) -> HTML {
        guard !verdicts.isEmpty else { return .empty }
        let items = verdicts.map { verdict -> HTML in
            let mode: HTML = verdict.enforced ? "enforced" : "not enforced"
            return "<li><span class=\"rule\">\(verdict.rule)</span> (\(verdict.file)\(verdict.line.map { ":\($0)" } ?? "")): \(verdict.action) at \(verdict.stage), \(mode)\(verdict.detail.map { " — " + $0 } ?? "")</li>"
        }
        return "<h3>\(title)</h3><ul class=\"verdicts\">\(HTML.joined(items))</ul>"
    }

    static func anomalies(_ record: SessionRecord) -> HTML {
        guard !record.anomalies.isEmpty else { return .empty }
        let items = record.anomalies.map { anomaly -> HTML in
            "<li><span class=\"anomaly\">\(anomaly.kind)</span> at \(LadderSVG.time(anomaly.t)) s\(anomaly.detail.map { ": " + $0 } ?? "")</li>"
        }
        return "<section><h2>Anomalies</h2><ul>\(HTML.joined(items))</ul></section>"
    }
}
