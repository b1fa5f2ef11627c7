import NIOCore
import Testing

@testable import SMTPProxy

/// The PROXY protocol decoder (haproxy.org proxy-protocol.txt §2.1, §2.2), fed whole and one
/// octet at a time.
@Suite struct ProxyProtocolParserTests {
    typealias Endpoint = ProxyProtocolHeader.Endpoint

    enum Outcome: Equatable {
        case header(ProxyProtocolHeader, rest: [UInt8])
        case needMore
        case failed(ProxyProtocolError)
    }

    /// All of `input` in one buffer.
    static func parseWhole(_ input: [UInt8], limits: ProxyProtocolParser.Limits = .init()) -> Outcome {
        var buffer = ByteBuffer(bytes: input)
        do {
            guard let header = try ProxyProtocolParser(limits: limits).parseHeader(from: &buffer) else { return .needMore }
            return .header(header, rest: Array(buffer.readableBytesView))
        } catch {
            return .failed(error)
        }
    }

    /// One octet at a time, as a slow peer sends it; stops at the first header or error.
    static func parseDripped(_ input: [UInt8], limits: ProxyProtocolParser.Limits = .init()) -> Outcome {
        var buffer = ByteBuffer()
        let parser = ProxyProtocolParser(limits: limits)
        for (index, octet) in input.enumerated() {
            buffer.writeInteger(octet)
            do {
                if let header = try parser.parseHeader(from: &buffer) {
                    return .header(header, rest: Array(buffer.readableBytesView) + input[(index + 1)...])
                }
            } catch {
                return .failed(error)
            }
        }
        return .needMore
    }

    static func expectSame(_ input: [UInt8], limits: ProxyProtocolParser.Limits = .init()) -> Outcome {
        let whole = parseWhole(input, limits: limits)
        #expect(parseDripped(input, limits: limits) == whole, "one octet at a time differs from whole")
        return whole
    }

    static func v2(command: UInt8 = 0x21, family: UInt8, payload: [UInt8], length: Int? = nil) -> [UInt8] {
        let count = length ?? payload.count
        return ProxyProtocolParser.v2Signature + [command, family, UInt8(count >> 8), UInt8(count & 0xFF)] + payload
    }

    static let smtp = Array("EHLO client.test\r\n".utf8)

    // MARK: Version 1

    @Test func v1TCP4NamesClientAndServerAndLeavesTheRest() {
        let line = Array("PROXY TCP4 192.0.2.10 198.51.100.5 51234 25\r\n".utf8)
        let outcome = Self.expectSame(line + Self.smtp)
        let expected = ProxyProtocolHeader(version: .v1, command: .proxy, addresses: .tcp(source: Endpoint(ip: "192.0.2.10", port: 51234), destination: Endpoint(ip: "198.51.100.5", port: 25)), length: line.count)
        #expect(outcome == .header(expected, rest: Self.smtp))
        if case .header(let header, _) = outcome {
            #expect(header.source == Endpoint(ip: "192.0.2.10", port: 51234))
            #expect(header.destination == Endpoint(ip: "198.51.100.5", port: 25))
        }
    }

    @Test func v1TCP6AddressesAreCanonical() {
        let line = Array("PROXY TCP6 2001:DB8:0:0:0:0:0:1 2001:db8::25 65535 587\r\n".utf8)
        guard case .header(let header, let rest) = Self.expectSame(line) else {
            Issue.record("no header")
            return
        }
        #expect(rest.isEmpty)
        #expect(header.source == Endpoint(ip: "2001:db8::1", port: 65535))
        #expect(header.destination == Endpoint(ip: "2001:db8::25", port: 587))
    }

    @Test func v1UnknownKeepsTheRealEndpoints() {
        for text in ["PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"] {
            guard case .header(let header, let rest) = Self.expectSame(Array(text.utf8) + Self.smtp) else {
                Issue.record("no header for \(text)")
                continue
            }
            #expect(header.addresses == .unknown)
            #expect(header.source == nil && header.destination == nil)
            #expect(rest == Self.smtp)
        }
    }

    @Test func v1OfTheLongestLengthIsAccepted() {
        // §2.1's worst case: TCP6 with two full-length addresses and 5-digit ports, 104 octets.
        let address = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        let line = Array("PROXY TCP6 \(address) \(address) 65535 65535\r\n".utf8)
        #expect(line.count == 104)
        guard case .header(let header, _) = Self.expectSame(line) else {
            Issue.record("no header")
            return
        }
        #expect(header.length == 104)
    }

    @Test func truncatedV1NeedsMoreOctets() {
        let line = Array("PROXY TCP4 192.0.2.10 198.51.100.5 51234 25\r\n".utf8)
        for cut in 1..<line.count {
            #expect(Self.parseWhole(Array(line[..<cut])) == .needMore, "cut at \(cut)")
        }
    }

    @Test(arguments: [
        ("PROXY TCP4 192.0.2.10 198.51.100.5 51234 25\n", "bare LF"),
        ("PROXY TCP4 192.0.2.10 198.51.100.5 70000 25\r\n", "port above 65535"),
        ("PROXY TCP4 192.0.2.10 198.51.100.5 -1 25\r\n", "negative port"),
        ("PROXY TCP4 192.0.2.10 198.51.100.5 123456 25\r\n", "six-digit port"),
        ("PROXY TCP4 192.0.2.10 198.51.100.5  25\r\n", "empty port"),
        ("PROXY TCP4 2001:db8::1 198.51.100.5 1 25\r\n", "IPv6 address under TCP4"),
        ("PROXY TCP6 192.0.2.10 2001:db8::1 1 25\r\n", "IPv4 address under TCP6"),
        ("PROXY TCP4 192.0.2.300 198.51.100.5 1 25\r\n", "octet above 255"),
        ("PROXY TCP4 mx.example 198.51.100.5 1 25\r\n", "host name"),
        ("PROXY TCP4  192.0.2.10 198.51.100.5 1 25\r\n", "double space"),
        ("PROXY TCP4 192.0.2.10 198.51.100.5 1 25 \r\n", "trailing space"),
        ("PROXY TCP4 192.0.2.10 198.51.100.5 1\r\n", "missing port"),
        ("PROXY TCP5 192.0.2.10 198.51.100.5 1 25\r\n", "unknown protocol"),
        ("PROXY \r\n", "no protocol"),
        ("PROXY TCP4 192.0.2.10\u{0} 198.51.100.5 1 25\r\n", "NUL"),
        ("PROXY TCP4 192.0.2.10\r198.51.100.5 1 25\r\n", "bare CR"),
    ])
    func malformedV1IsRefused(line: String, why: String) {
        guard case .failed(let error) = Self.expectSame(Array(line.utf8)) else {
            Issue.record("accepted: \(why)")
            return
        }
        guard case .malformedV1Header = error else {
            Issue.record("\(why): \(error)")
            return
        }
    }

    @Test func v1WithoutCRLFIn107OctetsIsOverlong() {
        let line = Array("PROXY UNKNOWN ".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 200)
        #expect(Self.expectSame(line) == .failed(.overlongV1Header))
        // 106 octets are still a header in progress; the 107th without LF ends it.
        #expect(Self.parseWhole(Array(line[..<106])) == .needMore)
        #expect(Self.parseWhole(Array(line[..<107])) == .failed(.overlongV1Header))
    }

    @Test(arguments: ["EHLO client.test\r\n", "GET / HTTP/1.1\r\n", "proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "PROXYTCP4\r\n", "\r\n\r\nQUIT\r\n", "\u{16}\u{3}\u{1}"])
    func anythingButASignatureIsRefusedAtOnce(text: String) {
        #expect(Self.expectSame(Array(text.utf8)) == .failed(.badSignature))
    }

    @Test func theFirstWrongOctetIsEnough() {
        // A client speaking SMTP first is refused before the proxy holds anything.
        #expect(Self.parseWhole(Array("PRE".utf8)) == .failed(.badSignature))
        #expect(Self.parseWhole(Array("PRO".utf8)) == .needMore)
        #expect(Self.parseWhole([]) == .needMore)
    }

    // MARK: Version 2

    static let inet: [UInt8] = [192, 0, 2, 10, 198, 51, 100, 5, 0xC8, 0x22, 0x00, 0x19]

    @Test func v2TCP4NamesClientAndServer() {
        let header = Self.v2(family: 0x11, payload: Self.inet)
        let outcome = Self.expectSame(header + Self.smtp)
        let expected = ProxyProtocolHeader(version: .v2, command: .proxy, addresses: .tcp(source: Endpoint(ip: "192.0.2.10", port: 51234), destination: Endpoint(ip: "198.51.100.5", port: 25)), length: 28)
        #expect(outcome == .header(expected, rest: Self.smtp))
    }

    @Test func v2TCP6NamesClientAndServer() {
        let source: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]
        let destination: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [0x25]
        let header = Self.v2(family: 0x21, payload: source + destination + [0x01, 0xBB, 0x02, 0x4B])
        guard case .header(let parsed, let rest) = Self.expectSame(header + Self.smtp) else {
            Issue.record("no header")
            return
        }
        #expect(rest == Self.smtp)
        #expect(parsed.source == Endpoint(ip: "2001:db8::1", port: 443))
        #expect(parsed.destination == Endpoint(ip: "2001:db8::25", port: 587))
    }

    @Test func v2TLVsAfterTheAddressesAreSkipped() {
        // PP2_TYPE_ALPN "smtp" and PP2_TYPE_NOOP with 3 octets (§2.2.1).
        let tlvs: [UInt8] = [0x01, 0x00, 0x04] + Array("smtp".utf8) + [0x04, 0x00, 0x03, 0, 0, 0]
        let header = Self.v2(family: 0x11, payload: Self.inet + tlvs)
        guard case .header(let parsed, let rest) = Self.expectSame(header + Self.smtp) else {
            Issue.record("no header")
            return
        }
        #expect(parsed.length == 16 + 12 + tlvs.count)
        #expect(parsed.source?.ip == "192.0.2.10")
        #expect(rest == Self.smtp)
    }

    @Test(arguments: [
        (UInt8(0x20), UInt8(0x00), [UInt8]()), // LOCAL, AF_UNSPEC: a health check
        (UInt8(0x20), UInt8(0x11), ProxyProtocolParserTests.inet), // LOCAL ignores a TCP4 block
        (UInt8(0x21), UInt8(0x00), [UInt8]()), // PROXY, AF_UNSPEC
        (UInt8(0x21), UInt8(0x12), ProxyProtocolParserTests.inet), // UDP over IPv4: not SMTP
        (UInt8(0x21), UInt8(0x31), [UInt8](repeating: 0, count: 216)), // AF_UNIX stream
    ])
    func v2WithoutATCPClientKeepsTheRealEndpoints(command: UInt8, family: UInt8, payload: [UInt8]) {
        guard case .header(let header, let rest) = Self.expectSame(Self.v2(command: command, family: family, payload: payload) + Self.smtp) else {
            Issue.record("no header")
            return
        }
        #expect(header.addresses == .unknown || command == 0x20)
        #expect(header.source == nil && header.destination == nil)
        #expect(header.command == (command == 0x20 ? .local : .proxy))
        #expect(rest == Self.smtp)
    }

    @Test func truncatedV2NeedsMoreOctets() {
        let header = Self.v2(family: 0x11, payload: Self.inet)
        for cut in 1..<header.count {
            #expect(Self.parseWhole(Array(header[..<cut])) == .needMore, "cut at \(cut)")
        }
    }

    @Test(arguments: [
        (ProxyProtocolParserTests.v2(command: 0x11, family: 0x11, payload: ProxyProtocolParserTests.inet), ProxyProtocolError.unsupportedVersion(1)),
        (ProxyProtocolParserTests.v2(command: 0x31, family: 0x11, payload: ProxyProtocolParserTests.inet), .unsupportedVersion(3)),
        (ProxyProtocolParserTests.v2(command: 0x22, family: 0x11, payload: ProxyProtocolParserTests.inet), .unknownCommand(2)),
        (ProxyProtocolParserTests.v2(command: 0x2F, family: 0x11, payload: ProxyProtocolParserTests.inet), .unknownCommand(15)),
        (ProxyProtocolParserTests.v2(family: 0x41, payload: ProxyProtocolParserTests.inet), .unknownFamily(0x41)),
        (ProxyProtocolParserTests.v2(family: 0x13, payload: ProxyProtocolParserTests.inet), .unknownFamily(0x13)),
        (ProxyProtocolParserTests.v2(family: 0x11, payload: Array(ProxyProtocolParserTests.inet[..<8])), .addressBlockTooShort(needed: 12, got: 8)),
        (ProxyProtocolParserTests.v2(family: 0x21, payload: ProxyProtocolParserTests.inet), .addressBlockTooShort(needed: 36, got: 12)),
        (ProxyProtocolParserTests.v2(family: 0x31, payload: ProxyProtocolParserTests.inet), .addressBlockTooShort(needed: 216, got: 12)),
    ])
    func malformedV2IsRefused(input: [UInt8], error: ProxyProtocolError) {
        #expect(Self.expectSame(input) == .failed(error))
    }

    @Test func v2LengthAboveTheLimitIsRefusedBeforeItsPayloadArrives() {
        // 0xFFFF announced, only the 16-octet fixed part sent: refused at once, nothing held.
        let fixed = Self.v2(family: 0x11, payload: [], length: 0xFFFF)
        #expect(Self.expectSame(fixed) == .failed(.v2HeaderTooLong(length: 0xFFFF, limit: 2048)))
        var limits = ProxyProtocolParser.Limits()
        limits.maxV2PayloadOctets = 12
        #expect(Self.expectSame(Self.v2(family: 0x11, payload: Self.inet + [0x04, 0x00, 0x00]), limits: limits) == .failed(.v2HeaderTooLong(length: 15, limit: 12)))
    }

    @Test func aDamagedV2SignatureIsRefused() {
        for index in ProxyProtocolParser.v2Signature.indices {
            var header = Self.v2(family: 0x11, payload: Self.inet)
            header[index] ^= 0x20
            #expect(Self.expectSame(header) == .failed(.badSignature), "octet \(index)")
        }
    }

    @Test func everyErrorSaysWhy() {
        let errors: [ProxyProtocolError] = [.badSignature, .overlongV1Header, .malformedV1Header("x"), .unsupportedVersion(1), .unknownCommand(2), .unknownFamily(0x41), .addressBlockTooShort(needed: 12, got: 8), .v2HeaderTooLong(length: 9, limit: 8)]
        for error in errors {
            #expect(error.description.contains("PROXY") || error.description.contains("proxy"))
        }
    }
}
