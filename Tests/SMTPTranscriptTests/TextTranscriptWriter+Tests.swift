import SMTPCore
import Testing
@testable import SMTPTranscript

@Suite struct TextTranscriptWriterTests {
    @Test func captureRendersAsDialogueWithAnomalyInPlaceAndTransactionSummary() {
        let expected = """
            == session 01JDV7Q8ZK3M5N6P7R8S9T0V1X pcap 2026-11-29T06:45:01.123456Z  192.0.2.10:51234 -> 198.51.100.5:25  outcome: rejected
               helo: EHLO client.example
              +0.000000 S: 220 mx.example ESMTP
              +0.010212 C: EHLO client.example
              +0.011000 S: 250-mx.example
              +0.011000 S: 250 8BITMIME
              +0.020000 C: MAIL FROM:<a@example.com> SIZE=1234 SMTPUTF8
              +0.020000 C: RCPT TO:<b@example.org>
              +0.020000 ! pipelining_not_advertised: MAIL and RCPT in one segment
              +0.030500 S: 250 2.1.0 Ok
              +0.030500 S: 550 5.1.1 User unknown
              +0.600000 C: QUIT
              +0.611999 S: 221 2.0.0 Bye
              transaction 1: a@example.com -> b@example.org (550 5.1.1 User unknown) : rejected
                mail params: SIZE=1234 SMTPUTF8
            == end +0.612000 (close by client: QUIT)  bytes client 120, server 145

            """
        #expect(TextTranscriptWriter.render(Fixtures.rejectedCapture) == expected)
    }

    @Test func proxySessionShowsBothLegsTLSAuthMessageAndRules() {
        let expected = """
            == session 01JDV7Q8ZK3M5N6P7R8S9T0V1Y proxy 2026-11-29T06:45:01.123456Z  [2001:db8::10]:40000 -> 127.0.0.1:2525  outcome: completed
               upstream 203.0.113.7:25
               helo: EHLO laptop.example.com
               tls: starttls, established, TLSv1.3, TLS_AES_128_GCM_SHA256, sni mx.example
               auth: PLAIN user alice, success (235)
              +0.000000 P>C: 220 proxy.example ESMTP
              +0.001000 C>P: AUTH PLAIN [redacted]
              +0.002000 P>S: BDAT 1000
              +0.002100 C>P: [message content: 1000 octets]
              +0.002200 S>P: 250 2.0.0 1000 octets received
              +0.002300 P>C: 250 2.0.0 queued as 4F2
              transaction 1: alice@old.example.com -> b@example.org (250 2.1.5 Ok), c@example.net (250 2.1.5 Ok) : delivered
                mail params: BODY=8BITMIME
                sender rewritten to alice@example.com
                data: BDAT 1234 octets, 2 chunks: 250 2.0.0 queued as 4F2
                message: subject "Quarterly report", id <20261129064501.1@laptop.example.com>, from Alice <alice@example.com>, 1234 octets, sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
                attachment: "a.pdf" application/pdf, 1 octets
                attachment: (no name) image/png, 0 octets
                rule legacy-domain (rules/10-senders.rules, mail): set_mail_from
                rule archive-external (rules/20-content.rules, message): bcc, not enforced
            == end +2.500000 (close by server: FIN)  bytes client 2048, server 512

            """
        #expect(TextTranscriptWriter.render(Fixtures.deliveredProxy) == expected)
    }

    @Test func unknownsAndHostileTextAreShownSafely() {
        let expected = """
            == session 01JDV7Q8ZK3M5N6P7R8S9T0V1Z pcap 1970-01-01T00:00:00.000000Z  [::ffff:192.0.2.1]:0 -> 192.0.2.1:65535  outcome: tls_failed
               helo: HELO caf\u{E9}.\u{65E5}\u{672C}.example \u{1F389}\\x09\\x0d\\x0a
               tls: implicit, not established, failure: handshake failure\\u{2028}line\\u{2029}
               auth: LOGIN, failure
              -0.000312 C: EHLO \\x1b[31mred\\x1b[0m
              +0.000005 ! capture_gap
              +1.000000 S: / slash \\x08\\x0c
              +2147483.647000 S: late [0 octets]
              transaction 1: <> -> ? (no reply seen), \\x85x\\x9f@y\u{A0} (no reply seen) : rejected
                data: DATA refused (554 5.5.1 No valid recipients)
              transaction 2: ? -> (no recipients) : unknown
              transaction 3: ? -> (no recipients) : aborted
                message: no subject, 0 octets
            == end (close: RST)  bytes client 0, server 8589934588

            """
        #expect(TextTranscriptWriter.render(Fixtures.awkward) == expected)
    }

    @Test func minimalSessionHasHeaderAndFooterOnly() {
        #expect(TextTranscriptWriter.render(Fixtures.minimal) == """
            == session 01JDV7Q8ZK3M5N6P7R8S9T0V1W pcap 2026-11-29T06:45:01.123456Z  ? -> ?  outcome: incomplete
            == end (close not seen)  bytes client 0, server 0

            """)
    }

    @Test(arguments: [
        ("plain text", "plain text"),
        ("\u{1B}]0;pwned\u{7}", "\\x1b]0;pwned\\x07"),
        ("\u{7F}\u{80}\u{9F}\u{A0}", "\\x7f\\x80\\x9f\u{A0}"),
        ("abc\u{202E}fed\u{2066}x\u{2069}", "abc\\u{202e}fed\\u{2066}x\\u{2069}"),
        ("\u{200F}\u{2028}", "\\u{200f}\\u{2028}"),
        ("back\\slash", "back\\slash"),
    ])
    func peerTextIsMadeSafeForTerminals(input: String, expected: String) {
        #expect(TextTranscriptWriter.visible(input) == expected)
    }

    @Test(arguments: [
        // A server quoting binary junk back (suricata-verify smtp-errors/smtperr.pcap).
        ("500 5.5.1 Command unrecognized: \"g\u{FFFD}\u{16}Y\u{FFFD}X\"", "500 5.5.1 Command unrecognized: \"g[6 characters that are not text]"),
        ("\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}", "[6 characters that are not text]"),
        // A few control characters are an escape sequence tried on purpose: escaped, not hidden.
        ("EHLO \u{1B}[31mred\u{1B}[0m", nil),
        ("plain text", nil),
    ])
    func binaryLinesAreSummarised(input: String, expected: String?) {
        #expect(NotText.summary(of: input) == expected)
    }

    @Test func aBinaryDialogueLineShowsOnlyItsReadableStart() {
        var record = Fixtures.minimal
        record.events = [.init(t: 10, from: .server, to: .client, text: "500 bad \u{FFFD}\u{1}junk")]
        #expect(TextTranscriptWriter.render(record).contains("  +0.000010 S: 500 bad [6 characters that are not text]\n"))
    }

    @Test func multiLineRepliesReadAsOneLine() {
        let reply = SessionRecord.Reply(code: 550, enhanced: "5.7.1", text: "first\nsecond")
        #expect(TextTranscriptWriter.replyText(reply) == "550 5.7.1 first / second")
    }

    @Test func anomaliesAfterTheLastEventStillAppearInTimeOrder() {
        var record = Fixtures.minimal
        record.events = [.init(t: 10, from: .client, to: .server, text: "QUIT")]
        record.anomalies = [.init(kind: "capture_gap", t: 30), .init(kind: "overlong_line", t: 20, detail: "x")]
        #expect(TextTranscriptWriter.render(record).contains("""
              +0.000010 C: QUIT
              +0.000020 ! overlong_line: x
              +0.000030 ! capture_gap

            """))
    }

    @Test func theUpstreamLegsTLSHasALineOfItsOwn() {
        #expect(TextTranscriptWriter.render(Fixtures.deliveredProxyWithUpstreamTLS).contains(
            "   upstream tls: starttls, established, TLSv1.3, TLS_AES_256_GCM_SHA384, sni mx.example.org, certificate not_checked\n"))
        #expect(TextTranscriptWriter.render(Fixtures.proxyWithFailedUpstreamTLS).contains(
            "   upstream tls: starttls, not established, certificate failed, failure: handshakeFailed(CERTIFICATE_VERIFY_FAILED)\n"))
        #expect(!TextTranscriptWriter.render(Fixtures.deliveredProxy).contains("upstream tls"))
    }
}
