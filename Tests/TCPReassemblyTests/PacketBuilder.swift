import TCPReassembly

/// Builds wire-format packets for the tests, field by field (RFC 791, RFC 8200, RFC 9293, IEEE 802.3).
enum PacketBuilder {
    static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }

    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    static func tcp(
        sourcePort: UInt16 = 40000,
        destinationPort: UInt16 = 25,
        sequence: UInt32 = 1000,
        acknowledgment: UInt32 = 0,
        flags: TCPFlags = [.ack, .psh],
        options: [UInt8] = [],
        dataOffsetOverride: UInt8? = nil,
        payload: [UInt8] = []
    ) -> [UInt8] {
        precondition(options.count % 4 == 0)
        let dataOffset = dataOffsetOverride ?? UInt8(5 + options.count / 4)
        var bytes = be16(sourcePort) + be16(destinationPort) + be32(sequence) + be32(acknowledgment)
        bytes += [dataOffset << 4, flags.rawValue] + be16(65535) + [0, 0] + [0, 0]
        return bytes + options + payload
    }

    static func ipv4(
        source: UInt32 = 0x0a00_0001,
        destination: UInt32 = 0x0a00_0002,
        protocolNumber: UInt8 = 6,
        options: [UInt8] = [],
        flagsAndFragment: UInt16 = 0x4000,
        totalLengthOverride: UInt16? = nil,
        ihlOverride: UInt8? = nil,
        version: UInt8 = 4,
        payload: [UInt8]
    ) -> [UInt8] {
        precondition(options.count % 4 == 0)
        let ihl = ihlOverride ?? UInt8(5 + options.count / 4)
        let totalLength = totalLengthOverride ?? UInt16(20 + options.count + payload.count)
        var bytes: [UInt8] = [version << 4 | ihl, 0] + be16(totalLength) + [0x12, 0x34] + be16(flagsAndFragment)
        bytes += [64, protocolNumber, 0, 0] + be32(source) + be32(destination)
        return bytes + options + payload
    }

    static let ipv6Source: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
    static let ipv6Destination: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]

    /// `extensionHeaders` are (type, body) pairs; each body is padded to its unit with the length
    /// byte filled in.
    static func ipv6(
        nextHeader: UInt8 = 6,
        extensionHeaders: [(type: UInt8, body: [UInt8])] = [],
        payloadLengthOverride: UInt16? = nil,
        payload: [UInt8]
    ) -> [UInt8] {
        var chain: [UInt8] = []
        var firstNext = nextHeader
        if let first = extensionHeaders.first { firstNext = first.type }
        for (index, header) in extensionHeaders.enumerated() {
            let next = index + 1 < extensionHeaders.count ? extensionHeaders[index + 1].type : nextHeader
            var bytes = [next, 0] + header.body
            if header.type == 51 {
                while bytes.count % 4 != 0 || bytes.count < 8 { bytes.append(0) }
                bytes[1] = UInt8(bytes.count / 4 - 2)
            } else if header.type == 44 {
                bytes = Array(([next, 0] + header.body + [UInt8](repeating: 0, count: 6)).prefix(8))
            } else {
                while bytes.count % 8 != 0 { bytes.append(0) }
                bytes[1] = UInt8(bytes.count / 8 - 1)
            }
            chain += bytes
        }
        let payloadLength = payloadLengthOverride ?? UInt16(chain.count + payload.count)
        var bytes: [UInt8] = [0x60, 0, 0, 0] + be16(payloadLength) + [firstNext, 64]
        bytes += ipv6Source + ipv6Destination
        return bytes + chain + payload
    }

    static func ethernet(etherType: UInt16, vlanTags: [UInt16] = [], payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
        for (index, tpid) in vlanTags.enumerated() {
            bytes += be16(tpid) + be16(UInt16(100 + index))
        }
        return bytes + be16(etherType) + payload
    }

    static func loopback(family: UInt32, bigEndian: Bool, payload: [UInt8]) -> [UInt8] {
        (bigEndian ? be32(family) : be32(family).reversed()) + payload
    }

    static func linuxSLL(protocolType: UInt16, payload: [UInt8]) -> [UInt8] {
        [0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0] + be16(protocolType) + payload
    }

    static func linuxSLL2(protocolType: UInt16, payload: [UInt8]) -> [UInt8] {
        be16(protocolType) + [0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0] + payload
    }
}
