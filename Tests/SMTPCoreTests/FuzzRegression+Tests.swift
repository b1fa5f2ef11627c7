import NIOCore
import SMTPCore
import Testing

/// Crashes the fuzzers found (README, "Fuzzing and sanitizers"); each input is also kept in
/// Tests/FuzzCorpus/TARGET/regressions and replayed through its harness by Tests/FuzzHarnessTests.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    /// RelayFuzzer, regressions/bare-cr-in-upstream-reply: the upstream greeted with
    /// "220 up ESMTP\rBoo" and the relay passed the bare CR on to the client. The assembler keeps
    /// the reply (a capture follows its server) and marks it; the relay refuses it
    /// (RelaySessionStateMachineHostileTests).
    @Test(arguments: ["220 up ESMTP\rBoo", "250 x\0y"])
    func replyLineWithCROrNULIsMarked(line: String) throws {
        var assembler = ReplyAssembler()
        guard case .reply(let reply)? = assembler.receive(line: ByteBuffer(string: line)) else {
            Issue.record("not read as a reply")
            return
        }
        #expect(reply.hasControlOctets)
        #expect(!assembler.isInsideReply)
    }

    @Test func aMarkInAContinuationLineStaysWithTheReply() {
        var assembler = ReplyAssembler()
        #expect(assembler.receive(line: ByteBuffer(string: "250-a\r")) == nil)
        guard case .reply(let reply)? = assembler.receive(line: ByteBuffer(string: "250 b")) else {
            Issue.record("not read as a reply")
            return
        }
        #expect(reply.hasControlOctets)
        guard case .reply(let next)? = assembler.receive(line: ByteBuffer(string: "250 c")) else {
            Issue.record("not read as a reply")
            return
        }
        #expect(!next.hasControlOctets)
    }

    @Test func replyLineWithTabAndUTF8IsAReply() {
        var assembler = ReplyAssembler()
        #expect(assembler.receive(line: ByteBuffer(string: "250 ok\tdon\u{E9}")) == .reply(SMTPReply(code: 250, lines: ["ok\tdon\u{E9}"])))
        #expect(SMTPReply(code: 250, lines: ["ok"]).hasControlOctets == false)
    }
}
