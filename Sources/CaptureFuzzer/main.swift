// libFuzzer target over packet decoding, TCP reassembly and the SMTP session layer: the input is a
// sequence of packets, each a 2-byte big-endian length followed by an Ethernet frame.
import NIOCore
import SMTPCapture
import SMTPTranscript
import TCPReassembly

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCapture(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: start, count: count)
    var reassembler = TCPReassembler()
    var sessionizer = CaptureSessionizer()
    var offset = 0
    var time: Int64 = 1_700_000_000_000_000
    var records = 0
    while offset + 2 <= input.count {
        let length = Int(input[offset]) << 8 | Int(input[offset + 1])
        offset += 2
        let packet = UnsafeRawBufferPointer(rebasing: input[offset..<min(offset + length, input.count)])
        offset += length
        time += 1000
        for linkType in [LinkType.ethernet, LinkType.raw] {
            if case .success(let segment?) = PacketDecoder.decode(linkType: linkType, packet: packet) {
                reassembler.receive(segment, at: time) { event in
                    sessionizer.receive(event) { _ in records += 1 }
                }
            }
        }
    }
    reassembler.finish { event in
        sessionizer.receive(event) { record in
            // Every record must encode.
            _ = SessionRecordEncoder.jsonLine(record)
            records += 1
        }
    }
    return 0
}
