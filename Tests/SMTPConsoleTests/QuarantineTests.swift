import Foundation
import SMTPConsole
import Testing

/// The quarantine's pure parts: ids that stay in the folder, the record, the release's SMTP
/// client steps, and the pages.
@Suite struct QuarantineTests {
    static let record = Data("""
        {"schema":"smtpscope.quarantine/1","session_id":"01S","quarantined":"2026-01-10T12:00:00.000000Z",\
        "reason":"<b>oversize</b>","rules":["big-mail"],"client_ip":"127.0.0.1","client_port":4000,"helo":"c",\
        "auth_user":null,"mail_from":"alice@example.com","rcpt_to":["bob@example.org","carol@example.org"],"size":120}
        """.utf8)

    @Test func anIDNamesAFileInTheFolderOnly() {
        #expect(QuarantineEntry.isValidID("01KABC-0"))
        #expect(QuarantineEntry.isValidID("01KABC.1_x"))
        #expect(!QuarantineEntry.isValidID("../etc/passwd"))
        #expect(!QuarantineEntry.isValidID(".01KABC.eml.tmp"))
        #expect(!QuarantineEntry.isValidID("a/b"))
        #expect(!QuarantineEntry.isValidID(""))
        #expect(!QuarantineEntry.isValidID("a%2Fb"))
        #expect(!QuarantineEntry.isValidID(String(repeating: "a", count: 201)))
    }

    @Test func theRecordIsRead() throws {
        let entry = try #require(QuarantineEntry.parse(Self.record, id: "01S-0"))
        #expect(entry.id == "01S-0" && entry.sessionID == "01S" && entry.rules == ["big-mail"])
        #expect(entry.mailFrom == "alice@example.com" && entry.rcptTo == ["bob@example.org", "carol@example.org"])
        #expect(QuarantineEntry.parse(Data("{}".utf8), id: "x") == nil)
        #expect(QuarantineEntry.parse(Data("not json".utf8), id: "x") == nil)
    }

    @Test func aReleaseSendsTheEnvelopeThenTheContent() {
        var delivery = SMTPDelivery(heloName: "console.example", mailFrom: "alice@example.com", rcptTo: ["bob@example.org", "carol@example.org"])
        #expect(delivery.receive(code: 220, text: "ready") == .send("EHLO console.example"))
        #expect(delivery.receive(code: 250, text: "SIZE") == .send("MAIL FROM:<alice@example.com>"))
        #expect(delivery.receive(code: 250, text: "ok") == .send("RCPT TO:<bob@example.org>"))
        #expect(delivery.receive(code: 250, text: "ok") == .send("RCPT TO:<carol@example.org>"))
        #expect(delivery.receive(code: 251, text: "will forward") == .send("DATA"))
        #expect(delivery.receive(code: 354, text: "go") == .sendContent)
        #expect(delivery.receive(code: 250, text: "2.0.0 queued as X") == .delivered(reply: "250 2.0.0 queued as X"))
    }

    @Test func anyRefusalEndsTheRelease() {
        var refusedRecipient = SMTPDelivery(heloName: "h", mailFrom: "", rcptTo: ["a@x", "b@x"])
        _ = refusedRecipient.receive(code: 220, text: "")
        _ = refusedRecipient.receive(code: 250, text: "")
        _ = refusedRecipient.receive(code: 250, text: "")
        #expect(refusedRecipient.receive(code: 550, text: "5.1.1 no") == .failed(stage: "RCPT TO:<a@x>", reply: "550 5.1.1 no"))
        var busy = SMTPDelivery(heloName: "h", mailFrom: "a@x", rcptTo: ["b@x"])
        #expect(busy.receive(code: 421, text: "busy") == .failed(stage: "greeting", reply: "421 busy"))
        var noRecipient = SMTPDelivery(heloName: "h", mailFrom: "a@x", rcptTo: [])
        _ = noRecipient.receive(code: 220, text: "")
        _ = noRecipient.receive(code: 250, text: "")
        #expect(noRecipient.receive(code: 250, text: "") == .failed(stage: "RCPT TO", reply: "no recipient in the quarantine record"))
    }

    @Test func multiLineRepliesEndAtTheirLastLine() {
        let lines = ReplyLines()
        #expect(lines.complete("250-mx.example") == nil)
        #expect(lines.complete("250 SIZE 100")! == (250, "SIZE 100"))
        #expect(lines.complete("354")! == (354, ""))
        #expect(lines.complete("hello")! == (0, "hello"))
    }

    @Test func thePagesEscapeTheRecordAndCarryTheCSRFToken() throws {
        let entry = try #require(QuarantineEntry.parse(Self.record, id: "01S-0"))
        let list = QuarantinePage.list([entry], notice: nil, csrf: "tok").rendered
        #expect(list.contains("<td>&lt;b&gt;oversize&lt;/b&gt;</td>"))
        #expect(list.contains("<a href=\"/quarantine/01S-0\">view</a>"))
        let page = QuarantinePage.message(entry, headers: "Subject: <script>x</script>", canRelease: "127.0.0.1:25", problem: nil, csrf: "tok").rendered
        #expect(page.contains("<pre class=\"headers\">Subject: &lt;script&gt;x&lt;/script&gt;</pre>"))
        #expect(page.contains("<form method=\"post\" action=\"/quarantine/01S-0/release\" class=\"release\"><input type=\"hidden\" name=\"csrf\" value=\"tok\">"))
        #expect(page.contains("<form method=\"post\" action=\"/quarantine/01S-0/delete\" class=\"delete\"><input type=\"hidden\" name=\"csrf\" value=\"tok\">"))
        #expect(!page.contains("<script>"))
        let noUpstream = QuarantinePage.message(entry, headers: "", canRelease: nil, problem: "refused", csrf: "tok").rendered
        #expect(!noUpstream.contains("/release"))
        #expect(noUpstream.contains("<p class=\"problem\">refused</p>"))
    }
}
