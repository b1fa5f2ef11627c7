#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How the proxy holds messages that `message` rules must see whole, and where quarantined messages
/// go (rules/README.md, "How the proxy carries them out").
public struct SpoolConfiguration: Sendable {
    /// Octets of one message kept in memory; the rest goes to an unlinked temporary file, so a
    /// 50 MB message costs 1 MiB of memory while it is received.
    public var memoryOctets = 1024 * 1024
    /// Directory of the temporary files (`$TMPDIR`, else /tmp).
    public var temporaryDirectory: String
    /// `--quarantine DIR`: each quarantined message as `ID.eml` plus `ID.json`.
    public var quarantineDirectory = "./quarantine"

    public init() {
        temporaryDirectory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
    }
}
