import NIOCore
import SMTPCore
import Testing

/// Crashes the fuzzers found (SECURITY.md "Fuzzing"); each input is also kept in
/// Tests/FuzzCorpus/TARGET/regressions and replayed through its harness by Tests/FuzzHarnessTests.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    /// RelayFuzzer, regressions/bare-cr-in-upstream-reply: the upstream greeted with
    /// "220 up ESMTP\rBoo" and the relay passed the bare CR on to the client.
    @Test(arguments: ["220 up ESMTP\rBoo", "250-a\r", "250 x\0y"])
    func replyLineWithCROrNULIsMalformed(line: String) {
        var assembler = ReplyAssembler()
        #expect(assembler.receive(line: ByteBuffer(string: line)) == .malformed(line))
        #expect(!assembler.isInsideReply)
    }

    @Test func replyLineWithTabAndUTF8IsAReply() {
        var assembler = ReplyAssembler()
        #expect(assembler.receive(line: ByteBuffer(string: "250 ok\tdon\u{E9}")) == .reply(SMTPReply(code: 250, lines: ["ok\tdon\u{E9}"])))
    }
}
