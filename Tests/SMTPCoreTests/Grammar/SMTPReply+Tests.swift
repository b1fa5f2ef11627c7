import SMTPCore
import Testing

@Suite("SMTPReply")
struct SMTPReplyTests {
    @Test("the first digit classifies the reply (RFC 5321 §4.2.1)", arguments: [
        (220, 2, true, false, false, false), (250, 2, true, false, false, false), (354, 3, false, true, false, false),
        (334, 3, false, true, false, false), (421, 4, false, false, true, false), (454, 4, false, false, true, false),
        (550, 5, false, false, false, true), (554, 5, false, false, false, true),
    ])
    func classes(code: Int, codeClass: Int, positive: Bool, intermediate: Bool, transient: Bool, permanent: Bool) {
        let reply = SMTPReply(code: code, lines: ["x"])
        #expect(reply.codeClass == codeClass)
        #expect(reply.isPositiveCompletion == positive)
        #expect(reply.isPositiveIntermediate == intermediate)
        #expect(reply.isTransientNegative == transient)
        #expect(reply.isPermanentNegative == permanent)
    }

    @Test("the enhanced code comes from the first line only", arguments: [
        (["2.1.0 Ok"], "2.1.0", "Ok"),
        (["2.0.0"], "2.0.0", ""),
        (["5.1.1 <x@y>: Recipient address rejected", "more"], "5.1.1", "<x@y>: Recipient address rejected\nmore"),
        (["2.0.0   spaced"], "2.0.0", "spaced"),
        (["Ok", "2.0.0 not here"], nil, "Ok\n2.0.0 not here"),
        (["3.0.0 not a class"], nil, "3.0.0 not a class"),
        (["2.1.0x"], nil, "2.1.0x"),
        ([], nil, ""),
    ] as [([String], String?, String)])
    func enhancedCode(lines: [String], code: String?, stripped: String) {
        let reply = SMTPReply(code: 250, lines: lines)
        #expect(reply.enhancedStatusCode?.description == code)
        #expect(reply.textWithoutEnhancedCode == stripped)
        #expect(reply.text == lines.joined(separator: "\n"))
    }

    @Test("wire lines use '-' on all but the last line", arguments: [
        (SMTPReply(code: 250, lines: ["mx", "PIPELINING", "SIZE 1000"]), ["250-mx", "250-PIPELINING", "250 SIZE 1000"]),
        (SMTPReply(code: 221, lines: ["Bye"]), ["221 Bye"]),
        (SMTPReply(code: 250, lines: []), ["250"]),
        (SMTPReply(code: 250, lines: [""]), ["250"]),
        (SMTPReply(code: 250, lines: ["", ""]), ["250-", "250"]),
    ])
    func wireLines(reply: SMTPReply, expected: [String]) {
        #expect(reply.wireLines == expected)
    }

    @Test("EHLO keywords are the trimmed lines after the first")
    func ehloExtensions() {
        let reply = SMTPReply(code: 250, lines: ["mx.example Hello", "PIPELINING", " SIZE 10240000 ", "", "\tSTARTTLS"])
        #expect(reply.ehloExtensions == ["PIPELINING", "SIZE 10240000", "STARTTLS"])
        #expect(SMTPReply(code: 250, lines: ["mx.example"]).ehloExtensions == [])
    }

    @Test("defaults: nothing dropped, codes agree")
    func defaults() {
        let reply = SMTPReply(code: 250, lines: ["Ok"])
        #expect(reply.droppedLines == 0)
        #expect(!reply.hasMixedCodes)
    }
}
