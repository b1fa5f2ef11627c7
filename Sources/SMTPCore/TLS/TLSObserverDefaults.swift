/// The limits that bound a ``TLSHandshakeObserver`` on hostile input.
///
/// Every byte of a capture is input from the network, so each buffer the observer keeps has a
/// documented ceiling. Past a ceiling the observer stops following that direction and says why in
/// ``TLSSummary/unparsedReason``; it never grows memory or work beyond these values.
public enum TLSObserverDefaults {
    /// The largest record a conforming peer may send: `TLSCiphertext.length` is at most 2^14 + 2048
    /// (RFC 5246 §6.2.3; RFC 8446 §5.2 lowers it to 2^14 + 256). Anything longer is not TLS.
    public static let maximumRecordLength = 16_384 + 2_048

    /// The largest handshake message that is reassembled across records. A ClientHello with
    /// post-quantum key shares is a few KiB; 64 KiB leaves room for any honest hello.
    public static let maximumHandshakeMessageLength = 65_536

    /// The longest `server_name` kept: a DNS name is at most 255 octets (RFC 1035 §2.3.4).
    public static let maximumServerNameLength = 255

    /// How many ALPN protocol names are kept from a ClientHello; the rest are counted out.
    public static let maximumApplicationProtocols = 16
}
