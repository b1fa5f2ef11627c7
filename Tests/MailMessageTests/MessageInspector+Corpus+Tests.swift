import Testing

@testable import MailMessage

/// Messages taken from real captures (see Fixtures/README.md), checked against what Zeek and
/// Suricata report for the same captures.
@Suite struct MessageInspectorCorpusTests {
    @Test func outlookMessageHasNewsAttachmentOfDecodedSize() throws {
        let summary = inspectWholeAndDripped(try fixture("zeek-smtp-outlook-news"))
        #expect(summary.size == 14545)  // Zeek files.cut: the message/rfc822 file is 14545 octets
        // Zeek's files.log says 10809: its quoted-printable decoder ends the part's last line with a
        // CRLF that RFC 2046 §5.1.1 gives to the delimiter line. Python's email package decodes 10807.
        #expect(summary.attachments == [Attachment(filename: "NEWS.txt", contentType: "text/plain", size: 10807)])
        #expect(summary.subject == "SMTP")
        #expect(summary.from == [Mailbox(displayName: "Gurpartap Singh", address: "gurpartap@patriots.in", domain: "patriots.in")])
        #expect(summary.to.map(\.address) == ["raj_deol2002in@yahoo.co.in"])
        #expect(summary.messageID == "<000301ca4581$ef9e57f0$cedb07d0$@in>")
        #expect(summary.date == "Mon, 5 Oct 2009 11:36:07 +0530")
        #expect(summary.bodyText.contains("I send u smtp pcap file"))
        #expect(summary.bodyText.contains("<html"))
        #expect(summary.anomalies == [])
    }

    @Test func appleMailMessageHasFoldedCcAndNoAttachment() throws {
        let summary = inspectWholeAndDripped(try fixture("zeek-smtp-apple-mail"))
        #expect(summary.size == 804)
        #expect(summary.cc.map(\.address) == ["felica4uu@hotmail.com", "davis_mark1@outlook.com"])
        #expect(summary.to.map(\.address) == ["ericlim220@yahoo.com"])
        #expect(summary.subject == "Re: Bro SMTP CC Header")
        #expect(summary.attachments == [])
        #expect(summary.bodyText.contains("Bro SMTP CC Header"))
    }

    @Test func rfc2231ContinuedFilenameIsReassembled() throws {
        let summary = inspectWholeAndDripped(try fixture("suricata-smtp-rfc2231"))
        #expect(summary.attachments.map(\.filename) == [
            "smtptest-2021-02-25T13-54-22Z-aefb2fc1308d62f4b6c74769f69b13ddf80e995fd98ae442f3be499ea928c67f..zip"
        ])
        #expect(summary.attachments.first?.contentType == "application/zip")
    }

    @Test func winmailDatAfterLongLineHasSuricataSize() throws {
        let summary = inspectWholeAndDripped(try fixture("suricata-smtp-long-data-line"))
        #expect(summary.attachments == [Attachment(filename: "winmail.dat", contentType: "application/ms-tnef", size: 10451)])
        #expect(summary.from.first?.displayName == "Xxxxxx xxxx")
    }

    @Test func messageRFC822PartIsOneAttachment() throws {
        let summary = inspectWholeAndDripped(try fixture("zeek-smtp-attachment-msg"))
        #expect(summary.attachments.count == 1)
        #expect(summary.attachments.first?.contentType == "message/rfc822")
        #expect(summary.attachments.first?.filename == "test.msg")
        #expect(summary.bodyText == "this is the body")
    }
}
