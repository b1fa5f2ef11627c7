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

    /// The word-at-a-time scan against a plain octet-by-octet reading of RFC 5321 §4.5.2, on
    /// generated content where CR, LF, NUL and dots fall at every offset of a word, in random chunks;
    /// `check` against `write`.
    @Test func agreesWithAnOctetByOctetReference() {
        var generator = SystemRandomNumberGenerator()
        let pieces: [[UInt8]] = [Array("abcdefghij".utf8), Array("\r\n".utf8), Array(".".utf8), [0x0D], [0x0A], [0], [0x0E], [0xFF], Array("xy".utf8)]
        for _ in 0..<2000 {
            var content: [UInt8] = []
            for _ in 0..<Int.random(in: 0...12, using: &generator) {
                content += pieces.randomElement(using: &generator) ?? []
            }
            var chunks: [[UInt8]] = []
            var rest = content[...]
            while !rest.isEmpty {
                let take = Int.random(in: 1...max(1, rest.count), using: &generator)
                chunks.append(Array(rest.prefix(take)))
                rest = rest.dropFirst(take)
            }
            var writer = DataContentWriter()
            var out = ByteBuffer()
            var failure: DataContentWriter.ForbiddenOctet?
            do {
                for chunk in chunks { try writer.write(ByteBuffer(bytes: chunk), into: &out) }
                try writer.finish(into: &out)
            } catch {
                failure = error
            }
            // `check` must reach the same verdict at the same octet, over the same chunks.
            var checker = DataContentWriter()
            var checkFailure: DataContentWriter.ForbiddenOctet?
            do {
                for chunk in chunks { try checker.check(ByteBuffer(bytes: chunk)) }
                var end = ByteBuffer()
                try checker.finish(into: &end)
            } catch {
                checkFailure = error
            }
            #expect(checkFailure == failure, "\(content)")
            #expect(checker.contentOctets == writer.contentOctets, "\(content)")
            let expected = Self.reference(content)
            switch expected {
            case .success(let wire):
                #expect(failure == nil && Array(out.readableBytesView) == wire, "\(content)")
            case .failure(let error):
                #expect(failure == error, "\(content)")
            }
        }
    }

    private static func reference(_ content: [UInt8]) -> Result<[UInt8], DataContentWriter.ForbiddenOctet> {
        var out: [UInt8] = []
        var atLineStart = true
        var index = 0
        while index < content.count {
            let byte = content[index]
            switch byte {
            case 0x0D:
                guard index + 1 < content.count, content[index + 1] == 0x0A else { return .failure(.init(octet: .bareCR, offset: index)) }
                out += [0x0D, 0x0A]
                atLineStart = true
                index += 2
                continue
            case 0x0A: return .failure(.init(octet: .bareLF, offset: index))
            case 0: return .failure(.init(octet: .nul, offset: index))
            case UInt8(ascii: ".") where atLineStart: out += [0x2E, 0x2E]
            default: out.append(byte)
            }
            atLineStart = false
            index += 1
        }
        if !atLineStart { out += [0x0D, 0x0A] }
        return .success(out + Array(".\r\n".utf8))
    }
}
