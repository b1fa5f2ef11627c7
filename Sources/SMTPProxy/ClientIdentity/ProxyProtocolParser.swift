import NIOCore

/// Why a PROXY protocol header was refused. The connection is closed without a greeting, as
/// Postfix's postscreen and smtpd do (`smtpd_upstream_proxy_protocol`).
public enum ProxyProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The first octets are neither `PROXY ` (v1) nor the v2 signature.
    case badSignature
    /// No CRLF within the 107 octets a v1 header may take (§2.1).
    case overlongV1Header
    /// A v1 line that does not follow §2.1's grammar.
    case malformedV1Header(String)
    /// The v2 version nibble is not 2 (§2.2).
    case unsupportedVersion(UInt8)
    /// The v2 command nibble is neither LOCAL nor PROXY (§2.2).
    case unknownCommand(UInt8)
    /// The v2 address family or transport nibble is not one §2.2 defines.
    case unknownFamily(UInt8)
    /// A v2 length too short for the address block its family needs (§2.2).
    case addressBlockTooShort(needed: Int, got: Int)
    /// A v2 length above `ProxyProtocolParser.Limits.maxV2PayloadOctets`.
    case v2HeaderTooLong(length: Int, limit: Int)

    public var description: String {
        switch self {
        case .badSignature: "no PROXY protocol signature (neither v1 \"PROXY \" nor the v2 signature)"
        case .overlongV1Header: "PROXY v1 header without CRLF in \(ProxyProtocolParser.maxV1Octets) octets"
        case .malformedV1Header(let why): "malformed PROXY v1 header: \(why)"
        case .unsupportedVersion(let version): "PROXY v2 header with version \(version)"
        case .unknownCommand(let command): "PROXY v2 header with unknown command \(command)"
        case .unknownFamily(let family): "PROXY v2 header with unknown address family/transport 0x\(String(family, radix: 16))"
        case .addressBlockTooShort(let needed, let got): "PROXY v2 address block of \(got) octets, the family needs \(needed)"
        case .v2HeaderTooLong(let length, let limit): "PROXY v2 header of \(length) octets after the fixed part, above the limit of \(limit)"
        }
    }
}

/// Decodes the HAProxy PROXY protocol header that precedes a relayed connection's own bytes
/// (haproxy.org proxy-protocol.txt: version 1 §2.1, version 2 §2.2).
///
/// Incremental and bounded: `parseHeader(from:)` looks at the readable octets without consuming
/// them until a whole header is there, returns nil when more are needed, and throws as soon as
/// the octets seen cannot begin a valid header. It never reads more than 107 octets for v1 or
/// `16 + limits.maxV2PayloadOctets` for v2.
public struct ProxyProtocolParser: Sendable {
    public struct Limits: Sendable, Hashable {
        /// Octets after v2's 16-octet fixed part: the address block plus TLVs. 216 octets cover
        /// the largest address block (AF_UNIX); the rest leaves room for HAProxy's TLVs (ALPN,
        /// authority, unique id, SSL) without letting a peer make the proxy hold 64 KB.
        public var maxV2PayloadOctets = 2048

        public init() {}
    }

    /// §2.1: "a receiver may ... [use] a 107-byte buffer": the longest v1 line, CRLF included.
    public static let maxV1Octets = 107
    /// §2.2: the 12 octets every v2 header starts with.
    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix: [UInt8] = Array("PROXY ".utf8)
    static let v2FixedOctets = 16

    public var limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// The header at the start of `buffer`, consumed; nil (nothing consumed) when more octets are
    /// needed.
    public func parseHeader(from buffer: inout ByteBuffer) throws(ProxyProtocolError) -> ProxyProtocolHeader? {
        let view = buffer.readableBytesView
        guard let first = view.first else { return nil }
        let header: ProxyProtocolHeader?
        if first == Self.v1Prefix[0] {
            header = try parseV1(view)
        } else if first == Self.v2Signature[0] {
            header = try parseV2(view)
        } else {
            throw .badSignature
        }
        if let header { buffer.moveReaderIndex(forwardBy: header.length) }
        return header
    }

    // MARK: Version 1

    // §2.1:  "PROXY" SP ( "TCP4" | "TCP6" ) SP src SP dst SP sport SP dport CRLF
    //      | "PROXY" SP "UNKNOWN" [ anything up to CRLF ] CRLF
    private func parseV1(_ view: ByteBufferView) throws(ProxyProtocolError) -> ProxyProtocolHeader? {
        try Self.expectPrefix(Self.v1Prefix, of: view)
        guard view.count >= Self.v1Prefix.count else { return nil }
        let start = view.startIndex
        let searchEnd = view.index(start, offsetBy: min(view.count, Self.maxV1Octets))
        guard let lf = view[start..<searchEnd].firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count >= Self.maxV1Octets { throw .overlongV1Header }
            return nil
        }
        let cr = view.index(before: lf)
        guard view[cr] == UInt8(ascii: "\r") else { throw .malformedV1Header("line ends in a bare LF") }
        let line = view[view.index(start, offsetBy: Self.v1Prefix.count)..<cr]
        for octet in line where octet < 0x20 || octet > 0x7E {
            throw .malformedV1Header("octet 0x\(String(octet, radix: 16)) in the line")
        }
        let length = view.distance(from: start, to: lf) + 1
        let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        let proto = fields.first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        switch proto {
        case "UNKNOWN":
            // §2.1: the receiver must ignore anything after UNKNOWN.
            return ProxyProtocolHeader(version: .v1, command: .proxy, addresses: .unknown, length: length)
        case "TCP4", "TCP6":
            guard fields.count == 5 else {
                throw .malformedV1Header("\(proto) needs source, destination and two ports, got \(fields.count - 1) fields")
            }
            let family: NIOBSDSocket.ProtocolFamily = proto == "TCP4" ? .inet : .inet6
            let source = try Self.v1Endpoint(address: fields[1], port: fields[3], family: family)
            let destination = try Self.v1Endpoint(address: fields[2], port: fields[4], family: family)
            return ProxyProtocolHeader(version: .v1, command: .proxy, addresses: .tcp(source: source, destination: destination), length: length)
        default:
            throw .malformedV1Header("unknown protocol \"\(proto.prefix(8))\"")
        }
    }

    private static func v1Endpoint(address: ByteBufferView.SubSequence, port: ByteBufferView.SubSequence, family: NIOBSDSocket.ProtocolFamily) throws(ProxyProtocolError) -> ProxyProtocolHeader.Endpoint {
        // §2.1: ports are 1 to 5 decimal digits, 0 to 65535.
        guard (1...5).contains(port.count), port.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            throw .malformedV1Header("port \"\(String(decoding: port, as: UTF8.self))\" is not a number")
        }
        let number = port.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        guard number <= 65535 else { throw .malformedV1Header("port \(number) above 65535") }
        let text = String(decoding: address, as: UTF8.self)
        guard !text.isEmpty, let parsed = try? SocketAddress(ipAddress: text, port: number), parsed.protocol == family, let ip = parsed.ipAddress else {
            throw .malformedV1Header("\"\(text)\" is not an \(family == .inet ? "IPv4" : "IPv6") address")
        }
        return ProxyProtocolHeader.Endpoint(ip: ip, port: number)
    }

    // MARK: Version 2

    // §2.2: signature (12) | ver_cmd (1) | fam (1) | len (2, network order) | addresses | TLVs
    private func parseV2(_ view: ByteBufferView) throws(ProxyProtocolError) -> ProxyProtocolHeader? {
        try Self.expectPrefix(Self.v2Signature, of: view)
        guard view.count >= Self.v2FixedOctets else { return nil }
        let octet = { (offset: Int) -> UInt8 in view[view.index(view.startIndex, offsetBy: offset)] }
        let versionAndCommand = octet(12)
        guard versionAndCommand >> 4 == 2 else { throw .unsupportedVersion(versionAndCommand >> 4) }
        let command: ProxyProtocolHeader.Command
        switch versionAndCommand & 0x0F {
        case 0: command = .local
        case 1: command = .proxy
        default: throw .unknownCommand(versionAndCommand & 0x0F)
        }
        let familyAndTransport = octet(13)
        let family = familyAndTransport >> 4
        let transport = familyAndTransport & 0x0F
        guard family <= 3, transport <= 2 else { throw .unknownFamily(familyAndTransport) }
        let payload = Int(octet(14)) << 8 | Int(octet(15))
        guard payload <= limits.maxV2PayloadOctets else { throw .v2HeaderTooLong(length: payload, limit: limits.maxV2PayloadOctets) }
        guard view.count >= Self.v2FixedOctets + payload else { return nil }
        let length = Self.v2FixedOctets + payload
        // §2.2: AF_INET 12 octets, AF_INET6 36, AF_UNIX 216; a LOCAL header's block is ignored.
        let needed = [0, 12, 36, 216][Int(family)]
        guard command == .local || payload >= needed else { throw .addressBlockTooShort(needed: needed, got: payload) }
        guard command == .proxy, transport == 1, family == 1 || family == 2 else {
            return ProxyProtocolHeader(version: .v2, command: command, addresses: .unknown, length: length)
        }
        let addressOctets = family == 1 ? 4 : 16
        let block = Array(view.dropFirst(Self.v2FixedOctets).prefix(needed))
        let sourcePort = Int(block[2 * addressOctets]) << 8 | Int(block[2 * addressOctets + 1])
        let destinationPort = Int(block[2 * addressOctets + 2]) << 8 | Int(block[2 * addressOctets + 3])
        let source = Self.endpoint(block[0..<addressOctets], port: sourcePort)
        let destination = Self.endpoint(block[addressOctets..<(2 * addressOctets)], port: destinationPort)
        return ProxyProtocolHeader(version: .v2, command: .proxy, addresses: .tcp(source: source, destination: destination), length: length)
    }

    private static func endpoint(_ packed: ArraySlice<UInt8>, port: Int) -> ProxyProtocolHeader.Endpoint {
        if packed.count == 4 {
            return ProxyProtocolHeader.Endpoint(ip: packed.map(String.init).joined(separator: "."), port: port)
        }
        // RFC 5952 text through inet_ntop; 16 octets always form an IPv6 address.
        let ip = (try? SocketAddress(packedIPAddress: ByteBuffer(bytes: packed), port: port))?.ipAddress
        return ProxyProtocolHeader.Endpoint(ip: ip ?? "::", port: port)
    }

    /// Throws as soon as the octets seen so far differ from `prefix`.
    private static func expectPrefix(_ prefix: [UInt8], of view: ByteBufferView) throws(ProxyProtocolError) {
        for (expected, actual) in zip(prefix, view) where expected != actual {
            throw .badSignature
        }
    }
}
