import SMTPConsole
import Testing

/// The one escaping function, and that interpolation cannot skip it.
@Suite struct HTMLTests {
    @Test func markupCharactersBecomeReferences() {
        #expect(HTML.escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;")
        #expect(HTML.escape("\"><img src=x onerror=alert(1)>") == "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;")
        #expect(HTML.escape("o'brien & co") == "o&#39;brien &amp; co")
        #expect(HTML.escape("&amp;") == "&amp;amp;")
    }

    @Test func controlCharactersAreReplacedButTextIsKept() {
        #expect(HTML.escape("a\u{0}b\u{7}c\rd\u{1B}[31m\u{85}") == "a\u{FFFD}b\u{FFFD}c\u{FFFD}d\u{FFFD}[31m\u{FFFD}")
        #expect(HTML.escape("tab\tand\nline") == "tab\tand\nline")
        #expect(HTML.escape("Grüße, 日本語 ✓") == "Grüße, 日本語 ✓")
    }

    @Test func interpolatedStringsAreEscapedAndMarkupIsNot() {
        let value = "<b>\"x\"</b>"
        let inner: HTML = "<i>\(value)</i>"
        let page: HTML = "<p title=\"\(value)\">\(inner)</p>"
        #expect(page.rendered == "<p title=\"&lt;b&gt;&quot;x&quot;&lt;/b&gt;\"><i>&lt;b&gt;&quot;x&quot;&lt;/b&gt;</i></p>")
        #expect(HTML(text: value).rendered == HTML.escape(value))
        #expect((HTML("<a>") + HTML(text: "<")).rendered == "<a>&lt;")
    }
}
