import SMTPCore
import SMTPTranscript

/// Hand-built session records for the report tests: one per situation a postmaster meets.
enum SessionFixtures {
    typealias Record = SessionRecord
    typealias Reply = SessionRecord.Reply

    /// 2026-11-29T06:45:00Z.
    static let epoch: Int64 = 1_795_934_700 * 1_000_000
    static let client = Record.Endpoint(ip: "192.0.2.10", port: 51234)
    static let server = Record.Endpoint(ip: "198.51.100.5", port: 25)

    static func c(_ t: Double, _ text: String, octets: Int? = nil) -> Record.Event {
        Record.Event(t: Int64((t * 1_000_000).rounded()), from: .client, to: .server, text: text, octets: octets)
    }

    static func s(_ t: Double, _ text: String) -> Record.Event {
        Record.Event(t: Int64((t * 1_000_000).rounded()), from: .server, to: .client, text: text)
    }

    static func at(_ secondsAfterEpoch: Int64) -> Timestamp {
        Timestamp(microsecondsSinceEpoch: epoch + secondsAfterEpoch * 1_000_000)
    }

    static func record(_ id: String, start: Int64, length: Int64, greeting: Reply? = Reply(code: 220, text: "mx.example.net ESMTP"))
        -> Record
    {
        Record(
            sessionID: id, source: .pcap, start: at(start), end: at(start + length), client: client, server: server,
            greeting: greeting, helo: Record.Helo(verb: "EHLO", name: "client.example.com"),
            extensions: ["PIPELINING", "SIZE 10240000", "STARTTLS", "8BITMIME"], outcome: .completed,
            close: Record.Close(by: .client, reason: .quit)
        )
    }

    static let ehlo: [Record.Event] = [
        s(0.010, "220 mx.example.net ESMTP"),
        c(0.020, "EHLO client.example.com"),
        s(0.030, "250-mx.example.net"),
        s(0.030, "250-PIPELINING"),
        s(0.030, "250-SIZE 10240000"),
        s(0.030, "250-STARTTLS"),
        s(0.030, "250 8BITMIME"),
    ]

    /// A clean pipelined delivery to one recipient.
    static var cleanDelivery: Record {
        var r = record("S1-clean", start: 0, length: 1)
        r.transactions = [Record.Transaction(
            mailFrom: Record.MailFrom(address: "alice@example.com", params: [Record.Parameter(keyword: "SIZE", value: "1234")],
                                      reply: Reply(code: 250, enhanced: "2.1.0", text: "Ok")),
            rcptTo: [Record.Recipient(address: "bob@example.net", reply: Reply(code: 250, enhanced: "2.1.5", text: "Ok"))],
            data: Record.DataTransfer(command: .data, size: 1234, chunks: 1, reply: Reply(code: 250, enhanced: "2.0.0", text: "Ok: queued as 4F2A1")),
            outcome: .delivered
        )]
        r.events = ehlo + [
            c(0.040, "MAIL FROM:<alice@example.com> SIZE=1234"),
            c(0.040, "RCPT TO:<bob@example.net>"),
            c(0.040, "DATA"),
            s(0.050, "250 2.1.0 Ok"),
            s(0.051, "250 2.1.5 Ok"),
            s(0.052, "354 End data with <CR><LF>.<CR><LF>"),
            c(0.060, "[message content]", octets: 1234),
            s(0.200, "250 2.0.0 Ok: queued as 4F2A1"),
            c(0.210, "QUIT"),
            s(0.220, "221 2.0.0 Bye"),
        ]
        r.tls = Record.TLS(mode: .none)
        return r
    }

    /// Three recipients, the second unknown: the message still went to the other two.
    static var partialDelivery: Record {
        var r = record("S2-partial", start: 60, length: 2)
        let refused = Reply(code: 550, enhanced: "5.1.1",
                            text: "<nobody@example.net>: Recipient address rejected: User unknown in local recipient table")
        r.transactions = [Record.Transaction(
            mailFrom: Record.MailFrom(address: "alice@example.com", reply: Reply(code: 250, enhanced: "2.1.0", text: "Ok")),
            rcptTo: [
                Record.Recipient(address: "bob@example.net", reply: Reply(code: 250, enhanced: "2.1.5", text: "Ok")),
                Record.Recipient(address: "nobody@example.net", reply: refused),
                Record.Recipient(address: "carol@example.net", reply: Reply(code: 250, enhanced: "2.1.5", text: "Ok")),
            ],
            data: Record.DataTransfer(command: .data, size: 2048, chunks: 1, reply: Reply(code: 250, enhanced: "2.0.0", text: "Ok: queued as 77B3C")),
            outcome: .delivered
        )]
        r.events = ehlo + [
            c(0.040, "MAIL FROM:<alice@example.com>"),
            c(0.040, "RCPT TO:<bob@example.net>"),
            c(0.040, "RCPT TO:<nobody@example.net>"),
            c(0.040, "RCPT TO:<carol@example.net>"),
            c(0.040, "DATA"),
            s(0.050, "250 2.1.0 Ok"),
            s(0.051, "250 2.1.5 Ok"),
            s(0.052, "550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown in local recipient table"),
            s(0.053, "250 2.1.5 Ok"),
            s(0.054, "354 End data with <CR><LF>.<CR><LF>"),
            c(0.060, "[message content]", octets: 2048),
            s(0.300, "250 2.0.0 Ok: queued as 77B3C"),
            c(0.310, "QUIT"),
            s(0.320, "221 2.0.0 Bye"),
        ]
        return r
    }

    /// Greylisted, after a policy service took 30.1 s to answer the RCPT.
    static var greylisted: Record {
        var r = record("S3-grey", start: 120, length: 31)
        let greylist = Reply(code: 450, enhanced: "4.2.0",
                             text: "<bob@example.net>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.net.html")
        r.transactions = [Record.Transaction(
            mailFrom: Record.MailFrom(address: "alice@example.com", reply: Reply(code: 250, enhanced: "2.1.0", text: "Ok")),
            rcptTo: [Record.Recipient(address: "bob@example.net", reply: greylist)],
            outcome: .tempfailed
        )]
        r.events = ehlo + [
            c(0.040, "MAIL FROM:<alice@example.com>"),
            s(0.050, "250 2.1.0 Ok"),
            c(0.060, "RCPT TO:<bob@example.net>"),
            s(30.160, "450 4.2.0 <bob@example.net>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.net.html"),
            c(30.170, "QUIT"),
            s(30.180, "221 2.0.0 Bye"),
        ]
        r.outcome = .tempfail
        return r
    }

    /// Refused at connect: the client's address is on Spamhaus ZEN (multi-line greeting).
    static var blocklistedAtConnect: Record {
        let greeting = Reply(code: 554, enhanced: "5.7.1",
                             text: "Service unavailable; Client host [203.0.113.7] blocked using zen.spamhaus.org;\nhttps://www.spamhaus.org/query/ip/203.0.113.7")
        var r = record("S4-block", start: 180, length: 1, greeting: greeting)
        r.client = Record.Endpoint(ip: "203.0.113.7", port: 40000)
        r.helo = nil
        r.extensions = nil
        r.events = [
            s(0.015, "554-5.7.1 Service unavailable; Client host [203.0.113.7] blocked using zen.spamhaus.org;"),
            s(0.015, "554 5.7.1 https://www.spamhaus.org/query/ip/203.0.113.7"),
            c(0.020, "QUIT"),
            s(0.021, "221 2.0.0 Bye"),
        ]
        r.outcome = .rejected
        return r
    }

    /// The client went quiet after 354; the server gave up after 300 s with 421.
    static var serverTimeout: Record {
        var r = record("S5-timeout", start: 240, length: 301)
        r.transactions = [Record.Transaction(
            mailFrom: Record.MailFrom(address: "alice@example.com", reply: Reply(code: 250, enhanced: "2.1.0", text: "Ok")),
            rcptTo: [Record.Recipient(address: "bob@example.net", reply: Reply(code: 250, enhanced: "2.1.5", text: "Ok"))],
            data: Record.DataTransfer(command: .data, size: nil, chunks: 0),
            outcome: .aborted
        )]
        r.events = ehlo + [
            c(0.040, "MAIL FROM:<alice@example.com>"),
            s(0.050, "250 2.1.0 Ok"),
            c(0.060, "RCPT TO:<bob@example.net>"),
            s(0.070, "250 2.1.5 Ok"),
            c(0.080, "DATA"),
            s(0.090, "354 End data with <CR><LF>.<CR><LF>"),
            s(300.090, "421 4.4.2 mx.example.net Error: timeout exceeded"),
        ]
        r.outcome = .serverClosed
        r.close = Record.Close(by: .server, reason: .fin)
        return r
    }

    /// STARTTLS answered 220, then the handshake failed.
    static var starttlsFailure: Record {
        var r = record("S6-tls", start: 300, length: 1)
        r.events = ehlo + [
            c(0.040, "STARTTLS"),
            s(0.050, "220 2.0.0 Ready to start TLS"),
        ]
        r.tls = Record.TLS(mode: .starttls, established: false, sni: "mx.example.net", failure: "handshake_failure alert from server")
        r.outcome = .tlsFailed
        r.close = Record.Close(by: .server, reason: .rst)
        return r
    }

    /// A capture gap lost the reply to DATA's end.
    static var captureGap: Record {
        var r = record("S7-gap", start: 360, length: 2)
        r.transactions = [Record.Transaction(
            mailFrom: Record.MailFrom(address: "alice@example.com", reply: Reply(code: 250, enhanced: "2.1.0", text: "Ok")),
            rcptTo: [Record.Recipient(address: "bob@example.net", reply: Reply(code: 250, enhanced: "2.1.5", text: "Ok"))],
            data: Record.DataTransfer(command: .data, size: nil, chunks: 0),
            outcome: .unknown
        )]
        r.events = ehlo + [
            c(0.040, "MAIL FROM:<alice@example.com>"),
            s(0.050, "250 2.1.0 Ok"),
            c(0.060, "RCPT TO:<bob@example.net>"),
            s(0.070, "250 2.1.5 Ok"),
            c(0.080, "DATA"),
            s(0.090, "354 End data with <CR><LF>.<CR><LF>"),
        ]
        r.anomalies = [Record.Anomaly(kind: "capture_gap", t: 1_200_000, detail: "1460 bytes lost from client")]
        r.outcome = .incomplete
        r.close = nil
        return r
    }

    static var all: [Record] {
        [cleanDelivery, partialDelivery, greylisted, blocklistedAtConnect, serverTimeout, starttlsFailure, captureGap]
    }
}
