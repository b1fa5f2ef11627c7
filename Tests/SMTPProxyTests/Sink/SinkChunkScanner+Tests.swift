import NIOCore
import Testing

@testable import SMTPProxy

@Suite struct SinkChunkScannerTests {
    @Test func crlfSplitAcrossChunksIsNotABareLineEnd() {
        var scanner = SinkChunkScanner()
        scanner.scan(ByteBuffer(string: "a\r"))
        scanner.scan(ByteBuffer(string: "\nb\r\n"))
        scanner.finish()
        #expect(!scanner.hasForbiddenOctets)
    }

    @Test func carriageReturnEndingTheLastChunkIsBare() {
        var scanner = SinkChunkScanner()
        scanner.scan(ByteBuffer(string: "a\r\nb\r"))
        scanner.finish()
        #expect(scanner.bareCR == 1)
    }

    @Test(arguments: [
        ("a\nb", 1, 0, 0),
        ("a\rb", 0, 1, 0),
        ("a\u{0}b", 0, 0, 1),
        ("\r\r\n", 0, 1, 0),
        ("\n\r\n\n", 2, 0, 0),
    ])
    func countsEachForbiddenOctetWhateverTheChunking(text: String, bareLF: Int, bareCR: Int, nul: Int) {
        var whole = SinkChunkScanner()
        whole.scan(ByteBuffer(string: text))
        whole.finish()
        var dripped = SinkChunkScanner()
        for byte in text.utf8 { dripped.scan(ByteBuffer(bytes: [byte])) }
        dripped.finish()
        #expect(whole == dripped)
        #expect([whole.bareLF, whole.bareCR, whole.nul] == [bareLF, bareCR, nul])
    }
}
