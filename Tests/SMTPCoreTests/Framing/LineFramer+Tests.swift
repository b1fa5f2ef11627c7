import NIOCore
import SMTPCore
import Testing

@Suite("LineFramer")
struct LineFramerTests {
    /// A frame reduced to comparable values.
    enum Seen: Hashable, CustomStringConvertible {
        case line(String, LineFramer.Terminator)
        case overlong(prefix: [UInt8], total: Int)

        init(_ frame: LineFramer.Frame) {
            switch frame {
            case .line(let bytes, let terminator): self = .line(CoreTestSupport.string(bytes), terminator)
            case .overlong(let prefix, let total): self = .overlong(prefix: CoreTestSupport.bytes(prefix), total: total)
            }
        }

        var description: String {
            switch self {
            case .line(let text, let terminator): "line(\(CoreTestSupport.escaped(text.utf8)), \(terminator))"
            case .overlong(let prefix, let total): "overlong(\(prefix.count) kept, \(total))"
            }
        }
    }

    /// Feeds `chunks` through one accumulating buffer, as a channel handler does; returns the frames
    /// and the octets left unframed.
    static func frames(_ chunks: [[UInt8]], maxLineOctets: Int) -> (frames: [Seen], left: [UInt8]) {
        var framer = LineFramer(maxLineOctets: maxLineOctets)
        var buffer = ByteBuffer()
        var frames: [Seen] = []
        for chunk in chunks {
            buffer.writeBytes(chunk)
            while let frame = framer.next(from: &buffer) { frames.append(Seen(frame)) }
        }
        return (frames, CoreTestSupport.bytes(buffer))
    }

    static let sample = Array("EHLO x\r\nMAIL FROM:<a@b>\nRCPT TO:<c@d>\r\n\r\n\nQUIT\r\nNOOP".utf8)
    static let sampleFrames: [Seen] = [
        .line("EHLO x", .crlf), .line("MAIL FROM:<a@b>", .bareLF), .line("RCPT TO:<c@d>", .crlf), .line("", .crlf), .line("", .bareLF),
        .line("QUIT", .crlf),
    ]

    @Test("CRLF and bare LF both end a line, and the terminator is reported")
    func terminators() {
        let result = Self.frames([Self.sample], maxLineOctets: 2048)
        #expect(result.frames == Self.sampleFrames)
        #expect(result.left == Array("NOOP".utf8))
    }

    @Test("a CR not followed by LF stays in the line", arguments: [
        ("a\rb\r\n", Seen.line("a\rb", .crlf)), ("a\r\r\n", .line("a\r", .crlf)), ("a\rb\n", .line("a\rb", .bareLF)), ("\r\n", .line("", .crlf)),
        ("\n", .line("", .bareLF)), ("\r\r\n", .line("\r", .crlf)),
    ])
    func carriageReturnInsideLine(input: String, expected: Seen) {
        #expect(Self.frames([Array(input.utf8)], maxLineOctets: 2048).frames == [expected])
    }

    @Test("the same frames whatever the split point")
    func everySplitPoint() {
        for offset in 0...Self.sample.count {
            let result = Self.frames([Array(Self.sample[..<offset]), Array(Self.sample[offset...])], maxLineOctets: 2048)
            #expect(result.frames == Self.sampleFrames, "split at \(offset)")
            #expect(result.left == Array("NOOP".utf8), "split at \(offset)")
        }
    }

    @Test("the same frames one byte at a time")
    func oneByteAtATime() {
        let result = Self.frames(Self.sample.map { [$0] }, maxLineOctets: 2048)
        #expect(result.frames == Self.sampleFrames)
        #expect(result.left == Array("NOOP".utf8))
    }

    // MARK: Limits

    /// With a 16-octet limit (terminator included): 15 and 16 octets are lines, 17 is overlong.
    static let boundaryCases: [(String, [Seen])] = [
        (String(repeating: "a", count: 13) + "\r\n", [.line(String(repeating: "a", count: 13), .crlf)]),
        (String(repeating: "a", count: 14) + "\r\n", [.line(String(repeating: "a", count: 14), .crlf)]),
        (String(repeating: "a", count: 15) + "\r\n", [.overlong(prefix: Array(repeating: UInt8(ascii: "a"), count: 14), total: 15)]),
        (String(repeating: "a", count: 14) + "\n", [.line(String(repeating: "a", count: 14), .bareLF)]),
        (String(repeating: "a", count: 15) + "\n", [.line(String(repeating: "a", count: 15), .bareLF)]),
        (String(repeating: "a", count: 16) + "\n", [.overlong(prefix: Array(repeating: UInt8(ascii: "a"), count: 14), total: 16)]),
        (String(repeating: "a", count: 40) + "\r\n", [.overlong(prefix: Array(repeating: UInt8(ascii: "a"), count: 14), total: 40)]),
        (String(repeating: "a", count: 40) + "\n", [.overlong(prefix: Array(repeating: UInt8(ascii: "a"), count: 14), total: 40)]),
    ]

    @Test("limit - 1, limit and limit + 1, whole and at every split point", arguments: boundaryCases)
    func limitBoundaries(input: String, expected: [Seen]) {
        let bytes = Array(input.utf8) + Array("NOOP\r\n".utf8)
        let want = expected + [.line("NOOP", .crlf)]
        #expect(Self.frames([bytes], maxLineOctets: 16).frames == want, "whole")
        #expect(Self.frames(bytes.map { [$0] }, maxLineOctets: 16).frames == want, "one byte at a time")
        for offset in 0...bytes.count {
            let result = Self.frames([Array(bytes[..<offset]), Array(bytes[offset...])], maxLineOctets: 16)
            #expect(result.frames == want, "split at \(offset)")
            #expect(result.left.isEmpty, "split at \(offset)")
        }
    }

    @Test("an 80 KB line in one piece is overlong, and the next line is framed")
    func eightyKilobytesWhole() {
        let line = [UInt8](repeating: UInt8(ascii: "A"), count: 80 * 1024)
        let result = Self.frames([line + Array("\r\nNOOP\r\n".utf8)], maxLineOctets: 2048)
        #expect(result.frames == [.overlong(prefix: Array(line.prefix(2046)), total: 80 * 1024), .line("NOOP", .crlf)])
    }

    @Test("an 80 KB line arriving in pieces is dropped as it comes: the buffer stays flat", arguments: [1, 1000, 1024, 4096])
    func eightyKilobytesStreamed(chunkSize: Int) {
        var framer = LineFramer(maxLineOctets: 2048)
        var buffer = ByteBuffer()
        let bytes = [UInt8](repeating: UInt8(ascii: "A"), count: 80 * 1024) + Array("\r\nNOOP\r\n".utf8)
        var frames: [Seen] = []
        var largestHeld = 0
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + chunkSize, bytes.count)
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            while let frame = framer.next(from: &buffer) { frames.append(Seen(frame)) }
            largestHeld = max(largestHeld, buffer.readableBytes)
            // The caller may discard what was read; the framer never needs it again.
            buffer.discardReadBytes()
            #expect(buffer.capacity <= 2 * max(2048, chunkSize) + 64, "the buffer grew to \(buffer.capacity)")
        }
        #expect(largestHeld < 2048)
        #expect(frames == [.overlong(prefix: [UInt8](repeating: UInt8(ascii: "A"), count: 2046), total: 80 * 1024), .line("NOOP", .crlf)])
        #expect(!framer.isDroppingOverlongLine)
    }

    @Test("while an overlong line is being dropped the reader index advances over everything")
    func readerIndexAdvances() {
        var framer = LineFramer(maxLineOctets: 16)
        var buffer = ByteBuffer(string: String(repeating: "x", count: 100))
        #expect(framer.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 0)
        #expect(buffer.readerIndex == 100)
        #expect(framer.isDroppingOverlongLine)
        buffer.writeString(String(repeating: "y", count: 100))
        #expect(framer.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 0)
        buffer.writeString("zz\r\nQUIT\r\n")
        #expect(framer.next(from: &buffer).map(Seen.init) == .overlong(prefix: Array(repeating: UInt8(ascii: "x"), count: 14), total: 202))
        #expect(framer.next(from: &buffer).map(Seen.init) == .line("QUIT", .crlf))
    }

    @Test("a partial line is left in the buffer")
    func partialLine() {
        var framer = LineFramer(maxLineOctets: 2048)
        var buffer = ByteBuffer(string: "MAIL FROM:<a@b>\r")
        #expect(framer.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 16)
        buffer.writeString("\n")
        #expect(framer.next(from: &buffer).map(Seen.init) == .line("MAIL FROM:<a@b>", .crlf))
    }
}
