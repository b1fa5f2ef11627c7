import SMTPConsole
import SMTPTranscript
import Testing

/// The HTML report: counts, a ladder per session that did not go through, no script at all.
@Suite struct HTMLReportTests {
    typealias F = ConsoleFixtures

    @Test func aLadderForEachSessionThatDidNotGoThrough() {
        var report = HTMLReport()
        var delivered = F.proxyRecord()
        delivered.sessionID = "01DELIVERED"
        delivered.transactions[0].message?.subject = "fine"
        report.add(delivered)
        var refused = F.proxyRecord()
        refused.sessionID = "01REFUSED"
        refused.outcome = .rejected
        refused.transactions[0].outcome = .rejected
        refused.transactions[0].data?.reply = SessionRecord.Reply(code: 550, enhanced: "5.7.1", text: "<b>no</b>")
        report.add(refused)
        report.add(F.captureRecord())
        let page = report.render(text: "report text with <tags> & \"quotes\"\n").rendered
        #expect(page.contains("3 sessions; 2 did not go through."))
        #expect(page.components(separatedBy: "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"ladder\"").count - 1 == 2)
        #expect(page.contains("Session <span class=\"id\">01REFUSED</span>"))
        #expect(page.contains("Session <span class=\"id\">01CAPTURE</span>"))
        #expect(!page.contains("01DELIVERED"))
        #expect(page.contains("<title>550 5.7.1: 1</title>"))
        #expect(page.contains("<pre class=\"report\">report text with &lt;tags&gt; &amp; &quot;quotes&quot;\n</pre>"))
        // Self-contained and script-free: the stylesheet inline, a policy that forbids scripts.
        #expect(!page.contains("<script"))
        #expect(!page.contains("<link"))
        #expect(page.contains("<style>body {"))
        #expect(page.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src &#39;none&#39;") == false)
        #expect(page.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"))
    }

    @Test func laddersStopAtTheMaximumAndSaySo() {
        var report = HTMLReport()
        for index in 0..<(HTMLReport.maximumLadders + 3) {
            var record = F.captureRecord()
            record.sessionID = "S\(index)"
            report.add(record)
        }
        let page = report.render(text: "").rendered
        #expect(page.components(separatedBy: "class=\"ladder\"").count - 1 == HTMLReport.maximumLadders)
        #expect(page.contains("3 more sessions did not go through"))
    }
}
