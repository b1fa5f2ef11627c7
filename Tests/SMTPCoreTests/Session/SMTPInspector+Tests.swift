import NIOCore
import SMTPCore
import Testing

@Suite("SMTPInspector")
struct SMTPInspectorTests {
    typealias Step = InspectorScenario.Step

    /// Greeting and EHLO at t1-t3; the EHLO reply advertises what `extensions` lists.
    static func opening(_ extensions: [String] = ["PIPELINING", "8BITMIME"]) -> [Step] {
        let lines = ["mx.example"] + extensions
        let reply = lines.enumerated().map { index, line in "250\(index == lines.count - 1 ? " " : "-")\(line)\r\n" }.joined()
        return [
            .server("220 mx.example ESMTP\r\n", at: 1),
            .client("EHLO client.example\r\n", at: 2),
            .server(reply, at: 3),
        ]
    }

    static func openingTranscript(_ extensions: [String] = ["PIPELINING", "8BITMIME"]) -> [String] {
        [
            "t1 R 220 mx.example ESMTP -> greeting",
            "t2 C#1 EHLO client.example",
            "t3 R 250 \((["mx.example"] + extensions).joined(separator: "|")) -> #1 EHLO",
        ]
    }

    // MARK: Plain sessions

    @Test("a plain session: greeting, EHLO, MAIL, two RCPT (one refused), DATA, content, QUIT")
    func plainSession() {
        let scenario = InspectorScenario(Self.opening() + [
            .client("MAIL FROM:<a@b.example> SIZE=100\r\n", at: 4),
            .server("250 2.1.0 Ok\r\n", at: 5),
            .client("RCPT TO:<x@y.example>\r\n", at: 6),
            .server("250 2.1.5 Ok\r\n", at: 7),
            .client("RCPT TO:<bad@y.example>\r\n", at: 8),
            .server("550 5.1.1 <bad@y.example>: Recipient address rejected\r\n", at: 9),
            .client("DATA\r\n", at: 10),
            .server("354 End data with <CR><LF>.<CR><LF>\r\n", at: 11),
            .client("Subject: test\r\n\r\nhello\r\n..dotted\r\n", at: 12),
            .client(".\r\n", at: 13),
            .server("250 2.0.0 Ok: queued as 4AbC\r\n", at: 14),
            .client("QUIT\r\n", at: 15),
            .server("221 2.0.0 Bye\r\n", at: 16),
            .finish(at: 17),
        ])
        scenario.expect(Self.openingTranscript() + [
            "t4 C#2 MAIL FROM:<a@b.example> SIZE=100",
            "t5 R 250 2.1.0 Ok -> #2 MAIL",
            "t6 C#3 RCPT TO:<x@y.example>",
            "t7 R 250 2.1.5 Ok -> #3 RCPT",
            "t8 C#4 RCPT TO:<bad@y.example>",
            "t9 R 550 5.1.1 <bad@y.example>: Recipient address rejected -> #4 RCPT",
            "t10 C#5 DATA",
            "t11 R 354 End data with <CR><LF>.<CR><LF> -> #5 DATA",
            "t11 begin #5 data",
            "t12 content \"Subject: test\\r\\n\\r\\nhello\\r\\n.dotted\\r\\n\"",
            "t13 end #5 33 octets",
            "t14 R 250 2.0.0 Ok: queued as 4AbC -> #5 end of data",
            "t15 C#6 QUIT",
            "t16 R 221 2.0.0 Bye -> #6 QUIT",
        ])
    }

    @Test("pipelined MAIL, RCPT, RCPT, DATA and their replies in one chunk are paired in order")
    func pipelining() {
        let scenario = InspectorScenario(Self.opening() + [
            .client("MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nRCPT TO:<z@y>\r\nDATA\r\n", at: 4),
            .server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 No\r\n354 Go\r\n", at: 5),
            .client("body\r\n.\r\nQUIT\r\n", at: 6),
            .server("250 2.0.0 queued\r\n221 2.0.0 Bye\r\n", at: 7),
            .finish(at: 8),
        ])
        scenario.expect(Self.openingTranscript() + [
            "t4 C#2 MAIL FROM:<a@b>",
            "t4 C#3 RCPT TO:<x@y>",
            "t4 C#4 RCPT TO:<z@y>",
            "t4 C#5 DATA",
            "t5 R 250 2.1.0 Ok -> #2 MAIL",
            "t5 R 250 2.1.5 Ok -> #3 RCPT",
            "t5 R 550 5.1.1 No -> #4 RCPT",
            "t5 R 354 Go -> #5 DATA",
            "t5 begin #5 data",
            "t6 content \"body\\r\\n\"",
            "t6 end #5 6 octets",
            "t6 C#6 QUIT",
            "t7 R 250 2.0.0 queued -> #5 end of data",
            "t7 R 221 2.0.0 Bye -> #6 QUIT",
        ])
    }

    @Test("pipelining without PIPELINING advertised is flagged once")
    func pipeliningNotAdvertised() {
        let scenario = InspectorScenario(Self.opening(["8BITMIME"]) + [
            .client("MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nRCPT TO:<z@y>\r\n", at: 4),
            .server("250 Ok\r\n250 Ok\r\n250 Ok\r\n", at: 5),
            .client("QUIT\r\n", at: 6),
            .server("221 Bye\r\n", at: 7),
            .finish(at: 8),
        ])
        scenario.expect(Self.openingTranscript(["8BITMIME"]) + [
            "t4 C#2 MAIL FROM:<a@b>",
            "t4 ! pipelining_not_advertised",
            "t4 C#3 RCPT TO:<x@y>",
            "t4 C#4 RCPT TO:<z@y>",
            "t5 R 250 Ok -> #2 MAIL",
            "t5 R 250 Ok -> #3 RCPT",
            "t5 R 250 Ok -> #4 RCPT",
            "t6 C#5 QUIT",
            "t7 R 221 Bye -> #5 QUIT",
        ])
    }

    @Test("a command before the greeting is flagged and still paired after it")
    func commandBeforeGreeting() {
        let scenario = InspectorScenario([
            .client("EHLO early.example\r\n", at: 1),
            .server("220 mx.example ESMTP\r\n", at: 2),
            .server("250 mx.example\r\n", at: 3),
            .finish(at: 4),
        ])
        scenario.expect([
            "t1 ! command_before_greeting",
            "t1 C#1 EHLO early.example",
            "t2 R 220 mx.example ESMTP -> greeting",
            "t3 R 250 mx.example -> #1 EHLO",
        ])
    }

    @Test("RSET between two transactions")
    func rsetBetweenTransactions() {
        let scenario = InspectorScenario(Self.opening() + [
            .client("MAIL FROM:<a@b>\r\n", at: 4),
            .server("250 Ok\r\n", at: 5),
            .client("RSET\r\n", at: 6),
            .server("250 2.0.0 Ok\r\n", at: 7),
            .client("MAIL FROM:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n", at: 8),
            .server("250 Ok\r\n250 Ok\r\n354 Go\r\n", at: 9),
            .client("x\r\n.\r\n", at: 10),
            .server("250 queued\r\n", at: 11),
            .finish(at: 12),
        ])
        scenario.expect(Self.openingTranscript() + [
            "t4 C#2 MAIL FROM:<a@b>",
            "t5 R 250 Ok -> #2 MAIL",
            "t6 C#3 RSET",
            "t7 R 250 2.0.0 Ok -> #3 RSET",
            "t8 C#4 MAIL FROM:<c@d>",
            "t8 C#5 RCPT TO:<e@f>",
            "t8 C#6 DATA",
            "t9 R 250 Ok -> #4 MAIL",
            "t9 R 250 Ok -> #5 RCPT",
            "t9 R 354 Go -> #6 DATA",
            "t9 begin #6 data",
            "t10 content \"x\\r\\n\"",
            "t10 end #6 3 octets",
            "t11 R 250 queued -> #6 end of data",
        ])
    }

    @Test("a malformed command is recorded with the server's answer")
    func malformedCommand() {
        let scenario = InspectorScenario(Self.opening() + [
            .client("MAIL FROM:<a@b> SIZE=\r\n", at: 4),
            .server("501 5.5.4 Bad MAIL parameter\r\n", at: 5),
            .finish(at: 6),
        ])
        scenario.expect(Self.openingTranscript() + [
            "t4 ! malformed_command",
            "t4 C#2 invalid 501 MAIL FROM:<a@b> SIZE=",
            "t5 R 501 5.5.4 Bad MAIL parameter -> #2 invalid",
        ])
    }

    @Test("a reply without a command is flagged and answers nothing")
    func replyWithoutCommand() {
        let scenario = InspectorScenario(Self.opening() + [
            .server("250 spontaneous\r\n", at: 4),
            .client("QUIT\r\n", at: 5),
            .server("221 Bye\r\n", at: 6),
            .finish(at: 7),
        ])
        scenario.expect(Self.openingTranscript() + [
            "t4 ! reply_without_command",
            "t4 R 250 spontaneous -> unknown",
            "t5 C#2 QUIT",
            "t6 R 221 Bye -> #2 QUIT",
        ])
    }

    @Test("a 421 without a command is not an anomaly (RFC 5321 §3.8)")
    func unsolicited421() {
        let scenario = InspectorScenario(Self.opening() + [
            .server("421 4.4.2 Timeout\r\n", at: 4),
            .finish(at: 5),
        ])
        scenario.expect(Self.openingTranscript() + ["t4 R 421 4.4.2 Timeout -> unknown"])
    }

    @Test("a bare LF ending a command line is flagged once")
    func bareLFInCommand() {
        let scenario = InspectorScenario(Self.opening() + [
            .client("NOOP\nNOOP\n", at: 4),
            .server("250 Ok\r\n250 Ok\r\n", at: 5),
            .finish(at: 6),
        ])
        scenario.expect(Self.openingTranscript() + [
            "t4 ! bare_lf_in_command",
            "t4 C#2 NOOP",
            "t4 C#3 NOOP",
            "t5 R 250 Ok -> #2 NOOP",
            "t5 R 250 Ok -> #3 NOOP",
        ])
    }

    // MARK: AUTH

    static let password = "hunter2-very-secret"

    @Test("AUTH PLAIN with an initial response: the user is learnt, the secret never shown")
    func authPlainInitialResponse() {
        let blob = CoreTestSupport.base64("\u{0}someone@example.com\u{0}\(Self.password)")
        let scenario = InspectorScenario(Self.opening(["PIPELINING", "AUTH PLAIN LOGIN"]) + [
            .client("AUTH PLAIN \(blob)\r\n", at: 4),
            .server("235 2.7.0 Authentication successful\r\n", at: 5),
            .client("QUIT\r\n", at: 6),
            .server("221 Bye\r\n", at: 7),
            .finish(at: 8),
        ])
        scenario.expect(Self.openingTranscript(["PIPELINING", "AUTH PLAIN LOGIN"]) + [
            "t4 C#2 AUTH PLAIN [redacted]",
            "t4 identity #2 PLAIN someone@example.com",
            "t5 R 235 2.7.0 Authentication successful -> #2 AUTH",
            "t6 C#3 QUIT",
            "t7 R 221 Bye -> #3 QUIT",
        ])
        Self.expectNoSecret(scenario, [Self.password, blob])
    }

    @Test("AUTH LOGIN driven by 334 challenges: SASL lines appear only as saslResponse")
    func authLogin() {
        let user = CoreTestSupport.base64("someone")
        let secret = CoreTestSupport.base64(Self.password)
        let scenario = InspectorScenario(Self.opening(["PIPELINING", "AUTH LOGIN"]) + [
            .client("AUTH LOGIN\r\n", at: 4),
            .server("334 VXNlcm5hbWU6\r\n", at: 5),
            .client("\(user)\r\n", at: 6),
            .server("334 UGFzc3dvcmQ6\r\n", at: 7),
            .client("\(secret)\r\n", at: 8),
            .server("235 2.7.0 Authentication successful\r\n", at: 9),
            .client("MAIL FROM:<someone@example.com>\r\n", at: 10),
            .server("250 Ok\r\n", at: 11),
            .finish(at: 12),
        ])
        scenario.expect(Self.openingTranscript(["PIPELINING", "AUTH LOGIN"]) + [
            "t4 C#2 AUTH LOGIN",
            "t5 R 334 VXNlcm5hbWU6 -> #2 AUTH",
            "t6 sasl response for #2",
            "t6 identity #2 LOGIN someone",
            "t7 R 334 UGFzc3dvcmQ6 -> #2 sasl response",
            "t8 sasl response for #2",
            "t9 R 235 2.7.0 Authentication successful -> #2 sasl response",
            "t10 C#3 MAIL FROM:<someone@example.com>",
            "t11 R 250 Ok -> #3 MAIL",
        ])
        Self.expectNoSecret(scenario, [Self.password, secret])
    }

    @Test("a cancelled AUTH (\"*\") returns to commands")
    func authCancelled() {
        let scenario = InspectorScenario(Self.opening(["PIPELINING", "AUTH LOGIN"]) + [
            .client("AUTH LOGIN\r\n", at: 4),
            .server("334 VXNlcm5hbWU6\r\n", at: 5),
            .client("*\r\n", at: 6),
            .server("501 5.7.0 Authentication aborted\r\n", at: 7),
            .client("QUIT\r\n", at: 8),
            .server("221 Bye\r\n", at: 9),
            .finish(at: 10),
        ])
        scenario.expect(Self.openingTranscript(["PIPELINING", "AUTH LOGIN"]) + [
            "t4 C#2 AUTH LOGIN",
            "t5 R 334 VXNlcm5hbWU6 -> #2 AUTH",
            "t6 sasl response for #2",
            "t7 R 501 5.7.0 Authentication aborted -> #2 sasl response",
            "t8 C#3 QUIT",
            "t9 R 221 Bye -> #3 QUIT",
        ])
    }

    static func expectNoSecret(_ scenario: InspectorScenario, _ secrets: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let events = scenario.run(.whole)
        var dumped = ""
        dump(events, to: &dumped)
        let renderings = [dumped, String(describing: events), String(reflecting: events)] + InspectorScenario.render(events)
        for shown in renderings {
            for secret in secrets {
                #expect(!shown.contains(secret), sourceLocation: sourceLocation)
            }
        }
    }

    // MARK: STARTTLS

    /// A TLS 1.2 record header and a few octets of a ClientHello / ServerHello (content type 22).
    static let clientTLS: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00]
    static let serverTLS: [UInt8] = [0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]

    @Test("STARTTLS answered 220, then TLS records: the rest is encrypted")
    func starttls() {
        let scenario = InspectorScenario(Self.opening(["PIPELINING", "STARTTLS"]) + [
            .client("STARTTLS\r\n", at: 4),
            .server("220 2.0.0 Ready to start TLS\r\n", at: 5),
            .clientBytes(Self.clientTLS, at: 6),
            .serverBytes(Self.serverTLS, at: 7),
            .clientBytes([0x17, 0x03, 0x03, 0x00, 0x02, 0xAA, 0xBB], at: 8),
            .finish(at: 9),
        ])
        scenario.expect(Self.openingTranscript(["PIPELINING", "STARTTLS"]) + [
            "t4 C#2 STARTTLS",
            "t5 R 220 2.0.0 Ready to start TLS -> #2 STARTTLS",
            "t5 tls started",
            "t9 tls summary",
        ])
    }

    /// Hostile-input case 21, CVE-2011-0411.
    @Test("plaintext pipelined after STARTTLS in the same chunk is flagged and discarded")
    func plaintextAfterStarttls() {
        let scenario = InspectorScenario(Self.opening(["PIPELINING", "STARTTLS"]) + [
            .client("STARTTLS\r\nRSET\r\n", at: 4),
            .server("220 2.0.0 Ready to start TLS\r\n", at: 5),
            .clientBytes(Self.clientTLS, at: 6),
            .serverBytes(Self.serverTLS, at: 7),
            .finish(at: 8),
        ])
        scenario.expect(Self.openingTranscript(["PIPELINING", "STARTTLS"]) + [
            "t4 C#2 STARTTLS",
            "t5 R 220 2.0.0 Ready to start TLS -> #2 STARTTLS",
            "t5 ! plaintext_after_starttls",
            "t5 tls started",
            "t8 tls summary",
        ])
    }

    @Test("STARTTLS refused with 454 is flagged as stripped; the session goes on in plaintext")
    func starttlsRefused() {
        let scenario = InspectorScenario(Self.opening(["PIPELINING", "STARTTLS"]) + [
            .client("STARTTLS\r\n", at: 4),
            .server("454 4.7.0 TLS not available due to local problem\r\n", at: 5),
            .client("QUIT\r\n", at: 6),
            .server("221 Bye\r\n", at: 7),
            .finish(at: 8),
        ])
        scenario.expect(Self.openingTranscript(["PIPELINING", "STARTTLS"]) + [
            "t4 C#2 STARTTLS",
            "t5 R 454 4.7.0 TLS not available due to local problem -> #2 STARTTLS",
            "t5 ! starttls_stripped",
            "t6 C#3 QUIT",
            "t7 R 221 Bye -> #3 QUIT",
        ])
    }

    @Test("an implicit-TLS session is encrypted from the start")
    func implicitTLS() {
        let scenario = InspectorScenario(implicitTLS: true, [
            .clientBytes(Self.clientTLS, at: 1),
            .serverBytes(Self.serverTLS, at: 2),
            .finish(at: 3),
        ])
        scenario.expect(["t3 tls summary"])
    }

    @Test("plaintext SMTP on an implicit-TLS port is read as SMTP, with no handshake to fail")
    func plaintextOnAnImplicitTLSPort() {
        let scenario = InspectorScenario(implicitTLS: true, Self.opening() + [
            .client("QUIT\r\n", at: 4),
            .server("221 Bye\r\n", at: 5),
            .finish(at: 6),
        ])
        scenario.expect(Self.openingTranscript() + ["t4 C#2 QUIT", "t5 R 221 Bye -> #2 QUIT"])
    }

    @Test("a ClientHello before any greeting is implicit TLS on any port (RFC 8314)")
    func clientHelloFirstIsImplicitTLS() {
        let scenario = InspectorScenario([
            .clientBytes(Self.clientTLS, at: 1),
            .serverBytes(Self.serverTLS, at: 2),
            .finish(at: 3),
        ])
        scenario.expect(["t1 tls started implicit", "t3 tls summary"])
    }

    // MARK: BDAT

    /// RFC 3030 §2 and hostile-input case 17: exactly the announced octets are content, the rest are
    /// commands; one reply per BDAT.
    @Test("BDAT takes exactly its chunk; the next command in the same chunk is a command")
    func bdatChunks() {
        let scenario = InspectorScenario(Self.opening(["PIPELINING", "CHUNKING"]) + [
            .client("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", at: 4),
            .server("250 Ok\r\n250 Ok\r\n", at: 5),
            .client("BDAT 10\r\n0123456789BDAT 5 LAST\r\nab\r\n.", at: 6),
            .server("250 2.0.0 10 octets received\r\n250 2.0.0 queued\r\n", at: 7),
            .client("QUIT\r\n", at: 8),
            .server("221 Bye\r\n", at: 9),
            .finish(at: 10),
        ])
        scenario.expect(Self.openingTranscript(["PIPELINING", "CHUNKING"]) + [
            "t4 C#2 MAIL FROM:<a@b>",
            "t4 C#3 RCPT TO:<c@d>",
            "t5 R 250 Ok -> #2 MAIL",
            "t5 R 250 Ok -> #3 RCPT",
            "t6 C#4 BDAT 10",
            "t6 begin #4 bdat",
            "t6 content \"0123456789\"",
            "t6 C#5 BDAT 5 LAST",
            "t6 content \"ab\\r\\n.\"",
            "t6 end #5 15 octets",
            "t7 R 250 2.0.0 10 octets received -> #4 chunk",
            "t7 R 250 2.0.0 queued -> #5 last chunk",
            "t8 C#6 QUIT",
            "t9 R 221 Bye -> #6 QUIT",
        ])
    }

    @Test("BDAT 0 LAST ends the message with no octets")
    func bdatZeroLast() {
        let scenario = InspectorScenario(Self.opening(["PIPELINING", "CHUNKING"]) + [
            .client("BDAT 3\r\nabcBDAT 0 LAST\r\n", at: 4),
            .server("250 Ok\r\n250 queued\r\n", at: 5),
            .client("QUIT\r\n", at: 6),
            .server("221 Bye\r\n", at: 7),
            .finish(at: 8),
        ])
        scenario.expect(Self.openingTranscript(["PIPELINING", "CHUNKING"]) + [
            "t4 C#2 BDAT 3",
            "t4 begin #2 bdat",
            "t4 content \"abc\"",
            "t4 C#3 BDAT 0 LAST",
            "t4 end #3 3 octets",
            "t5 R 250 Ok -> #2 chunk",
            "t5 R 250 queued -> #3 last chunk",
            "t6 C#4 QUIT",
            "t7 R 221 Bye -> #4 QUIT",
        ])
    }

    // MARK: Mid-stream starts and gaps

    @Test("a capture starting inside DATA content resynchronises on the next command")
    func midStreamStart() {
        let scenario = InspectorScenario(startsAtBeginning: false, [
            .client("the tail of some message\r\nmore of it\r\n.\r\n", at: 1),
            .server("ing the end of a reply\r\n250 2.0.0 Ok: queued\r\n", at: 2),
            .client("MAIL FROM:<a@b>\r\n", at: 3),
            .server("250 2.1.0 Ok\r\n", at: 4),
            .client("QUIT\r\n", at: 5),
            .server("221 Bye\r\n", at: 6),
            .finish(at: 7),
        ])
        scenario.expect([
            "t2 R 250 2.0.0 Ok: queued -> unknown",
            "t3 C#1 MAIL FROM:<a@b>",
            "t4 R 250 2.1.0 Ok -> #1 MAIL",
            "t5 C#2 QUIT",
            "t6 R 221 Bye -> #2 QUIT",
        ])
    }

    @Test("a client gap inside DATA makes the message incomplete; the session goes on")
    func clientGapInData() {
        let scenario = InspectorScenario(Self.opening() + [
            .client("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", at: 4),
            .server("250 Ok\r\n250 Ok\r\n354 Go\r\n", at: 5),
            .client("part one\r\n", at: 6),
            .gap(.client, octets: 1460, at: 7),
            .client("part two\r\n.\r\n", at: 8),
            .server("250 2.0.0 queued\r\n", at: 9),
            .client("QUIT\r\n", at: 10),
            .server("221 Bye\r\n", at: 11),
            .finish(at: 12),
        ])
        scenario.expect(Self.openingTranscript() + [
            "t4 C#2 MAIL FROM:<a@b>",
            "t4 C#3 RCPT TO:<c@d>",
            "t4 C#4 DATA",
            "t5 R 250 Ok -> #2 MAIL",
            "t5 R 250 Ok -> #3 RCPT",
            "t5 R 354 Go -> #4 DATA",
            "t5 begin #4 data",
            "t6 content \"part one\\r\\n\"",
            "t7 ! capture_gap",
            "t8 content \"part two\\r\\n\"",
            "t8 end #4 20 octets incomplete",
            "t9 R 250 2.0.0 queued -> #4 end of data",
            "t10 C#5 QUIT",
            "t11 R 221 Bye -> #5 QUIT",
        ])
    }

    @Test("a server gap: replies realign with the command they answer")
    func serverGap() {
        let scenario = InspectorScenario(Self.opening() + [
            .client("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n", at: 4),
            .server("250 2.1.0 Ok\r\n250 2.1", at: 5),
            .gap(.server, octets: nil, at: 6),
            .server(".5 Ok\r\n354 Go\r\n", at: 7),
            .client("x\r\n.\r\n", at: 8),
            .server("250 queued\r\n", at: 9),
            .finish(at: 10),
        ])
        scenario.expect(Self.openingTranscript() + [
            "t4 C#2 MAIL FROM:<a@b>",
            "t4 C#3 RCPT TO:<c@d>",
            "t4 C#4 RCPT TO:<e@f>",
            "t4 C#5 DATA",
            "t5 R 250 2.1.0 Ok -> #2 MAIL",
            "t6 ! capture_gap",
            "t7 R 354 Go -> #5 DATA",
            "t7 begin #5 data",
            "t8 content \"x\\r\\n\"",
            "t8 end #5 3 octets",
            "t9 R 250 queued -> #5 end of data",
        ])
    }

    @Test("bytes left without a line end at the finish are reported")
    func unparsedAtFinish() {
        let scenario = InspectorScenario(Self.opening() + [
            .client("QUI", at: 4),
            .finish(at: 5),
        ])
        scenario.expect(Self.openingTranscript() + ["t5 ! unparsed_bytes"])
    }

    @Test("a session cut inside DATA abandons the message: the client never finished it")
    func cutInsideData() {
        let scenario = InspectorScenario(Self.opening() + [
            .client("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", at: 4),
            .server("250 Ok\r\n250 Ok\r\n354 Go\r\n", at: 5),
            .client("partial\r\n", at: 6),
            .finish(at: 7),
        ])
        scenario.expect(Self.openingTranscript() + [
            "t4 C#2 MAIL FROM:<a@b>",
            "t4 C#3 RCPT TO:<c@d>",
            "t4 C#4 DATA",
            "t5 R 250 Ok -> #2 MAIL",
            "t5 R 250 Ok -> #3 RCPT",
            "t5 R 354 Go -> #4 DATA",
            "t5 begin #4 data",
            "t6 content \"partial\\r\\n\"",
            "t7 abandoned #4 9 octets",
        ])
    }

    @Test("a DATA refused with 554 leaves the client's bytes as commands (hostile-input case 8)")
    func dataRefused() {
        let scenario = InspectorScenario(Self.opening() + [
            .client("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", at: 4),
            .server("250 Ok\r\n550 No\r\n554 5.5.1 No valid recipients\r\n", at: 5),
            .client("QUIT\r\n", at: 6),
            .server("221 Bye\r\n", at: 7),
            .finish(at: 8),
        ])
        scenario.expect(Self.openingTranscript() + [
            "t4 C#2 MAIL FROM:<a@b>",
            "t4 C#3 RCPT TO:<c@d>",
            "t4 C#4 DATA",
            "t5 R 250 Ok -> #2 MAIL",
            "t5 R 550 No -> #3 RCPT",
            "t5 R 554 5.5.1 No valid recipients -> #4 DATA",
            "t6 C#5 QUIT",
            "t7 R 221 Bye -> #5 QUIT",
        ])
    }
}
