import NIOCore
import SMTPCore

/// SMTPCore under hostile input (README, "Fuzzing and sanitizers"): the passive inspector over both
/// directions, and the canonical content round trip `DataContentParser` -> `DataContentWriter` ->
/// `DataContentParser`.
public enum SMTPCoreHarness {
    public static func run(_ input: [UInt8]) throws(FuzzInvariantViolation) {
        let chunks = FuzzInput.chunks(input)
        inspect(chunks)
        let joined = Array(chunks.joined())
        try checkDataContentReading(joined, chunks: chunks)
        try checkCanonicalWriting(joined, chunks: chunks)
    }

    /// The inspector over chunks alternating client, server, client, ...: it must neither trap nor
    /// hang, whatever the order of events.
    private static func inspect(_ chunks: [ArraySlice<UInt8>]) {
        var inspector = SMTPInspector()
        var side = SMTPInspector.Side.client
        var time: Int64 = 0
        for chunk in chunks {
            time += 1
            let buffer = ByteBuffer(bytes: chunk)
            switch side {
            case .client: inspector.receiveClientBytes(buffer, at: Timestamp(microsecondsSinceEpoch: time))
            case .server: inspector.receiveServerBytes(buffer, at: Timestamp(microsecondsSinceEpoch: time))
            }
            side = side == .client ? .server : .client
            _ = inspector.drainEvents()
        }
        inspector.finish(at: Timestamp(microsecondsSinceEpoch: time + 1))
        _ = inspector.drainEvents()
    }

    /// A DATA content reading (strict, the relay's): how the input is split must change nothing.
    struct Reading: Equatable {
        var stop: DataContentParser.Stop
        var consumed: Int
        var content: [UInt8]
        var observations: DataContentParser.Observations
    }

    static func read(_ pieces: [ArraySlice<UInt8>]) -> Reading {
        var parser = DataContentParser(reportsLenientEndCandidates: false)
        var content: [UInt8] = []
        var consumed = 0
        for piece in pieces {
            var buffer = ByteBuffer(bytes: piece)
            let stop = parser.parse(&buffer) { content.append(contentsOf: $0.readableBytesView) }
            consumed += buffer.readerIndex
            if stop == .endOfData {
                return Reading(stop: stop, consumed: consumed, content: content, observations: parser.observations)
            }
        }
        return Reading(stop: .needMoreBytes, consumed: consumed, content: content, observations: parser.observations)
    }

    private static func checkDataContentReading(_ joined: [UInt8], chunks: [ArraySlice<UInt8>]) throws(FuzzInvariantViolation) {
        let whole = read([joined[...]])
        let chunked = read(chunks)
        let drip = read(joined.indices.map { joined[$0...$0] })
        guard whole == chunked, whole == drip else {
            throw FuzzInvariantViolation("DATA content reads differently when split: whole \(whole.stop) \(whole.consumed), chunked \(chunked.stop) \(chunked.consumed), drip \(drip.stop) \(drip.consumed)")
        }
        if whole.stop == .endOfData {
            // The strict end is CRLF "." CRLF (or "." CRLF as the very first line).
            let consumed = joined[..<whole.consumed]
            guard consumed.count == 3 ? consumed.elementsEqual([46, 13, 10]) : consumed.suffix(5).elementsEqual([13, 10, 46, 13, 10]) else {
                throw FuzzInvariantViolation("end of data without CRLF.CRLF after \(Array(consumed).shown)")
            }
        }
        // Whatever was read as content is written back canonically, then read again.
        try roundTrip(whole.content, pieces: [whole.content[...]])
    }

    /// The input taken as content octets (as BDAT carries them), written in the chunks given.
    private static func checkCanonicalWriting(_ joined: [UInt8], chunks: [ArraySlice<UInt8>]) throws(FuzzInvariantViolation) {
        try roundTrip(joined, pieces: chunks)
    }

    /// The fuzzing invariants: the serialised stream never holds a bare CR or LF; `CRLF.CRLF` appears
    /// only at its real end; reading it again gives the same content. Content the writer refuses
    /// must really hold the octet it names, where it says.
    static func roundTrip(_ content: [UInt8], pieces: [ArraySlice<UInt8>]) throws(FuzzInvariantViolation) {
        var writer = DataContentWriter()
        var wire = ByteBuffer()
        // Where the piece being written started: on a refusal the caller discards that piece's
        // output (the writer's contract), so only what came before can have reached the wire.
        var pieceStart = 0
        do {
            for piece in pieces {
                pieceStart = wire.writerIndex
                try writer.write(ByteBuffer(bytes: piece), into: &wire)
            }
            pieceStart = wire.writerIndex
            try writer.finish(into: &wire)
            try checkSerialised(Array(wire.readableBytesView), content: content)
        } catch let refusal as DataContentWriter.ForbiddenOctet {
            try checkRefusal(refusal, content: content, partial: Array(wire.readableBytesView.prefix(pieceStart)))
        } catch let violation as FuzzInvariantViolation {
            throw violation
        } catch {
            throw FuzzInvariantViolation("unexpected error \(error)")
        }
    }

    static func checkSerialised(_ wire: [UInt8], content: [UInt8]) throws(FuzzInvariantViolation) {
        guard LineEnds.isCanonical(wire) else {
            throw FuzzInvariantViolation("serialised content holds a bare CR or LF: \(wire.shown)")
        }
        let again = read([wire[...]])
        guard again.stop == .endOfData, again.consumed == wire.count else {
            throw FuzzInvariantViolation("serialised content ends at \(again.consumed) of \(wire.count) (\(again.stop)): \(wire.shown)")
        }
        guard again.content == content || again.content == content + [13, 10] else {
            throw FuzzInvariantViolation("serialised content reads back differently: \(again.content.shown) for \(content.shown)")
        }
        if again.content != content {
            // BDAT content may end without CRLF: the writer adds one, and only then.
            guard content.last != 10 else {
                throw FuzzInvariantViolation("the writer added a CRLF after content ending in LF")
            }
        }
    }

    private static func checkRefusal(_ refusal: DataContentWriter.ForbiddenOctet, content: [UInt8], partial: [UInt8]) throws(FuzzInvariantViolation) {
        let offset = refusal.offset
        guard offset >= 0, offset < content.count else {
            throw FuzzInvariantViolation("refusal at octet \(offset) of \(content.count)")
        }
        let named: Bool = switch refusal.octet {
        case .nul: content[offset] == 0
        case .bareLF: content[offset] == 10 && (offset == 0 || content[offset - 1] != 13)
        case .bareCR: content[offset] == 13 && (offset + 1 == content.count || content[offset + 1] != 10)
        }
        guard named else {
            throw FuzzInvariantViolation("refused \(refusal.octet) at \(offset), which is \(content[offset])")
        }
        // The first forbidden octet is the one named.
        var previousWasCR = false
        let firstBare = LineEnds.firstBareLineEnd(content[..<offset], previousWasCR: &previousWasCR)
        guard firstBare == nil, !content[..<offset].contains(0) else {
            throw FuzzInvariantViolation("refused \(refusal.octet) at \(offset), but an earlier octet was forbidden")
        }
        // What was written before the refusal must not end a message or hold a bare line end.
        guard LineEnds.isCanonical(partial) else {
            throw FuzzInvariantViolation("content written before a refusal holds a bare CR or LF")
        }
        let again = read([partial[...]])
        guard again.stop == .needMoreBytes else {
            throw FuzzInvariantViolation("content written before a refusal ends the message")
        }
    }
}
