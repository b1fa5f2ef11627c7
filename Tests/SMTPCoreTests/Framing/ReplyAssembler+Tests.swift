import NIOCore
import SMTPCore
import Testing

@Suite("ReplyAssembler")
struct ReplyAssemblerTests {
    private func feed(_ lines: [String], maxLines: Int = 200) -> [ReplyAssembler.Output] {
        var assembler = ReplyAssembler(maxLines: maxLines)
        return lines.compactMap { assembler.receive(line: ByteBuffer(string: $0)) }
    }

    @Test("a single-line reply")
    func singleLine() {
        #expect(feed(["250 2.0.0 Ok"]) == [.reply(SMTPReply(code: 250, lines: ["2.0.0 Ok"]))])
    }

    @Test("a code alone is a reply with empty text", arguments: ["250", "250 "])
    func codeAlone(line: String) {
        #expect(feed([line]) == [.reply(SMTPReply(code: 250, lines: [""]))])
    }

    @Test("a multi-line reply ends at the line with a space")
    func multiLine() {
        var assembler = ReplyAssembler()
        #expect(assembler.receive(line: ByteBuffer(string: "250-mx.example")) == nil)
        #expect(assembler.isInsideReply)
        #expect(assembler.receive(line: ByteBuffer(string: "250-PIPELINING")) == nil)
        #expect(assembler.receive(line: ByteBuffer(string: "250-")) == nil)
        let output = assembler.receive(line: ByteBuffer(string: "250 8BITMIME"))
        #expect(output == .reply(SMTPReply(code: 250, lines: ["mx.example", "PIPELINING", "", "8BITMIME"])))
        #expect(!assembler.isInsideReply)
    }

    @Test("10 000 continuation lines keep a bounded number, counting the rest")
    func hugeReply() {
        var assembler = ReplyAssembler(maxLines: 200)
        for index in 0..<10_000 {
            #expect(assembler.receive(line: ByteBuffer(string: "250-line \(index)")) == nil)
        }
        guard case .reply(let reply) = assembler.receive(line: ByteBuffer(string: "250 end")) else {
            Issue.record("no reply")
            return
        }
        #expect(reply.lines.count == 200)
        #expect(reply.lines.first == "line 0")
        #expect(reply.lines.last == "line 199")
        #expect(reply.droppedLines == 10_001 - 200)
        #expect(reply.code == 250)
        // The next reply starts afresh.
        #expect(assembler.receive(line: ByteBuffer(string: "221 Bye")) == .reply(SMTPReply(code: 221, lines: ["Bye"])))
    }

    @Test("continuation lines with another code are flagged, the last code counts")
    func mixedCodes() {
        let outputs = feed(["250-first", "251-second", "550 last"])
        guard case .reply(let reply) = outputs.first else {
            Issue.record("no reply")
            return
        }
        #expect(reply.code == 550)
        #expect(reply.hasMixedCodes)
        #expect(reply.lines == ["first", "second", "last"])
        // Flags do not leak into the next reply.
        #expect(feed(["250-a", "251 b", "250 c"]).last == .reply(SMTPReply(code: 250, lines: ["c"])))
    }

    @Test("lines that are not reply lines", arguments: [
        "", "25", "hello", "2500 x", "250x", "199 x", "600 x", "099 x", "2a0 x", "abc def", "250\t", "-250 x",
    ])
    func malformed(line: String) {
        #expect(feed([line]) == [.malformed(line)])
    }

    @Test("a malformed line abandons the reply being assembled")
    func malformedAbandons() {
        #expect(feed(["250-first", "garbage", "250 second"]) == [.malformed("garbage"), .reply(SMTPReply(code: 250, lines: ["second"]))])
    }

    @Test("reset forgets a partial reply")
    func reset() {
        var assembler = ReplyAssembler()
        _ = assembler.receive(line: ByteBuffer(string: "250-a"))
        assembler.reset()
        #expect(!assembler.isInsideReply)
        #expect(assembler.receive(line: ByteBuffer(string: "221 b")) == .reply(SMTPReply(code: 221, lines: ["b"])))
    }

    @Test("enhanced codes are parsed from the first line", arguments: [
        (["250-2.0.0 first", "250 second"], "2.0.0", "first\nsecond"),
        (["550 5.7.1 <a@b>: Relay access denied"], "5.7.1", "<a@b>: Relay access denied"),
        (["451 4.3.0 Error: queue file write error"], "4.3.0", "Error: queue file write error"),
        (["220 mx.example ESMTP"], nil, "mx.example ESMTP"),
        (["250 2.0.0"], "2.0.0", ""),
    ] as [([String], String?, String)])
    func enhancedCode(lines: [String], code: String?, text: String) {
        guard case .reply(let reply) = feed(lines).last else {
            Issue.record("no reply")
            return
        }
        #expect(reply.enhancedStatusCode?.description == code)
        #expect(reply.textWithoutEnhancedCode == text)
    }

    @Test("non-UTF-8 reply text is decoded with replacement, never dropped")
    func invalidUTF8() {
        var assembler = ReplyAssembler()
        let output = assembler.receive(line: ByteBuffer(bytes: Array("250 caf".utf8) + [0xE9]))
        guard case .reply(let reply) = output else {
            Issue.record("no reply")
            return
        }
        #expect(reply.code == 250)
        #expect(reply.lines == ["caf\u{FFFD}"])
    }
}
