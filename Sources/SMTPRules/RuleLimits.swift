/// Bounds on what a rule set may hold and on the work one evaluation may do: every input is hostile,
/// rules files included, and everything is bounded.
public struct RuleLimits: Sendable, Hashable {
    /// Octets per rules file.
    public var maxFileSize: Int = 1 << 20
    /// `*.rules` files in one directory.
    public var maxFiles: Int = 1000
    /// Rules in the whole set.
    public var maxRules: Int = 10_000
    /// Octets per list file.
    public var maxListFileSize: Int = 16 << 20
    /// Entries per list (inline or from a file).
    public var maxListEntries: Int = 200_000
    /// Nesting of `and`/`or`/`not`/parentheses in one condition.
    public var maxExpressionDepth: Int = 64
    /// Octets of one regex pattern.
    public var maxRegexLength: Int = 1024
    /// Octets of an interpolated string (header value, address, tag, log text) after interpolation.
    public var maxInterpolatedLength: Int = 900
    /// Octets of a reply text after interpolation (RFC 5321 §4.5.3.1.5: a reply line is 512 octets).
    public var maxReplyTextLength: Int = 400
    /// PCRE2 match limit (backtracking steps) per match attempt; a hit counts as no match.
    public var regexMatchLimit: UInt32 = 1_000_000
    /// PCRE2 depth limit (nested backtracking) per match attempt; a hit counts as no match.
    public var regexDepthLimit: UInt32 = 10_000
    /// PCRE2 heap limit in KiB per match attempt (interpreter only); a hit counts as no match.
    public var regexHeapLimitKiB: UInt32 = 8192
    /// `example` blocks run per check.
    public var maxExamples: Int = 10_000

    public init() {}

    public static let `default` = RuleLimits()
}
