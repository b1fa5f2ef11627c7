import NIOCore

/// The fields of a ClientHello that a transcript reports (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2):
///
///     struct {
///         ProtocolVersion legacy_version = 0x0303;    /* TLS v1.2 */
///         Random random;
///         opaque legacy_session_id<0..32>;
///         CipherSuite cipher_suites<2..2^16-2>;
///         opaque legacy_compression_methods<1..2^8-1>;
///         Extension extensions<8..2^16-1>;
///     } ClientHello;
///
/// Hellos from before TLS 1.2 may end after the compression methods (RFC 5246 §7.4.1.2).
struct TLSClientHello: Sendable, Equatable {
    var legacyVersion: TLSProtocolVersion
    var cipherSuiteCount: Int
    /// `server_name` (RFC 6066 §3), `host_name` entry only.
    var serverName: String?
    /// `supported_versions` (RFC 8446 §4.2.1), GREASE values removed.
    var supportedVersions: [TLSProtocolVersion]
    /// `application_layer_protocol_negotiation` (RFC 7301 §3.1).
    var applicationProtocols: [String]

    /// Parses the body of a handshake message of type `client_hello`.
    static func parse(_ body: ByteBuffer) throws(TLSParseError) -> TLSClientHello {
        var body = body
        let legacyVersion = TLSProtocolVersion(rawValue: try body.readTLSUInt16("legacy_version"))
        _ = try body.readTLSBytes(32, "random")
        let sessionID = try body.readTLSVector8("legacy_session_id")
        guard sessionID.readableBytes <= 32 else {
            throw TLSParseError("legacy_session_id is longer than 32 bytes")
        }
        let cipherSuites = try body.readTLSVector16("cipher_suites")
        guard cipherSuites.readableBytes >= 2, cipherSuites.readableBytes % 2 == 0 else {
            throw TLSParseError("cipher_suites length \(cipherSuites.readableBytes) is not a positive even number")
        }
        let compressionMethods = try body.readTLSVector8("legacy_compression_methods")
        guard compressionMethods.readableBytes >= 1 else {
            throw TLSParseError("legacy_compression_methods is empty")
        }

        var hello = TLSClientHello(
            legacyVersion: legacyVersion,
            cipherSuiteCount: cipherSuites.readableBytes / 2,
            serverName: nil,
            supportedVersions: [],
            applicationProtocols: []
        )
        guard body.readableBytes > 0 else { return hello }

        var extensions = try body.readTLSVector16("extensions")
        var seen = Set<UInt16>()
        while extensions.readableBytes > 0 {
            let type = try extensions.readTLSUInt16("extension_type")
            let data = try extensions.readTLSVector16("extension_data")
            // RFC 8446 §4.2: a type appears at most once; the first one is the one read.
            guard seen.insert(type).inserted else { continue }
            switch type {
            case TLSExtensionType.serverName:
                hello.serverName = try parseServerName(data)
            case TLSExtensionType.supportedVersions:
                hello.supportedVersions = try parseSupportedVersions(data)
            case TLSExtensionType.applicationLayerProtocolNegotiation:
                hello.applicationProtocols = try parseApplicationProtocols(data)
            default:
                break
            }
        }
        return hello
    }

    ///     struct {
    ///         NameType name_type;
    ///         select (name_type) { case host_name: HostName; } name;
    ///     } ServerName;
    ///     enum { host_name(0), (255) } NameType;
    ///     opaque HostName<1..2^16-1>;
    ///     struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
    private static func parseServerName(_ data: ByteBuffer) throws(TLSParseError) -> String? {
        // An empty extension is what a server echoes (RFC 6066 §3); a client sends a list.
        guard data.readableBytes > 0 else { return nil }
        var data = data
        var list = try data.readTLSVector16("server_name_list")
        // Only host_name is defined, and an unknown type's length is unknowable, so only a leading
        // host_name entry is read.
        guard list.readableBytes > 0, try list.readTLSUInt8("name_type") == 0 else { return nil }
        let hostName = try list.readTLSVector16("HostName")
        return TLSPrintable.string(from: hostName, maximumLength: TLSObserverDefaults.maximumServerNameLength)
    }

    ///     struct { ProtocolVersion versions<2..254>; } SupportedVersions;   /* in a ClientHello */
    private static func parseSupportedVersions(_ data: ByteBuffer) throws(TLSParseError) -> [TLSProtocolVersion] {
        var data = data
        var list = try data.readTLSVector8("supported_versions")
        var versions: [TLSProtocolVersion] = []
        while list.readableBytes >= 2 {
            let version = TLSProtocolVersion(rawValue: try list.readTLSUInt16("ProtocolVersion"))
            if !version.isGREASE {
                versions.append(version)
            }
        }
        return versions
    }

    ///     opaque ProtocolName<1..2^8-1>;
    ///     struct { ProtocolName protocol_name_list<2..2^16-1> } ProtocolNameList;
    private static func parseApplicationProtocols(_ data: ByteBuffer) throws(TLSParseError) -> [String] {
        var data = data
        var list = try data.readTLSVector16("protocol_name_list")
        var names: [String] = []
        while list.readableBytes > 0, names.count < TLSObserverDefaults.maximumApplicationProtocols {
            let name = try list.readTLSVector8("ProtocolName")
            names.append(TLSPrintable.string(from: name, maximumLength: 255))
        }
        return names
    }
}

/// `ExtensionType` code points used here (IANA "TLS ExtensionType Values").
enum TLSExtensionType {
    static let serverName: UInt16 = 0
    static let applicationLayerProtocolNegotiation: UInt16 = 16
    static let supportedVersions: UInt16 = 43
}
