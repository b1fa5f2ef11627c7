// libFuzzer target over SMTPCore, both directions (SECURITY.md "Fuzzing"). Build with
// `swift build --sanitize=fuzzer --sanitize=address --product SMTPCoreFuzzer`; run through tools/fuzz.
import NIOCore
import SMTPCore

/// Chunks are separated by this marker and alternate client, server, client, ... as in Suricata's
/// fuzz_applayerparserparse, so chunk boundaries are exercised as well as content.
private let marker: [UInt8] = [0xF0, 0x0D, 0xCA, 0xFE]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMTPCore(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: start, count: count))
    var inspector = SMTPInspector()
    var lenientContent: [UInt8] = []
    var side = SMTPInspector.Side.client
    var time: Int64 = 0
    for chunk in input.split(separator: marker) {
        let buffer = ByteBuffer(bytes: chunk)
        time += 1
        switch side {
        case .client: inspector.receiveClientBytes(buffer, at: Timestamp(microsecondsSinceEpoch: time))
        case .server: inspector.receiveServerBytes(buffer, at: Timestamp(microsecondsSinceEpoch: time))
        }
        side = side == .client ? .server : .client
        for event in inspector.drainEvents() {
            if case .messageContent(let content) = event.kind { lenientContent.append(contentsOf: content.readableBytesView) }
        }
    }
    inspector.finish(at: Timestamp(microsecondsSinceEpoch: time + 1))
    _ = inspector.drainEvents()

    // Invariant: DATA content reads the same whatever the chunking, and never ends early.
    var whole = ByteBuffer(bytes: input)
    var parser = DataContentParser(reportsLenientEndCandidates: false)
    var wholeContent: [UInt8] = []
    let stop = parser.parse(&whole) { wholeContent.append(contentsOf: $0.readableBytesView) }
    var dripContent: [UInt8] = []
    var dripParser = DataContentParser(reportsLenientEndCandidates: false)
    var dripStop = DataContentParser.Stop.needMoreBytes
    for byte in input {
        var one = ByteBuffer(bytes: [byte])
        dripStop = dripParser.parse(&one) { dripContent.append(contentsOf: $0.readableBytesView) }
        if dripStop == .endOfData { break }
    }
    precondition(stop == dripStop, "end of data depends on chunking")
    precondition(wholeContent == dripContent, "content depends on chunking")
    if stop == .endOfData {
        // The strict end is CRLF "." CRLF: the consumed input must end with it.
        let consumed = input[..<whole.readerIndex]
        precondition(consumed.count == 3 || consumed.suffix(5).elementsEqual([13, 10, 46, 13, 10]), "end of data without CRLF.CRLF")
    }
    return 0
}
