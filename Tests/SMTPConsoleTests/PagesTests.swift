import MessageTrace
import SMTPConsole
import SMTPTranscript
import Testing

/// The pages hold a record's hostile values as text only, and no inline script or style.
@Suite struct PagesTests {
    typealias F = ConsoleFixtures

    /// Markup a hostile value would have to produce to do anything.
    static let forbidden = ["<script>", "<img", "onerror=\"", "<script>document"]

    @Test func theSessionPageEscapesEveryValueFromMail() {
        let page = SessionPage.render(F.proxyRecord(), csrf: "tok").rendered
        for markup in Self.forbidden { #expect(!page.contains(markup)) }
        #expect(page.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"))
        #expect(page.contains("&quot;&gt;&lt;img src=x onerror=&quot;document.title=&#39;pwned&#39;&quot;&gt;.pdf"))
        // The only script is the console's own file; no style attribute or element.
        #expect(page.components(separatedBy: "<script").count - 1 == 1)
        #expect(page.contains("<script src=\"/assets/console.js\" defer></script>"))
        #expect(!page.contains("style="))
        #expect(!page.contains("<style"))
        #expect(page.contains("<input type=\"hidden\" name=\"csrf\" value=\"tok\">"))
    }

    @Test func theSessionPageShowsEachRecipientsFateAndTheTLSOfEachLeg() {
        var record = F.proxyRecord()
        record.upstreamTLS = SessionRecord.UpstreamTLS(mode: .starttls, established: false, failure: "handshake refused")
        let page = SessionPage.render(record, csrf: "tok").rendered
        #expect(page.contains("<li class=\"accepted\"><span class=\"address\">bob@example.net</span> → 250 Ok</li>"))
        #expect(page.contains("<li class=\"refused\"><span class=\"address\">carol@example.net</span> → 550 5.1.1 No such user</li>"))
        #expect(page.contains("<dt>Client leg</dt><dd>starttls, established, TLSv1.3, TLS_AES_128_GCM_SHA256</dd>"))
        #expect(page.contains("<dt>Upstream leg</dt><dd>starttls, not established, failure: handshake refused</dd>"))
        #expect(page.contains("<td class=\"filename\">"))
        #expect(page.contains("<td>42</td>"))
    }

    @Test func theSessionsPageEscapesTheSearchAndTheRows() {
        let row = SessionRow(F.proxyRecord())
        #expect(row.senders == "alice@example.org")
        #expect(row.recipients == "bob@example.net, carol@example.net")
        let search = SessionsPage.Search(values: ["subject": F.hostileName, "from": "<>"], problem: nil)
        let page = SessionsPage.render(rows: [row], search: search, limit: 100, liveSince: "2026-01-10T11:50:00.000000Z", csrf: "tok").rendered
        for markup in Self.forbidden { #expect(!page.contains(markup)) }
        #expect(page.contains("value=\"&quot;&gt;&lt;img src=x onerror=&quot;document.title=&#39;pwned&#39;&quot;&gt;\""))
        // The live list keeps the filters, percent-encoded, but not the period.
        #expect(page.contains("data-live-query=\"from=%3C%3E&amp;subject=%22%3E%3Cimg"))
        #expect(page.contains("data-live-since=\"2026-01-10T11:50:00.000000Z\""))
        #expect(page.contains("<a href=\"/sessions/01PROXY\">open</a>"))
        let still = SessionsPage.render(rows: [], search: search, limit: 100, liveSince: nil, csrf: "tok").rendered
        #expect(!still.contains("data-live-since"))
    }

    @Test func theLoginPageHasNoScript() {
        let page = Page.login(failed: true).rendered
        #expect(!page.contains("<script"))
        #expect(page.contains("<form method=\"post\" action=\"/login\""))
        #expect(page.contains("That token is not the console's."))
    }

    @Test func pathSegmentsArePercentEncoded() {
        #expect(PathComponent.encode("01ABC-_.~") == "01ABC-_.~")
        #expect(PathComponent.encode("a/b?c#d\"<") == "a%2Fb%3Fc%23d%22%3C")
    }

    @Test func theAPIBodies() {
        #expect(ConsoleJSON.sessions(["{\"a\":1}", "{\"b\":2}"]) == "{\"sessions\":[{\"a\":1},{\"b\":2}]}")
        #expect(ConsoleJSON.sessions([]) == "{\"sessions\":[]}")
        var stats = TraceStats()
        stats.sessions = ["rejected": 1, "completed": 2]
        stats.messages = ["delivered": 2]
        stats.refusalsByCause = ["550 5.7.1": 1]
        stats.refusalsByRule = ["no-\"spam\"": 1]
        #expect(ConsoleJSON.stats(stats, since: 1_768_046_400_000_000, until: nil) == """
            {"since":"2026-01-10T12:00:00.000000Z","until":null,"sessions":{"completed":2,"rejected":1},\
            "messages":{"delivered":2},"refusals":{"by_cause":{"550 5.7.1":1},"by_rule":{"no-\\"spam\\"":1}},\
            "top":{"senders":{},"recipient_domains":{}}}
            """)
        #expect(ConsoleJSON.error("bad \"x\"") == "{\"error\":\"bad \\\"x\\\"\"}")
        stats.messagesPerBucket = [1_768_046_400 / 60: 2]
        #expect(ConsoleJSON.stats(stats, since: nil, until: nil, bucket: 60_000_000).hasSuffix(
            "\"recipient_domains\":{}},\"messages_per_bucket\":{\"2026-01-10T12:00:00.000000Z\":2}}"))
    }
}
