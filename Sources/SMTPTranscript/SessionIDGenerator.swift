import SMTPCore

/// Session ids that sort by time and are unique without coordination: the ULID layout
/// (github.com/ulid/spec): 48 bits of Unix time in milliseconds, then 80 random bits, written as
/// 26 characters of Crockford base32 (digits and upper-case letters without I, L, O, U).
///
/// Monotonic per generator: an id made in the same millisecond as the previous one (or with a clock
/// that went backwards) is the previous id plus one, so ids from one generator strictly increase.
/// Independent generators (one per event loop) stay unique through their 80 random bits.
/// Times before 1970 or beyond the 48-bit range are clamped.
public struct SessionIDGenerator: Sendable {
    public static let length = 26

    private var random: any RandomNumberGenerator & Sendable
    private var lastMilliseconds: UInt64 = 0
    /// The 80 random bits: 16 high, 64 low.
    private var randomHigh: UInt16 = 0
    private var randomLow: UInt64 = 0
    private var hasPrevious = false

    /// `random` is injectable so tests get fixed ids; the default is the system's CSPRNG.
    public init(random: some RandomNumberGenerator & Sendable = SystemRandomNumberGenerator()) {
        self.random = random
    }

    /// The next id for a session starting at `time`.
    public mutating func next(at time: Timestamp) -> String {
        let maximumMilliseconds: UInt64 = (1 << 48) - 1
        let milliseconds = time.microsecondsSinceEpoch <= 0
            ? 0 : min(UInt64(time.microsecondsSinceEpoch / 1000), maximumMilliseconds)

        if hasPrevious, milliseconds <= lastMilliseconds {
            // Same millisecond (or the clock stepped back): increment, carrying into the time part on
            // overflow of the 80 bits so order and uniqueness survive.
            let (low, carry) = randomLow.addingReportingOverflow(1)
            randomLow = low
            if carry {
                let (high, carryHigh) = randomHigh.addingReportingOverflow(1)
                randomHigh = high
                if carryHigh, lastMilliseconds < maximumMilliseconds {
                    lastMilliseconds += 1
                }
            }
        } else {
            lastMilliseconds = milliseconds
            randomLow = random.next()
            randomHigh = UInt16(truncatingIfNeeded: random.next())
            hasPrevious = true
        }
        return Self.encode(milliseconds: lastMilliseconds, randomHigh: randomHigh, randomLow: randomLow)
    }

    private static let alphabet: [UInt8] = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// 128 bits (time << 80 | random) as 26 base32 digits, most significant first; the first digit
    /// carries only the top 3 bits.
    static func encode(milliseconds: UInt64, randomHigh: UInt16, randomLow: UInt64) -> String {
        let high = milliseconds << 16 | UInt64(randomHigh)
        let low = randomLow
        var out = [UInt8](repeating: 0, count: length)
        for i in 0..<length {
            let shift = 125 - 5 * i
            let digit: UInt64
            if shift >= 64 {
                digit = high >> UInt64(shift - 64)
            } else if shift + 5 <= 64 {
                digit = low >> UInt64(shift)
            } else {
                digit = high << UInt64(64 - shift) | low >> UInt64(shift)
            }
            out[i] = alphabet[Int(digit & 0x1F)]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
