import SMTPCore
import Testing
@testable import SMTPTranscript

@Suite struct RFC3339Tests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000000Z"),
        (1_795_934_701_123_456, "2026-11-29T06:45:01.123456Z"),
        (951_782_400_000_000, "2000-02-29T00:00:00.000000Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
        (-62_135_596_800_000_000, "0001-01-01T00:00:00.000000Z"),
        (253_402_300_799_999_999, "9999-12-31T23:59:59.999999Z"),
        (1_709_164_800_000_001, "2024-02-29T00:00:00.000001Z"),
    ])
    func formatsUTCWithMicroseconds(microseconds: Int64, expected: String) {
        let time = Timestamp(microsecondsSinceEpoch: microseconds)
        #expect(RFC3339.format(time) == expected)
        #expect(RFC3339.parse(expected) == time)
    }

    @Test(arguments: [Int64.min, Int64.max, -100_000_000_000_000_000, 300_000_000_000_000_000])
    func timesOutsideFourDigitYearsAreClamped(microseconds: Int64) {
        let text = RFC3339.format(Timestamp(microsecondsSinceEpoch: microseconds))
        #expect(text.utf8.count == RFC3339.formattedLength)
        #expect(text == "0000-01-01T00:00:00.000000Z" || text == "9999-12-31T23:59:59.999999Z")
    }

    @Test func formattingAgreesWithParsingAcrossFourHundredYears() {
        // One probe every 97 days and some odd microseconds covers every month, leap rule and century.
        var days: Int64 = -146_097
        while days < 146_097 * 2 {
            let time = Timestamp(microsecondsSinceEpoch: days * 86_400_000_000 + 45_296_789_012)
            #expect(RFC3339.parse(RFC3339.format(time)) == time)
            days += 97
        }
    }

    @Test(arguments: [
        ("2026-11-29T06:45:01Z", Int64(1_795_934_701_000_000)),
        ("2026-11-29t06:45:01.1z", 1_795_934_701_100_000),
        ("2026-11-29T07:45:01.123456+01:00", 1_795_934_701_123_456),
        ("2026-11-29T01:15:01.123456789-05:30", 1_795_934_701_123_456),
        ("2016-12-31T23:59:60Z", 1_483_228_800_000_000),
    ])
    func parsesOtherRFC3339Spellings(text: String, microseconds: Int64) {
        #expect(RFC3339.parse(text) == Timestamp(microsecondsSinceEpoch: microseconds))
    }

    @Test(arguments: [
        "", "2026-11-29", "2026-11-29T06:45:01", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
        "2026-11-31T00:00:00Z", "2026-11-29T24:00:00Z", "2026-11-29T06:60:00Z", "2026-11-29T06:45:61Z",
        "2026-11-29T06:45:01.Z", "2026-11-29T06:45:01.1234567890Z", "2026-11-29T06:45:01+0100",
        "2026-11-29T06:45:01Z ", "+2026-11-29T06:45:01Z", "2026-1-29T06:45:01Z",
    ])
    func rejectsMalformedTimes(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test func civilDateIsTheUTCDay() {
        #expect(RFC3339.civilDate(of: Fixtures.start) == .init(year: 2026, month: 11, day: 29))
        #expect(RFC3339.civilDate(of: Timestamp(microsecondsSinceEpoch: -1)) == .init(year: 1969, month: 12, day: 31))
    }
}
