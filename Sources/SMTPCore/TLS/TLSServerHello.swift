import NIOCore

/// The fields of a ServerHello that a transcript reports (RFC 8446 §4.1.3; RFC 5246 §7.4.1.3):
///
///     struct {
///         ProtocolVersion legacy_version = 0x0303;    /* TLS v1.2 */
///         Random random;
///         opaque legacy_session_id_echo<0..32>;
///         CipherSuite cipher_suite;
///         uint8 legacy_compression_method = 0;
///         Extension extensions<6..2^16-1>;
///     } ServerHello;
///
/// A HelloRetryRequest has the same structure and a fixed `random` (RFC 8446 §4.1.3).
struct TLSServerHello: Sendable, Equatable {
    var legacyVersion: TLSProtocolVersion
    var cipherSuite: TLSCipherSuite
    /// `supported_versions` carrying `selected_version` (RFC 8446 §4.2.1).
    var selectedVersion: TLSProtocolVersion?
    var isHelloRetryRequest: Bool

    /// The version in force: `selected_version` when present, else `legacy_version`.
    var negotiatedVersion: TLSProtocolVersion {
        selectedVersion ?? legacyVersion
    }

    /// SHA-256("HelloRetryRequest"), the `random` of every HelloRetryRequest (RFC 8446 §4.1.3).
    static let helloRetryRequestRandom: [UInt8] = [
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
        0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
    ]

    /// Parses the body of a handshake message of type `server_hello`.
    static func parse(_ body: ByteBuffer) throws(TLSParseError) -> TLSServerHello {
        var body = body
        let legacyVersion = TLSProtocolVersion(rawValue: try body.readTLSUInt16("legacy_version"))
        let random = try body.readTLSBytes(32, "random")
        let sessionID = try body.readTLSVector8("legacy_session_id_echo")
        guard sessionID.readableBytes <= 32 else {
            throw TLSParseError("legacy_session_id_echo is longer than 32 bytes")
        }
        let cipherSuite = TLSCipherSuite(rawValue: try body.readTLSUInt16("cipher_suite"))
        _ = try body.readTLSUInt8("legacy_compression_method")

        var hello = TLSServerHello(
            legacyVersion: legacyVersion,
            cipherSuite: cipherSuite,
            selectedVersion: nil,
            isHelloRetryRequest: random.readableBytesView.elementsEqual(helloRetryRequestRandom)
        )
        guard body.readableBytes > 0 else { return hello }

        var extensions = try body.readTLSVector16("extensions")
        while extensions.readableBytes > 0 {
            let type = try extensions.readTLSUInt16("extension_type")
            var data = try extensions.readTLSVector16("extension_data")
            if type == TLSExtensionType.supportedVersions, hello.selectedVersion == nil {
                hello.selectedVersion = TLSProtocolVersion(rawValue: try data.readTLSUInt16("selected_version"))
            }
        }
        return hello
    }
}
