import NIOCore
import SMTPCore
import Testing

@Suite("DataContentParser")
struct DataContentParserTests {
    /// What one message's parse produced.
    struct Outcome: Equatable, CustomStringConvertible {
        var content: [UInt8] = []
        /// Stops other than `needMoreBytes`, with the input offset just after each.
        var stops: [String] = []
        /// Input octets not consumed after the end of data.
        var left: [UInt8] = []
        var observations: DataContentParser.Observations?
        var contentOctets = 0

        var description: String {
            "content \"\(CoreTestSupport.escaped(content))\" stops \(stops) left \"\(CoreTestSupport.escaped(left))\" \(observations.map { "\($0)" } ?? "-")"
        }
    }

    /// Feeds `chunks` through one buffer, calling `parse` again after each lenient candidate, until
    /// the end of data.
    static func run(_ chunks: [[UInt8]], lenient: Bool = true) -> Outcome {
        var parser = DataContentParser(reportsLenientEndCandidates: lenient)
        var outcome = Outcome()
        var buffer = ByteBuffer()
        var fed = 0
        var ended = false
        for chunk in chunks {
            if ended {
                outcome.left += chunk
                continue
            }
            buffer.writeBytes(chunk)
            fed += chunk.count
            parsing: while true {
                let stop = parser.parse(&buffer) { outcome.content += CoreTestSupport.bytes($0) }
                switch stop {
                case .needMoreBytes:
                    #expect(buffer.readableBytes <= 1, "needMoreBytes left \(buffer.readableBytes) octets unread")
                    break parsing
                case .lenientEndCandidate:
                    outcome.stops.append("candidate@\(fed - buffer.readableBytes)")
                case .endOfData:
                    outcome.stops.append("end@\(fed - buffer.readableBytes)")
                    outcome.left += CoreTestSupport.bytes(buffer)
                    ended = true
                    break parsing
                }
            }
        }
        outcome.observations = parser.observations
        outcome.contentOctets = parser.contentOctets
        return outcome
    }

    /// The outcome with the first-offset fields cleared, compared where chunking must not matter;
    /// the offsets have a test of their own.
    static func runIgnoringOffsets(_ chunks: [[UInt8]], lenient: Bool = true) -> Outcome {
        var outcome = run(chunks, lenient: lenient)
        outcome.observations?.firstBareLFOffset = nil
        outcome.observations?.firstBareCROffset = nil
        outcome.observations?.firstNULOffset = nil
        return outcome
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    struct Case: Sendable, CustomStringConvertible {
        var input: String
        var content: String
        var stops: [String]
        var left: String = ""
        var bareLF = 0
        var bareCR = 0
        var nul = 0
        var description: String { CoreTestSupport.escaped(input.utf8) }
    }

    static let smuggled = "MAIL FROM:<s@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nsmuggled\r\n"

    static let cases: [Case] = [
        Case(input: "hello\r\n.\r\n", content: "hello\r\n", stops: ["end@10"]),
        Case(input: ".\r\n", content: "", stops: ["end@3"]),
        Case(input: ".\r\nQUIT\r\n", content: "", stops: ["end@3"], left: "QUIT\r\n"),
        Case(input: "..foo\r\n.\r\n", content: ".foo\r\n", stops: ["end@10"]),
        Case(input: ".foo\r\n.\r\n", content: "foo\r\n", stops: ["end@9"]),
        Case(input: "a\r\n..\r\n.\r\n", content: "a\r\n.\r\n", stops: ["end@10"]),
        Case(input: "a\r\n...\r\n.\r\n", content: "a\r\n..\r\n", stops: ["end@11"]),
        Case(input: "a.\r\n.\r\n", content: "a.\r\n", stops: ["end@7"]),
        Case(input: ". \r\n.\r\n", content: " \r\n", stops: ["end@7"]),
        Case(input: "\r\n.\r\n", content: "\r\n", stops: ["end@5"]),
        Case(input: "hello\r\n.\r\nMAIL FROM:<a@b>\r\n", content: "hello\r\n", stops: ["end@10"], left: "MAIL FROM:<a@b>\r\n"),
        Case(input: "a\nb\r\n.\r\n", content: "a\nb\r\n", stops: ["end@8"], bareLF: 1),
        Case(input: "a\rb\r\n.\r\n", content: "a\rb\r\n", stops: ["end@8"], bareCR: 1),
        Case(input: "a\0b\r\n.\r\n", content: "a\0b\r\n", stops: ["end@8"], nul: 1),
        // The CRLF before the content counts: "\n.\r" is a lenient end of data (hostile-input case 3).
        Case(input: ".\rx\r\n.\r\n", content: "\rx\r\n", stops: ["candidate@2", "end@8"], bareCR: 1),
        Case(input: "a\r\n.\rx\r\n.\r\n", content: "a\r\n\rx\r\n", stops: ["candidate@5", "end@11"], bareCR: 1),
        // Hostile-input cases 1-3: lenient end-of-data sequences are content, reported once as a candidate.
        Case(input: "a\n.\n" + smuggled + ".\r\n", content: "a\n.\n" + smuggled, stops: ["candidate@4", "end@\(4 + smuggled.utf8.count + 3)"], bareLF: 2),
        Case(input: "a\r.\r" + smuggled + ".\r\n", content: "a\r.\r" + smuggled, stops: ["candidate@4", "end@\(4 + smuggled.utf8.count + 3)"], bareCR: 2),
        Case(input: "a\n.\r\n" + smuggled + ".\r\n", content: "a\n.\r\n" + smuggled, stops: ["candidate@5", "end@\(5 + smuggled.utf8.count + 3)"], bareLF: 1),
        Case(input: "a\r\n.\n" + smuggled + ".\r\n", content: "a\r\n\n" + smuggled, stops: ["candidate@5", "end@\(5 + smuggled.utf8.count + 3)"], bareLF: 1),
        Case(input: "a\r.\n" + smuggled + ".\r\n", content: "a\r.\n" + smuggled, stops: ["candidate@4", "end@\(4 + smuggled.utf8.count + 3)"], bareLF: 1, bareCR: 1),
        Case(input: "a\n.\r" + smuggled + ".\r\n", content: "a\n.\r" + smuggled, stops: ["candidate@4", "end@\(4 + smuggled.utf8.count + 3)"], bareLF: 1, bareCR: 1),
        Case(input: "a\r.\r\n" + smuggled + ".\r\n", content: "a\r.\r\n" + smuggled, stops: ["candidate@5", "end@\(5 + smuggled.utf8.count + 3)"], bareCR: 1),
        // Row 4: a NUL is content and never makes an end of data.
        Case(input: "a\r\n\0.\r\n" + smuggled + ".\r\n", content: "a\r\n\0.\r\n" + smuggled, stops: ["end@\(7 + smuggled.utf8.count + 3)"], nul: 1),
        Case(input: "a\r\n.\0\r\n" + smuggled + ".\r\n", content: "a\r\n\0\r\n" + smuggled, stops: ["end@\(7 + smuggled.utf8.count + 3)"], nul: 1),
        // Only the first candidate of a message is reported.
        Case(input: "a\n.\nb\r.\rc\r\n.\r\n", content: "a\n.\nb\r.\rc\r\n", stops: ["candidate@4", "end@14"], bareLF: 2, bareCR: 2),
        // Forbidden octets inside long runs of ordinary octets, which are skipped a run at a time.
        Case(
            input: "abcdefgh.ijkl\0mnop\rqrstu.vw\nxyz.\r\n..abc.def\r\n.\r\n",
            content: "abcdefgh.ijkl\0mnop\rqrstu.vw\nxyz.\r\n.abc.def\r\n",
            stops: ["end@48"],
            bareLF: 1,
            bareCR: 1,
            nul: 1
        ),
    ]

    @Test("content, stops and leftover octets", arguments: cases)
    func whole(_ testCase: Case) {
        let outcome = Self.run([Self.bytes(testCase.input)])
        #expect(outcome.content == Self.bytes(testCase.content))
        #expect(outcome.stops == testCase.stops)
        #expect(outcome.left == Self.bytes(testCase.left))
        #expect(outcome.observations?.bareLF == testCase.bareLF)
        #expect(outcome.observations?.bareCR == testCase.bareCR)
        #expect(outcome.observations?.nul == testCase.nul)
        #expect(outcome.contentOctets == outcome.content.count)
        #expect(outcome.observations?.hasForbiddenOctets == (testCase.bareLF + testCase.bareCR + testCase.nul > 0))
    }

    /// Hostile-input case 5: the outcome does not depend on where the stream is split.
    @Test("identical outcome split at every byte offset and one byte at a time", arguments: cases)
    func everySplit(_ testCase: Case) {
        let bytes = Self.bytes(testCase.input)
        let reference = Self.runIgnoringOffsets([bytes])
        for offset in 0...bytes.count {
            let outcome = Self.runIgnoringOffsets([Array(bytes[..<offset]), Array(bytes[offset...])])
            #expect(outcome == reference, "split at \(offset)")
        }
        for first in 0...bytes.count {
            for second in first...min(bytes.count, first + 6) {
                let outcome = Self.runIgnoringOffsets([Array(bytes[..<first]), Array(bytes[first..<second]), Array(bytes[second...])])
                #expect(outcome == reference, "split at \(first), \(second)")
            }
        }
        #expect(Self.runIgnoringOffsets(bytes.map { [$0] }) == reference, "one byte at a time")
    }

    @Test("the first-offset observations do not depend on chunking", arguments: cases)
    func offsetsWhateverTheChunking(_ testCase: Case) {
        let bytes = Self.bytes(testCase.input)
        let reference = Self.run([bytes]).observations
        #expect(Self.run(bytes.map { [$0] }).observations == reference, "one byte at a time")
        for offset in 0...bytes.count {
            let observations = Self.run([Array(bytes[..<offset]), Array(bytes[offset...])]).observations
            #expect(observations == reference, "split at \(offset)")
            if observations != reference { break }
        }
    }

    @Test("without candidate reporting the strict end is the only stop", arguments: cases)
    func strictOnly(_ testCase: Case) {
        let bytes = Self.bytes(testCase.input)
        let outcome = Self.runIgnoringOffsets([bytes], lenient: false)
        let reference = Self.runIgnoringOffsets([bytes])
        #expect(outcome.content == reference.content)
        #expect(outcome.stops == reference.stops.filter { $0.hasPrefix("end") })
        #expect(outcome.observations == reference.observations)
        #expect(Self.runIgnoringOffsets(bytes.map { [$0] }, lenient: false) == outcome)
    }

    @Test("offsets of the first forbidden octets", arguments: [
        ("ab\ncd\n\r\n.\r\n", 2, nil, nil),
        ("abc\rd\r\r\n.\r\n", nil, 3, nil),
        ("..\0x\r\n.\r\n", nil, nil, 1),
        ("x\r\n.a\nb\0c\rd\r\n.\r\n", 4, 8, 6),
        ("a\nb\r\n.\r\n", 1, nil, nil),
        ("a\rb\r\n.\r\n", nil, 1, nil),
        ("a\0b\r\n.\r\n", nil, nil, 1),
        ("\n\r\n.\r\n", 0, nil, nil),
    ] as [(String, Int?, Int?, Int?)])
    func firstOffsets(input: String, bareLF: Int?, bareCR: Int?, nul: Int?) {
        let observations = Self.run([Self.bytes(input)]).observations
        #expect(observations?.firstBareLFOffset == bareLF)
        #expect(observations?.firstBareCROffset == bareCR)
        #expect(observations?.firstNULOffset == nul)
    }

    @Test("lines over 1000 octets are counted (RFC 5321 §4.5.3.1.6)", arguments: [(998, 0, 1000), (999, 1, 1001), (5000, 1, 5002)])
    func overlongLines(length: Int, overlong: Int, longest: Int) {
        let input = String(repeating: "x", count: length) + "\r\nshort\r\n.\r\n"
        let observations = Self.run([Self.bytes(input)]).observations
        #expect(observations?.overlongLines == overlong)
        #expect(observations?.longestLine == longest)
    }

    @Test("content is handed out as it arrives, before the end of data")
    func streamsContent() {
        var parser = DataContentParser()
        var buffer = ByteBuffer(string: "line one\r\nline t")
        var content: [UInt8] = []
        #expect(parser.parse(&buffer) { content += CoreTestSupport.bytes($0) } == .needMoreBytes)
        #expect(content == Self.bytes("line one\r\nline t"))
        #expect(buffer.readableBytes == 0)
    }

    @Test("a line-start \".\\r\" at a chunk end is withheld until the next octet decides")
    func heldCarriageReturn() {
        var parser = DataContentParser()
        var buffer = ByteBuffer(string: "a\r\n.\r")
        var content: [UInt8] = []
        #expect(parser.parse(&buffer) { content += CoreTestSupport.bytes($0) } == .needMoreBytes)
        #expect(content == Self.bytes("a\r\n"))
        buffer.writeString("\n")
        #expect(parser.parse(&buffer) { content += CoreTestSupport.bytes($0) } == .endOfData)
        #expect(content == Self.bytes("a\r\n"))
    }

    @Test("a message of 1 MB in 1-KB pieces")
    func largeMessage() {
        let line = Array(String(repeating: "y", count: 78).utf8) + [13, 10]
        var bytes: [UInt8] = []
        for _ in 0..<(1 << 20) / line.count { bytes += line }
        let expected = bytes
        bytes += Self.bytes(".\r\n")
        var chunks: [[UInt8]] = []
        var index = 0
        while index < bytes.count {
            chunks.append(Array(bytes[index..<min(index + 1024, bytes.count)]))
            index += 1024
        }
        let outcome = Self.run(chunks)
        #expect(outcome.content == expected)
        #expect(outcome.stops == ["end@\(bytes.count)"])
    }
}
