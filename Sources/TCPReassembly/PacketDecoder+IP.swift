extension PacketDecoder {
    static let protocolTCP: UInt8 = 6

    /// RFC 791 section 3.1. `offset` is where the IPv4 header starts; bytes after the total length
    /// (Ethernet padding) are ignored.
    static func decodeIPv4(_ bytes: PacketBytes, at offset: Int) -> Result<TCPSegment?, PacketDecodeError> {
        guard bytes.count - offset >= 20 else { return .failure(.truncatedIPHeader) }
        let versionAndIHL = bytes.u8(offset)
        guard versionAndIHL >> 4 == 4 else { return .failure(.invalidIPVersion) }
        let headerLength = Int(versionAndIHL & 0x0f) * 4
        guard headerLength >= 20 else { return .failure(.invalidIPHeaderLength) }
        var totalLength = Int(bytes.u16(offset + 2))
        if totalLength == 0 {
            // Segmentation offload: a host capturing its own outgoing super-segments records a
            // total length of 0. Wireshark assumes the captured length; do the same.
            totalLength = bytes.count - offset
        }
        guard totalLength >= 20 else { return .failure(.invalidIPLength) }
        guard headerLength <= totalLength else { return .failure(.invalidIPHeaderLength) }
        guard bytes.count - offset >= headerLength else { return .failure(.truncatedIPHeader) }
        guard bytes.count - offset >= totalLength else { return .failure(.truncatedIPPacket) }
        guard bytes.u8(offset + 9) == protocolTCP else { return .success(nil) }
        // flags(3) fragment offset(13): MF set or a non-zero offset is a fragment.
        guard bytes.u16(offset + 6) & 0x3fff == 0 else { return .failure(.ipv4Fragment) }
        let source = IPAddress(ipv4: bytes.u32(offset + 12))
        let destination = IPAddress(ipv4: bytes.u32(offset + 16))
        return decodeTCP(
            bytes,
            at: offset + headerLength,
            length: totalLength - headerLength,
            source: source,
            destination: destination
        )
    }

    /// RFC 8200 sections 3 and 4: the fixed header, then hop-by-hop, routing, destination options and
    /// authentication (RFC 4302) headers are skipped; a Fragment header skips the packet.
    static func decodeIPv6(_ bytes: PacketBytes, at offset: Int) -> Result<TCPSegment?, PacketDecodeError> {
        guard bytes.count - offset >= 40 else { return .failure(.truncatedIPHeader) }
        guard bytes.u8(offset) >> 4 == 6 else { return .failure(.invalidIPVersion) }
        let payloadLength = Int(bytes.u16(offset + 4))
        var nextHeader = bytes.u8(offset + 6)
        let end: Int
        if payloadLength == 0 {
            // A jumbogram (RFC 2675) or a segmentation-offload capture: take the captured length.
            end = bytes.count
        } else {
            end = offset + 40 + payloadLength
            guard end <= bytes.count else { return .failure(.truncatedIPPacket) }
        }
        let source = IPAddress(ipv6High: bytes.u64(offset + 8), low: bytes.u64(offset + 16))
        let destination = IPAddress(ipv6High: bytes.u64(offset + 24), low: bytes.u64(offset + 32))
        var cursor = offset + 40
        var extensionHeaders = 0
        while true {
            switch nextHeader {
            case protocolTCP:
                return decodeTCP(bytes, at: cursor, length: end - cursor, source: source, destination: destination)
            case 0, 43, 60, 51:
                // Hop-by-hop (0), routing (43), destination options (60): length in 8-octet units
                // not counting the first; authentication (51): in 4-octet units not counting two.
                extensionHeaders += 1
                guard extensionHeaders <= maxIPv6ExtensionHeaders, end - cursor >= 8 else {
                    return .failure(.invalidIPv6ExtensionHeader)
                }
                let lengthField = Int(bytes.u8(cursor + 1))
                let length = nextHeader == 51 ? (lengthField + 2) * 4 : (lengthField + 1) * 8
                guard end - cursor >= length else { return .failure(.invalidIPv6ExtensionHeader) }
                nextHeader = bytes.u8(cursor)
                cursor += length
            case 44:
                // Fragment header: next header(1) reserved(1) offset and flags(2) identification(4).
                guard end - cursor >= 8 else { return .failure(.invalidIPv6ExtensionHeader) }
                return bytes.u8(cursor) == protocolTCP ? .failure(.ipv6Fragment) : .success(nil)
            default:
                // No next header (59), UDP, ICMPv6, ...
                return .success(nil)
            }
        }
    }

    /// RFC 9293 section 3.1. `length` is the IP payload length, already checked against the capture.
    static func decodeTCP(
        _ bytes: PacketBytes,
        at offset: Int,
        length: Int,
        source: IPAddress,
        destination: IPAddress
    ) -> Result<TCPSegment?, PacketDecodeError> {
        guard length >= 20 else { return .failure(.truncatedTCPHeader) }
        let dataOffset = Int(bytes.u8(offset + 12) >> 4) * 4
        guard dataOffset >= 20, dataOffset <= length else { return .failure(.invalidTCPDataOffset) }
        let payloadRange = (offset + dataOffset)..<(offset + length)
        // Half the segments of a capture are bare ACKs: they share one empty buffer.
        var payload = emptyPayload
        if !payloadRange.isEmpty {
            payload = payloadAllocator.buffer(capacity: payloadRange.count)
            payload.writeBytes(UnsafeRawBufferPointer(rebasing: bytes.base[payloadRange]))
        }
        return .success(
            TCPSegment(
                source: TCPEndpoint(address: source, port: bytes.u16(offset)),
                destination: TCPEndpoint(address: destination, port: bytes.u16(offset + 2)),
                sequenceNumber: bytes.u32(offset + 4),
                acknowledgmentNumber: bytes.u32(offset + 8),
                flags: TCPFlags(rawValue: bytes.u8(offset + 13) & 0x1f),
                payload: payload
            )
        )
    }
}
