import NIOCore
import SMTPCore
import Testing

@Suite struct DataContentWriterTests {
    private func write(_ chunks: [String]) -> Result<String, DataContentWriter.ForbiddenOctet> {
        var writer = DataContentWriter()
        var out = ByteBuffer()
        do {
            for chunk in chunks { try writer.write(ByteBuffer(string: chunk), into: &out) }
            try writer.finish(into: &out)
            return .success(String(buffer: out))
        } catch {
            return .failure(error)
        }
    }

    /// Whole, then one octet at a time: the output must be identical.
    private func both(_ content: String) -> (Result<String, DataContentWriter.ForbiddenOctet>, Result<String, DataContentWriter.ForbiddenOctet>) {
        (write([content]), write(content.utf8.map { String(decoding: [$0], as: UTF8.self) }))
    }

    @Test(arguments: [
        ("", ".\r\n"),
        ("a\r\n", "a\r\n.\r\n"),
        (".foo\r\n", "..foo\r\n.\r\n"),
        ("a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"),
        ("..x\r\n", "...x\r\n.\r\n"),
        ("no line end", "no line end\r\n.\r\n"),
        ("x.y\r\n", "x.y\r\n.\r\n"),
    ])
    func writesCanonicalDotStuffedContent(content: String, expected: String) {
        let (whole, dripped) = both(content)
        #expect(whole == .success(expected))
        #expect(dripped == .success(expected))
    }

    @Test(arguments: [
        ("a\n.\nb\r\n", DataContentWriter.Octet.bareLF, 1),
        ("a\r.\rb\r\n", DataContentWriter.Octet.bareCR, 1),
        ("a\r\n\0.\r\n", DataContentWriter.Octet.nul, 3),
        ("abc\r", DataContentWriter.Octet.bareCR, 3),
    ])
    func refusesForbiddenOctetsWherever_theChunksSplit(content: String, octet: DataContentWriter.Octet, offset: Int) {
        let (whole, dripped) = both(content)
        #expect(whole == .failure(DataContentWriter.ForbiddenOctet(octet: octet, offset: offset)))
        #expect(dripped == .failure(DataContentWriter.ForbiddenOctet(octet: octet, offset: offset)))
    }

    @Test func neverWritesABareCarriageReturnHeldAtAChunkEnd() {
        var writer = DataContentWriter()
        var out = ByteBuffer()
        #expect(throws: Never.self) { try writer.write(ByteBuffer(string: "abc\r"), into: &out) }
        #expect(String(buffer: out) == "abc")
        #expect(throws: DataContentWriter.ForbiddenOctet.self) { try writer.write(ByteBuffer(string: ".\r"), into: &out) }
        #expect(!String(buffer: out).contains("\r"))
    }
}
