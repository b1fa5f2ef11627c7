import SMTPCore
import SMTPTranscript

/// Records for the console's tests, shaped as the proxy and the capture reader write them.
enum ConsoleFixtures {
    static let hostileSubject = "<script>document.title='pwned'</script>"
    static let hostileName = "\"><img src=x onerror=\"document.title='pwned'\">"

    static func event(_ t: Int64, _ from: SessionRecord.Party, _ to: SessionRecord.Party, _ text: String, octets: Int? = nil) -> SessionRecord.Event {
        SessionRecord.Event(t: t, from: from, to: to, text: text, octets: octets)
    }

    /// A relayed session: EHLO, STARTTLS on the client leg, MAIL (a rule's verdict), one recipient
    /// refused upstream, one accepted, the message, QUIT.
    static func proxyRecord() -> SessionRecord {
        var record = SessionRecord(
            sessionID: "01PROXY",
            source: .proxy,
            start: Timestamp(microsecondsSinceEpoch: 1_768_046_400_000_000),
            client: SessionRecord.Endpoint(ip: "127.0.0.1", port: 40000),
            server: SessionRecord.Endpoint(ip: "127.0.0.1", port: 2525),
            greeting: SessionRecord.Reply(code: 220, text: "smtpscope ESMTP"),
            transactions: [
                SessionRecord.Transaction(
                    mailFrom: SessionRecord.MailFrom(address: "alice@example.org", reply: SessionRecord.Reply(code: 250, text: "Ok")),
                    rcptTo: [
                        SessionRecord.Recipient(address: "bob@example.net", reply: SessionRecord.Reply(code: 250, text: "Ok")),
                        SessionRecord.Recipient(address: "carol@example.net", reply: SessionRecord.Reply(code: 550, enhanced: "5.1.1", text: "No such user")),
                    ],
                    data: SessionRecord.DataTransfer(command: .data, size: 120, chunks: 1, reply: SessionRecord.Reply(code: 250, text: "queued")),
                    message: SessionRecord.Message(subject: hostileSubject, from: [hostileName + " <alice@example.org>"], size: 120,
                                                   attachments: [SessionRecord.Attachment(filename: hostileName + ".pdf", contentType: "application/pdf", size: 42)]),
                    rules: [SessionRecord.RuleVerdict(rule: "tag-external", file: "rules/10.rules", stage: "mail", action: "add_header", enforced: true)],
                    outcome: .delivered
                ),
            ],
            outcome: .completed
        )
        record.upstream = SessionRecord.Endpoint(ip: "127.0.0.1", port: 2526)
        record.tls = SessionRecord.TLS(mode: .starttls, established: true, version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256")
        record.events = [
            event(10, .server, .proxy, "220 upstream ESMTP"),
            event(20, .proxy, .client, "220 smtpscope ESMTP"),
            event(30, .client, .proxy, "EHLO client.example"),
            event(40, .proxy, .client, "250-smtpscope"),
            event(41, .proxy, .client, "250 STARTTLS"),
            event(50, .client, .proxy, "STARTTLS"),
            event(60, .proxy, .client, "220 2.0.0 Ready to start TLS"),
            event(70, .client, .proxy, "EHLO client.example"),
            event(71, .proxy, .client, "250 smtpscope"),
            event(80, .client, .proxy, "MAIL FROM:<alice@example.org>"),
            event(90, .proxy, .server, "MAIL FROM:<alice@example.org>"),
            event(100, .server, .proxy, "250 Ok"),
            event(110, .proxy, .client, "250 Ok"),
            event(120, .client, .proxy, "RCPT TO:<bob@example.net>"),
            event(130, .proxy, .server, "RCPT TO:<bob@example.net>"),
            event(140, .server, .proxy, "250 Ok"),
            event(150, .proxy, .client, "250 Ok"),
            event(160, .client, .proxy, "RCPT TO:<carol@example.net>"),
            event(170, .proxy, .server, "RCPT TO:<carol@example.net>"),
            event(180, .server, .proxy, "550 5.1.1 No such user"),
            event(190, .proxy, .client, "550 5.1.1 No such user"),
            event(200, .client, .proxy, "DATA"),
            event(210, .proxy, .server, "DATA"),
            event(220, .server, .proxy, "354 Go ahead"),
            event(230, .proxy, .client, "354 Go ahead"),
            event(240, .client, .proxy, "[message content: 120 octets]", octets: 120),
            event(250, .proxy, .server, "[message content: 120 octets]", octets: 120),
            event(260, .server, .proxy, "250 queued"),
            event(270, .proxy, .client, "250 queued"),
            event(280, .client, .proxy, "AUTH PLAIN"),
            event(290, .proxy, .client, "334 [redacted]"),
            event(300, .client, .proxy, "[redacted]"),
            event(310, .proxy, .client, "503 5.5.1 Error: already authenticated"),
            event(320, .client, .proxy, "QUIT"),
            event(330, .proxy, .client, "221 Bye"),
        ]
        record.anomalies = [SessionRecord.Anomaly(kind: "pipelining_not_advertised", t: 125, detail: "two commands in one write")]
        return record
    }

    /// A capture that lost bytes between MAIL and its reply.
    static func captureRecord() -> SessionRecord {
        var record = SessionRecord(
            sessionID: "01CAPTURE",
            source: .pcap,
            start: Timestamp(microsecondsSinceEpoch: 1_768_046_400_000_000),
            client: SessionRecord.Endpoint(ip: "192.0.2.1", port: 40000),
            server: SessionRecord.Endpoint(ip: "2001:db8::25", port: 25),
            transactions: [],
            outcome: .incomplete
        )
        record.events = [
            event(0, .server, .client, "220 mx ESMTP"),
            event(10, .client, .server, "EHLO c"),
            event(20, .server, .client, "250 mx"),
            event(30, .client, .server, "MAIL FROM:<a@b>"),
            event(90, .server, .client, "421 4.4.2 Timeout"),
        ]
        record.anomalies = [SessionRecord.Anomaly(kind: "capture_gap", t: 40, detail: "1460 octets lost from the client")]
        return record
    }
}
