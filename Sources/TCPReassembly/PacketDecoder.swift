import NIOCore

/// Decodes one captured packet down to its TCP segment: link layer, IPv4 (RFC 791) or IPv6
/// (RFC 8200), then TCP (RFC 9293 section 3.1).
///
/// Every length field is checked against the others and against the captured bytes, so a damaged or
/// truncated packet yields a `PacketDecodeError` rather than a wrong segment. Checksums are not
/// verified: captures taken on the sending host carry unfinished checksums (offload), and other
/// tools read such captures the same way (Zeek `-C`, Wireshark's default).
public enum PacketDecoder {
    /// Stacked VLAN tags accepted in front of the IP header; QinQ needs two.
    public static let maxVLANTags = 8
    /// IPv6 extension headers followed before giving up on a packet.
    public static let maxIPv6ExtensionHeaders = 8

    static let payloadAllocator = ByteBufferAllocator()
    static let emptyPayload = payloadAllocator.buffer(capacity: 0)

    /// Decodes `packet`, the captured bytes of one packet of the given link type.
    ///
    /// - Returns: the TCP segment, `nil` for a well-formed packet that is not TCP over IP, or why the
    ///   packet was skipped. The payload is copied once into a buffer of its own.
    public static func decode(
        linkType: Int32,
        packet: UnsafeRawBufferPointer
    ) -> Result<TCPSegment?, PacketDecodeError> {
        let bytes = PacketBytes(packet)
        switch linkType {
        case LinkType.ethernet:
            return decodeEthernet(bytes)
        case LinkType.null, LinkType.loop:
            return decodeLoopback(bytes)
        case LinkType.raw, LinkType.rawDLT12, LinkType.rawDLT14:
            return decodeIP(bytes, at: 0)
        case LinkType.ipv4:
            return decodeIPv4(bytes, at: 0)
        case LinkType.ipv6:
            return decodeIPv6(bytes, at: 0)
        case LinkType.linuxSLL:
            // packet type(2) ARPHRD type(2) address length(2) address(8) protocol(2)
            guard bytes.count >= 16 else { return .failure(.truncatedLinkHeader) }
            return decodeEtherType(bytes.u16(14), bytes, at: 16)
        case LinkType.linuxSLL2:
            // protocol(2) reserved(2) interface index(4) ARPHRD type(2) packet type(1)
            // address length(1) address(8)
            guard bytes.count >= 20 else { return .failure(.truncatedLinkHeader) }
            return decodeEtherType(bytes.u16(0), bytes, at: 20)
        default:
            return .failure(.unsupportedLinkType)
        }
    }

    // IEEE 802.3 clause 3: destination(6) source(6) EtherType(2).
    private static func decodeEthernet(_ bytes: PacketBytes) -> Result<TCPSegment?, PacketDecodeError> {
        guard bytes.count >= 14 else { return .failure(.truncatedLinkHeader) }
        return decodeEtherType(bytes.u16(12), bytes, at: 14)
    }

    /// Follows 802.1Q (0x8100), 802.1ad (0x88a8) and the pre-standard QinQ 0x9100 tags to the
    /// EtherType that names the payload.
    private static func decodeEtherType(
        _ firstEtherType: UInt16,
        _ bytes: PacketBytes,
        at start: Int
    ) -> Result<TCPSegment?, PacketDecodeError> {
        var etherType = firstEtherType
        var offset = start
        var tags = 0
        while etherType == 0x8100 || etherType == 0x88a8 || etherType == 0x9100 {
            tags += 1
            guard tags <= maxVLANTags else { return .failure(.tooManyVLANTags) }
            // tag control information(2) EtherType(2)
            guard bytes.count >= offset + 4 else { return .failure(.truncatedLinkHeader) }
            etherType = bytes.u16(offset + 2)
            offset += 4
        }
        switch etherType {
        case 0x0800: return decodeIPv4(bytes, at: offset)
        case 0x86dd: return decodeIPv6(bytes, at: offset)
        default: return .success(nil)
        }
    }

    /// BSD loopback (DLT_NULL) and OpenBSD DLT_LOOP: a 4-byte address family. DLT_NULL writes it in
    /// the capturing host's byte order, so both orders are accepted; the family values are small, so
    /// the order shows in which half is zero.
    private static func decodeLoopback(_ bytes: PacketBytes) -> Result<TCPSegment?, PacketDecodeError> {
        guard bytes.count >= 4 else { return .failure(.truncatedLinkHeader) }
        let family = bytes.u16(0) == 0 ? bytes.u32(0) : bytes.u32(0).byteSwapped
        switch family {
        case 2:
            return decodeIPv4(bytes, at: 4)
        case 10, 24, 28, 30:
            // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, Darwin.
            return decodeIPv6(bytes, at: 4)
        default:
            return .success(nil)
        }
    }

    private static func decodeIP(_ bytes: PacketBytes, at offset: Int) -> Result<TCPSegment?, PacketDecodeError> {
        guard bytes.count > offset else { return .failure(.truncatedIPHeader) }
        switch bytes.u8(offset) >> 4 {
        case 4: return decodeIPv4(bytes, at: offset)
        case 6: return decodeIPv6(bytes, at: offset)
        default: return .failure(.invalidIPVersion)
        }
    }
}

/// Bounds-checked-by-caller big-endian reads from the captured bytes.
struct PacketBytes {
    let base: UnsafeRawBufferPointer

    init(_ base: UnsafeRawBufferPointer) {
        self.base = base
    }

    var count: Int { base.count }

    func u8(_ offset: Int) -> UInt8 {
        base[offset]
    }

    func u16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    func u32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func u64(_ offset: Int) -> UInt64 {
        UInt64(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}
