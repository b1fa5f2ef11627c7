import Testing
import TCPReassembly

struct IPAddressTests {
    @Test(arguments: [
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], "2001:db8::1"),
        ([0, 0, 0, 0, 0, 0, 0, 1], "::1"),
        ([0, 0, 0, 0, 0, 0, 0, 0], "::"),
        ([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1], "2001:db8:0:1:1:1:1:1"),  // RFC 5952 4.2.2: no :: for one group
        ([0x2001, 0, 0, 1, 0, 0, 0, 1], "2001:0:0:1::1"),  // 4.2.3: the longest run
        ([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], "2001:db8::1:0:0:1"),  // 4.2.3: the first of equal runs
        ([0x2001, 0xDB8, 0xABCD, 0, 0, 0, 0, 0x0ff0], "2001:db8:abcd::ff0"),  // 4.3: lower case, no leading 0
        ([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201], "::ffff:192.0.2.1"),  // 5: IPv4-mapped
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], "fe80::"),
    ] as [([UInt16], String)])
    func ipv6TextFollowsRFC5952(groups: [UInt16], text: String) {
        #expect(IPAddress(ipv6Groups: groups).description == text)
    }

    @Test func ipv4TextIsDottedQuad() {
        #expect(IPAddress(192, 0, 2, 254).description == "192.0.2.254")
        #expect(IPAddress(ipv4: 0).description == "0.0.0.0")
        #expect(IPAddress(192, 0, 2, 254).ipv4 == 0xc000_02fe)
    }

    @Test func endpointTextBracketsIPv6() {
        #expect(TCPEndpoint(address: IPAddress(10, 0, 0, 1), port: 25).description == "10.0.0.1:25")
        let v6 = IPAddress(ipv6Groups: [0, 0, 0, 0, 0, 0, 0, 1])
        #expect(TCPEndpoint(address: v6, port: 587).description == "[::1]:587")
    }

    @Test func ipv4AndIPv6NeverCompareEqual() {
        let v4 = IPAddress(ipv4: 1)
        let v6 = IPAddress(ipv6High: 0, low: 1)
        #expect(v4 != v6)
        #expect(Set([v4, v6]).count == 2)
    }
}
