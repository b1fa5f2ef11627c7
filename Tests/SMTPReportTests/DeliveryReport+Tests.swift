import SMTPTranscript
import Testing

@testable import SMTPReport

@Suite struct DeliveryReportTests {
    typealias F = SessionFixtures

    static func report(_ records: [SessionRecord], options: ReportOptions = .init()) -> DeliveryReport {
        var report = DeliveryReport(options: options)
        report.noteFile()
        for record in records { report.add(record) }
        return report
    }

    @Test func rendersTheGoldenReport() {
        let rendered = Self.report(F.all).render()
        #expect(rendered == Self.golden)
        if rendered != Self.golden { print(rendered) }
    }

    @Test func rendersTheSameWhateverTheSessionsArriveIn() {
        // Lists keep arrival order, so only the counting header is order-independent.
        let forward = Self.report(F.all).render()
        let backward = Self.report(F.all.reversed()).render()
        #expect(forward.split(separator: "\n").prefix(8) == backward.split(separator: "\n").prefix(8))
    }

    @Test func anEmptyReportSaysNoneEverywhere() {
        let rendered = DeliveryReport().render()
        #expect(rendered.contains("Time span     none"))
        #expect(rendered.contains("Not delivered: 0 failures (0 permanent, 0 temporary)\n----------------------------------------------------\nnone"))
    }

    @Test func keepsListsBoundedAndCountsExact() {
        var report = DeliveryReport(options: ReportOptions(maxListed: 2, slowestReplies: 3))
        for index in 0..<500 {
            var record = F.greylisted
            record.sessionID = "G\(index)"
            report.add(record)
        }
        let rendered = report.render()
        #expect(rendered.contains("greylisted: 500 (0 permanent, 500 temporary)"))
        #expect(rendered.contains("  ... and 498 more"))
        #expect(rendered.contains("500 stalls of 5.000 s or more"))
        #expect(rendered.split(separator: "\n").filter { $0.contains("RCPT TO:<bob@example.net> -> 450 4.2.0") }.count == 3)
        #expect(report.failures[.greylisted]?.items.count == 2)
        #expect(report.stalls.items.count == 2)
    }

    @Test func detectsStallsAtTheConfiguredThreshold() {
        let lenient = Self.report([F.greylisted], options: ReportOptions(stallThreshold: 31_000_000)).render()
        #expect(lenient.contains("0 stalls of 31.0 s or more"))
        let strict = Self.report([F.greylisted]).render()
        #expect(strict.contains("stalled 30.1 s at RCPT TO:<bob@example.net> (server) in session S3-grey"))
    }

    @Test func reportsCommandsLeftUnansweredAsStalls() {
        var record = F.record("U", start: 0, length: 600)
        record.events = [F.s(0.01, "220 mx"), F.c(0.02, "HELO c"), F.s(0.03, "250 mx"), F.c(0.04, "DATA")]
        record.outcome = .timeout
        record.close = SessionRecord.Close(by: .client, reason: .timeout)
        let rendered = Self.report([record]).render()
        #expect(rendered.contains("no reply for 600.0 s to DATA (server; the session ended)"))
        #expect(rendered.contains("timeout: timeout by\n    client; DATA unanswered"))
    }

    @Test func neutralisesTerminalControlsFromTheNetwork() {
        var record = F.blocklistedAtConnect
        record.greeting?.text = "evil \u{1B}[31mred\u{1B}[0m \u{202E}txt.exe"
        let rendered = Self.report([record]).render()
        #expect(!rendered.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x202E })
        #expect(rendered.contains("evil ?[31mred?[0m ?txt.exe"))
    }

    @Test func countsTLSVersionsAndDowngrades() {
        var secure = F.cleanDelivery
        secure.tls = SessionRecord.TLS(mode: .starttls, established: true, version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256")
        var stripped = F.cleanDelivery
        stripped.anomalies = [SessionRecord.Anomaly(kind: "starttls_stripped", t: 30_000, detail: "STARTTLS missing from the EHLO reply")]
        let rendered = Self.report([secure, stripped]).render()
        #expect(rendered.contains("Modes         none 1, starttls 1; handshakes completed 1"))
        #expect(rendered.contains("Versions      TLSv1.3 1"))
        #expect(rendered.contains("Downgrades    starttls_stripped 1, plaintext_after_starttls 0"))
        #expect(rendered.contains("+0.030 s:\n    starttls_stripped: STARTTLS missing from the EHLO reply"))
    }

    @Test func namesEachSessionWhereSmugglingWasSuspected() {
        var smuggled = F.cleanDelivery
        smuggled.anomalies = [SessionRecord.Anomaly(kind: "smuggling_suspected", t: 2_000_000, detail: "the server ended the message at content octet 52")]
        let rendered = Self.report([smuggled]).render()
        #expect(rendered.contains("Postfix: smtpd_forbid_bare_newline = normalize"))
        #expect(rendered.contains("session \(smuggled.sessionID)"))
        #expect(rendered.contains("smuggling_suspected: the server ended the message at content octet 52"))
    }

    @Test func saysWhenMailWentInsideTLS() {
        var encrypted = F.record("S-tls", start: 0, length: 1)
        encrypted.tls = SessionRecord.TLS(mode: .implicit, established: true, version: "TLSv1.3")
        encrypted.outcome = .completed
        let rendered = Self.report([encrypted]).render()
        #expect(rendered.contains("1 encrypted session carried its mail, if any, inside"))
    }

    static let golden = """
smtpscope delivery report
=========================
Input         1 file, 7 sessions (pcap 7)
Time span     2026-11-29T06:45:00Z to 2026-11-29T06:54:01Z (9 min 1 s)
Sessions      completed 2, rejected 1, tempfail 1, server_closed 1, tls_failed 1, incomplete 1
Transactions  delivered 2, tempfailed 1, aborted 1, unknown 1
Messages      2 delivered (1 only to some recipients), 1 not delivered, 1 aborted, 1 outcome unknown
Recipients    5 accepted, 2 refused (1 permanently, 1 temporarily)

Not delivered: 4 failures (2 permanent, 2 temporary)
----------------------------------------------------
mailbox unknown: 1 (1 permanent, 0 temporary)
  hint: The address does not exist there: check the spelling, or ask the recipient for a current
        address.
  - session S2-partial, 192.0.2.10:51234 -> 198.51.100.5:25, 2026-11-29T06:46:00Z +0.040 s
    stage         rcpt
    command       RCPT TO:<nobody@example.net>
    reply         550 5.1.1 (permanent, after 0.012 s)
                  <nobody@example.net>: Recipient address rejected: User unknown in local recipient
                    table
    meaning       550: Requested action not taken: mailbox unavailable or refused by policy
                  5.1.1: Bad destination mailbox address (permanent failure)
    message       from <alice@example.com>; partial delivery: delivered to 2 of 3 recipients, not to
                  nobody@example.net

blocklisted: 1 (1 permanent, 0 temporary)
  hint: The sending IP or domain is on a blocklist: look it up on the named list and request
        delisting.
  - session S4-block, 203.0.113.7:40000 -> 198.51.100.5:25, 2026-11-29T06:48:00Z +0.000 s
    stage         connect
    command       (connection opened)
    reply         554 5.7.1 (permanent, after 0.015 s)
                  Service unavailable; Client host [203.0.113.7] blocked using zen.spamhaus.org;
                  https://www.spamhaus.org/query/ip/203.0.113.7
    meaning       554: Transaction failed, or no SMTP service here
                  5.7.1: Delivery not authorized, message refused (permanent failure)
    message       no message was started

greylisted: 1 (0 permanent, 1 temporary)
  hint: Greylisting: a temporary refusal by design; a compliant sender retries after a few minutes
        and gets through.
  - session S3-grey, 192.0.2.10:51234 -> 198.51.100.5:25, 2026-11-29T06:47:00Z +0.060 s
    stage         rcpt
    command       RCPT TO:<bob@example.net>
    reply         450 4.2.0 (temporary, after 30.1 s)
                  <bob@example.net>: Recipient address rejected: Greylisted, see
                    http://postgrey.schweikert.ch/help/example.net.html
    meaning       450: Requested mail action not taken: mailbox unavailable (temporary)
                  4.2.0: Other or undefined mailbox status (persistent transient failure)
    message       from <alice@example.com>; not delivered to bob@example.net

timeout: 1 (0 permanent, 1 temporary)
  hint: A peer waited too long: look at the stalls below, the network path and the server's load.
  - session S5-timeout, 192.0.2.10:51234 -> 198.51.100.5:25, 2026-11-29T06:49:00Z +300.1 s
    stage         data
    command       (none pending: the server was waiting for the client)
    reply         421 4.4.2 (temporary)
                  mx.example.net Error: timeout exceeded
    meaning       421: Service not available, closing transmission channel
                  4.4.2: Bad connection (persistent transient failure)
    message       from <alice@example.com>; not delivered to bob@example.net

Stage timing
------------
36 server replies timed; 1 stall of 5.000 s or more
  - stalled 30.1 s at RCPT TO:<bob@example.net> (server) in session S3-grey, 192.0.2.10:51234 ->
    198.51.100.5:25, 2026-11-29T06:47:00Z +0.060 s
Slowest server replies:
     30.1 s  rcpt         RCPT TO:<bob@example.net> -> 450 4.2.0  in session S3-grey
    0.240 s  end-of-data  <CRLF>.<CRLF> after 2048 octets -> 250 2.0.0  in session S2-partial
    0.140 s  end-of-data  <CRLF>.<CRLF> after 1234 octets -> 250 2.0.0  in session S1-clean
    0.015 s  connect      (greeting) -> 554 5.7.1  in session S4-block
    0.014 s  data         DATA -> 354  in session S2-partial
    0.013 s  rcpt         RCPT TO:<carol@example.net> -> 250 2.1.5  in session S2-partial
    0.012 s  data         DATA -> 354  in session S1-clean
    0.012 s  rcpt         RCPT TO:<nobody@example.net> -> 550 5.1.1  in session S2-partial
    0.011 s  rcpt         RCPT TO:<bob@example.net> -> 250 2.1.5  in session S1-clean
    0.011 s  rcpt         RCPT TO:<bob@example.net> -> 250 2.1.5  in session S2-partial

TLS
---
Modes         none 6, starttls 1; handshakes completed 0
Versions      none
Failures      1
  - session S6-tls, 192.0.2.10:51234 -> 198.51.100.5:25, 2026-11-29T06:50:00Z: starttls handshake
    failed: handshake_failure alert from server (SNI mx.example.net)
Downgrades    starttls_stripped 0, plaintext_after_starttls 0

Resets, timeouts and server closes
----------------------------------
reset 0, timeout 0, server_closed 1
  - session S5-timeout, 192.0.2.10:51234 -> 198.51.100.5:25, 2026-11-29T06:49:00Z: server_closed:
    FIN by server; last command DATA; last reply 421 4.4.2

Capture problems
----------------
capture_gap 1, ambiguous_retransmission 0, unparsed_bytes 0, one_sided_capture 0, incomplete
sessions 1
  - session S7-gap, 192.0.2.10:51234 -> 198.51.100.5:25, 2026-11-29T06:51:00Z +1.200 s: capture_gap:
    1460 bytes lost from client

Anomalies
---------
capture_gap 1

"""
}
