import SMTPCore
import Testing
@testable import SMTPTranscript

/// A fixed sequence of "random" words, so ids are predictable.
struct CountingGenerator: RandomNumberGenerator, Sendable {
    var word: UInt64
    var step: UInt64 = 1

    mutating func next() -> UInt64 {
        defer { word &+= step }
        return word
    }
}

@Suite struct SessionIDGeneratorTests {
    static let crockford = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    @Test func idsEncodeTimeThenRandomInCrockfordBase32() {
        var generator = SessionIDGenerator(random: CountingGenerator(word: 0))
        // 1 ms after the epoch; random words 0 (low 64 bits) then 1 (high 16 bits).
        let id = generator.next(at: Timestamp(microsecondsSinceEpoch: 1_000))
        // Checked against Python: (1 << 80 | 1 << 64) in Crockford base32, 26 digits.
        #expect(id == "0000000001000G000000000000")
        #expect(id.count == SessionIDGenerator.length)
    }

    @Test func knownULIDVector() {
        // 2026-11-29T06:45:01.123Z = 1795934701123 ms, all-ones random; checked against Python.
        let id = SessionIDGenerator.encode(milliseconds: 1_795_934_701_123, randomHigh: .max, randomLow: .max)
        #expect(id.hasSuffix("ZZZZZZZZZZZZZZZZ"))
        #expect(id == "01M8K0SHJ3ZZZZZZZZZZZZZZZZ")
        #expect(SessionIDGenerator.encode(milliseconds: (1 << 48) - 1, randomHigh: .max, randomLow: .max) == "7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
    }

    @Test func idsWithinOneMillisecondIncrementAndSort() {
        var generator = SessionIDGenerator(random: CountingGenerator(word: .max))
        let time = Timestamp(microsecondsSinceEpoch: 1_795_934_701_123_456)
        var previous = ""
        for _ in 0..<1000 {
            let id = generator.next(at: time)
            #expect(id > previous)
            #expect(id.allSatisfy { Self.crockford.contains($0) })
            previous = id
        }
    }

    @Test func aClockStepBackwardsKeepsIdsIncreasing() {
        var generator = SessionIDGenerator()
        let first = generator.next(at: Timestamp(microsecondsSinceEpoch: 2_000_000))
        let second = generator.next(at: Timestamp(microsecondsSinceEpoch: 1_000_000))
        let third = generator.next(at: Timestamp(microsecondsSinceEpoch: 3_000_000))
        #expect(first < second)
        #expect(second < third)
    }

    @Test func overflowOfTheRandomPartCarriesIntoTime() {
        // All 80 random bits set: the next id in the same millisecond carries into the time part.
        var generator = SessionIDGenerator(random: CountingGenerator(word: .max, step: 0))
        let time = Timestamp(microsecondsSinceEpoch: 5_000)
        let first = generator.next(at: time)
        #expect(first == SessionIDGenerator.encode(milliseconds: 5, randomHigh: .max, randomLow: .max))
        let second = generator.next(at: time)
        #expect(second == SessionIDGenerator.encode(milliseconds: 6, randomHigh: 0, randomLow: 0))
        #expect(second > first)
    }

    @Test func timesOutsideTheULIDRangeAreClamped() {
        var generator = SessionIDGenerator(random: CountingGenerator(word: 0))
        #expect(generator.next(at: Timestamp(microsecondsSinceEpoch: -5)).hasPrefix("0000000000"))
        var later = SessionIDGenerator(random: CountingGenerator(word: 0))
        #expect(later.next(at: Timestamp(microsecondsSinceEpoch: .max)).hasPrefix("7ZZZZZZZZZ"))
    }

    @Test func generatedIdsMatchTheSchemaPattern() throws {
        var generator = SessionIDGenerator()
        let regex = try Regex("^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
        for _ in 0..<100 {
            #expect(try regex.wholeMatch(in: generator.next(at: Fixtures.start)) != nil)
        }
    }
}
