import NIOCore
import SMTPCapture
import SMTPTranscript
import TCPReassembly

/// Raw link-layer packets through packet decoding, TCP reassembly and the SMTP session layer, as
/// `smtpscope pcap` reads a capture. The input is a sequence of packets, each a 2-octet big-endian
/// length and the frame; every frame is tried as Ethernet and as raw IP. Every record must encode.
public enum CaptureHarness {
    public static func run(_ input: [UInt8]) {
        input.withUnsafeBytes { run(packets: $0) }
    }

    private static func run(packets input: UnsafeRawBufferPointer) {
        var reassembler = TCPReassembler()
        var sessionizer = CaptureSessionizer()
        var offset = 0
        var time: Int64 = 1_700_000_000_000_000
        while offset + 2 <= input.count {
            let length = Int(input[offset]) << 8 | Int(input[offset + 1])
            offset += 2
            let packet = UnsafeRawBufferPointer(rebasing: input[offset..<min(offset + length, input.count)])
            offset += length
            time += 1000
            for linkType in [LinkType.ethernet, LinkType.raw] {
                if case .success(let segment?) = PacketDecoder.decode(linkType: linkType, packet: packet) {
                    reassembler.receive(segment, at: time) { event in
                        sessionizer.receive(event) { record in _ = SessionRecordEncoder.jsonLine(record) }
                    }
                }
            }
        }
        reassembler.finish { event in
            sessionizer.receive(event) { record in _ = SessionRecordEncoder.jsonLine(record) }
        }
    }
}
