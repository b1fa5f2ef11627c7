/// What a passive observer learnt about one TLS handshake, for the session transcript's `tls` object.
/// Used after STARTTLS (RFC 3207 §4) and on implicit-TLS ports (RFC 8314 §3.3).
///
/// Everything here comes from clear-text hellos and record headers (RFC 8446 §4.1, §5.1); nothing is
/// decrypted.
public struct TLSSummary: Sendable, Equatable {
    /// A ClientHello (or an SSLv2-compatible CLIENT-HELLO) was seen, even if it could not be parsed.
    public var clientHelloSeen: Bool = false
    /// A ServerHello was seen; a HelloRetryRequest counts as one too (RFC 8446 §4.1.4).
    public var serverHelloSeen: Bool = false
    /// The `server_name` extension's `host_name` (RFC 6066 §3). Bytes outside printable ASCII are
    /// written as `\xNN`; at most ``TLSObserverDefaults/maximumServerNameLength`` octets are kept.
    public var sni: String?
    /// The versions the client offered: `supported_versions` in its order without GREASE values
    /// (RFC 8446 §4.2.1), or else its `legacy_version`.
    public var offeredVersions: [String] = []
    /// The ALPN protocol names the client offered (RFC 7301 §3.1), escaped like ``sni``.
    public var offeredApplicationProtocols: [String] = []
    /// The negotiated version, `"SSLv3"`, `"TLSv1.0"` … `"TLSv1.3"`: from the ServerHello's
    /// `supported_versions`, else its `legacy_version`. `"SSLv2"` when the server answered in SSLv2.
    public var version: String?
    /// The negotiated cipher suite's IANA name, or its code point in hex (`0xC0FF`) when unknown.
    public var cipher: String?
    /// The server asked the client to try again with a HelloRetryRequest (RFC 8446 §4.1.4).
    public var helloRetryRequest: Bool = false
    /// The client's first record was an SSLv2-compatible CLIENT-HELLO (RFC 5246 §E.2); its version
    /// field is in ``offeredVersions``.
    public var sslv2CompatibleClientHello: Bool = false
    /// The first alert either side sent in clear text.
    public var alert: TLSAlert?
    /// `true` once both sides finished: for TLS 1.2 and below, ChangeCipherSpec then Finished from both;
    /// for TLS 1.3, encrypted records from both sides after the ServerHello, including at least one
    /// that shows the client finished. `false` when an alert, a close or non-TLS bytes came first.
    /// `nil` while unknown.
    public var established: Bool?
    /// Why the handshake failed, in words, e.g. `server sent fatal alert handshake_failure`.
    public var failure: String?
    /// The first bytes were not TLS records at all (for example plaintext SMTP on port 465, or a
    /// client that ignored the `220` to STARTTLS).
    public var notTLS: Bool = false
    /// Why the observer stopped following part of the stream (a malformed hello, a handshake message
    /// over the limit); `nil` when it followed everything it needed.
    public var unparsedReason: String?

    public init() {}
}
