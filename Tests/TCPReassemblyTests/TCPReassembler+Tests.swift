import NIOCore
import Testing
import TCPReassembly

private let client = TCPEndpoint(address: IPAddress(10, 0, 0, 1), port: 40000)
private let server = TCPEndpoint(address: IPAddress(10, 0, 0, 2), port: 25)

/// Feeds segments to a reassembler and keeps every event.
struct Harness {
    var reassembler: TCPReassembler
    var events: [FlowEvent] = []
    var time: Int64 = 1_700_000_000_000_000

    init(limits: ReassemblyLimits = .init()) {
        reassembler = TCPReassembler(limits: limits)
    }

    mutating func send(
        from source: TCPEndpoint = client,
        to destination: TCPEndpoint = server,
        seq: UInt32,
        ack: UInt32? = nil,
        flags: TCPFlags = [],
        _ payload: String = ""
    ) {
        sendBytes(from: source, to: destination, seq: seq, ack: ack, flags: flags, Array(payload.utf8))
    }

    mutating func sendBytes(
        from source: TCPEndpoint = client,
        to destination: TCPEndpoint = server,
        seq: UInt32,
        ack: UInt32? = nil,
        flags: TCPFlags = [],
        _ payload: [UInt8]
    ) {
        var flags = flags
        if ack != nil { flags.insert(.ack) }
        let segment = TCPSegment(
            source: source,
            destination: destination,
            sequenceNumber: seq,
            acknowledgmentNumber: ack ?? 0,
            flags: flags,
            payload: ByteBuffer(bytes: payload)
        )
        time += 1000
        reassembler.receive(segment, at: time) { events.append($0) }
    }

    mutating func finish() {
        reassembler.finish { events.append($0) }
    }

    mutating func expire(now: Int64) {
        reassembler.expireIdleFlows(now: now) { events.append($0) }
    }

    /// One direction's stream as text, with each gap shown as `<gap N>`.
    func stream(_ direction: FlowDirection, flow: FlowID? = nil) -> String {
        var text = ""
        for event in events where flow == nil || event.flowID == flow {
            switch event {
            case .data(_, direction, let bytes, _):
                text += String(decoding: bytes.readableBytesView, as: UTF8.self)
            case .gap(_, direction, let missing, _):
                text += "<gap \(missing.map(String.init) ?? "?")>"
            default:
                break
            }
        }
        return text
    }

    var conflicts: Int {
        events.filter { if case .conflictingRetransmission = $0 { true } else { false } }.count
    }

    var closes: [FlowCloseReason] {
        events.compactMap { if case .closed(_, let reason, _) = $0 { reason } else { nil } }
    }

    var opens: [(client: TCPEndpoint, server: TCPEndpoint, sawHandshake: Bool)] {
        events.compactMap {
            if case .opened(_, let client, let server, let sawHandshake, _) = $0 { (client, server, sawHandshake) } else { nil }
        }
    }

    /// Opens a connection with a full handshake; data then starts at client 101, server 501.
    mutating func handshake(clientISN: UInt32 = 100, serverISN: UInt32 = 500) {
        send(seq: clientISN, flags: .syn)
        send(from: server, to: client, seq: serverISN, ack: clientISN &+ 1, flags: .syn)
        send(seq: clientISN &+ 1, ack: serverISN &+ 1)
    }
}

struct TCPReassemblerTests {
    @Test func deliversAHandshakeSessionInOrderAndClosesOnBothFINs() {
        var h = Harness()
        h.handshake()
        h.send(from: server, to: client, seq: 501, ack: 101, "220 ready\r\n")
        h.send(seq: 101, ack: 512, "EHLO x\r\n")
        h.send(from: server, to: client, seq: 512, ack: 109, "250 ok\r\n")
        h.send(seq: 109, ack: 520, flags: .fin, "QUIT\r\n")
        h.send(from: server, to: client, seq: 520, ack: 116, flags: .fin, "221 bye\r\n")
        #expect(h.stream(.clientToServer) == "EHLO x\r\nQUIT\r\n")
        #expect(h.stream(.serverToClient) == "220 ready\r\n250 ok\r\n221 bye\r\n")
        #expect(h.opens.count == 1)
        #expect(h.opens.first?.client == client)
        #expect(h.opens.first?.sawHandshake == true)
        #expect(h.closes == [.fin(by: .clientToServer)])
        #expect(h.reassembler.openFlows == 0)
        guard case .opened = h.events.first, case .closed = h.events.last else {
            Issue.record("opened must come first and closed last: \(h.events)")
            return
        }
    }

    @Test func trailingACKAfterCloseOpensNoFlow() {
        var h = Harness()
        h.handshake()
        h.send(seq: 101, ack: 501, flags: .fin)
        h.send(from: server, to: client, seq: 501, ack: 102, flags: .fin)
        h.send(seq: 102, ack: 502)
        #expect(h.opens.count == 1)
        #expect(h.reassembler.statistics.segmentsWithoutFlow == 1)
    }

    @Test func reversedSegmentsAreQueuedAndDeliveredInOrder() {
        var h = Harness()
        h.handshake()
        let parts = ["MAIL FROM:<a@b>\r\n", "RCPT TO:<c@d>\r\n", "DATA\r\n"]
        var seq: UInt32 = 101
        var offsets: [UInt32] = []
        for part in parts {
            offsets.append(seq)
            seq += UInt32(part.utf8.count)
        }
        for index in parts.indices.reversed() {
            h.send(seq: offsets[index], ack: 501, parts[index])
        }
        #expect(h.stream(.clientToServer) == parts.joined())
        #expect(h.conflicts == 0)
    }

    @Test(arguments: permutations(of: [0, 1, 2, 3]))
    func everyPermutationGivesTheSameStream(_ order: [Int]) {
        var h = Harness()
        h.handshake()
        let parts = ["ab", "cdef", "g", "hijklm"]
        let starts: [UInt32] = [101, 103, 107, 108]
        for index in order {
            h.send(seq: starts[index], ack: 501, parts[index])
        }
        h.send(seq: 114, ack: 501, flags: .fin)
        h.send(from: server, to: client, seq: 501, ack: 115, flags: .fin)
        #expect(h.stream(.clientToServer) == "abcdefghijklm")
        #expect(h.conflicts == 0)
        #expect(h.closes == [.fin(by: .clientToServer)])
    }

    @Test func duplicatesAreDroppedWithoutConflict() {
        var h = Harness()
        h.handshake()
        h.send(seq: 101, ack: 501, "hello ")
        h.send(seq: 101, ack: 501, "hello ")
        h.send(seq: 107, ack: 501, "world")
        h.send(seq: 107, ack: 501, "world")
        h.send(seq: 101, ack: 501, "hello ")
        #expect(h.stream(.clientToServer) == "hello world")
        #expect(h.conflicts == 0)
        #expect(h.reassembler.statistics.retransmittedSegments == 3)
    }

    @Test func overlapWithSameBytesIsMerged() {
        var h = Harness()
        h.handshake()
        h.send(seq: 101, ack: 501, "0123456789")
        h.send(seq: 106, ack: 501, "56789abcde")
        h.send(seq: 121, ack: 501, "klm")
        h.send(seq: 116, ack: 501, "fghijk")
        #expect(h.stream(.clientToServer) == "0123456789abcdefghijklm")
        #expect(h.conflicts == 0)
    }

    @Test func overlapWithDifferentDeliveredBytesKeepsTheFirstAndReportsIt() {
        var h = Harness()
        h.handshake()
        h.send(seq: 101, ack: 501, "0123456789")
        h.send(seq: 106, ack: 501, "XXXXXabcde")
        #expect(h.stream(.clientToServer) == "0123456789abcde")
        #expect(h.conflicts == 1)
    }

    @Test func overlapWithDifferentQueuedBytesKeepsTheFirstAndReportsIt() {
        var h = Harness()
        h.handshake()
        h.send(seq: 111, ack: 501, "abcdefghij")
        h.send(seq: 106, ack: 501, "56789XXXXX")
        h.send(seq: 101, ack: 501, "01234")
        #expect(h.stream(.clientToServer) == "0123456789abcdefghij")
        #expect(h.conflicts == 1)
    }

    @Test func retransmissionWithDifferentBytesIsAConflict() {
        var h = Harness()
        h.handshake()
        h.send(seq: 101, ack: 501, ".\r\n")
        h.send(seq: 101, ack: 501, "X\r\n")
        #expect(h.stream(.clientToServer) == ".\r\n")
        #expect(h.conflicts == 1)
        guard case .conflictingRetransmission(_, .clientToServer, _) = h.events.last else {
            Issue.record("expected a conflict event, got \(String(describing: h.events.last))")
            return
        }
    }

    @Test func keepAliveProbeIsNotAConflict() {
        var h = Harness()
        h.handshake()
        h.send(seq: 101, ack: 501, "EHLO x\r\n")
        h.sendBytes(seq: 108, ack: 501, [0])
        #expect(h.conflicts == 0)
        #expect(h.reassembler.statistics.keepAlives == 1)
    }

    @Test func holeIsReportedAsAGapAtFlush() {
        var h = Harness()
        h.handshake()
        h.send(seq: 101, ack: 501, "0123456789")
        h.send(seq: 121, ack: 501, "klmno")
        #expect(h.stream(.clientToServer) == "0123456789")
        h.finish()
        #expect(h.stream(.clientToServer) == "0123456789<gap 10>klmno")
        #expect(h.closes == [.endOfCapture])
        #expect(h.reassembler.bufferedOctets == 0)
    }

    @Test func acknowledgmentPastAHoleSkipsIt() {
        var h = Harness()
        h.handshake()
        h.send(seq: 101, ack: 501, "0123456789")
        h.send(seq: 121, ack: 501, "klmno")
        // The server acknowledges everything: the missing ten octets will never be retransmitted.
        h.send(from: server, to: client, seq: 501, ack: 126, "250 ok\r\n")
        #expect(h.stream(.clientToServer) == "0123456789<gap 10>klmno")
        #expect(h.reassembler.statistics.gapOctets == 10)
    }

    @Test func bothFINsSkipAHoleAndClose() {
        var h = Harness()
        h.handshake()
        h.send(seq: 101, ack: 501, "abc")
        h.send(seq: 110, ack: 501, flags: .fin, "xyz")
        h.send(from: server, to: client, seq: 501, ack: 101, flags: .fin)
        #expect(h.stream(.clientToServer) == "abc<gap 6>xyz")
        #expect(h.closes == [.fin(by: .clientToServer)])
    }

    @Test func dataAfterFINIsIgnored() {
        var h = Harness()
        h.handshake()
        h.send(seq: 101, ack: 501, flags: .fin, "QUIT\r\n")
        h.send(seq: 107, ack: 501, "junk")
        h.send(from: server, to: client, seq: 501, ack: 108, flags: .fin, "221\r\n")
        #expect(h.stream(.clientToServer) == "QUIT\r\n")
        #expect(h.stream(.serverToClient) == "221\r\n")
        #expect(h.closes == [.fin(by: .clientToServer)])
    }

    @Test func serverFINFirstIsReported() {
        var h = Harness()
        h.handshake()
        h.send(from: server, to: client, seq: 501, ack: 101, flags: .fin, "421 bye\r\n")
        h.send(seq: 101, ack: 511, flags: .fin)
        #expect(h.closes == [.fin(by: .serverToClient)])
    }

    @Test func sequenceNumbersWrapAround() {
        var h = Harness()
        let isn: UInt32 = 0xffff_fff0
        h.handshake(clientISN: isn)
        let text = (0..<40).map { Character(UnicodeScalar(UInt8(65 + $0 % 26))) }
        let chunks = stride(from: 0, to: 40, by: 7).map { String(text[$0..<min($0 + 7, 40)]) }
        var seq = isn &+ 1
        var segments: [(UInt32, String)] = []
        for chunk in chunks {
            segments.append((seq, chunk))
            seq &+= UInt32(chunk.utf8.count)
        }
        #expect(seq < isn, "the test must cross 2^32")
        // Out of order across the wrap point.
        for index in [1, 0, 3, 2, 5, 4] {
            h.send(seq: segments[index].0, ack: 501, segments[index].1)
        }
        h.send(seq: seq, ack: 501, flags: .fin)
        h.send(from: server, to: client, seq: 501, ack: seq &+ 1, flags: .fin)
        #expect(h.stream(.clientToServer) == String(text))
        #expect(h.closes == [.fin(by: .clientToServer)])
    }

    @Test func midStreamClientSegmentOpensAGuessedFlow() {
        var h = Harness()
        h.send(seq: 7_000_000, ack: 9_000, "RCPT TO:<x@y>\r\n")
        h.send(from: server, to: client, seq: 9_000, ack: 7_000_015, "250 ok\r\n")
        #expect(h.opens.count == 1)
        #expect(h.opens.first?.client == client)
        #expect(h.opens.first?.server == server)
        #expect(h.opens.first?.sawHandshake == false)
        #expect(h.stream(.clientToServer) == "RCPT TO:<x@y>\r\n")
        #expect(h.stream(.serverToClient) == "250 ok\r\n")
    }

    @Test func midStreamServerSegmentFirstStillMakesPort25TheServer() {
        var h = Harness()
        h.send(from: server, to: client, seq: 9_000, ack: 7_000_000, "250 ok\r\n")
        h.send(seq: 7_000_000, ack: 9_008, "DATA\r\n")
        #expect(h.opens.first?.server == server)
        #expect(h.stream(.clientToServer) == "DATA\r\n")
    }

    @Test func midStreamWithoutASMTPPortTakesTheLowerPortAsServer() {
        var h = Harness()
        let a = TCPEndpoint(address: IPAddress(10, 0, 0, 1), port: 50000)
        let b = TCPEndpoint(address: IPAddress(10, 0, 0, 2), port: 4000)
        h.send(from: a, to: b, seq: 1, ack: 1, "x")
        h.send(from: b, to: a, seq: 5, ack: 1, "y")
        #expect(h.opens.first?.server == b)
        #expect(h.opens.first?.client == a)
    }

    @Test func midStreamUsesTheOtherSidesAcknowledgmentAsTheStart() {
        var h = Harness()
        h.send(seq: 100, ack: 5000, "A")
        // The server's second segment arrives before its first.
        h.send(from: server, to: client, seq: 5004, ack: 101, "5678")
        h.send(from: server, to: client, seq: 5000, ack: 101, "1234")
        #expect(h.stream(.serverToClient) == "12345678")
    }

    @Test func synAckFirstGivesCertainRoles() {
        var h = Harness()
        h.send(from: server, to: client, seq: 500, ack: 101, flags: .syn)
        h.send(seq: 101, ack: 501, "EHLO x\r\n")
        #expect(h.opens.first?.client == client)
        #expect(h.opens.first?.sawHandshake == true)
        #expect(h.stream(.clientToServer) == "EHLO x\r\n")
    }

    @Test func dataOnSYNIsDelivered() {
        var h = Harness()
        h.send(seq: 100, flags: .syn, "EHLO tfo\r\n")
        h.send(from: server, to: client, seq: 500, ack: 111, flags: .syn)
        h.send(seq: 111, ack: 501, "QUIT\r\n")
        #expect(h.stream(.clientToServer) == "EHLO tfo\r\nQUIT\r\n")
    }

    @Test func retransmittedSYNChangesNothing() {
        var h = Harness()
        h.send(seq: 100, flags: .syn)
        h.send(seq: 100, flags: .syn)
        h.send(from: server, to: client, seq: 500, ack: 101, flags: .syn)
        h.send(seq: 101, ack: 501, "x")
        #expect(h.opens.count == 1)
        #expect(h.stream(.clientToServer) == "x")
    }

    @Test func newSYNOnTheSamePortsStartsANewFlow() {
        var h = Harness()
        h.handshake()
        h.send(seq: 101, ack: 501, "first")
        h.send(seq: 90_000, flags: .syn)
        h.send(from: server, to: client, seq: 70_000, ack: 90_001, flags: .syn)
        h.send(seq: 90_001, ack: 70_001, "second")
        #expect(h.opens.count == 2)
        #expect(h.closes == [.idle])
        let second = h.events.last?.flowID
        #expect(h.stream(.clientToServer, flow: second) == "second")
    }

    @Test func resetFlushesAndCloses() {
        var h = Harness()
        h.handshake()
        h.send(seq: 101, ack: 501, "abc")
        h.send(seq: 106, ack: 501, "fg")
        h.send(from: server, to: client, seq: 501, flags: .rst)
        #expect(h.stream(.clientToServer) == "abc<gap 2>fg")
        #expect(h.closes == [.rst(by: .serverToClient, afterFINFrom: nil)])
        #expect(h.reassembler.openFlows == 0)
    }

    @Test func resetAfterTheServersFINSaysSo() {
        // A 421 greeting, the server's FIN, then the client's RST: the reset only tears down a
        // connection the server had already closed.
        var h = Harness()
        h.handshake()
        h.send(from: server, to: client, seq: 501, ack: 101, flags: [.fin, .ack])
        h.send(seq: 101, ack: 502, flags: .rst)
        #expect(h.closes == [.rst(by: .clientToServer, afterFINFrom: .serverToClient)])
    }

    @Test func resetFarOutsideTheWindowIsIgnored() {
        var h = Harness()
        h.handshake()
        h.send(from: server, to: client, seq: 501 &+ 0x4000_0000, flags: .rst)
        #expect(h.closes.isEmpty)
        #expect(h.reassembler.statistics.segmentsOutOfWindow == 1)
    }

    @Test func segmentFarAheadIsDroppedAsOutOfWindow() {
        var h = Harness()
        h.handshake()
        h.send(seq: 101 &+ 0x1000_0000, ack: 501, "spoofed")
        h.send(seq: 101, ack: 501, "real")
        h.finish()
        #expect(h.stream(.clientToServer) == "real")
        #expect(h.reassembler.statistics.segmentsOutOfWindow == 1)
    }

    @Test func idleFlowsExpire() {
        var h = Harness(limits: ReassemblyLimits(idleTimeout: 300_000_000))
        h.handshake()
        let last = h.time
        h.expire(now: last + 299_999_999)
        #expect(h.closes.isEmpty)
        h.expire(now: last + 300_000_000)
        #expect(h.closes == [.idle])
        guard case .closed(_, .idle, let time) = h.events.last else { return }
        #expect(time == last)
    }

    @Test func perDirectionCapSkipsForward() {
        var h = Harness(limits: ReassemblyLimits(maxQueuedOctetsPerDirection: 10))
        h.handshake()
        h.send(seq: 101, ack: 501, "a")
        h.send(seq: 103, ack: 501, "cdefg")
        #expect(h.stream(.clientToServer) == "a")
        h.send(seq: 108, ack: 501, "hijklm")
        #expect(h.stream(.clientToServer) == "a<gap 1>cdefghijklm")
        #expect(h.reassembler.statistics.capSkips == 1)
        #expect(h.reassembler.bufferedOctets <= 10 + 2 * ReassemblyLimits().maxRetainedOctetsPerDirection)
    }

    @Test func segmentCountCapSkipsForward() {
        var h = Harness(limits: ReassemblyLimits(maxQueuedSegmentsPerDirection: 3))
        h.handshake()
        for index in 0..<4 {
            h.send(seq: 102 + UInt32(index) * 2, ack: 501, "x")
        }
        #expect(h.stream(.clientToServer) == "<gap 1>x<gap 1>x<gap 1>x<gap 1>x")
    }

    @Test func globalCapSkipsForward() {
        var h = Harness(limits: ReassemblyLimits(maxBufferedOctetsTotal: 8, maxRetainedOctetsPerDirection: 0))
        h.handshake()
        h.send(seq: 102, ack: 501, "bcde")
        let other = TCPEndpoint(address: IPAddress(10, 0, 0, 3), port: 40001)
        h.send(from: other, to: server, seq: 100, flags: .syn)
        h.send(from: other, to: server, seq: 102, "bcdef")
        #expect(h.stream(.clientToServer) == "<gap 1>bcdef")
        #expect(h.reassembler.bufferedOctets == 4)
    }

    @Test func fullTableEvictsTheLeastRecentlyActiveFlow() {
        var h = Harness(limits: ReassemblyLimits(maxFlows: 2))
        let clients = (1...3).map { TCPEndpoint(address: IPAddress(10, 0, 1, UInt8($0)), port: 40000) }
        h.send(from: clients[0], to: server, seq: 1, flags: .syn)
        h.send(from: clients[1], to: server, seq: 1, flags: .syn)
        h.send(from: clients[0], to: server, seq: 2, "still here")
        h.send(from: clients[2], to: server, seq: 1, flags: .syn)
        #expect(h.closes == [.idle])
        #expect(h.reassembler.openFlows == 2)
        #expect(h.reassembler.statistics.flowsEvicted == 1)
        let evicted = h.events.compactMap { if case .closed(let id, _, _) = $0 { id } else { nil } }
        #expect(evicted == [FlowID(rawValue: 2)])
    }

    @Test func finishClosesEveryFlow() {
        var h = Harness()
        h.handshake()
        h.send(from: TCPEndpoint(address: IPAddress(10, 0, 0, 9), port: 1234), to: server, seq: 5, "x")
        h.finish()
        #expect(h.closes == [.endOfCapture, .endOfCapture])
        #expect(h.reassembler.openFlows == 0)
    }

    @Test func oneOctetSegmentsGiveTheSameEventsAsWholeSegments() {
        let text = "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
        var whole = Harness()
        whole.handshake()
        whole.send(seq: 101, ack: 501, text)
        var dripped = Harness()
        dripped.handshake()
        for (index, byte) in text.utf8.enumerated() {
            dripped.sendBytes(seq: 101 + UInt32(index), ack: 501, [byte])
        }
        #expect(whole.stream(.clientToServer) == dripped.stream(.clientToServer))
        whole.finish()
        dripped.finish()
        #expect(whole.closes == dripped.closes)
    }

    @Test func eventsOfAFlowFollowTheContract() {
        var generator = SplitMix64(seed: 7)
        let text = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
        for _ in 0..<200 {
            var h = Harness(limits: ReassemblyLimits(maxQueuedOctetsPerDirection: 16))
            h.handshake()
            for _ in 0..<12 {
                let start = Int(generator.next() % UInt64(text.count))
                let length = Int(generator.next() % 8)
                let end = min(text.count, start + length)
                h.sendBytes(seq: 101 + UInt32(start), ack: 501, Array(text[start..<end]))
            }
            h.finish()
            // Whatever arrived, the delivered octets are the original ones at their positions.
            var position = 0
            for event in h.events {
                switch event {
                case .data(_, _, let bytes, _):
                    #expect(Array(bytes.readableBytesView) == Array(text[position..<(position + bytes.readableBytes)]))
                    position += bytes.readableBytes
                case .gap(_, _, let missing, _):
                    position += Int(missing ?? 0)
                default:
                    break
                }
            }
            #expect(h.conflicts == 0)
            #expect(h.closes.count == 1)
            #expect(h.reassembler.bufferedOctets == 0)
        }
    }
}

func permutations(of items: [Int]) -> [[Int]] {
    guard items.count > 1 else { return [items] }
    return items.indices.flatMap { index in
        var rest = items
        let first = rest.remove(at: index)
        return permutations(of: rest).map { [first] + $0 }
    }
}
