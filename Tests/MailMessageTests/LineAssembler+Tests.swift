import Testing

@testable import MailMessage

/// When no body text is kept, the lines of a body nobody looks at are skipped rather than
/// assembled; the summary must not change by a single field (body text aside), however the
/// content is chunked.
@Suite struct LineAssemblerSkippingTests {
    static let messages: [(String, String)] = [
        ("plain", crlf("From: a@b.example", "Subject: s", "", "line one", "line two")),
        ("bare line ends and NUL in the body", "From: a@b.example\r\n\r\nbody\rwith bare CR\r\nand bare LF\nand \0 NUL\r\n"),
        ("no final line break", "From: a@b.example\r\n\r\nlast line without break"),
        ("CR as the last octet", "From: a@b.example\r\n\r\nbody\r"),
        ("empty lines and a long line", "From: a@b.example\r\n\r\n\r\n\r\n" + String(repeating: "x", count: 5000) + "\r\n\r\n"),
        ("header only", "From: a@b.example\r\nSubject: no body\r\n"),
        (
            "multipart with an epilogue",
            crlf(
                "From: a@b.example", "Content-Type: multipart/mixed; boundary=XX", "", "preamble", "--XX",
                "Content-Type: application/octet-stream", "", "opaque\rbytes", "--XX",
                "Content-Type: text/plain", "Content-Transfer-Encoding: quoted-printable", "", "soft=", "break", "--XX--",
                "epilogue\nwith bare LF", "more \0 epilogue"
            )
        ),
    ]

    static func fixtures() throws -> [(String, [UInt8])] {
        try ["zeek-smtp-outlook-news", "zeek-smtp-apple-mail", "suricata-smtp-rfc2231", "suricata-smtp-long-data-line", "zeek-smtp-attachment-msg"]
            .map { ($0, try fixture($0)) }
    }

    static func expectSameSummary(_ message: [UInt8], _ name: String) {
        var noText = MessageLimits()
        noText.maxBodyTextOctets = 0
        var expected = inspect(message)
        expected.bodyText = ""
        #expect(inspect(message, limits: noText) == expected, "\(name)")
        #expect(inspect(message, chunkSize: 1, limits: noText) == expected, "\(name), one octet at a time")
        #expect(inspect(message, chunkSize: 7, limits: noText) == expected, "\(name), seven octets at a time")
    }

    @Test func skippingUnusedBodyLinesChangesNothingButTheBodyText() throws {
        for (name, message) in Self.messages { Self.expectSameSummary(Array(message.utf8), name) }
        for (name, message) in try Self.fixtures() { Self.expectSameSummary(message, name) }
    }
}
