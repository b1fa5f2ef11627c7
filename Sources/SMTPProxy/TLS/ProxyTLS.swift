import Crypto
import Foundation
import NIOSSL
import X509

/// TLS contexts of the two legs (RFC 3207 STARTTLS; README, "How the proxy relays", TLS).
public enum ProxyTLS {
    public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The server-side context offered to clients: the certificate and key from PEM files.
    public static func clientLegContext(certificatePath: String, keyPath: String) throws(ConfigurationError) -> NIOSSLContext {
        // Each file is loaded on its own, so the message names the one at fault (NIOSSL's own
        // `failedToLoadCertificate` names neither).
        let chain: [NIOSSLCertificateSource]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
        } catch {
            throw ConfigurationError(description: "--tls-cert \(certificatePath): \(unreadable(certificatePath) ?? "not a PEM certificate chain")")
        }
        guard !chain.isEmpty else { throw ConfigurationError(description: "--tls-cert \(certificatePath): no certificate in the file") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw ConfigurationError(description: "--tls-key \(keyPath): \(unreadable(keyPath) ?? "not a PEM private key (an encrypted key needs its passphrase removed)")")
        }
        do {
            let configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigurationError(description: "--tls-cert \(certificatePath) with --tls-key \(keyPath): the key does not belong to the certificate, or the pair is unusable (\(error))")
        }
    }

    /// Why a file cannot be read (missing, no permission), or nil when it can be.
    private static func unreadable(_ path: String) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return "no such file" }
        return FileManager.default.isReadableFile(atPath: path) ? nil : "not readable (permission denied)"
    }

    /// `--tls-cert auto`: an ephemeral self-signed P-256 certificate for `hostname`, valid for 30
    /// days, never written to disk.
    public static func ephemeralClientLegContext(hostname: String) throws(ConfigurationError) -> NIOSSLContext {
        do {
            let key = P256.Signing.PrivateKey()
            let name = try DistinguishedName { CommonName(hostname) }
            let now = Date()
            let certificate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: Certificate.PublicKey(key.publicKey),
                notValidBefore: now.addingTimeInterval(-3600),
                notValidAfter: now.addingTimeInterval(30 * 86400),
                issuer: name,
                subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    SubjectAlternativeNames([.dnsName(hostname)])
                },
                issuerPrivateKey: Certificate.PrivateKey(key)
            )
            let pem = try certificate.serializeAsPEM().pemString
            let nioCertificate = try NIOSSLCertificate(bytes: Array(pem.utf8), format: .pem)
            let nioKey = try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)
            let configuration = TLSConfiguration.makeServerConfiguration(certificateChain: [.certificate(nioCertificate)], privateKey: .privateKey(nioKey))
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigurationError(description: "cannot make an ephemeral certificate: \(error)")
        }
    }

    /// The client-side context for STARTTLS to the upstream. `opportunistic` and `require` do not
    /// check the certificate (RFC 7435 opportunistic security); `verify` checks the chain against
    /// `caPath` (or the system roots) and the host name.
    public static func upstreamLegContext(mode: UpstreamTLSMode, caPath: String?) throws(ConfigurationError) -> NIOSSLContext? {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .off:
            return nil
        case .opportunistic, .require:
            configuration.certificateVerification = .none
        case .verify:
            configuration.certificateVerification = .fullVerification
            if let caPath { configuration.trustRoots = .file(caPath) }
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigurationError(description: "cannot set up upstream TLS\(caPath.map { " with --upstream-ca \($0)" } ?? ""): \(error)")
        }
    }
}
