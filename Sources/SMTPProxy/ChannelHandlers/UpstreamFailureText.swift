import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the upstream leg failed, in the words an administrator would use, for the record and the
/// log. NIO's own descriptions name the failing system call's context, not the cause: a refused
/// connect reads "connection reset (error set)"; BoringSSL's name its source file.
enum UpstreamFailureText {
    /// "connection refused", "connection timed out after 30 s", "cannot resolve mx.example".
    static func connect(_ error: any Error) -> String {
        switch error {
        case let error as IOError:
            return describe(errno: error.errnoCode)
        case let error as NIOConnectionError:
            // Happy Eyeballs: every address tried failed, or none was found.
            if let failure = error.connectionErrors.first {
                let address = failure.target.ipAddress.map { "\($0) port \(failure.target.port ?? error.port)" } ?? "\(error.host)"
                return "\(address): \(connect(failure.error))"
            }
            if error.dnsAError != nil || error.dnsAAAAError != nil {
                return "cannot resolve \(error.host)"
            }
            return "no address found for \(error.host)"
        case ChannelError.connectTimeout(let amount):
            return "connection timed out after \(amount.nanoseconds / 1_000_000_000) s"
        default:
            return String(describing: error)
        }
    }

    /// The TLS failure as NIOSSL reports it, with BoringSSL's reasons (`CERTIFICATE_VERIFY_FAILED`)
    /// in place of its error stack and source paths.
    static func tls(_ error: any Error) -> String {
        let text = String(describing: error)
        let reasons = text.matches(of: #/:([A-Z][A-Z0-9_]+) at /#).map { String($0.output.1) }
        guard !reasons.isEmpty else { return text }
        let kind = text.prefix { $0 != "(" }
        return "\(kind): \(reasons.joined(separator: ", "))"
    }

    static func describe(errno code: CInt) -> String {
        switch code {
        case ECONNREFUSED: "connection refused"
        case ETIMEDOUT: "connection timed out"
        case EHOSTUNREACH: "no route to host"
        case ENETUNREACH: "network unreachable"
        case ECONNRESET: "connection reset"
        case EADDRNOTAVAIL: "address not available"
        default: String(cString: strerror(code)).lowercased()
        }
    }
}
