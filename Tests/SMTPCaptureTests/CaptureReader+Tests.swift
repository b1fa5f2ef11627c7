import Foundation
import SMTPCapture
import SMTPTranscript
import TCPReassembly
import Testing

/// Every capture of the corpus fixtures (see Fixtures/corpus/SOURCES.md).
private func corpusCaptures() throws -> [String] {
    let base = try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures/corpus")
    let files = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil)?
        .compactMap { ($0 as? URL)?.path }
        .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") || $0.hasSuffix(".pcap.gz") } ?? []
    return files.sorted()
}

/// The same work as `CaptureReader` does, on one thread: packets, reassembly and the sessionizer,
/// in the order `CaptureReader` documents.
private func recordsOnOneThread(_ paths: [String], options: CaptureSessionizer.Options) throws -> (records: [SessionRecord], packets: Int) {
    var records: [SessionRecord] = []
    var sessionizer = CaptureSessionizer(options: options, sessionIDs: sessionIDs(paths))
    var reassembler = TCPReassembler(limits: ReassemblyLimits(), serverPorts: options.ports)
    var packets = 0
    for path in paths {
        let source = try PcapSource.openFile(path: path)
        let linkType = source.linkType
        var packetsOfFile = 0
        do {
            try source.forEachPacket { time, packet, _ in
                packetsOfFile += 1
                if case .success(let segment?) = PacketDecoder.decode(linkType: linkType, packet: packet) {
                    reassembler.receive(segment, at: time) { sessionizer.receive($0) { records.append($0) } }
                }
                if packetsOfFile & 0xFFF == 0 {
                    reassembler.expireIdleFlows(now: time) { sessionizer.receive($0) { records.append($0) } }
                }
                return true
            }
        } catch {
            guard case .truncatedFile = error else { throw error }
        }
        packets += packetsOfFile
    }
    reassembler.finish { sessionizer.receive($0) { records.append($0) } }
    return (records, packets)
}

private func sessionIDs(_ paths: [String]) -> SessionIDGenerator {
    SessionIDGenerator(random: DeterministicRandom(seedingFrom: paths.map { String($0.split(separator: "/").last ?? "") }))
}

private func recordsThroughReader(_ paths: [String], options: CaptureSessionizer.Options) throws -> (records: [SessionRecord], reader: CaptureReader) {
    var records: [SessionRecord] = []
    var reader = CaptureReader(options: options, sessionIDs: sessionIDs(paths))
    for path in paths {
        try reader.read(try PcapSource.openFile(path: path), record: { records.append($0) })
    }
    reader.finish { records.append($0) }
    return (records, reader)
}

struct CaptureReaderTests {
    /// A file is read on two threads; that must not change a single record, nor their order.
    @Test func readingAFileOnTwoThreadsGivesTheRecordsOfOneThread() throws {
        let captures = try corpusCaptures()
        #expect(captures.count >= 30)
        for capture in captures {
            let expected = try recordsOnOneThread([capture], options: CaptureSessionizer.Options())
            let actual = try recordsThroughReader([capture], options: CaptureSessionizer.Options())
            #expect(actual.records == expected.records, "\(capture)")
            #expect(actual.reader.summary.packets == expected.packets, "\(capture)")
            #expect(actual.reader.summary.sessions == expected.records.count, "\(capture)")
        }
    }

    /// Flows go on from one file to the next of the same read, as they do on one thread.
    @Test func severalFilesInOneReaderGiveTheRecordsOfOneThread() throws {
        let captures = try corpusCaptures()
        let expected = try recordsOnOneThread(captures, options: CaptureSessionizer.Options())
        let actual = try recordsThroughReader(captures, options: CaptureSessionizer.Options())
        #expect(actual.records.count == expected.records.count)
        #expect(actual.records == expected.records)
        #expect(actual.reader.summary.packets == expected.packets)
    }

    /// A file cut short still gives every record the complete packets make, and says so.
    @Test func aTruncatedFileGivesTheRecordsOfOneThreadAndATruncation() throws {
        let capture = try #require(try corpusCaptures().first { $0.hasSuffix("zeek/smtp.pcap") })
        let bytes = try Data(contentsOf: URL(fileURLWithPath: capture))
        let cut = FileManager.default.temporaryDirectory.appendingPathComponent("smtpscope-cut-\(UUID().uuidString).pcap")
        try bytes.prefix(bytes.count * 3 / 5).write(to: cut)
        defer { try? FileManager.default.removeItem(at: cut) }
        let expected = try recordsOnOneThread([cut.path], options: CaptureSessionizer.Options())
        var records: [SessionRecord] = []
        var reader = CaptureReader(options: CaptureSessionizer.Options(), sessionIDs: sessionIDs([cut.path]))
        try reader.read(try PcapSource.openFile(path: cut.path), record: { records.append($0) })
        reader.finish { records.append($0) }
        #expect(reader.summary.truncation != nil)
        #expect(reader.summary.packets == expected.packets)
        #expect(records == expected.records)
        #expect(!records.isEmpty)
    }
}
