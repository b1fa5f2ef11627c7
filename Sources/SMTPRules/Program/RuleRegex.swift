import CPCRE2

/// A compiled `matches /re/flags` pattern: PCRE2 (Perl-compatible syntax, UTF-8 mode) compiled once and
/// JIT-compiled when the platform allows, shared by every thread. Each match gets its own match data
/// and runs under the match, depth and heap limits of `RuleLimits`; hitting a limit counts as no match,
/// so a hostile pattern or subject cannot hang a session.
final class RuleRegex: Sendable {
    /// A compile error with the offset (in UTF-8 octets into the pattern) PCRE2 reports.
    struct CompileError: Error {
        var message: String
        var offset: Int
    }

    /// The outcome of one match attempt.
    enum Match {
        /// Captures: index 0 is the whole match; nil for a group that did not participate.
        case matched([String?])
        case noMatch
        /// A match, depth, heap or JIT stack limit was hit: treated as no match.
        case limitExceeded
    }

    // The compiled code and the match context are read-only after init; PCRE2 documents both as safe to
    // share between threads as long as nobody changes them.
    private nonisolated(unsafe) let code: OpaquePointer
    private nonisolated(unsafe) let context: OpaquePointer
    let pattern: String
    let isJIT: Bool

    /// Flags: `i` caseless, `m` multiline, `s` dot matches newline, `x` extended, `u` Unicode
    /// properties for `\w`, `\b` and friends.
    static let flagOptions: [Character: UInt32] = [
        "i": UInt32(PCRE2_CASELESS), "m": UInt32(PCRE2_MULTILINE), "s": UInt32(PCRE2_DOTALL),
        "x": UInt32(PCRE2_EXTENDED), "u": UInt32(PCRE2_UCP),
    ]

    init(pattern: String, flags: String, caseless: Bool, limits: RuleLimits) throws(CompileError) {
        var options = UInt32(PCRE2_UTF) | UInt32(PCRE2_NEVER_BACKSLASH_C)
        for flag in flags {
            guard let option = Self.flagOptions[flag] else {
                throw CompileError(message: "unknown regex flag '\(flag)'", offset: -1)
            }
            options |= option
        }
        if caseless { options |= UInt32(PCRE2_CASELESS) }
        var errorCode: Int32 = 0
        var errorOffset = 0
        let compiled: OpaquePointer? = pattern.utf8.withContiguousStorageIfAvailable { buffer in
            pcre2_compile_8(buffer.baseAddress, buffer.count, options, &errorCode, &errorOffset, nil)
        } ?? {
            let bytes = Array(pattern.utf8)
            return bytes.withUnsafeBufferPointer { pcre2_compile_8($0.baseAddress, $0.count, options, &errorCode, &errorOffset, nil) }
        }()
        guard let compiled else {
            throw CompileError(message: Self.message(for: errorCode), offset: errorOffset)
        }
        guard let context = pcre2_match_context_create_8(nil) else {
            pcre2_code_free_8(compiled)
            throw CompileError(message: "out of memory", offset: -1)
        }
        pcre2_set_match_limit_8(context, limits.regexMatchLimit)
        pcre2_set_depth_limit_8(context, limits.regexDepthLimit)
        pcre2_set_heap_limit_8(context, limits.regexHeapLimitKiB)
        // JIT failure (an unsupported platform) falls back to the interpreter, with the same limits.
        isJIT = pcre2_jit_compile_8(compiled, UInt32(PCRE2_JIT_COMPLETE)) == 0
        self.code = compiled
        self.context = context
        self.pattern = pattern
    }

    deinit {
        pcre2_match_context_free_8(context)
        pcre2_code_free_8(code)
    }

    static func message(for errorCode: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBufferPointer { pcre2_get_error_message_8(errorCode, $0.baseAddress, $0.count) }
        guard count > 0 else { return "PCRE2 error \(errorCode)" }
        return String(decoding: buffer[0..<Int(count)], as: UTF8.self)
    }

    /// Matches anywhere in `subject`.
    func firstMatch(in subject: String) -> Match {
        guard let matchData = pcre2_match_data_create_from_pattern_8(code, nil) else { return .limitExceeded }
        defer { pcre2_match_data_free_8(matchData) }
        var subject = subject
        return subject.withUTF8 { buffer -> Match in
            // Swift strings are valid UTF-8, so PCRE2's own check would only repeat that work.
            let result = pcre2_match_8(code, buffer.baseAddress, buffer.count, 0, UInt32(PCRE2_NO_UTF_CHECK), matchData, context)
            if result == PCRE2_ERROR_NOMATCH { return .noMatch }
            if result < 0 { return .limitExceeded }
            let pairs = Int(pcre2_get_ovector_count_8(matchData))
            guard let vector = pcre2_get_ovector_pointer_8(matchData) else { return .matched([]) }
            let unset = smtpscope_pcre2_unset()
            var captures: [String?] = []
            captures.reserveCapacity(pairs)
            for pair in 0..<pairs {
                let start = vector[2 * pair]
                let end = vector[2 * pair + 1]
                if start == unset || end == unset || start > end || end > buffer.count {
                    captures.append(nil)
                } else {
                    captures.append(String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self))
                }
            }
            return .matched(captures)
        }
    }
}
