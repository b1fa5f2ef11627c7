import NIOCore
import Testing

@testable import MailMessage

@Suite struct MessageInspectorTests {
    static let simple = crlf(
        "From: \"Alice\" <alice@example.com>",
        "To: bob@example.org,",
        " carol@example.net",
        "Cc: undisclosed-recipients:;",
        "Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=",
        "  from Köln",
        "Date: Mon, 5 Oct 2009 11:36:07 +0530",
        "Message-ID:   <id@example.com>  ",
        "",
        "Hello"
    )

    @Test func summarisesHeaderFields() {
        let summary = inspectWholeAndDripped(Self.simple)
        #expect(summary.from == [Mailbox(displayName: "Alice", address: "alice@example.com", domain: "example.com")])
        #expect(summary.to.map(\.address) == ["bob@example.org", "carol@example.net"])
        #expect(summary.cc == [])
        #expect(summary.subject == "Grüße  from Köln")
        #expect(summary.header.first("subject")?.rawValue == "=?utf-8?Q?Gr=C3=BC=C3=9Fe?=  from Köln")
        #expect(summary.messageID == "<id@example.com>")
        #expect(summary.date == "Mon, 5 Oct 2009 11:36:07 +0530")
        #expect(summary.bodyText == "Hello\r\n")
        #expect(summary.size == Self.simple.utf8.count)
        #expect(summary.header.fields.count == 6)
        #expect(summary.anomalies == [MessageAnomaly(kind: "eight_bit_in_header", detail: "Subject")])
    }

    @Test func sha256CoversEveryOctet() {
        #expect(inspect("").sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(inspect("abc").sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(inspect("abc", chunkSize: 1).sha256 == inspect("abc").sha256)
    }

    @Test func emptyMessageHasNoFieldsAndNoAnomalies() {
        let summary = inspect("")
        #expect(summary.size == 0)
        #expect(summary.header.fields == [])
        #expect(summary.anomalies == [])
    }

    /// RFC 5322 says a line without a colon is not a header field; as in Postfix, it starts the body.
    @Test func lineWithoutColonEndsHeaderSectionLikePostfix() {
        let summary = inspectWholeAndDripped(crlf("From: a@x.test", "Date: now", "not a header", "From: evil@y.test", "", "body"))
        #expect(summary.from.map(\.address) == ["a@x.test"])
        #expect(summary.header.all("From").count == 1)
        #expect(summary.hasAnomaly("header_without_colon"))
        #expect(summary.bodyText.hasPrefix("not a header\r\nFrom: evil@y.test"))
    }

    @Test func flagsDuplicateSingletonFields() {
        let summary = inspectWholeAndDripped(crlf("From: a@x.test", "From: b@y.test", "Subject: 1", "Subject: 2", "Date: d", "", ""))
        #expect(summary.anomalies.contains(MessageAnomaly(kind: "duplicate_header", detail: "From")))
        #expect(summary.anomalies.contains(MessageAnomaly(kind: "duplicate_header", detail: "Subject")))
        #expect(summary.from.map(\.address) == ["a@x.test", "b@y.test"])
        #expect(summary.subject == "1")
    }

    @Test func bareLFEmptyLineEndsHeaderAndIsFlagged() {
        let summary = inspectWholeAndDripped("From: a@x.test\r\nDate: d\n\nbody\r\n")
        #expect(summary.header.fields.count == 2)
        #expect(summary.anomalies.contains(MessageAnomaly(kind: "bare_lf", detail: "header")))
        #expect(summary.bodyText == "body\r\n")
    }

    @Test func bareCRIsDataNotALineBreak() {
        let summary = inspectWholeAndDripped("Subject: a\rB: c\r\nFrom: f@x.test\r\nDate: d\r\n\r\n")
        #expect(summary.subject == "a\rB: c")
        #expect(summary.anomalies.contains(MessageAnomaly(kind: "bare_cr", detail: "header")))
    }

    @Test func flagsNulAndMissingFinalCRLF() {
        let summary = inspectWholeAndDripped(Array("From: a@x.test\r\nDate: d\r\n\r\nx\0y".utf8))
        #expect(summary.anomalies.contains(MessageAnomaly(kind: "nul_octet", detail: "body")))
        #expect(summary.hasAnomaly("missing_final_crlf"))
        #expect(summary.bodyText == "x\0y")
    }

    @Test func keepsAnEightyKilobyteHeaderLine() {
        let long = String(repeating: "x", count: 80 * 1024)
        let summary = inspectWholeAndDripped(crlf("From: a@x.test", "Date: d", "X-Long: " + long, "Subject: after", "", "b"))
        #expect(summary.header.first("X-Long")?.rawValue == long)
        #expect(summary.subject == "after")
        #expect(!summary.hasAnomaly("header_section_too_large"))
    }

    @Test func headerSectionOverLimitKeepsFirstPartAndCountsEverything() {
        let long = String(repeating: "y", count: 200 * 1024)
        let message = crlf("From: a@x.test", "Date: d", "X-Huge: " + long, "Subject: lost", "", "body")
        let summary = inspectWholeAndDripped(message)
        #expect(summary.hasAnomaly("header_section_too_large"))
        #expect(summary.header.fields.map(\.name) == ["From", "Date"])
        #expect(summary.subject == nil)
        #expect(summary.size == message.utf8.count)
        #expect(summary.bodyText == "body\r\n")
    }

    @Test func tenThousandHeaderFieldsAreBounded() {
        var lines = ["From: a@x.test", "Date: d"]
        for index in 0..<10_000 { lines.append("X-F\(index): v") }
        let message = lines.joined(separator: "\r\n") + "\r\n\r\nbody\r\n"
        let summary = inspect(message)
        #expect(summary.header.fields.count == MessageLimits().maxHeaderFields)
        #expect(summary.hasAnomaly("too_many_header_fields"))
        #expect(summary.bodyText == "body\r\n")
        #expect(inspect(message, chunkSize: 7) == summary)
    }

    /// A multipart body; `padding` is transport padding after each delimiter (RFC 2046 §5.1.1).
    static func multipart(_ boundary: String, _ parts: [String], padding: String = "") -> String {
        parts.map { "--\(boundary)\(padding)\r\n\($0)\r\n" }.joined() + "--\(boundary)--\(padding)\r\n"
    }

    @Test func findsAttachmentsInNestedMultipart() {
        let inner = Self.multipart("inner", [
            "Content-Type: text/plain\r\n\r\nplain text",
            "Content-Type: text/html\r\n\r\n<p>html</p>",
        ])
        let outer = Self.multipart("outer", [
            "Content-Type: multipart/alternative; boundary=inner\r\n\r\n" + inner,
            "Content-Type: application/pdf; name=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVs\r\nbG8=",
            "Content-Type: image/png\r\nContent-Disposition: inline; filename=i.png\r\n\r\nPNG",
            "Content-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nnotes",
            "Content-Type: message/rfc822\r\n\r\nFrom: x@y\r\n\r\nhi",
            "Content-Type: image/gif\r\n\r\nno name, inline",
        ], padding: " \t ")
        let message = "From: a@x.test\r\nDate: d\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n"
            + outer + "epilogue\r\n"
        let summary = inspectWholeAndDripped(message)
        #expect(summary.attachments == [
            Attachment(filename: "r.pdf", contentType: "application/pdf", size: 5),
            Attachment(filename: "i.png", contentType: "image/png", size: 3),
            Attachment(filename: nil, contentType: "text/plain", size: 5),
            Attachment(filename: nil, contentType: "message/rfc822", size: 15),
        ])
        #expect(summary.bodyText == "plain text\n<p>html</p>")
        #expect(summary.anomalies == [])
    }

    @Test func mainTextBodyWithFilenameIsNotAnAttachment() {
        let message = "From: a@x.test\r\nDate: d\r\nContent-Type: text/plain; name=body.txt\r\n\r\nhello\r\n"
        let summary = inspectWholeAndDripped(message)
        #expect(summary.attachments == [])
        #expect(summary.bodyText == "hello\r\n")
    }

    @Test func bodyTextIsBounded() {
        var limits = MessageLimits()
        limits.maxBodyTextOctets = 10
        let summary = inspectWholeAndDripped("From: a@x.test\r\nDate: d\r\n\r\n" + String(repeating: "z", count: 1000), limits: limits)
        #expect(summary.bodyText == String(repeating: "z", count: 10))
        limits.maxBodyTextOctets = 0
        #expect(inspect("From: a@x.test\r\nDate: d\r\n\r\nzzz", limits: limits).bodyText == "")
    }

    @Test func nestingBeyondDepthLimitIsFlaggedAndBounded() {
        var message = "From: a@x.test\r\nDate: d\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
        for depth in 1...100 {
            message += "--b\(depth - 1)\r\nContent-Type: multipart/mixed; boundary=b\(depth)\r\n\r\n"
        }
        message += "--b100\r\nContent-Type: application/x-deep; name=deep.bin\r\n\r\ndeep\r\n--b100--\r\n"
        let summary = inspectWholeAndDripped(message)
        #expect(summary.hasAnomaly("mime_depth_exceeded"))
        #expect(summary.attachments == [])
        #expect(summary.hasAnomaly("unterminated_multipart"))
    }

    @Test func partsBeyondLimitAreSkipped() {
        var limits = MessageLimits()
        limits.maxParts = 3
        let parts = (0..<10).map { "Content-Type: application/octet-stream; name=f\($0)\r\n\r\nx" }
        let message = "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + Self.multipart("b", parts)
        let summary = inspectWholeAndDripped(message, limits: limits)
        #expect(summary.attachments.map(\.filename) == ["f0", "f1", "f2"])
        #expect(summary.hasAnomaly("too_many_parts"))
    }

    @Test func outerBoundaryClosesUnterminatedInnerMultipart() {
        let message = "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
            + "--outer\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n"
            + "--inner\r\nContent-Type: text/plain; name=a.txt\r\nContent-Disposition: attachment\r\n\r\naaa\r\n"
            + "--outer\r\nContent-Type: application/zip; name=b.zip\r\n\r\nbb\r\n--outer--\r\n"
        let summary = inspectWholeAndDripped(message)
        #expect(summary.attachments.map(\.filename) == ["a.txt", "b.zip"])
        #expect(summary.attachments.map(\.size) == [3, 2])
        #expect(summary.anomalies.contains(MessageAnomaly(kind: "unterminated_multipart", detail: "inner")))
    }

    static let malformed: [String] = [
        // Unterminated boundary: the last part runs to the end.
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/zip; name=z\r\n\r\nzz",
        // A boundary line inside base64 ends the part there.
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\nContent-Type: a/b; name=n\r\n\r\nQUJD\r\n--b\r\nRE\r\n--b--\r\n",
        "Content-Type: multipart/mixed\r\n\r\n--b\r\n",
        "Content-Type: multipart/mixed; boundary=\"\"\r\n\r\nx",
        "Content-Type: ;;;==\"\r\n\r\nx",
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n--b--\r\n--b\r\n",
        "\r\n\r\n\r\n",
        "\0\0\0\r\n\0",
        "\n\n\r\r\r\n",
        " leading continuation\r\nFrom: x\r\n\r\n",
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=\r\n=4\r\n=\r",
    ]

    @Test(arguments: malformed)
    func malformedInputNeverCrashesAndIsChunkingIndependent(message: String) {
        let summary = inspectWholeAndDripped(message)
        #expect(summary.size == message.utf8.count)
    }

    @Test func boundaryInsideBase64EndsThePart() {
        let summary = inspect(Self.malformed[1])
        #expect(summary.attachments == [Attachment(filename: "n", contentType: "a/b", size: 3)])
    }

    @Test func binaryJunkIsChunkingIndependent() {
        var generator = SystemRandomNumberGenerator()
        var junk: [UInt8] = Array("Content-Type: multipart/mixed; boundary=b\r\n\r\n".utf8)
        let pieces: [[UInt8]] = [[0x0D], [0x0A], [0x0D, 0x0A], Array("--b".utf8), Array("--b--".utf8), [0], [0xFF], Array("=?x?Q?".utf8), Array("Content-Type: message/rfc822".utf8), [0x20]]
        for _ in 0..<3000 {
            junk.append(contentsOf: pieces[Int.random(in: 0..<pieces.count, using: &generator)])
        }
        let whole = inspect(junk)
        #expect(inspect(junk, chunkSize: 1) == whole)
        #expect(inspect(junk, chunkSize: 13) == whole)
    }

    @Test func fiveMegabyteBase64AttachmentStreamsInChunks() {
        // 5 MiB of decoded content, base64 in 76-character lines, fed in 64 KiB chunks. Nothing in
        // the inspector grows with the attachment: its size is a counter.
        let decodedSize = 5 * 1024 * 1024
        var body: [UInt8] = []
        body.reserveCapacity(decodedSize * 4 / 3 + decodedSize / 20 + 512)
        body += Array("From: a@x.test\r\nDate: d\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream; name=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n".utf8)
        let line = Array(String(repeating: "QUJD", count: 19).utf8)  // 57 octets per line
        let lines = decodedSize / 57
        for _ in 0..<lines {
            body += line
            body += [0x0D, 0x0A]
        }
        let remainder = decodedSize - lines * 57  // a multiple of 3 for this size? pad with whole quanta
        body += Array(String(repeating: "QUJD", count: remainder / 3).utf8)
        body += Array("\r\n--b--\r\n".utf8)
        let summary = inspect(body, chunkSize: 64 * 1024)
        #expect(summary.attachments == [
            Attachment(filename: "big.bin", contentType: "application/octet-stream", size: lines * 57 + remainder / 3 * 3)
        ])
        #expect(summary.size == body.count)
        #expect(summary.anomalies == [])
    }

    @Test func receivesArraysAsWellAsByteBuffers() {
        var inspector = MessageInspector()
        inspector.receive(Array(Self.simple.utf8))
        #expect(inspector.finish() == inspect(Self.simple))
    }
}
