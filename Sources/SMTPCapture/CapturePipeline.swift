import Foundation
import SMTPTranscript
import TCPReassembly

/// Moves `SessionStep`s from the thread that reads, decodes, reassembles and inspects packets to the
/// thread that records sessions, in batches, in order.
///
/// Bounded: the reading thread waits while `capacity` batches are queued, and a batch closes at
/// `maxEventsPerBatch` steps and events or `maxOctetsPerBatch` octets of message content held (past
/// it by at most one packet's worth), so memory stays flat however fast one side is.
final class StepChannel: @unchecked Sendable {
    struct Batch: Sendable {
        var steps: [SessionStep] = []
        var progress: CaptureReader.Progress?
        /// Set on the last batch of a read, with what the reading thread ended with.
        var end: CapturePipelineEnd?
    }

    static let capacity = 4
    static let maxEventsPerBatch = 2048
    static let maxOctetsPerBatch = 256 * 1024

    // Guards `queue`; `NSCondition` is both the lock and the wake-up for either side.
    private let condition = NSCondition()
    private var queue: [Batch] = []

    func send(_ batch: Batch) {
        condition.lock()
        while queue.count >= Self.capacity { condition.wait() }
        queue.append(batch)
        condition.broadcast()
        condition.unlock()
    }

    func receive() -> Batch {
        condition.lock()
        while queue.isEmpty { condition.wait() }
        let batch = queue.removeFirst()
        condition.broadcast()
        condition.unlock()
        return batch
    }
}

/// What the reading thread hands back when the source is done.
struct CapturePipelineEnd: Sendable {
    var reassembler: TCPReassemblerTransfer
    var inspection: SessionInspection
    var decode: PacketDecodeStatistics
    var packets: Int
    var error: PcapError?
}

/// `TCPReassembler` is a plain value without a `Sendable` conformance of its own; the pipeline
/// hands it to the reading thread and back, never sharing it.
struct TCPReassemblerTransfer: @unchecked Sendable {
    var value: TCPReassembler
}

/// `PcapSource` is a class bound to one thread at a time; the pipeline lends it to the reading
/// thread while the caller waits in `CaptureReader.read`.
struct PcapSourceTransfer: @unchecked Sendable {
    let value: PcapSource
}

/// The reading thread's loop: packets in, steps out.
enum CapturePipelineReader {
    static func run(
        source: PcapSourceTransfer,
        reassembler: TCPReassemblerTransfer,
        inspection: SessionInspection,
        decode: PacketDecodeStatistics,
        packetsBefore: Int,
        channel: StepChannel
    ) {
        let source = source.value
        var reassembler = reassembler.value
        var inspection = inspection
        var decode = decode
        var batch = StepChannel.Batch()
        var events = 0
        var octets = 0
        var packets = 0
        var failure: PcapError?
        let linkType = source.linkType

        func flushIfFull(_ batch: inout StepChannel.Batch, _ events: inout Int, _ octets: inout Int) {
            guard events >= StepChannel.maxEventsPerBatch || octets >= StepChannel.maxOctetsPerBatch else { return }
            channel.send(batch)
            batch = StepChannel.Batch()
            batch.steps.reserveCapacity(StepChannel.maxEventsPerBatch / 2)
            events = 0
            octets = 0
        }
        batch.steps.reserveCapacity(StepChannel.maxEventsPerBatch / 2)
        do {
            try source.forEachPacket { time, packet, _ in
                let result = PacketDecoder.decode(linkType: linkType, packet: packet)
                decode.record(result)
                packets += 1
                if case .success(let segment?) = result {
                    let before = batch.steps.count
                    reassembler.receive(segment, at: time) { event in
                        inspection.receive(event, into: &batch.steps)
                    }
                    for index in before..<batch.steps.count {
                        let weight = batch.steps[index].weight
                        events += weight.events
                        octets += weight.octets
                    }
                }
                if packets & 0xFFF == 0 {
                    reassembler.expireIdleFlows(now: time) { event in
                        inspection.receive(event, into: &batch.steps)
                    }
                    batch.progress = CaptureReader.Progress(
                        bytesRead: source.bytesRead,
                        totalBytes: source.fileSize,
                        packets: packetsBefore + packets,
                        sessions: inspection.sessionsRecorded
                    )
                    channel.send(batch)
                    batch = StepChannel.Batch()
                    batch.steps.reserveCapacity(StepChannel.maxEventsPerBatch / 2)
                    events = 0
                    octets = 0
                }
                flushIfFull(&batch, &events, &octets)
                return true
            }
        } catch {
            failure = error
        }
        batch.end = CapturePipelineEnd(
            reassembler: TCPReassemblerTransfer(value: reassembler),
            inspection: inspection,
            decode: decode,
            packets: packets,
            error: failure
        )
        channel.send(batch)
    }
}
