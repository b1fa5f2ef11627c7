import Testing
@testable import PostfixPolicy

/// The policy protocol's reader: requests as Postfix writes them, split anywhere, and hostile input
/// that must end in an error rather than in memory held without bound.
struct PolicyRequestParserTests {
    static let request = """
        request=smtpd_access_policy
        protocol_state=RCPT
        protocol_name=ESMTP
        helo_name=client.example.org
        queue_id=8045F2AB23
        sender=alice@example.org
        recipient=bob@example.com
        recipient_count=0
        client_address=192.0.2.7
        client_name=client.example.org
        sasl_method=PLAIN
        sasl_username=alice
        size=12345
        encryption_protocol=TLSv1.3
        instance=123.456.7


        """

    @Test func readsARequestEndedByAnEmptyLine() throws {
        var parser = PolicyRequestParser()
        let requests = try parser.receive(Array(Self.request.utf8))
        #expect(requests.count == 1)
        #expect(requests.first?["protocol_state"] == "RCPT")
        #expect(requests.first?["sasl_username"] == "alice")
        #expect(requests.first?.attributes.count == 15)
        #expect(!parser.isInsideRequest)
    }

    @Test func readsRequestsSplitAtEveryOctet() throws {
        var parser = PolicyRequestParser()
        var requests: [PolicyRequest] = []
        let twice = Array((Self.request + Self.request).utf8)
        for byte in twice { requests += try parser.receive([byte]) }
        #expect(requests.count == 2)
        #expect(requests[0] == requests[1])
    }

    @Test func anEmptyValueIsAbsentAndCRLFIsAccepted() throws {
        var parser = PolicyRequestParser()
        let requests = try parser.receive(Array("request=smtpd_access_policy\r\nsender=\r\nvalue=a=b\r\n\r\n".utf8))
        #expect(requests.first?["sender"] == nil)
        #expect(requests.first?.attributes["sender"] == "")
        #expect(requests.first?["value"] == "a=b")
    }

    @Test func aLineWithoutAnEndFailsAtTheLimit() {
        var limits = PolicyRequestParser.Limits()
        limits.maxLineOctets = 100
        var parser = PolicyRequestParser(limits: limits)
        #expect(throws: PolicyRequestParser.Failure.lineTooLong) {
            for _ in 0..<1000 { _ = try parser.receive(Array(repeating: UInt8(ascii: "a"), count: 1000)) }
        }
    }

    @Test func aMillionAttributesFailAtTheLimit() {
        var parser = PolicyRequestParser()
        #expect(throws: PolicyRequestParser.Failure.tooManyAttributes) {
            for i in 0..<1_000_000 { _ = try parser.receive(Array("a\(i)=x\n".utf8)) }
        }
    }

    @Test func aRequestOfManyLongLinesFailsAtTheLimit() {
        var parser = PolicyRequestParser()
        let line = Array(("x=" + String(repeating: "v", count: 8000) + "\n").utf8)
        #expect(throws: PolicyRequestParser.Failure.requestTooLarge) {
            for i in 0..<100 {
                var named = line
                named[0] = UInt8(ascii: "a") + UInt8(i % 26)
                named.insert(contentsOf: Array("\(i)".utf8), at: 1)
                _ = try parser.receive(named)
            }
        }
    }

    @Test(arguments: [
        ("no equals sign\n\n", PolicyRequestParser.Failure.notAnAttribute),
        ("=value\n\n", .notAnAttribute),
        ("a=1\na=2\n\n", .duplicateAttribute("a")),
        ("a=\u{FF}\n\n", .notUTF8),
    ])
    func malformedLinesAreErrors(_ text: String, _ failure: PolicyRequestParser.Failure) {
        var parser = PolicyRequestParser()
        var bytes = Array(text.utf8)
        if failure == .notUTF8 { bytes = [UInt8(ascii: "a"), UInt8(ascii: "="), 0xFF, 0x0A, 0x0A] }
        #expect(throws: failure) { _ = try parser.receive(bytes) }
    }
}
