#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress display on standard error, shown only when it is a terminal so that piped
/// and redirected output stays clean.
struct TerminalProgress {
    let enabled: Bool
    private var startedAt: Double
    private var lastDrawn: Double = 0
    private var drewSomething = false

    init() {
        enabled = isatty(2) == 1
        startedAt = Self.now()
    }

    mutating func update(bytes: Int64, total: Int64?, sessions: Int) {
        guard enabled else { return }
        let now = Self.now()
        guard now - lastDrawn >= 0.2 else { return }
        lastDrawn = now
        let elapsed = max(now - startedAt, 0.001)
        let megabytes = Double(bytes) / 1_000_000
        var line = "\r  read \(Self.format(megabytes)) MB"
        if let total, total > 0 {
            line += " of \(Self.format(Double(total) / 1_000_000)) MB (\(Int(Double(bytes) * 100 / Double(total)))%)"
        }
        line += ", \(sessions) sessions, \(Self.format(megabytes / elapsed)) MB/s   "
        FileHandleStandardError.write(line)
        drewSomething = true
    }

    mutating func clear() {
        guard enabled, drewSomething else { return }
        FileHandleStandardError.write("\r\u{1B}[K")
        drewSomething = false
    }

    private static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    private static func format(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}
