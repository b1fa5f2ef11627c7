import NIOCore
import Testing
import TCPReassembly

private typealias P = PacketBuilder

/// What a decoding case must produce.
enum ExpectedDecode: Sendable, CustomStringConvertible {
    case segment(sourcePort: UInt16, destinationPort: UInt16, payload: [UInt8])
    case notTCP
    case error(PacketDecodeError)

    var description: String {
        switch self {
        case .segment(let source, let destination, let payload): "segment \(source)->\(destination) \(payload.count)B"
        case .notTCP: "not TCP"
        case .error(let error): "error \(error)"
        }
    }
}

struct DecodeCase: Sendable, CustomTestStringConvertible {
    let name: String
    let linkType: Int32
    let packet: [UInt8]
    let expected: ExpectedDecode

    var testDescription: String { name }
}

private let hello = Array("EHLO x\r\n".utf8)
private let tcpHello = P.tcp(payload: hello)
private let ipv4Hello = P.ipv4(payload: tcpHello)
private let ipv6Hello = P.ipv6(payload: tcpHello)
private let ok = ExpectedDecode.segment(sourcePort: 40000, destinationPort: 25, payload: hello)

private let decodeCases: [DecodeCase] = [
    // Link types.
    DecodeCase(name: "Ethernet IPv4", linkType: 1, packet: P.ethernet(etherType: 0x0800, payload: ipv4Hello), expected: ok),
    DecodeCase(name: "Ethernet IPv6", linkType: 1, packet: P.ethernet(etherType: 0x86dd, payload: ipv6Hello), expected: ok),
    DecodeCase(
        name: "Ethernet padding after the IP packet is ignored",
        linkType: 1,
        packet: P.ethernet(etherType: 0x0800, payload: P.ipv4(payload: P.tcp())) + [0, 0, 0, 0, 0, 0],
        expected: .segment(sourcePort: 40000, destinationPort: 25, payload: [])
    ),
    DecodeCase(name: "802.1Q", linkType: 1, packet: P.ethernet(etherType: 0x0800, vlanTags: [0x8100], payload: ipv4Hello), expected: ok),
    DecodeCase(name: "QinQ 88a8+8100", linkType: 1, packet: P.ethernet(etherType: 0x86dd, vlanTags: [0x88a8, 0x8100], payload: ipv6Hello), expected: ok),
    DecodeCase(name: "QinQ 9100+8100", linkType: 1, packet: P.ethernet(etherType: 0x0800, vlanTags: [0x9100, 0x8100], payload: ipv4Hello), expected: ok),
    DecodeCase(
        name: "nine VLAN tags",
        linkType: 1,
        packet: P.ethernet(etherType: 0x0800, vlanTags: [UInt16](repeating: 0x8100, count: 9), payload: ipv4Hello),
        expected: .error(.tooManyVLANTags)
    ),
    DecodeCase(name: "ARP", linkType: 1, packet: P.ethernet(etherType: 0x0806, payload: [UInt8](repeating: 0, count: 28)), expected: .notTCP),
    DecodeCase(name: "NULL little-endian AF_INET", linkType: 0, packet: P.loopback(family: 2, bigEndian: false, payload: ipv4Hello), expected: ok),
    DecodeCase(name: "NULL big-endian AF_INET", linkType: 0, packet: P.loopback(family: 2, bigEndian: true, payload: ipv4Hello), expected: ok),
    DecodeCase(name: "NULL AF_INET6 NetBSD/OpenBSD 24", linkType: 0, packet: P.loopback(family: 24, bigEndian: false, payload: ipv6Hello), expected: ok),
    DecodeCase(name: "NULL AF_INET6 FreeBSD 28", linkType: 0, packet: P.loopback(family: 28, bigEndian: true, payload: ipv6Hello), expected: ok),
    DecodeCase(name: "NULL AF_INET6 Darwin 30", linkType: 0, packet: P.loopback(family: 30, bigEndian: false, payload: ipv6Hello), expected: ok),
    DecodeCase(name: "LOOP AF_INET", linkType: 108, packet: P.loopback(family: 2, bigEndian: true, payload: ipv4Hello), expected: ok),
    DecodeCase(name: "LOOP AF_INET6 Darwin 30", linkType: 108, packet: P.loopback(family: 30, bigEndian: true, payload: ipv6Hello), expected: ok),
    DecodeCase(name: "NULL unknown family", linkType: 0, packet: P.loopback(family: 7, bigEndian: false, payload: ipv4Hello), expected: .notTCP),
    DecodeCase(name: "NULL cut inside the family", linkType: 0, packet: [2, 0], expected: .error(.truncatedLinkHeader)),
    DecodeCase(name: "RAW 101 IPv4", linkType: 101, packet: ipv4Hello, expected: ok),
    DecodeCase(name: "RAW 101 IPv6", linkType: 101, packet: ipv6Hello, expected: ok),
    DecodeCase(name: "DLT_RAW 12", linkType: 12, packet: ipv4Hello, expected: ok),
    DecodeCase(name: "DLT_RAW 14", linkType: 14, packet: ipv6Hello, expected: ok),
    DecodeCase(name: "RAW with version 5", linkType: 101, packet: [0x50] + ipv4Hello.dropFirst(), expected: .error(.invalidIPVersion)),
    DecodeCase(name: "RAW empty", linkType: 101, packet: [], expected: .error(.truncatedIPHeader)),
    DecodeCase(name: "IPV4 228", linkType: 228, packet: ipv4Hello, expected: ok),
    DecodeCase(name: "IPV4 228 holding IPv6", linkType: 228, packet: ipv6Hello, expected: .error(.invalidIPVersion)),
    DecodeCase(name: "IPV6 229", linkType: 229, packet: ipv6Hello, expected: ok),
    DecodeCase(name: "IPV6 229 holding IPv4", linkType: 229, packet: ipv4Hello + [UInt8](repeating: 0, count: 40), expected: .error(.invalidIPVersion)),
    DecodeCase(name: "Linux SLL IPv4", linkType: 113, packet: P.linuxSLL(protocolType: 0x0800, payload: ipv4Hello), expected: ok),
    DecodeCase(name: "Linux SLL IPv6", linkType: 113, packet: P.linuxSLL(protocolType: 0x86dd, payload: ipv6Hello), expected: ok),
    DecodeCase(name: "Linux SLL with a VLAN tag", linkType: 113, packet: P.linuxSLL(protocolType: 0x8100, payload: [0, 7, 0x08, 0x00] + ipv4Hello), expected: ok),
    DecodeCase(name: "Linux SLL short", linkType: 113, packet: Array(P.linuxSLL(protocolType: 0x0800, payload: []).prefix(15)), expected: .error(.truncatedLinkHeader)),
    DecodeCase(name: "Linux SLL2 IPv4", linkType: 276, packet: P.linuxSLL2(protocolType: 0x0800, payload: ipv4Hello), expected: ok),
    DecodeCase(name: "Linux SLL2 IPv6", linkType: 276, packet: P.linuxSLL2(protocolType: 0x86dd, payload: ipv6Hello), expected: ok),
    DecodeCase(name: "Linux SLL2 short", linkType: 276, packet: [0x08, 0x00, 0, 0], expected: .error(.truncatedLinkHeader)),
    DecodeCase(name: "unsupported link type", linkType: 105, packet: ipv4Hello, expected: .error(.unsupportedLinkType)),
    DecodeCase(name: "Ethernet shorter than its header", linkType: 1, packet: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 8], expected: .error(.truncatedLinkHeader)),
    DecodeCase(
        name: "VLAN tag cut short",
        linkType: 1,
        packet: Array(P.ethernet(etherType: 0x0800, vlanTags: [0x8100], payload: []).prefix(16)),
        expected: .error(.truncatedLinkHeader)
    ),

    // IPv4.
    DecodeCase(name: "IPv4 with options", linkType: 101, packet: P.ipv4(options: [0x94, 0x04, 0, 0, 0x01, 0x01, 0x01, 0x00], payload: tcpHello), expected: ok),
    DecodeCase(name: "IPv4 UDP", linkType: 101, packet: P.ipv4(protocolNumber: 17, payload: [0, 53, 0, 53, 0, 8, 0, 0]), expected: .notTCP),
    DecodeCase(name: "IPv4 IHL 4", linkType: 101, packet: P.ipv4(ihlOverride: 4, payload: tcpHello), expected: .error(.invalidIPHeaderLength)),
    DecodeCase(name: "IPv4 IHL past total length", linkType: 101, packet: P.ipv4(totalLengthOverride: 24, ihlOverride: 15, payload: tcpHello), expected: .error(.invalidIPHeaderLength)),
    DecodeCase(name: "IPv4 total length below 20", linkType: 101, packet: P.ipv4(totalLengthOverride: 19, payload: tcpHello), expected: .error(.invalidIPLength)),
    DecodeCase(name: "IPv4 total length past the capture", linkType: 101, packet: P.ipv4(totalLengthOverride: 1500, payload: tcpHello), expected: .error(.truncatedIPPacket)),
    DecodeCase(name: "IPv4 header cut short", linkType: 101, packet: Array(ipv4Hello.prefix(19)), expected: .error(.truncatedIPHeader)),
    DecodeCase(name: "IPv4 options cut short", linkType: 101, packet: Array(P.ipv4(options: [1, 1, 1, 1, 1, 1, 1, 1], payload: []).prefix(24)), expected: .error(.truncatedIPHeader)),
    DecodeCase(name: "IPv4 first fragment (MF)", linkType: 101, packet: P.ipv4(flagsAndFragment: 0x2000, payload: tcpHello), expected: .error(.ipv4Fragment)),
    DecodeCase(name: "IPv4 later fragment", linkType: 101, packet: P.ipv4(flagsAndFragment: 0x00b9, payload: tcpHello), expected: .error(.ipv4Fragment)),
    DecodeCase(name: "IPv4 UDP fragment is simply not TCP", linkType: 101, packet: P.ipv4(protocolNumber: 17, flagsAndFragment: 0x2000, payload: [1, 2, 3, 4]), expected: .notTCP),
    DecodeCase(
        name: "IPv4 total length 0 (segmentation offload) uses the captured length",
        linkType: 101,
        packet: P.ipv4(totalLengthOverride: 0, payload: tcpHello),
        expected: ok
    ),

    // IPv6.
    DecodeCase(
        name: "IPv6 hop-by-hop, routing, destination options",
        linkType: 229,
        packet: P.ipv6(extensionHeaders: [(0, [1, 4, 0, 0, 0, 0]), (43, [0, 0, 0, 0, 0, 0]), (60, [1, 4, 0, 0, 0, 0, 0, 0, 0, 0])], payload: tcpHello),
        expected: ok
    ),
    DecodeCase(name: "IPv6 authentication header", linkType: 229, packet: P.ipv6(extensionHeaders: [(51, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0])], payload: tcpHello), expected: ok),
    DecodeCase(name: "IPv6 fragment of TCP", linkType: 229, packet: P.ipv6(extensionHeaders: [(44, [0, 1, 0, 0, 0, 9])], payload: tcpHello), expected: .error(.ipv6Fragment)),
    DecodeCase(name: "IPv6 fragment of UDP", linkType: 229, packet: P.ipv6(nextHeader: 17, extensionHeaders: [(44, [0, 1, 0, 0, 0, 9])], payload: [1, 2, 3, 4, 5, 6, 7, 8]), expected: .notTCP),
    DecodeCase(name: "IPv6 no next header", linkType: 229, packet: P.ipv6(nextHeader: 59, payload: []), expected: .notTCP),
    DecodeCase(name: "IPv6 ICMPv6", linkType: 229, packet: P.ipv6(nextHeader: 58, payload: [128, 0, 0, 0]), expected: .notTCP),
    DecodeCase(
        name: "IPv6 nine extension headers",
        linkType: 229,
        packet: P.ipv6(extensionHeaders: [(type: UInt8, body: [UInt8])](repeating: (60, [0, 0, 0, 0, 0, 0]), count: 9), payload: tcpHello),
        expected: .error(.invalidIPv6ExtensionHeader)
    ),
    DecodeCase(
        name: "IPv6 extension header longer than the packet",
        linkType: 229,
        packet: { var p = P.ipv6(extensionHeaders: [(60, [0, 0, 0, 0, 0, 0])], payload: tcpHello); p[41] = 200; return p }(),
        expected: .error(.invalidIPv6ExtensionHeader)
    ),
    DecodeCase(name: "IPv6 payload length past the capture", linkType: 229, packet: P.ipv6(payloadLengthOverride: 1000, payload: tcpHello), expected: .error(.truncatedIPPacket)),
    DecodeCase(name: "IPv6 header cut short", linkType: 229, packet: Array(ipv6Hello.prefix(39)), expected: .error(.truncatedIPHeader)),

    // TCP.
    DecodeCase(name: "TCP with options", linkType: 101, packet: P.ipv4(payload: P.tcp(options: [2, 4, 5, 0xb4, 1, 1, 4, 2], payload: hello)), expected: ok),
    DecodeCase(name: "TCP header cut short", linkType: 101, packet: P.ipv4(payload: Array(tcpHello.prefix(19))), expected: .error(.truncatedTCPHeader)),
    DecodeCase(name: "TCP data offset 4", linkType: 101, packet: P.ipv4(payload: P.tcp(dataOffsetOverride: 4, payload: hello)), expected: .error(.invalidTCPDataOffset)),
    DecodeCase(name: "TCP data offset past the segment", linkType: 101, packet: P.ipv4(payload: P.tcp(dataOffsetOverride: 15)), expected: .error(.invalidTCPDataOffset)),
    DecodeCase(name: "TCP cut by the snapshot length", linkType: 1, packet: Array(P.ethernet(etherType: 0x0800, payload: ipv4Hello).dropLast(3)), expected: .error(.truncatedIPPacket)),
]

struct PacketDecoderTests {
    @Test(arguments: decodeCases)
    func decodesEachEncapsulation(_ testCase: DecodeCase) {
        let result = testCase.packet.withUnsafeBytes { PacketDecoder.decode(linkType: testCase.linkType, packet: $0) }
        switch (testCase.expected, result) {
        case (.segment(let sourcePort, let destinationPort, let payload), .success(.some(let segment))):
            #expect(segment.source.port == sourcePort)
            #expect(segment.destination.port == destinationPort)
            #expect(Array(segment.payload.readableBytesView) == payload)
        case (.notTCP, .success(.none)):
            break
        case (.error(let expected), .failure(let error)):
            #expect(error == expected)
        default:
            Issue.record("expected \(testCase.expected), got \(result)")
        }
    }

    @Test func decodesEveryTCPHeaderField() throws {
        let packet = P.ipv4(
            source: 0xc000_0201,
            destination: 0xc633_6407,
            payload: P.tcp(sourcePort: 1470, destinationPort: 25, sequence: 0xdead_beef, acknowledgment: 0x0102_0304, flags: [.syn, .ack], payload: [0x41])
        )
        let segment = try #require(try packet.withUnsafeBytes { PacketDecoder.decode(linkType: 12, packet: $0) }.get())
        #expect(segment.source == TCPEndpoint(address: IPAddress(192, 0, 2, 1), port: 1470))
        #expect(segment.destination == TCPEndpoint(address: IPAddress(198, 51, 100, 7), port: 25))
        #expect(segment.sequenceNumber == 0xdead_beef)
        #expect(segment.acknowledgmentNumber == 0x0102_0304)
        #expect(segment.flags == [.syn, .ack])
        #expect(segment.payload == ByteBuffer(bytes: [0x41]))
    }

    @Test func decodesIPv6Addresses() throws {
        let segment = try #require(try ipv6Hello.withUnsafeBytes { PacketDecoder.decode(linkType: 229, packet: $0) }.get())
        #expect(segment.source.address.description == "2001:db8::1")
        #expect(segment.destination.address.description == "2001:db8::2")
    }

    @Test func everyPrefixOfAPacketDecodesWithoutCrashing() {
        let packets: [(Int32, [UInt8])] = [
            (1, P.ethernet(etherType: 0x86dd, vlanTags: [0x88a8, 0x8100], payload: P.ipv6(extensionHeaders: [(0, [1, 4, 0, 0, 0, 0])], payload: tcpHello))),
            (1, P.ethernet(etherType: 0x0800, payload: P.ipv4(options: [1, 1, 1, 1], payload: P.tcp(options: [1, 1, 1, 1], payload: hello)))),
            (0, P.loopback(family: 30, bigEndian: false, payload: ipv6Hello)),
            (276, P.linuxSLL2(protocolType: 0x0800, payload: ipv4Hello)),
        ]
        for (linkType, packet) in packets {
            for length in 0..<packet.count {
                let result = packet.prefix(length).withUnsafeBytes { PacketDecoder.decode(linkType: linkType, packet: $0) }
                guard case .failure(let error) = result else {
                    Issue.record("prefix \(length) of a link type \(linkType) packet decoded as \(result)")
                    continue
                }
                #expect(error.isDamage)
            }
        }
    }

    @Test func garbageNeverCrashes() {
        var generator = SplitMix64(seed: 42)
        var statistics = PacketDecodeStatistics()
        for _ in 0..<20_000 {
            let length = Int(generator.next() % 120)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if length > 0, generator.next() % 2 == 0 { bytes[0] = 0x45 }
            for linkType in [LinkType.ethernet, LinkType.raw, LinkType.null, LinkType.linuxSLL2] {
                statistics.record(bytes.withUnsafeBytes { PacketDecoder.decode(linkType: linkType, packet: $0) })
            }
        }
        #expect(statistics.total == 80_000)
    }

    @Test func statisticsCountByReason() {
        var statistics = PacketDecodeStatistics()
        for packet in [ipv4Hello, P.ipv4(flagsAndFragment: 0x2000, payload: tcpHello), Array(ipv4Hello.prefix(10)), P.ipv4(protocolNumber: 17, payload: [])] {
            statistics.record(packet.withUnsafeBytes { PacketDecoder.decode(linkType: 101, packet: $0) })
        }
        #expect(statistics.tcpSegments == 1)
        #expect(statistics.notTCP == 1)
        #expect(statistics.skipped == [.ipv4Fragment: 1, .truncatedIPHeader: 1])
        #expect(statistics.damaged == 1)
        #expect(statistics.total == 4)
    }
}

/// A small deterministic generator so garbage tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
