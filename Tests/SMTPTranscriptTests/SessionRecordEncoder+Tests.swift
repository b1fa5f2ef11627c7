import Foundation
import SMTPCore
import Testing
@testable import SMTPTranscript

@Suite struct SessionRecordEncoderTests {
    @Test func minimalRecordWritesEveryKeyInSchemaOrderWithNulls() {
        let expected = #"{"schema":"smtpscope.session/1","session_id":"01JDV7Q8ZK3M5N6P7R8S9T0V1W","source":"pcap","#
            + #""start":"2026-11-29T06:45:01.123456Z","end":null,"client":null,"server":null,"upstream":null,"#
            + #""greeting":null,"helo":null,"extensions":null,"#
            + #""tls":{"mode":"none","established":null,"version":null,"cipher":null,"sni":null,"failure":null},"#
            + #""auth":null,"transactions":[],"rules":[],"events":[],"outcome":"incomplete","close":null,"anomalies":[],"#
            + #""bytes":{"client":0,"server":0}}"#
        #expect(SessionRecordEncoder.jsonLine(Fixtures.minimal) == expected)
    }

    @Test func rejectedCaptureMatchesGoldenLine() {
        let expected = #"{"schema":"smtpscope.session/1","session_id":"01JDV7Q8ZK3M5N6P7R8S9T0V1X","source":"pcap","#
            + #""start":"2026-11-29T06:45:01.123456Z","end":"2026-11-29T06:45:01.735456Z","#
            + #""client":{"ip":"192.0.2.10","port":51234},"server":{"ip":"198.51.100.5","port":25},"upstream":null,"#
            + #""greeting":{"code":220,"enhanced":null,"text":"mx.example ESMTP"},"#
            + #""helo":{"verb":"EHLO","name":"client.example"},"#
            + #""extensions":["PIPELINING","SIZE 10240000","8BITMIME"],"#
            + #""tls":{"mode":"none","established":null,"version":null,"cipher":null,"sni":null,"failure":null},"#
            + #""auth":null,"#
            + #""transactions":[{"mail_from":{"address":"a@example.com","params":{"SIZE":"1234","SMTPUTF8":null},"#
            + #""reply":{"code":250,"enhanced":"2.1.0","text":"Ok"},"rewritten_to":null},"#
            + #""rcpt_to":[{"address":"b@example.org","params":{},"reply":{"code":550,"enhanced":"5.1.1","text":"User unknown"}}],"#
            + #""data":null,"message":null,"rules":[],"outcome":"rejected"}],"rules":[],"#
            + #""events":[{"t":0.000000,"from":"server","to":"client","text":"220 mx.example ESMTP"},"#
            + #"{"t":0.010212,"from":"client","to":"server","text":"EHLO client.example"},"#
            + #"{"t":0.011000,"from":"server","to":"client","text":"250-mx.example"},"#
            + #"{"t":0.011000,"from":"server","to":"client","text":"250 8BITMIME"},"#
            + #"{"t":0.020000,"from":"client","to":"server","text":"MAIL FROM:<a@example.com> SIZE=1234 SMTPUTF8"},"#
            + #"{"t":0.020000,"from":"client","to":"server","text":"RCPT TO:<b@example.org>"},"#
            + #"{"t":0.030500,"from":"server","to":"client","text":"250 2.1.0 Ok"},"#
            + #"{"t":0.030500,"from":"server","to":"client","text":"550 5.1.1 User unknown"},"#
            + #"{"t":0.600000,"from":"client","to":"server","text":"QUIT"},"#
            + #"{"t":0.611999,"from":"server","to":"client","text":"221 2.0.0 Bye"}],"#
            + #""outcome":"rejected","close":{"by":"client","reason":"QUIT"},"#
            + #""anomalies":[{"kind":"pipelining_not_advertised","t":0.020000,"detail":"MAIL and RCPT in one segment"}],"#
            + #""bytes":{"client":120,"server":145}}"#
        #expect(SessionRecordEncoder.jsonLine(Fixtures.rejectedCapture) == expected)
    }

    @Test func proxyRecordWritesNestedObjectsAndOctetsOnlyOnContentEvents() {
        let line = SessionRecordEncoder.jsonLine(Fixtures.deliveredProxy)
        #expect(line.contains(#""upstream":{"ip":"203.0.113.7","port":25}"#))
        #expect(line.contains(#""tls":{"mode":"starttls","established":true,"version":"TLSv1.3","cipher":"TLS_AES_128_GCM_SHA256","sni":"mx.example","failure":null}"#))
        #expect(line.contains(#""auth":{"mechanism":"PLAIN","user":"alice","result":"success","code":235}"#))
        #expect(line.contains(#""data":{"command":"BDAT","size":1234,"chunks":2,"initial_reply":null,"reply":{"code":250,"enhanced":"2.0.0","text":"queued as 4F2"}}"#))
        #expect(line.contains(#""attachments":[{"filename":"a.pdf","content_type":"application/pdf","size":1},{"filename":null,"content_type":"image/png","size":0}]"#))
        #expect(line.contains(#"{"rule":"archive-external","file":"rules/20-content.rules","line":null,"stage":"message","action":"bcc","enforced":false,"mode":null,"detail":null}"#))
        #expect(line.contains(#"{"t":0.002100,"from":"client","to":"proxy","text":"","octets":1000}"#))
        #expect(line.contains(#"{"t":0.002000,"from":"proxy","to":"server","text":"BDAT 1000"}"#))
        #expect(line.contains(#""greeting":{"code":220,"enhanced":null,"text":"proxy.example ESMTP\nwelcome"}"#))
        #expect(line.components(separatedBy: #""octets":"#).count == 2)
    }

    @Test func encodeAppendsOneLineEndingInLF() {
        var out: [UInt8] = Array("previous\n".utf8)
        SessionRecordEncoder.encode(Fixtures.minimal, into: &out)
        let text = String(decoding: out, as: UTF8.self)
        #expect(text == "previous\n" + SessionRecordEncoder.jsonLine(Fixtures.minimal) + "\n")
        for record in Fixtures.all {
            #expect(!SessionRecordEncoder.jsonLine(record).contains("\n"))
        }
    }

    @Test(arguments: [
        ("", #""""#),
        ("plain", #""plain""#),
        ("a\"b", #""a\"b""#),
        ("back\\slash", #""back\\slash""#),
        ("/", #""/""#),
        ("\n\r\t\u{8}\u{C}", #""\n\r\t\b\f""#),
        ("\u{0}", #""\u0000""#),
        ("\u{1}\u{1B}\u{1F}", #""\u0001\u001b\u001f""#),
        ("\u{7F}", #""\u007f""#),
        ("\u{80}\u{85}\u{9F}", #""\u0080\u0085\u009f""#),
        ("\u{A0}", "\"\u{A0}\""),
        ("\u{2028}\u{2029}", #""\u2028\u2029""#),
        ("\u{2027}\u{202A}", "\"\u{2027}\u{202A}\""),
        ("caf\u{E9} \u{65E5}\u{672C} \u{1F389}", "\"caf\u{E9} \u{65E5}\u{672C} \u{1F389}\""),
        ("x\ny\"z\u{0}", #""x\ny\"z\u0000""#),
    ])
    func stringsAreEscapedAsRFC8259Requires(input: String, expected: String) throws {
        var out: [UInt8] = []
        JSONOutput.writeString(input, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == expected)

        // Whatever we escape, a standard reader gets the original back.
        let parsed = try JSONSerialization.jsonObject(with: Data(out), options: [.fragmentsAllowed]) as? String
        #expect(parsed == input)
    }

    @Test(arguments: [
        (Int64(0), "0.000000"),
        (312, "0.000312"),
        (1_200_000, "1.200000"),
        (59_999_999, "59.999999"),
        (-312, "-0.000312"),
        (-1_000_001, "-1.000001"),
        (Int64.max, "9223372036854.775807"),
        (Int64.min, "-9223372036854.775808"),
    ])
    func secondsHaveExactlySixDecimalsAndNoExponent(microseconds: Int64, expected: String) {
        var out: [UInt8] = []
        JSONOutput.writeSeconds(microseconds: microseconds, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == expected)
    }

    @Test(arguments: [0, 7, -7, 65535, Int.max, Int.min])
    func integersAreWrittenInPlainDecimal(value: Int) {
        var out: [UInt8] = []
        JSONOutput.writeInt(value, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == String(value))
    }

    @Test(arguments: Fixtures.all)
    func everyLineIsJSONThatFoundationReads(record: SessionRecord) throws {
        let line = SessionRecordEncoder.jsonLine(record)
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        #expect(object?["schema"] as? String == "smtpscope.session/1")
        #expect(object?["session_id"] as? String == record.sessionID)
    }
}
