import NIOSSL

/// Where the client leg's certificate comes from (`--tls-cert`/`--tls-key`), so SIGHUP can build
/// the context again: SIGHUP reloads certificates as well as rules.
public enum ClientTLSSource: Sendable, Hashable {
    /// PEM files, re-read on every `makeContext()`.
    case files(certificate: String, key: String)
    /// `--tls-cert auto`: an ephemeral self-signed certificate, made once.
    case ephemeral(hostname: String)

    public func makeContext() throws(ProxyTLS.ConfigurationError) -> NIOSSLContext {
        switch self {
        case .files(let certificate, let key):
            try ProxyTLS.clientLegContext(certificatePath: certificate, keyPath: key)
        case .ephemeral(let hostname):
            try ProxyTLS.ephemeralClientLegContext(hostname: hostname)
        }
    }

    /// Whether a reload reads anything: an ephemeral certificate has nothing on disk.
    public var isReloadable: Bool {
        switch self {
        case .files: true
        case .ephemeral: false
        }
    }
}
