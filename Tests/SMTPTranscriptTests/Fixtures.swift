import SMTPCore
@testable import SMTPTranscript

/// Records shared by the encoder, decoder, schema and text tests; together they set every field of
/// `SessionRecord` to a value and (where optional) to `nil`.
enum Fixtures {
    /// 2026-11-29T06:45:01.123456Z
    static let start = Timestamp(microsecondsSinceEpoch: 1_795_934_701_123_456)

    static func at(_ microseconds: Int64) -> Timestamp {
        Timestamp(microsecondsSinceEpoch: start.microsecondsSinceEpoch + microseconds)
    }

    /// Nothing known beyond what every record has.
    static let minimal = SessionRecord(sessionID: "01JDV7Q8ZK3M5N6P7R8S9T0V1W", source: .pcap, start: start)

    /// A capture of a sender rejected at RCPT: the session is `rejected`, its transaction too.
    static let rejectedCapture = SessionRecord(
        sessionID: "01JDV7Q8ZK3M5N6P7R8S9T0V1X",
        source: .pcap,
        start: start,
        end: at(612_000),
        client: .init(ip: "192.0.2.10", port: 51234),
        server: .init(ip: "198.51.100.5", port: 25),
        greeting: .init(code: 220, text: "mx.example ESMTP"),
        helo: .init(verb: "EHLO", name: "client.example"),
        extensions: ["PIPELINING", "SIZE 10240000", "8BITMIME"],
        transactions: [
            .init(
                mailFrom: .init(
                    address: "a@example.com",
                    params: [.init(keyword: "SIZE", value: "1234"), .init(keyword: "SMTPUTF8", value: nil)],
                    reply: .init(code: 250, enhanced: "2.1.0", text: "Ok")
                ),
                rcptTo: [.init(address: "b@example.org", reply: .init(code: 550, enhanced: "5.1.1", text: "User unknown"))],
                outcome: .rejected
            ),
        ],
        events: [
            .init(t: 0, from: .server, to: .client, text: "220 mx.example ESMTP"),
            .init(t: 10_212, from: .client, to: .server, text: "EHLO client.example"),
            .init(t: 11_000, from: .server, to: .client, text: "250-mx.example"),
            .init(t: 11_000, from: .server, to: .client, text: "250 8BITMIME"),
            .init(t: 20_000, from: .client, to: .server, text: "MAIL FROM:<a@example.com> SIZE=1234 SMTPUTF8"),
            .init(t: 20_000, from: .client, to: .server, text: "RCPT TO:<b@example.org>"),
            .init(t: 30_500, from: .server, to: .client, text: "250 2.1.0 Ok"),
            .init(t: 30_500, from: .server, to: .client, text: "550 5.1.1 User unknown"),
            .init(t: 600_000, from: .client, to: .server, text: "QUIT"),
            .init(t: 611_999, from: .server, to: .client, text: "221 2.0.0 Bye"),
        ],
        outcome: .rejected,
        close: .init(by: .client, reason: .quit),
        anomalies: [.init(kind: "pipelining_not_advertised", t: 20_000, detail: "MAIL and RCPT in one segment")],
        bytes: .init(client: 120, server: 145)
    )

    /// A proxied session with TLS, AUTH, BDAT, a parsed message and rule verdicts.
    static let deliveredProxy = SessionRecord(
        sessionID: "01JDV7Q8ZK3M5N6P7R8S9T0V1Y",
        source: .proxy,
        start: start,
        end: at(2_500_000),
        client: .init(ip: "2001:db8::10", port: 40000),
        server: .init(ip: "127.0.0.1", port: 2525),
        upstream: .init(ip: "203.0.113.7", port: 25),
        greeting: .init(code: 220, enhanced: nil, text: "proxy.example ESMTP\nwelcome"),
        helo: .init(verb: "EHLO", name: "laptop.example.com"),
        extensions: ["PIPELINING", "CHUNKING", "AUTH PLAIN LOGIN"],
        tls: .init(mode: .starttls, established: true, version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256", sni: "mx.example", failure: nil),
        auth: .init(mechanism: "PLAIN", user: "alice", result: .success, code: 235),
        transactions: [
            .init(
                mailFrom: .init(address: "alice@old.example.com", params: [.init(keyword: "BODY", value: "8BITMIME")],
                                reply: .init(code: 250, enhanced: "2.1.0", text: "Ok"), rewrittenTo: "alice@example.com"),
                rcptTo: [
                    .init(address: "b@example.org", params: [.init(keyword: "NOTIFY", value: "SUCCESS,FAILURE")],
                          reply: .init(code: 250, enhanced: "2.1.5", text: "Ok")),
                    .init(address: "c@example.net", reply: .init(code: 250, enhanced: "2.1.5", text: "Ok")),
                ],
                data: .init(command: .bdat, size: 1234, chunks: 2, reply: .init(code: 250, enhanced: "2.0.0", text: "queued as 4F2")),
                message: .init(
                    messageID: "<20261129064501.1@laptop.example.com>",
                    subject: "Quarterly report",
                    from: ["Alice <alice@example.com>"],
                    to: ["b@example.org", "c@example.net"],
                    cc: [],
                    date: "Sun, 29 Nov 2026 06:45:00 +0000",
                    size: 1234,
                    sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    attachments: [
                        .init(filename: "a.pdf", contentType: "application/pdf", size: 1),
                        .init(filename: nil, contentType: "image/png", size: 0),
                    ]
                ),
                rules: [
                    .init(rule: "legacy-domain", file: "rules/10-senders.rules", stage: "mail", action: "set_mail_from", enforced: true),
                    .init(rule: "archive-external", file: "rules/20-content.rules", stage: "message", action: "bcc", enforced: false),
                ],
                outcome: .delivered
            ),
        ],
        events: [
            .init(t: 0, from: .proxy, to: .client, text: "220 proxy.example ESMTP"),
            .init(t: 1_000, from: .client, to: .proxy, text: "AUTH PLAIN [redacted]"),
            .init(t: 2_000, from: .proxy, to: .server, text: "BDAT 1000"),
            .init(t: 2_100, from: .client, to: .proxy, text: "", octets: 1000),
            .init(t: 2_200, from: .server, to: .proxy, text: "250 2.0.0 1000 octets received"),
            .init(t: 2_300, from: .proxy, to: .client, text: "250 2.0.0 queued as 4F2"),
        ],
        outcome: .completed,
        close: .init(by: .server, reason: .fin),
        anomalies: [],
        bytes: .init(client: 2048, server: 512)
    )

    /// Every kind of character that needs care, nulls in every optional, odd numbers.
    static let awkward = SessionRecord(
        sessionID: "01JDV7Q8ZK3M5N6P7R8S9T0V1Z",
        source: .pcap,
        start: Timestamp(microsecondsSinceEpoch: 0),
        end: nil,
        client: .init(ip: "::ffff:192.0.2.1", port: 0),
        server: .init(ip: "192.0.2.1", port: 65535),
        greeting: .init(code: 554, enhanced: "5.7.1", text: "go \"away\" \\ now\u{0}\u{1}\u{1F}\u{7F}"),
        helo: .init(verb: "HELO", name: "caf\u{E9}.\u{65E5}\u{672C}.example \u{1F389}\t\r\n"),
        extensions: [],
        tls: .init(mode: .implicit, established: false, version: nil, cipher: nil, sni: nil, failure: "handshake failure\u{2028}line\u{2029}"),
        auth: .init(mechanism: "LOGIN", user: nil, result: .failure, code: nil),
        transactions: [
            .init(
                mailFrom: .init(address: "", params: []),
                rcptTo: [.init(address: nil), .init(address: "\u{85}x\u{9F}@y\u{A0}")],
                data: .init(command: .data, size: nil, chunks: 0, initialReply: .init(code: 554, enhanced: "5.5.1", text: "No valid recipients")),
                outcome: .rejected
            ),
            .init(outcome: .unknown),
            .init(mailFrom: nil, message: .init(), outcome: .aborted),
        ],
        events: [
            .init(t: -312, from: .client, to: .server, text: "EHLO \u{1B}[31mred\u{1B}[0m"),
            .init(t: 1_000_000, from: .server, to: .client, text: "/ slash \u{8}\u{C}"),
            .init(t: Int64(Int32.max) * 1000, from: .server, to: .client, text: "late", octets: 0),
        ],
        outcome: .tlsFailed,
        close: .init(by: nil, reason: .rst),
        anomalies: [.init(kind: "capture_gap", t: 5, detail: nil)],
        bytes: .init(client: 0, server: Int(Int32.max) * 4)
    )

    /// The proxied session with a session-level verdict (a `helo` rule) and a full transaction verdict.
    static let deliveredProxyWithVerdicts: SessionRecord = {
        var record = deliveredProxy
        record.rules = [
            .init(rule: "note-helo", file: "rules/10-baseline.rules", line: 12, stage: "helo", action: "tag", enforced: true, mode: .enforce, detail: "laptop")
        ]
        record.transactions[0].rules.append(
            .init(rule: "watch", file: "rules/20-senders.rules", line: 3, stage: "mail", action: "reject", enforced: false, mode: .monitor, detail: "550 5.7.1 no")
        )
        return record
    }()

    /// The proxied session with STARTTLS on the upstream leg (`upstream_tls`).
    static let deliveredProxyWithUpstreamTLS: SessionRecord = {
        var record = deliveredProxy
        record.upstreamTLS = .init(established: true, version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", sni: "mx.example.org", certificate: .notChecked)
        return record
    }()

    /// An upstream handshake that failed its certificate check.
    static let proxyWithFailedUpstreamTLS: SessionRecord = {
        var record = deliveredProxy
        record.upstreamTLS = .init(established: false, version: nil, cipher: nil, sni: nil, certificate: .failed, failure: "handshakeFailed(CERTIFICATE_VERIFY_FAILED)")
        return record
    }()

    static let all: [SessionRecord] = [minimal, rejectedCapture, deliveredProxy, deliveredProxyWithVerdicts, awkward, deliveredProxyWithUpstreamTLS, proxyWithFailedUpstreamTLS]
}
