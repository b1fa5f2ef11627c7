import MessageTrace
import SMTPConsole
import Testing

/// The Overview's charts: bars in order with their counts, the time chart's buckets, and labels
/// (rule names, reply texts) escaped like every other value.
@Suite struct OverviewTests {
    @Test func barsKeepTheirOrderCountsAndClassesAndEscapeTheirLabels() {
        let svg = Charts.bars([
            Charts.Bar(label: "no-spam", value: 4, kind: "rule"),
            Charts.Bar(label: "<script>x</script>", value: 2, kind: "rule"),
        ], title: "Refusals by rule").rendered
        #expect(svg.components(separatedBy: "<g class=\"bar rule\">").count - 1 == 2)
        #expect(svg.contains("<title>no-spam: 4</title>"))
        #expect(svg.contains("<title>&lt;script&gt;x&lt;/script&gt;: 2</title>"))
        #expect(!svg.contains("<script>"))
        let first = svg.range(of: "no-spam")!.lowerBound
        let second = svg.range(of: "&lt;script&gt;")!.lowerBound
        #expect(first < second)
        // The longest bar is the largest count; the others in proportion.
        #expect(svg.contains("width=\"350\""))
        #expect(svg.contains("width=\"175\""))
        #expect(Charts.bars([], title: "t").rendered.contains("None in this period."))
    }

    @Test func theTimeChartHasABarPerBucketWithMessages() {
        let minute: Int64 = 60_000_000
        let start: Int64 = 1_768_046_400_000_000
        let first = start / minute
        let svg = Charts.timeline([first: 3, first + 59: 1, first + 100: 9], start: start, bucket: minute, count: 60,
                                  title: "Messages per minute") { String($0 / minute) }.rendered
        // Two of the three buckets fall in the chart; the tallest is the largest of those.
        #expect(svg.components(separatedBy: "<g class=\"bar o-delivered\">").count - 1 == 2)
        #expect(svg.contains("<title>\(first): 3</title>"))
        #expect(svg.contains("<title>\(first + 59): 1</title>"))
        #expect(!svg.contains(": 9</title>"))
    }

    @Test func theOverviewPageDrawsEachCount() {
        var stats = TraceStats()
        stats.sessions = ["completed": 2, "rejected": 1]
        stats.messages = ["delivered": 2, "rejected": 1]
        stats.refusalsByCause = ["550 5.7.1": 1, "451 4.3.0": 1]
        stats.refusalsByRule = ["no-spam-domain": 1]
        let now: Int64 = 1_768_046_400_000_000
        stats.messagesPerBucket = [now / 60_000_000: 3]
        stats.topSenders = ["": 2, "alice@example.org": 1]
        stats.topRecipientDomains = ["example.net": 3]
        let page = OverviewPage.render(stats, period: .hour, now: now, csrf: "tok").rendered
        #expect(page.contains("<title>completed: 2</title>"))
        #expect(page.contains("<g class=\"bar o-rejected\"><title>rejected: 1</title>"))
        #expect(page.contains("<g class=\"bar r4xx\"><title>451 4.3.0: 1</title>"))
        #expect(page.contains("<g class=\"bar r5xx\"><title>550 5.7.1: 1</title>"))
        #expect(page.contains("<g class=\"bar rule\"><title>no-spam-domain: 1</title>"))
        #expect(page.contains("3 messages (transactions) in the period."))
        #expect(page.contains("<g class=\"bar \"><title>&lt;&gt;: 2</title>"))
        #expect(page.contains("<g class=\"bar \"><title>example.net: 3</title>"))
        #expect(page.contains("<title>2026-01-10T12:00Z: 3</title>"))
        #expect(page.contains("<strong>1h</strong>") && page.contains("<a href=\"/overview?period=24h\">24h</a>"))
        #expect(!page.contains("style="))
    }

    @Test func eachPeriodHasSixtyToNinetySixBuckets() {
        for period in OverviewPage.Period.allCases {
            let count = period.length / period.bucket
            #expect((60...96).contains(count), "\(period)")
        }
    }
}
