import SMTPCore

/// RFC 3339 §5.6 `date-time` text for transcript times, always in the one form the transcript
/// schema requires: UTC, six fractional digits, upper-case `T` and `Z` ("2026-11-29T06:45:01.123456Z").
///
/// Pure integer arithmetic (days-from-civil, after H. Hinnant's public-domain algorithms): no
/// Foundation `DateFormatter`, no allocation beyond the output, so it can run once per record at
/// tens of thousands of records a second.
public enum RFC3339 {
    /// Length in octets of every formatted time.
    public static let formattedLength = 27

    /// 0000-01-01T00:00:00.000000Z: RFC 3339 has four-digit years only, so earlier times are clamped here.
    public static let minimum = Timestamp(microsecondsSinceEpoch: daysFromCivil(year: 0, month: 1, day: 1) * microsecondsPerDay)

    /// 9999-12-31T23:59:59.999999Z: later times are clamped here.
    public static let maximum = Timestamp(
        microsecondsSinceEpoch: daysFromCivil(year: 9999, month: 12, day: 31) * microsecondsPerDay + microsecondsPerDay - 1
    )

    static let microsecondsPerDay: Int64 = 86_400_000_000

    /// A proleptic Gregorian calendar day in UTC.
    public struct CivilDate: Sendable, Hashable {
        public var year: Int
        public var month: Int
        public var day: Int

        public init(year: Int, month: Int, day: Int) {
            self.year = year
            self.month = month
            self.day = day
        }
    }

    /// The UTC calendar day of `time` (clamped to years 0...9999 like `write`).
    public static func civilDate(of time: Timestamp) -> CivilDate {
        let us = clamp(time).microsecondsSinceEpoch
        let days = floorDiv(us, microsecondsPerDay)
        let civil = civilFromDays(days)
        return CivilDate(year: Int(civil.year), month: civil.month, day: civil.day)
    }

    /// Appends the 27-octet form of `time`; times outside years 0...9999 are clamped to that range
    /// because a capture's timestamps are input and may be anything.
    public static func write(_ time: Timestamp, into out: inout [UInt8]) {
        let us = clamp(time).microsecondsSinceEpoch
        let days = floorDiv(us, microsecondsPerDay)
        let inDay = us - days * microsecondsPerDay
        let civil = civilFromDays(days)
        let secondOfDay = Int(inDay / 1_000_000)
        let fraction = Int(inDay % 1_000_000)

        appendDigits(Int(civil.year), count: 4, into: &out)
        out.append(UInt8(ascii: "-"))
        appendDigits(civil.month, count: 2, into: &out)
        out.append(UInt8(ascii: "-"))
        appendDigits(civil.day, count: 2, into: &out)
        out.append(UInt8(ascii: "T"))
        appendDigits(secondOfDay / 3600, count: 2, into: &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay / 60 % 60, count: 2, into: &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay % 60, count: 2, into: &out)
        out.append(UInt8(ascii: "."))
        appendDigits(fraction, count: 6, into: &out)
        out.append(UInt8(ascii: "Z"))
    }

    /// The 27-character form of `time`.
    public static func format(_ time: Timestamp) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(formattedLength)
        write(time, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Parses any RFC 3339 `date-time` (§5.6): lower- or upper-case `T`/`Z`, a numeric offset, and
    /// 0 to 9 fractional digits (digits beyond microseconds are truncated). A leap second `:60` is
    /// accepted and lands on the first microsecond of the next minute, since `Timestamp` has no leap
    /// seconds. Returns `nil` for anything else, including impossible dates such as February 30.
    public static func parse(_ text: some StringProtocol) -> Timestamp? {
        parse(utf8: Array(text.utf8))
    }

    /// `parse(_:)` over UTF-8 octets.
    public static func parse(utf8 text: [UInt8]) -> Timestamp? {
        var reader = DigitReader(bytes: text)
        guard let year = reader.number(digits: 4), reader.take("-"),
              let month = reader.number(digits: 2), reader.take("-"),
              let day = reader.number(digits: 2), reader.takeEither("T", "t"),
              let hour = reader.number(digits: 2), reader.take(":"),
              let minute = reader.number(digits: 2), reader.take(":"),
              let second = reader.number(digits: 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour <= 23, minute <= 59, second <= 60
        else { return nil }

        var micros = 0
        if reader.take(".") {
            var digits = 0
            while let d = reader.digit() {
                digits += 1
                guard digits <= 9 else { return nil }
                if digits <= 6 { micros = micros * 10 + d }
            }
            guard digits > 0 else { return nil }
            if digits < 6 {
                for _ in digits..<6 { micros *= 10 }
            }
        }

        var offsetSeconds = 0
        if reader.takeEither("Z", "z") {
            // UTC
        } else if let sign = reader.sign() {
            guard let oh = reader.number(digits: 2), reader.take(":"), let om = reader.number(digits: 2),
                  oh <= 23, om <= 59
            else { return nil }
            offsetSeconds = sign * (oh * 3600 + om * 60)
        } else {
            return nil
        }
        guard reader.atEnd else { return nil }

        let days = daysFromCivil(year: Int64(year), month: month, day: day)
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        return Timestamp(microsecondsSinceEpoch: seconds * 1_000_000 + Int64(micros))
    }

    // MARK: - Calendar arithmetic

    static func clamp(_ time: Timestamp) -> Timestamp {
        min(max(time, minimum), maximum)
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b < 0) ? q - 1 : q
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func daysFromCivil(year: Int64, month: Int, day: Int) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The inverse of `daysFromCivil`.
    static func civilFromDays(_ days: Int64) -> (year: Int64, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2:
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            return leap ? 29 : 28
        case 4, 6, 9, 11:
            return 30
        default:
            return 31
        }
    }

    static func appendDigits(_ value: Int, count: Int, into out: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<count { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            out.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest / divisor % 10))
            rest %= divisor
            divisor /= 10
        }
    }
}

/// A cursor over fixed-width ASCII fields.
private struct DigitReader {
    let bytes: [UInt8]
    var index = 0

    var atEnd: Bool { index == bytes.count }

    mutating func digit() -> Int? {
        guard index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") else {
            return nil
        }
        defer { index += 1 }
        return Int(bytes[index] - UInt8(ascii: "0"))
    }

    mutating func number(digits: Int) -> Int? {
        var value = 0
        for _ in 0..<digits {
            guard let d = digit() else { return nil }
            value = value * 10 + d
        }
        return value
    }

    mutating func take(_ c: Unicode.Scalar) -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: c) else { return false }
        index += 1
        return true
    }

    mutating func takeEither(_ a: Unicode.Scalar, _ b: Unicode.Scalar) -> Bool {
        take(a) || take(b)
    }

    mutating func sign() -> Int? {
        if take("+") { return 1 }
        if take("-") { return -1 }
        return nil
    }
}
