import Dispatch
import Foundation
import NIOCore
import SMTPCapture
import TCPReassembly
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Paths of the test fixtures (real captures from other projects, see Fixtures/corpus/SOURCES.md).
private enum Fixture {
    static func path(_ relative: String) throws -> String {
        let base = try #require(Bundle.module.resourceURL)
        return base.appendingPathComponent("Fixtures").appendingPathComponent(relative).path
    }

    static func temporaryFile(_ name: String, contents: Data) throws -> String {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("smtpscope-pcap-tests-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent(name)
        try contents.write(to: url)
        return url.path
    }
}

/// Each corpus capture with the packet count `tshark -r FILE | wc -l` reported (tshark 4.0.17).
private let corpusPacketCounts: [(String, Int)] = [
    ("arkime/smtp-data-250.pcap", 30),
    ("arkime/smtp-data-521.pcap", 38),
    ("arkime/smtp-decrypted.pcap", 110),
    ("arkime/smtp-rcpt-553.pcap", 16),
    ("arkime/socks5-smtp-503.pcap", 20),
    ("ndpi/smtp-starttls.pcap", 69),
    ("ndpi/smtp.pcap", 95),
    ("suricata-verify/bug-3616-smtp/input.pcap", 60),
    ("suricata-verify/smtp-bdat-bad-tail-reply-queue/input.pcap", 22),
    ("suricata-verify/smtp-bdat-pipelined-next-mail/input.pcap", 23),
    ("suricata-verify/smtp-data-rejected/10.7.29.101_49898-178.63.41.150_25.pcap", 199),
    ("suricata-verify/smtp-ehlo-reset-after-rejected-data/input.pcap", 25),
    ("suricata-verify/smtp-errors/smtperr.pcap", 158),
    ("suricata-verify/smtp-long-DATA-line/input.pcap", 48),
    ("suricata-verify/smtp-long-command/input.pcap", 25),
    ("suricata-verify/smtp-pipelined-post-data-rset-sequence/input.pcap", 25),
    ("suricata-verify/smtp-pipelining/input.pcap", 18),
    ("suricata-verify/smtp-rfc2231/input.pcap", 151),
    ("suricata-verify/smtp-startssl/input.pcap", 38),
    ("suricata-verify/smtp-tls-protodetect/input.pcap", 7),
    ("zeek/rfc3030-bdat-example1.pcap", 28),
    ("zeek/rfc3030-bdat-multipart-chunked.pcap", 184),
    ("zeek/smtp-attachment-msg.pcap", 17),
    ("zeek/smtp-bdat-cmd-invalid.pcapng", 66),
    ("zeek/smtp-bdat-gap.pcap", 40),
    ("zeek/smtp-bdat-pipeline-8bitmime.pcap", 33),
    ("zeek/smtp-mail-transactions-invalid.pcap", 76),
    ("zeek/smtp-many-addresses.pcap.gz", 2508),
    ("zeek/smtp-multi-addr.pcap", 21),
    ("zeek/smtp-one-side-only.pcap", 19),
    ("zeek/smtp-starttls.pcap", 37),
    ("zeek/smtp.pcap", 125),
]

private func countPackets(_ source: PcapSource) throws(PcapError) -> Int {
    var count = 0
    try source.forEachPacket { _, _, _ in
        count += 1
        return true
    }
    return count
}

struct PcapSourceTests {
    @Test(arguments: corpusPacketCounts)
    func readsEveryCorpusCaptureLikeTshark(file: String, tsharkPackets: Int) throws {
        let source = try PcapSource.openFile(path: try Fixture.path("corpus/" + file))
        try source.checkLinkType()
        var statistics = PacketDecodeStatistics()
        var lastTime: Int64 = 0
        try source.forEachPacket { time, packet, originalLength in
            #expect(packet.count <= originalLength)
            lastTime = time
            statistics.record(PacketDecoder.decode(linkType: source.linkType, packet: packet))
            return true
        }
        #expect(source.packetsRead == tsharkPackets)
        #expect(statistics.total == tsharkPackets)
        #expect(statistics.damaged == 0)
        #expect(statistics.tcpSegments > 0)
        // Between 1990 and 2030: microseconds, not nanoseconds or seconds (ndpi/smtp.pcap is from 1999).
        #expect(lastTime > 631_152_000_000_000 && lastTime < 1_893_456_000_000_000)
        #expect(source.bytesRead == source.fileSize)
    }

    @Test func readsGzipCompressedCaptureTransparently() throws {
        let path = try Fixture.path("corpus/zeek/smtp-many-addresses.pcap.gz")
        let source = try PcapSource.openFile(path: path)
        #expect(source.linkType == LinkType.ethernet)
        var progress: [Int64] = []
        try source.forEachPacket { _, _, _ in
            progress.append(source.bytesRead)
            return true
        }
        #expect(progress.count == 2508)
        #expect(progress == progress.sorted())
        // Progress counts compressed bytes, so it ends at the file size.
        #expect(source.bytesRead == source.fileSize)
        #expect(try #require(source.fileSize) < 200_000)
    }

    @Test func readsPcapng() throws {
        let source = try PcapSource.openFile(path: try Fixture.path("corpus/zeek/smtp-bdat-cmd-invalid.pcapng"))
        #expect(try countPackets(source) == 66)
        #expect(source.linkTypeName == "EN10MB")
    }

    @Test func nanosecondCaptureGivesMicrosecondTimestamps() throws {
        func times(_ relative: String) throws -> [Int64] {
            let source = try PcapSource.openFile(path: try Fixture.path(relative))
            var times: [Int64] = []
            try source.forEachPacket { time, _, _ in
                times.append(time)
                return true
            }
            return times
        }
        let nanosecond = try times("pcap-source/rfc3030-bdat-example1.nsec.pcap")
        #expect(nanosecond == (try times("corpus/zeek/rfc3030-bdat-example1.pcap")))
        #expect(nanosecond.first == 1_702_397_979_965_276)
    }

    @Test func stopsWhenTheBodyReturnsFalse() throws {
        let source = try PcapSource.openFile(path: try Fixture.path("corpus/zeek/smtp.pcap"))
        var seen = 0
        try source.forEachPacket { _, _, _ in
            seen += 1
            return seen < 10
        }
        #expect(seen == 10)
        #expect(source.packetsRead == 10)
    }

    @Test func stopFlagEndsTheLoop() throws {
        let flag = PcapStopFlag()
        let source = try PcapSource.openFile(path: try Fixture.path("corpus/zeek/smtp.pcap"), stopFlag: flag)
        var seen = 0
        try source.forEachPacket { _, _, _ in
            seen += 1
            if seen == 3 { flag.requestStop() }
            return true
        }
        #expect(seen == 3)
    }

    @Test func appliesAFilterToAFile() throws {
        let source = try PcapSource.openFile(path: try Fixture.path("corpus/zeek/smtp.pcap"), filter: "tcp port 25")
        // tcpdump -r zeek/smtp.pcap 'tcp port 25' | wc -l (the same BPF filter through libpcap).
        #expect(try countPackets(source) == 80)
    }

    @Test func missingFileIsReported() throws {
        #expect(throws: PcapError.fileNotFound(path: "/nonexistent/capture.pcap")) {
            try PcapSource.openFile(path: "/nonexistent/capture.pcap")
        }
        #expect(PcapError.fileNotFound(path: "x.pcap").description == "x.pcap: file not found")
    }

    @Test func textFileIsNotACaptureFile() throws {
        let path = try Fixture.temporaryFile("notes.txt", contents: Data("EHLO this is not a capture\r\n".utf8))
        #expect(throws: PcapError.notACaptureFile(path: path)) { try PcapSource.openFile(path: path) }
        #expect(PcapError.notACaptureFile(path: "a").description == "a: not a pcap or pcapng file")
    }

    @Test func emptyFileIsNotACaptureFile() throws {
        let path = try Fixture.temporaryFile("empty.pcap", contents: Data())
        #expect(throws: PcapError.notACaptureFile(path: path)) { try PcapSource.openFile(path: path) }
    }

    @Test func directoryCannotBeOpened() throws {
        let directory = FileManager.default.temporaryDirectory.path
        #expect(throws: PcapError.cannotOpen(directory, message: String(cString: strerror(EISDIR)))) {
            try PcapSource.openFile(path: directory)
        }
    }

    @Test func truncatedFileReportsThePacketsReadBeforeTheCut() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: try Fixture.path("corpus/zeek/smtp.pcap")))
        let path = try Fixture.temporaryFile("cut.pcap", contents: original.prefix(original.count - 10))
        let source = try PcapSource.openFile(path: path)
        var seen = 0
        #expect(throws: PcapError.truncatedFile(path: path, packetsRead: 124)) {
            try source.forEachPacket { _, _, _ in
                seen += 1
                return true
            }
        }
        #expect(seen == 124)
        #expect(
            PcapError.truncatedFile(path: "a", packetsRead: 124).description
                == "a: file is truncated; 124 complete packets were read before the cut"
        )
    }

    @Test func truncatedGzipFileReportsThePacketsReadBeforeTheCut() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: try Fixture.path("corpus/zeek/smtp-many-addresses.pcap.gz")))
        let path = try Fixture.temporaryFile("cut.pcap.gz", contents: original.prefix(original.count / 2))
        let source = try PcapSource.openFile(path: path)
        var seen = 0
        do {
            try source.forEachPacket { _, _, _ in
                seen += 1
                return true
            }
            Issue.record("a cut gzip file must not read as complete")
        } catch {
            guard case .truncatedFile(_, let packetsRead) = error else {
                Issue.record("expected truncatedFile, got \(error)")
                return
            }
            #expect(packetsRead == seen)
            #expect(seen > 100 && seen < 2508)
        }
    }

    @Test func cutFileHeaderIsATruncatedFile() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: try Fixture.path("corpus/zeek/smtp.pcap")))
        let path = try Fixture.temporaryFile("header-cut.pcap", contents: original.prefix(12))
        #expect(throws: PcapError.notACaptureFile(path: path)) { try PcapSource.openFile(path: path) }
    }

    @Test func unsupportedLinkTypeHasAClearMessage() {
        let error = PcapError.unsupportedLinkType(105, name: "IEEE802_11")
        #expect(error.description.hasPrefix("unsupported link type 105 (IEEE802_11); supported: 0, 1, 12"))
    }

    @Test func invalidFilterReportsLibpcapsMessage() throws {
        let path = try Fixture.path("corpus/zeek/smtp.pcap")
        do {
            _ = try PcapSource.openFile(path: path, filter: "tcp port banana")
            Issue.record("the filter must be rejected")
        } catch {
            guard case .invalidFilter(let filter, let message) = error else {
                Issue.record("expected invalidFilter, got \(error)")
                return
            }
            #expect(filter == "tcp port banana")
            #expect(!message.isEmpty)
        }
    }

    @Test func unknownInterfaceCannotBeOpened() {
        do {
            _ = try PcapSource.openLive(interface: "smtpscope-no-such-if0", filter: nil)
            Issue.record("a missing interface must not open")
        } catch {
            guard case .cannotOpen(let name, _) = error else {
                Issue.record("expected cannotOpen, got \(error)")
                return
            }
            #expect(name == "smtpscope-no-such-if0")
        }
    }

    @Test(.enabled(if: getuid() == 0, "live capture needs root or CAP_NET_RAW"))
    func liveCaptureOnLoopbackSeesAConnection() throws {
        let listener = try LoopbackListener()
        let flag = PcapStopFlag()
        let source = try PcapSource.openLive(interface: "lo", filter: "tcp port \(listener.port)", stopFlag: flag)
        try source.checkLinkType()
        // Safety net: never hang the suite.
        DispatchQueue.global().asyncAfter(deadline: .now() + 10) { flag.requestStop() }
        try listener.connectAndSend("EHLO live\r\n")
        var sawPayload = false
        try source.forEachPacket { _, packet, _ in
            if case .success(.some(let segment)) = PacketDecoder.decode(linkType: source.linkType, packet: packet),
                segment.destination.port == listener.port,
                String(decoding: segment.payload.readableBytesView, as: UTF8.self) == "EHLO live\r\n"
            {
                sawPayload = true
                return false
            }
            return true
        }
        #expect(sawPayload)
        #expect(source.packetsDropped == 0)
        #expect(source.fileSize == nil)
    }

    @Test(.enabled(if: getuid() == 0, "live capture needs root or CAP_NET_RAW"))
    func liveCaptureHonoursAStopRequestFromAnotherThread() throws {
        let flag = PcapStopFlag()
        let source = try PcapSource.openLive(interface: "lo", filter: "tcp port 9", stopFlag: flag)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { flag.requestStop() }
        var seen = 0
        try source.forEachPacket { _, _, _ in
            seen += 1
            return true
        }
        #expect(flag.isStopRequested)
    }
}

/// Each SMTP flow of some corpus captures, reassembled, against `tshark -q -z follow,tcp,raw,N`:
/// octet counts and FNV-1a 64 digests of each direction (tshark 4.0.17), and the client-side holes.
/// tshark writes a hole as the text `[N bytes missing in capture file]`; that text is left out here.
private struct FollowExpectation: Sendable, CustomTestStringConvertible {
    let file: String
    let clientPort: UInt16
    let clientOctets: Int
    let clientDigest: UInt64
    let serverOctets: Int
    let serverDigest: UInt64
    var missing: [UInt64] = []

    var testDescription: String { "\(file) client port \(clientPort)" }
}

private let followExpectations: [FollowExpectation] = [
    FollowExpectation(file: "zeek/smtp.pcap", clientPort: 1470, clientOctets: 14705, clientDigest: 0xd6aa_4e95_5ed3_a66f, serverOctets: 538, serverDigest: 0xa596_d944_fa0a_2432),
    FollowExpectation(file: "zeek/smtp.pcap", clientPort: 49648, clientOctets: 969, clientDigest: 0x5827_e4c4_7c94_f4fb, serverOctets: 162, serverDigest: 0xda89_2dea_470e_9aad),
    FollowExpectation(file: "ndpi/smtp-starttls.pcap", clientPort: 57406, clientOctets: 1384, clientDigest: 0x15b4_6f44_1205_b22f, serverOctets: 4627, serverDigest: 0x69a7_5b28_a405_635d),
    FollowExpectation(file: "ndpi/smtp-starttls.pcap", clientPort: 7562, clientOctets: 1734, clientDigest: 0x660c_4f11_07e5_08bb, serverOctets: 2097, serverDigest: 0xf922_1eba_631a_0377, missing: [5760]),
    FollowExpectation(file: "suricata-verify/smtp-pipelining/input.pcap", clientPort: 50287, clientOctets: 104, clientDigest: 0x4a85_dffe_8188_d5f4, serverOctets: 298, serverDigest: 0x69ca_5b40_9b09_9f9e),
    FollowExpectation(file: "zeek/smtp-many-addresses.pcap.gz", clientPort: 60606, clientOctets: 137_648, clientDigest: 0x7f71_47a8_97b6_056a, serverOctets: 5024, serverDigest: 0x6611_82c9_4954_a7cf),
    FollowExpectation(file: "zeek/smtp-bdat-cmd-invalid.pcapng", clientPort: 52364, clientOctets: 96, clientDigest: 0x5600_bbb5_fb1d_d33c, serverOctets: 261, serverDigest: 0xc6b4_d863_97bc_7e10),
    // 1000 octets of a BDAT chunk are missing from the capture.
    FollowExpectation(file: "zeek/smtp-bdat-gap.pcap", clientPort: 12345, clientOctets: 293, clientDigest: 0x6fc7_e38b_a375_c0ae, serverOctets: 180, serverDigest: 0xc75e_3380_00e2_40a2, missing: [1000]),
    FollowExpectation(file: "zeek/smtp-attachment-msg.pcap", clientPort: 56660, clientOctets: 688, clientDigest: 0x4391_faef_2d32_09a1, serverOctets: 0, serverDigest: 0xcbf2_9ce4_8422_2325),
]

private struct FNV1a64 {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: ByteBuffer) {
        for byte in bytes.readableBytesView {
            value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
    }
}

struct PcapCorpusReassemblyTests {
    @Test(arguments: followExpectations)
    fileprivate func reassembledStreamsMatchTshark(_ expected: FollowExpectation) throws {
        let source = try PcapSource.openFile(path: try Fixture.path("corpus/" + expected.file))
        var reassembler = TCPReassembler()
        var flow: FlowID?
        var octets: [FlowDirection: Int] = [:]
        var digests: [FlowDirection: FNV1a64] = [.clientToServer: FNV1a64(), .serverToClient: FNV1a64()]
        var missing: [UInt64] = []
        var closes = 0
        let handle: (FlowEvent) -> Void = { event in
            switch event {
            case .opened(let id, let client, _, _, _) where client.port == expected.clientPort:
                flow = id
            case .data(let id, let direction, let bytes, _) where id == flow:
                octets[direction, default: 0] += bytes.readableBytes
                digests[direction]?.add(bytes)
            case .gap(let id, .clientToServer, let octets, _) where id == flow:
                missing.append(octets ?? 0)
            case .closed(let id, _, _) where id == flow:
                closes += 1
            default:
                break
            }
        }
        try source.forEachPacket { time, packet, _ in
            if case .success(.some(let segment)) = PacketDecoder.decode(linkType: source.linkType, packet: packet) {
                reassembler.receive(segment, at: time, emit: handle)
            }
            return true
        }
        reassembler.finish(emit: handle)
        #expect(flow != nil)
        #expect(octets[.clientToServer, default: 0] == expected.clientOctets)
        #expect(digests[.clientToServer]?.value == expected.clientDigest)
        #expect(octets[.serverToClient, default: 0] == expected.serverOctets)
        #expect(digests[.serverToClient]?.value == expected.serverDigest)
        #expect(missing == expected.missing)
        #expect(closes == 1)
    }
}

/// A listening TCP socket on 127.0.0.1 with an ephemeral port, for the live capture test.
private final class LoopbackListener {
    let descriptor: Int32
    let port: UInt16
    private var clients: [Int32] = []

    struct SocketError: Error {
        let call: String
        let code: Int32
    }

    init() throws {
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listening >= 0 else { throw SocketError(call: "socket", code: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listening, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listening, $0, &length) }
        }
        guard bound == 0, listen(listening, 4) == 0, named == 0 else {
            let code = errno
            close(listening)
            throw SocketError(call: "bind/listen", code: code)
        }
        descriptor = listening
        port = UInt16(bigEndian: address.sin_port)
    }

    func connectAndSend(_ text: String) throws {
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard client >= 0 else { throw SocketError(call: "socket", code: errno) }
        clients.append(client)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw SocketError(call: "connect", code: errno) }
        let accepted = accept(descriptor, nil, nil)
        if accepted >= 0 { clients.append(accepted) }
        let sent = Array(text.utf8).withUnsafeBytes { send(client, $0.baseAddress, $0.count, 0) }
        guard sent == text.utf8.count else { throw SocketError(call: "send", code: errno) }
    }

    deinit {
        for client in clients { close(client) }
        close(descriptor)
    }
}
