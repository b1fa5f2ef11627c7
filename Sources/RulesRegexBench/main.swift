// Measures the regex engines the rule language could use for `matches`: Swift Regex, Foundation's
// NSRegularExpression, and PCRE2 (JIT and interpreter), on subject-sized and body-sized (~100 KB)
// subjects with the kind of patterns rules hold. Run it in release: tools/bench/regex.
// It prints a table; it never asserts on time.
import CPCRE2
import Foundation

struct Pattern {
    var name: String
    var pattern: String
    var onBody: Bool
}

let patterns: [Pattern] = [
    Pattern(name: "subject: word, caseless", pattern: #"(?i)\bconfidential\b"#, onBody: false),
    Pattern(name: "subject: reply prefix", pattern: #"(?i)^(re|fwd?|aw|sv):\s*"#, onBody: false),
    Pattern(name: "subject: spam words", pattern: #"(?i)(viagra|cialis|casino|lottery|winner|bitcoin)"#, onBody: false),
    Pattern(name: "subject: money amount", pattern: #"\$\d+(,\d{3})*(\.\d{2})?"#, onBody: false),
    Pattern(name: "subject: urgent .* payment", pattern: #"(?i)urgent.*(payment|invoice|wire transfer)"#, onBody: false),
    Pattern(name: "filename: executable ext", pattern: #"(?i)\.(exe|scr|js|vbs|bat|cmd|ps1|jar)$"#, onBody: false),
    Pattern(name: "body: password leak", pattern: #"(?i)\bpassword\s*[:=]\s*\S+"#, onBody: true),
    Pattern(name: "body: card number", pattern: #"\b\d{4}[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b"#, onBody: true),
    Pattern(name: "body: suspicious URL", pattern: #"(?i)https?://[^\s/]+\.(ru|cn|top|xyz|zip)\b"#, onBody: true),
    Pattern(name: "body: IBAN", pattern: #"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b"#, onBody: true),
    Pattern(name: "body: crypto wallet", pattern: #"(?i)(bitcoin|btc|monero)\s+(wallet|address)"#, onBody: true),
    Pattern(name: "body: word, caseless", pattern: #"(?i)\bconfidential\b"#, onBody: true),
    Pattern(name: "body: PGP block", pattern: #"(?s)BEGIN PGP MESSAGE.*END PGP MESSAGE"#, onBody: true),
    Pattern(name: "body: SSN-like", pattern: #"\b\d{3}-\d{2}-\d{4}\b"#, onBody: true),
]

// Deterministic text: a linear congruential generator, so every run scans the same bytes.
var seed: UInt64 = 0x5EED
@MainActor func random(_ bound: Int) -> Int {
    seed = seed &* 6364136223846793005 &+ 1442695040888963407
    return Int((seed >> 33) % UInt64(bound))
}

let words = ["the", "meeting", "report", "quarterly", "please", "review", "attached", "budget", "team", "project",
             "deadline", "thanks", "regards", "update", "schedule", "customer", "order", "shipment", "invoice", "draft",
             "Zürich", "naïve", "résumé", "Grüße", "tomorrow", "approved", "numbers", "forecast", "office", "call"]
@MainActor func sentence(_ count: Int) -> String {
    (0..<count).map { _ in words[random(words.count)] }.joined(separator: " ")
}

let subjects: [String] = (0..<2000).map { i in
    let prefix = ["", "Re: ", "Fwd: ", "RE: ", "AW: "][random(5)]
    var text = prefix + sentence(4 + random(8))
    if i % 50 == 0 { text += " CONFIDENTIAL" }
    if i % 97 == 0 { text += " urgent: invoice $1,250.00" }
    return text
}
let filenames: [String] = (0..<2000).map { i in
    ["report.pdf", "photo.jpg", "budget.xlsx", "notes.txt", "setup.exe", "invoice.js", "archive.zip"][i % 7]
}

/// ~100 KB of mail-like text with no match for most body patterns until the end, so scans are full.
var bodyLines: [String] = []
var bodySize = 0
while bodySize < 100_000 {
    let line = sentence(6 + random(10)) + (random(20) == 0 ? " call 555-0100 ext 42" : "") + "."
    bodyLines.append(line)
    bodySize += line.utf8.count + 2
}
let body = bodyLines.joined(separator: "\r\n") + "\r\nIn confidence, the final account is GB82WEST12345698765432.\r\n"

// MARK: - Engines

protocol Engine {
    static var name: String { get }
    init?(_ pattern: String)
    func firstMatch(_ subject: String) -> Bool
}

struct SwiftRegexEngine: Engine {
    static let name = "Swift Regex"
    let regex: Regex<AnyRegexOutput>
    init?(_ pattern: String) {
        guard let regex = try? Regex(pattern) else { return nil }
        self.regex = regex
    }
    func firstMatch(_ subject: String) -> Bool { subject.firstMatch(of: regex) != nil }
}

struct FoundationEngine: Engine {
    static let name = "NSRegularExpression"
    let regex: NSRegularExpression
    init?(_ pattern: String) {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return nil }
        self.regex = regex
    }
    func firstMatch(_ subject: String) -> Bool {
        regex.firstMatch(in: subject, range: NSRange(subject.startIndex..., in: subject)) != nil
    }
}

final class PCRE2Engine {
    let code: OpaquePointer
    let context: OpaquePointer
    init?(_ pattern: String, jit: Bool) {
        var errorCode: Int32 = 0
        var offset = 0
        let bytes = Array(pattern.utf8)
        guard let code = bytes.withUnsafeBufferPointer({ pcre2_compile_8($0.baseAddress, $0.count, UInt32(PCRE2_UTF), &errorCode, &offset, nil) }),
              let context = pcre2_match_context_create_8(nil)
        else { return nil }
        pcre2_set_match_limit_8(context, 1_000_000)
        pcre2_set_depth_limit_8(context, 10_000)
        if jit, pcre2_jit_compile_8(code, UInt32(PCRE2_JIT_COMPLETE)) != 0 { return nil }
        self.code = code
        self.context = context
    }
    deinit {
        pcre2_match_context_free_8(context)
        pcre2_code_free_8(code)
    }
    /// As the rule evaluator does it: match data per call, no UTF re-check (Swift strings are valid).
    func match(_ subject: String) -> Int32 {
        guard let data = pcre2_match_data_create_from_pattern_8(code, nil) else { return -1 }
        defer { pcre2_match_data_free_8(data) }
        var subject = subject
        return subject.withUTF8 { pcre2_match_8(code, $0.baseAddress, $0.count, 0, UInt32(PCRE2_NO_UTF_CHECK), data, context) }
    }
}

struct PCRE2JITEngine: Engine {
    static let name = "PCRE2 JIT"
    let engine: PCRE2Engine
    init?(_ pattern: String) {
        guard let engine = PCRE2Engine(pattern, jit: true) else { return nil }
        self.engine = engine
    }
    func firstMatch(_ subject: String) -> Bool { engine.match(subject) > 0 }
}

struct PCRE2InterpreterEngine: Engine {
    static let name = "PCRE2 interp"
    let engine: PCRE2Engine
    init?(_ pattern: String) {
        guard let engine = PCRE2Engine(pattern, jit: false) else { return nil }
        self.engine = engine
    }
    func firstMatch(_ subject: String) -> Bool { engine.match(subject) > 0 }
}

// MARK: - Measurement

let clock = ContinuousClock()

/// Median of `runs` timings of one pass over the subjects, in microseconds per subject.
@MainActor func measure<E: Engine>(_ engine: E.Type, _ pattern: Pattern, runs: Int) -> (Double, Int)? {
    guard let engine = E(pattern.pattern) else { return nil }
    let inputs = pattern.onBody ? [body] : (pattern.name.hasPrefix("filename") ? filenames : subjects)
    let repeats = pattern.onBody ? 5 : 1
    var times: [Double] = []
    var matches = 0
    for _ in 0..<runs {
        matches = 0
        let start = clock.now
        for _ in 0..<repeats {
            for input in inputs where engine.firstMatch(input) { matches += 1 }
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        times.append(seconds * 1e6 / Double(inputs.count * repeats))
    }
    times.sort()
    return (times[times.count / 2], matches)
}

let runs = Int(ProcessInfo.processInfo.environment["RUNS"] ?? "") ?? 5
print("Regex engines on \(subjects.count) subjects / \(filenames.count) file names (µs per subject) and a \(body.utf8.count)-octet body (µs per scan); median of \(runs) runs")
print("")
let engines: [(String, @MainActor (Pattern) -> (Double, Int)?)] = [
    (PCRE2JITEngine.name, { measure(PCRE2JITEngine.self, $0, runs: runs) }),
    (PCRE2InterpreterEngine.name, { measure(PCRE2InterpreterEngine.self, $0, runs: runs) }),
    (FoundationEngine.name, { measure(FoundationEngine.self, $0, runs: runs) }),
    (SwiftRegexEngine.name, { measure(SwiftRegexEngine.self, $0, runs: runs) }),
]
func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
func number(_ value: Double) -> String {
    value >= 100 ? String(format: "%.0f", value) : value >= 10 ? String(format: "%.1f", value) : String(format: "%.2f", value)
}
print("| " + pad("pattern", 28) + " | " + engines.map { pad($0.0, 19) }.joined(separator: " | ") + " |")
print("|" + String(repeating: "-", count: 30) + "|" + engines.map { _ in String(repeating: "-", count: 21) }.joined(separator: "|") + "|")
var totals = [Double](repeating: 0, count: engines.count)
var matchCounts: [String: Set<Int>] = [:]
for pattern in patterns {
    var cells: [String] = []
    var firstTime: Double?
    for (i, engine) in engines.enumerated() {
        guard let (time, matches) = engine.1(pattern) else {
            cells.append(pad("n/a", 19))
            continue
        }
        matchCounts[pattern.name, default: []].insert(matches)
        totals[i] += time
        let ratio = firstTime.map { time / $0 } ?? 1
        if firstTime == nil { firstTime = time }
        cells.append(pad("\(number(time)) (\(number(ratio))x)", 19))
    }
    print("| " + pad(pattern.name, 28) + " | " + cells.joined(separator: " | ") + " |")
}
print("| " + pad("sum", 28) + " | " + totals.map { pad("\(number($0)) (\(number($0 / totals[0]))x)", 19) }.joined(separator: " | ") + " |")
for (name, counts) in matchCounts.sorted(by: { $0.key < $1.key }) where counts.count > 1 {
    print("note: engines disagree on the number of matches for \(name): \(counts.sorted())")
}

// A hostile pattern: catastrophic backtracking. PCRE2's match limit ends it; the others have no limit.
print("")
let hostile = String(repeating: "a", count: 40) + "!"
for jit in [true, false] {
    if let engine = PCRE2Engine("^(a+)+$", jit: jit) {
        var result: Int32 = 0
        let start = clock.now
        result = engine.match(hostile)
        let elapsed = clock.now - start
        print("hostile ^(a+)+$ on 40 a's + '!', PCRE2 \(jit ? "JIT" : "interp") with match limit 1e6: result \(result) (\(result == PCRE2_ERROR_MATCHLIMIT ? "match limit hit" : "other")) in \(elapsed)")
    }
}
