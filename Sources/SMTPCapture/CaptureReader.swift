import Foundation
import SMTPCore
import SMTPTranscript
import TCPReassembly

/// Reads packets from a `PcapSource` through decoding, reassembly and the sessionizer, handing
/// out each session record as soon as its flow ends, so memory stays bounded by the open flows,
/// not by the length of the capture.
///
/// A capture file is read on two threads: one reads, decodes, reassembles and inspects packets,
/// the calling thread records sessions and calls `record` and `progress`. The records, their order
/// and their content are the same as when one thread does everything (as for a live capture).
public struct CaptureReader {
    public struct Progress: Sendable {
        public var bytesRead: Int64
        public var totalBytes: Int64?
        public var packets: Int
        public var sessions: Int
    }

    public struct Summary: Sendable {
        public var packets = 0
        public var sessions = 0
        /// TCP flows with data that were not recognised as SMTP.
        public var unrecognisedFlows = 0
        public var decode = PacketDecodeStatistics()
        /// Set when the file ended mid-packet: every complete packet before it was read.
        public var truncation: PcapError?
    }

    public var sessionizer: CaptureSessionizer
    private var reassembler: TCPReassembler
    public private(set) var summary = Summary()

    public init(options: CaptureSessionizer.Options = .init(), reassembly: ReassemblyLimits = .init(), sessionIDs: SessionIDGenerator = SessionIDGenerator()) {
        self.sessionizer = CaptureSessionizer(options: options, sessionIDs: sessionIDs)
        self.reassembler = TCPReassembler(limits: reassembly, serverPorts: options.ports)
    }

    /// Reads every packet of `source`; `progress` is called about every 4096 packets. Both
    /// closures are called on the calling thread.
    public mutating func read(
        _ source: PcapSource,
        record: (SessionRecord) -> Void,
        progress: ((Progress) -> Void)? = nil
    ) throws(PcapError) {
        try read(source, session: { record($0.record) }, progress: progress)
    }

    /// `read`, with each session's kept message readings beside its record.
    public mutating func read(
        _ source: PcapSource,
        session record: (CapturedSession) -> Void,
        progress: ((Progress) -> Void)? = nil
    ) throws(PcapError) {
        try source.checkLinkType()
        summary.truncation = nil
        if source.fileSize != nil {
            try readPipelined(source, record: record, progress: progress)
            return
        }
        let linkType = source.linkType
        var packets = 0
        do {
            try source.forEachPacket { time, packet, _ in
                let result = PacketDecoder.decode(linkType: linkType, packet: packet)
                summary.decode.record(result)
                packets += 1
                if case .success(let segment?) = result {
                    reassembler.receive(segment, at: time) { event in
                        sessionizer.receive(event, session: record)
                    }
                }
                if packets & 0xFFF == 0 {
                    reassembler.expireIdleFlows(now: time) { event in
                        sessionizer.receive(event, session: record)
                    }
                    progress?(Progress(bytesRead: source.bytesRead, totalBytes: source.fileSize, packets: summary.packets + packets, sessions: sessionizer.sessionsRecorded))
                }
                return true
            }
        } catch {
            guard case .truncatedFile = error else {
                summary.packets += packets
                throw error
            }
            summary.truncation = error
        }
        summary.packets += packets
    }

    /// `read` for a file: the packet side runs on a thread of its own (see `CapturePipelineReader`).
    private mutating func readPipelined(
        _ source: PcapSource,
        record: (CapturedSession) -> Void,
        progress: ((Progress) -> Void)?
    ) throws(PcapError) {
        let channel = StepChannel()
        let sourceTransfer = PcapSourceTransfer(value: source)
        let reassemblerTransfer = TCPReassemblerTransfer(value: reassembler)
        let inspection = sessionizer.inspection
        let decode = summary.decode
        let packetsBefore = summary.packets
        let thread = Thread {
            CapturePipelineReader.run(
                source: sourceTransfer,
                reassembler: reassemblerTransfer,
                inspection: inspection,
                decode: decode,
                packetsBefore: packetsBefore,
                channel: channel
            )
        }
        thread.start()
        var end: CapturePipelineEnd?
        while end == nil {
            let batch = channel.receive()
            for step in batch.steps { sessionizer.recording.apply(step, record: record) }
            if let update = batch.progress { progress?(update) }
            end = batch.end
        }
        // The reading thread's last act was to send `end`: its state is ours again.
        guard let end else { return }
        reassembler = end.reassembler.value
        sessionizer.inspection = end.inspection
        summary.decode = end.decode
        summary.packets += end.packets
        if let error = end.error {
            guard case .truncatedFile = error else { throw error }
            summary.truncation = error
        }
    }

    /// Ends every open flow: call once after the last source.
    public mutating func finish(record: (SessionRecord) -> Void) {
        finish(session: { record($0.record) })
    }

    /// `finish`, with each session's kept message readings beside its record.
    public mutating func finish(session record: (CapturedSession) -> Void) {
        reassembler.finish { event in
            sessionizer.receive(event, session: record)
        }
        summary.sessions = sessionizer.sessionsRecorded
        summary.unrecognisedFlows = sessionizer.unrecognisedFlows
    }
}
