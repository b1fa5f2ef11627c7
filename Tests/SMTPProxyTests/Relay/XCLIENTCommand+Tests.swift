import SMTPProxy
import Testing

@Suite struct XCLIENTCommandTests {
    static let postfixOffer = "NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT"

    @Test func sendsTheKnownAttributesInOneCommandWithNameAndAddrFirst() {
        let client = XCLIENTCommand.Client(address: "192.0.2.7", port: 40123, helo: "client.example", proto: .esmtp)
        #expect(XCLIENTCommand.arguments(for: client, offered: Self.postfixOffer) == [
            "NAME=[UNAVAILABLE] ADDR=192.0.2.7 PORT=40123 HELO=client.example PROTO=ESMTP",
        ])
    }

    @Test(arguments: [
        ("ADDR", ["ADDR=192.0.2.7"]),
        ("addr helo", ["ADDR=192.0.2.7 HELO=c.example"]),
        ("LOGIN DESTADDR", []),
        ("", []),
        ("PROTO PROTO", ["PROTO=SMTP"]),
    ])
    func sendsOnlyTheAttributesTheUpstreamNames(offered: String, expected: [String]) {
        let client = XCLIENTCommand.Client(address: "192.0.2.7", port: 25, helo: "c.example", proto: .smtp)
        #expect(XCLIENTCommand.arguments(for: client, offered: offered) == expected)
    }

    @Test(arguments: [
        ("2001:db8::1", "IPV6:2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("fe80::1%eth0", "IPV6:fe80::1"),
        ("127.0.0.1", "127.0.0.1"),
    ])
    func writesIPv6AddressesAfterIPV6(address: String, expected: String) {
        let client = XCLIENTCommand.Client(address: address)
        #expect(XCLIENTCommand.arguments(for: client, offered: "ADDR") == ["ADDR=\(expected)"])
    }

    @Test func saysUnavailableForWhatItDoesNotKnow() {
        #expect(XCLIENTCommand.arguments(for: .init(), offered: Self.postfixOffer) == [
            "NAME=[UNAVAILABLE] ADDR=[UNAVAILABLE] PORT=[UNAVAILABLE] HELO=[UNAVAILABLE] PROTO=[UNAVAILABLE]",
        ])
    }

    @Test(arguments: [
        ("plain.example", "plain.example"),
        ("a+b=c", "a+2Bb+3Dc"),
        ("sp ace", "sp+20ace"),
        ("tab\t", "tab+09"),
        ("é", "+C3+A9"),
        ("[192.0.2.1]", "[192.0.2.1]"),
        ("~!", "~!"),
        ("\u{7F}", "+7F"),
    ])
    func encodesValuesAsXtext(value: String, encoded: String) {
        #expect(XCLIENTCommand.xtext(value) == encoded)
    }

    @Test func splitsCommandsSoNoLineExceeds512Octets() {
        let helo = String(repeating: "h", count: 230)
        let client = XCLIENTCommand.Client(address: "2001:db8::1", port: 1, helo: helo + "+" + helo, proto: .esmtp)
        let commands = XCLIENTCommand.arguments(for: client, offered: Self.postfixOffer)
        #expect(commands.count == 2)
        for command in commands {
            #expect(("XCLIENT " + command + "\r\n").utf8.count <= XCLIENTCommand.maxLineOctets)
        }
        // Nothing is lost or reordered by the split.
        #expect(commands.joined(separator: " ") == "NAME=[UNAVAILABLE] ADDR=IPV6:2001:db8::1 PORT=1 HELO=\(helo)+2B\(helo) PROTO=ESMTP")
    }

    @Test func fillsALineToExactly512OctetsBeforeSplitting() {
        // "XCLIENT HELO=" is 13 octets, " PROTO=SMTP" 11, CRLF 2: a 486-octet name fills the line.
        let client = XCLIENTCommand.Client(helo: String(repeating: "x", count: 486), proto: .smtp)
        let whole = XCLIENTCommand.arguments(for: client, offered: "HELO PROTO")
        #expect(whole.count == 1)
        #expect(("XCLIENT " + whole[0] + "\r\n").utf8.count == 512)
        let longer = XCLIENTCommand.Client(helo: String(repeating: "x", count: 487), proto: .smtp)
        #expect(XCLIENTCommand.arguments(for: longer, offered: "HELO PROTO").count == 2)
    }

    @Test func replacesAHeloNameTooLongForAnyLineWithUnavailable() {
        let client = XCLIENTCommand.Client(address: "192.0.2.1", helo: String(repeating: "=", count: 200), proto: .esmtp)
        let commands = XCLIENTCommand.arguments(for: client, offered: "ADDR HELO")
        #expect(commands == ["ADDR=192.0.2.1 HELO=[UNAVAILABLE]"])
    }
}
