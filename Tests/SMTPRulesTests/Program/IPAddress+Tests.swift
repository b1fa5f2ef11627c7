import Testing
@testable import SMTPRules

struct IPAddressTests {
    @Test(arguments: [
        ("192.0.2.1", true), ("0.0.0.0", true), ("255.255.255.255", true), ("::", true), ("::1", true), ("2001:db8::1", true),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", true), ("::ffff:192.0.2.1", true), ("fe80::1%eth0", true), ("[2001:db8::1]", true),
        ("IPv6:2001:db8::1", true), ("1:2:3:4:5:6:7:8", true), ("1::8", true),
        ("256.0.0.1", false), ("1.2.3", false), ("1.2.3.4.5", false), ("01.2.3.4", false), ("1:2:3:4:5:6:7:8:9", false), ("1::2::3", false),
        ("12345::1", false), ("g::1", false), ("", false), ("1.2.3.-1", false), (":::", false), ("1:2:3:4:5:6:7::8", false),
    ])
    func parses(text: String, valid: Bool) {
        #expect((IPAddress(text) != nil) == valid)
    }

    @Test func ipv4AndMappedIPv6AreTheSameAddress() {
        #expect(IPAddress("192.0.2.1") == IPAddress("::ffff:192.0.2.1"))
        #expect(IPAddress("2001:db8::1") == IPAddress("2001:0db8:0:0:0:0:0:1"))
    }

    @Test(arguments: [
        ("10.0.0.0/8", "10.200.3.4", true), ("10.0.0.0/8", "11.0.0.0", false), ("10.1.2.3/8", "10.9.9.9", true),
        ("0.0.0.0/0", "1.2.3.4", true), ("0.0.0.0/0", "2001:db8::1", false), ("192.0.2.7/32", "192.0.2.7", true),
        ("2001:db8::/32", "2001:db8:1::1", true), ("2001:db8::/33", "2001:db8:8000::1", false), ("::/0", "1.2.3.4", true),
        ("2001:db8::1/128", "2001:db8::1", true), ("2001:db8:0:0:8000::/65", "2001:db8::8000:0:0:1", true),
    ])
    func prefixContains(prefix: String, address: String, expected: Bool) throws {
        let set = IPPrefixSet([try #require(IPPrefix(prefix))])
        #expect(set.contains(try #require(IPAddress(address))) == expected)
    }

    @Test(arguments: ["10.0.0.0/33", "2001:db8::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", "x/8"])
    func badPrefixes(text: String) {
        #expect(IPPrefix(text) == nil)
    }
}
