import Testing

@testable import SMTPReport

@Suite struct ReportTextTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00Z"),
        (Int64(1_795_934_700_999_999), "2026-11-29T06:45:00Z"),
        (Int64(951_782_400_000_000), "2000-02-29T00:00:00Z"),
        (Int64(-1), "1969-12-31T23:59:59Z"),
    ])
    func formatsRFC3339(_ microseconds: Int64, _ text: String) {
        #expect(ReportText.time(microseconds) == text)
    }

    @Test(arguments: [(Int64(12_000), "0.012 s"), (Int64(5_000_000), "5.000 s"), (Int64(30_100_000), "30.1 s"), (Int64(-1_500_000), "-1.500 s")])
    func formatsSeconds(_ microseconds: Int64, _ text: String) {
        #expect(ReportText.seconds(microseconds) == text)
    }

    @Test func wrapsAtSpacesAndCutsOverlongWords() {
        #expect(ReportText.wrap("aaaa bbbb cccc", width: 10) == ["aaaa bbbb", "cccc"])
        #expect(ReportText.wrap(String(repeating: "x", count: 25), width: 10) == ["xxxxxxxxxx", "xxxxxxxxxx", "xxxxx"])
        #expect(ReportText.wrap("", width: 10) == [""])
    }

    @Test func clipsLongTextsToBoundedLines() {
        let text = (1...60).map { "line \($0)" }.joined(separator: "\n")
        let clipped = ReportText.clip(text, lines: 50)
        #expect(clipped.hasSuffix("line 50\n... (10 more lines)"))
    }
}
