/// The flow table: turns decoded TCP segments of many connections into per-flow, in-order byte
/// streams and lifecycle events (RFC 9293 sections 3.5, 3.6 and 3.10.7.4).
///
/// Roles: the sender of a SYN without ACK is the client, the sender of a SYN-ACK the server. A flow
/// first seen mid-session gets guessed roles (`FlowEvent.opened` says `sawHandshake: false`): the side
/// whose port is in `serverPorts` is the server, else the side with the lower port. A flow opens on a
/// SYN or on the first segment carrying data; bare ACK, FIN or RST segments of unknown flows (the tail
/// of a connection already closed) are counted and dropped.
///
/// Lost segments: a hole is skipped and reported as `.gap` when the other side acknowledges octets past
/// it, when a cap is reached, when both FINs have been seen, on RST, and when the flow is flushed.
/// Overlaps keep the octets seen first and report `.conflictingRetransmission` when they differ.
///
/// Memory is bounded by `ReassemblyLimits`. The flow table is a dictionary from the address/port pair
/// to a slot in an array, with an intrusive least-recently-active list through the slots, so the
/// in-order path does one hash lookup and no allocation beyond the payload buffer it was given.
public struct TCPReassembler {
    /// The default well-known SMTP ports used to guess the server: 25 (RFC 5321), 465 (RFC 8314),
    /// 587 (RFC 6409), and 2525, a common alternative.
    public static let defaultServerPorts: Set<UInt16> = [25, 465, 587, 2525]

    public let limits: ReassemblyLimits
    public let serverPorts: Set<UInt16>

    private var index: [FlowKey: Int32] = [:]
    private var slots: [Flow] = []
    private var freeSlots: [Int32] = []
    /// Least recently active flow, and most recently active.
    private var head: Int32 = -1
    private var tail: Int32 = -1
    private var nextFlowID: UInt64 = 1
    private var accounting = ReassemblyAccounting()

    public init(limits: ReassemblyLimits = .init(), serverPorts: Set<UInt16> = Self.defaultServerPorts) {
        self.limits = limits
        self.serverPorts = serverPorts
        index.reserveCapacity(min(limits.maxFlows, 1024))
    }

    public var statistics: ReassemblyStatistics { accounting.statistics }

    /// Flows currently open.
    public var openFlows: Int { index.count }

    /// Octets currently queued or retained across all flows.
    public var bufferedOctets: Int { accounting.bufferedOctets }

    /// Feeds one segment captured at `time` (microseconds since the epoch); events go to `emit`
    /// before this returns.
    public mutating func receive(_ segment: TCPSegment, at time: Int64, emit: (FlowEvent) -> Void) {
        let key = FlowKey(segment.source, segment.destination)
        var slot = index[key]
        if let existing = slot, segment.flags.contains(.syn), !segment.flags.contains(.ack),
            isNewConnection(segment, in: existing)
        {
            // The address/port pair is reused by a new connection: the old one ended unseen.
            close(existing, reason: .idle, time: slots[Int(existing)].lastSeen, emit: emit)
            slot = nil
        }
        if slot == nil {
            guard !segment.flags.contains(.rst), segment.flags.contains(.syn) || segment.payload.readableBytes > 0
            else {
                accounting.statistics.segmentsWithoutFlow += 1
                return
            }
            slot = open(key, for: segment, at: time, emit: emit)
        }
        guard let slot else { return }
        touch(slot, time: time)
        let direction: FlowDirection =
            segment.source == slots[Int(slot)].client ? .clientToServer : .serverToClient
        let id = slots[Int(slot)].id
        let context = StreamContext(flowID: id, direction: direction, time: time)
        let reverse = StreamContext(flowID: id, direction: direction.reversed, time: time)

        if segment.flags.contains(.rst) {
            guard slots[Int(slot)].stream(direction).acceptsReset(sequence: segment.sequenceNumber, limits: limits)
            else {
                accounting.statistics.segmentsOutOfWindow += 1
                return
            }
            flushBoth(slot, time: time, emit: emit)
            close(slot, reason: .rst(by: direction, afterFINFrom: slots[Int(slot)].firstFIN), time: time, emit: emit)
            return
        }

        var dataSequence = segment.sequenceNumber
        if segment.flags.contains(.syn) {
            slots[Int(slot)].withStream(direction) { $0.receiveSYN(sequence: segment.sequenceNumber) }
            dataSequence &+= 1
        }
        if segment.flags.contains(.fin), slots[Int(slot)].firstFIN == nil {
            slots[Int(slot)].firstFIN = direction
        }
        let limits = self.limits
        // The acknowledgment first: the peer's bytes it covers were sent before this segment's
        // data, so a hole among them is reported before the data that answers them (a reply after
        // a lost end of data).
        if segment.flags.contains(.ack) {
            let answers = segment.payload.readableBytes > 0
            slots[Int(slot)].withStream(direction.reversed) { stream in
                stream.receiveAcknowledgment(
                    segment.acknowledgmentNumber,
                    carriesData: answers,
                    limits: limits,
                    accounting: &accounting,
                    context: reverse,
                    emit: emit
                )
            }
        }
        slots[Int(slot)].withStream(direction) { stream in
            stream.receive(
                sequence: dataSequence,
                payload: segment.payload,
                fin: segment.flags.contains(.fin),
                limits: limits,
                accounting: &accounting,
                context: context,
                emit: emit
            )
        }

        let toServer = slots[Int(slot)].toServer
        let toClient = slots[Int(slot)].toClient
        if toServer.finOffset != nil, toClient.finOffset != nil {
            // Both sides said they are done: whatever is still missing will not come.
            flushBoth(slot, time: time, emit: emit)
            close(slot, reason: .fin(by: slots[Int(slot)].firstFIN ?? direction), time: time, emit: emit)
        }
    }

    /// Closes (`.idle`) every flow without a segment for `limits.idleTimeout` before `now`. Cheap when
    /// nothing is idle, so it can be called for every packet.
    public mutating func expireIdleFlows(now: Int64, emit: (FlowEvent) -> Void) {
        while head >= 0, now - slots[Int(head)].lastSeen >= limits.idleTimeout {
            let slot = head
            let lastSeen = slots[Int(slot)].lastSeen
            flushBoth(slot, time: lastSeen, emit: emit)
            close(slot, reason: .idle, time: lastSeen, emit: emit)
        }
    }

    /// Ends the capture: flushes every open flow (reporting its holes) and closes it (`.endOfCapture`),
    /// least recently active first.
    public mutating func finish(emit: (FlowEvent) -> Void) {
        while head >= 0 {
            let slot = head
            let lastSeen = slots[Int(slot)].lastSeen
            flushBoth(slot, time: lastSeen, emit: emit)
            close(slot, reason: .endOfCapture, time: lastSeen, emit: emit)
        }
    }

    // MARK: - Flow table

    private func isNewConnection(_ syn: TCPSegment, in slot: Int32) -> Bool {
        let flow = slots[Int(slot)]
        let direction: FlowDirection = syn.source == flow.client ? .clientToServer : .serverToClient
        let stream = flow.stream(direction)
        if stream.sawSYN { return stream.initialSequence != syn.sequenceNumber }
        // A SYN from the side that was guessed to be the server, or on a stream that already carried
        // data, starts a new connection; a client stream opened by the server's SYN-ACK just learns its
        // start.
        return direction == .serverToClient || stream.isSynchronized
    }

    private mutating func open(_ key: FlowKey, for segment: TCPSegment, at time: Int64, emit: (FlowEvent) -> Void)
        -> Int32
    {
        if index.count >= limits.maxFlows, head >= 0 {
            let victim = head
            let lastSeen = slots[Int(victim)].lastSeen
            accounting.statistics.flowsEvicted += 1
            flushBoth(victim, time: lastSeen, emit: emit)
            close(victim, reason: .idle, time: lastSeen, emit: emit)
        }
        let (client, server, sawHandshake) = roles(of: segment)
        let id = FlowID(rawValue: nextFlowID)
        nextFlowID += 1
        let flow = Flow(id: id, client: client, server: server, lastSeen: time)
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            slots[Int(slot)] = flow
        } else {
            slot = Int32(slots.count)
            slots.append(flow)
        }
        index[key] = slot
        link(slot)
        accounting.statistics.flowsOpened += 1
        emit(.opened(id, client: client, server: server, sawHandshake: sawHandshake, time: time))
        return slot
    }

    private func roles(of segment: TCPSegment) -> (client: TCPEndpoint, server: TCPEndpoint, sawHandshake: Bool) {
        let (source, destination) = (segment.source, segment.destination)
        if segment.flags.contains(.syn) {
            return segment.flags.contains(.ack)
                ? (destination, source, true)
                : (source, destination, true)
        }
        let sourceIsServer = serverPorts.contains(source.port)
        let destinationIsServer = serverPorts.contains(destination.port)
        if sourceIsServer != destinationIsServer {
            return sourceIsServer ? (destination, source, false) : (source, destination, false)
        }
        return source.port < destination.port ? (destination, source, false) : (source, destination, false)
    }

    private mutating func flushBoth(_ slot: Int32, time: Int64, emit: (FlowEvent) -> Void) {
        let id = slots[Int(slot)].id
        let limits = self.limits
        for direction in FlowDirection.allCases {
            let context = StreamContext(flowID: id, direction: direction, time: time)
            slots[Int(slot)].withStream(direction) { stream in
                stream.flush(limits: limits, accounting: &accounting, context: context, emit: emit)
            }
        }
    }

    private mutating func close(_ slot: Int32, reason: FlowCloseReason, time: Int64, emit: (FlowEvent) -> Void) {
        let flow = slots[Int(slot)]
        emit(.closed(flow.id, reason, time: time))
        for direction in FlowDirection.allCases {
            slots[Int(slot)].withStream(direction) { $0.release(accounting: &accounting) }
        }
        unlink(slot)
        index[FlowKey(flow.client, flow.server)] = nil
        slots[Int(slot)] = Flow.vacant
        freeSlots.append(slot)
    }

    private mutating func touch(_ slot: Int32, time: Int64) {
        slots[Int(slot)].lastSeen = max(slots[Int(slot)].lastSeen, time)
        guard tail != slot else { return }
        unlink(slot)
        link(slot)
    }

    /// Appends `slot` to the end of the activity list.
    private mutating func link(_ slot: Int32) {
        slots[Int(slot)].previous = tail
        slots[Int(slot)].next = -1
        if tail >= 0 { slots[Int(tail)].next = slot } else { head = slot }
        tail = slot
    }

    private mutating func unlink(_ slot: Int32) {
        let previous = slots[Int(slot)].previous
        let next = slots[Int(slot)].next
        if previous >= 0 { slots[Int(previous)].next = next } else { head = next }
        if next >= 0 { slots[Int(next)].previous = previous } else { tail = previous }
        slots[Int(slot)].previous = -1
        slots[Int(slot)].next = -1
    }
}

/// The unordered endpoint pair that names a connection, so both directions find the same flow.
struct FlowKey: Hashable {
    let lower: TCPEndpoint
    let upper: TCPEndpoint

    init(_ a: TCPEndpoint, _ b: TCPEndpoint) {
        if a < b {
            lower = a
            upper = b
        } else {
            lower = b
            upper = a
        }
    }

    // One combine per word instead of one per field: this hash runs for every packet.
    func hash(into hasher: inout Hasher) {
        hasher.combine(lower.address.high ^ upper.address.high &* 31)
        hasher.combine(lower.address.low)
        hasher.combine(upper.address.low)
        hasher.combine(UInt64(lower.port) << 16 | UInt64(upper.port))
    }
}

/// One slot of the flow table.
struct Flow {
    var id: FlowID
    var client: TCPEndpoint
    var server: TCPEndpoint
    var toServer = ReassemblyStream()
    var toClient = ReassemblyStream()
    var firstFIN: FlowDirection?
    var lastSeen: Int64
    var previous: Int32 = -1
    var next: Int32 = -1

    init(id: FlowID, client: TCPEndpoint, server: TCPEndpoint, lastSeen: Int64) {
        self.id = id
        self.client = client
        self.server = server
        self.lastSeen = lastSeen
    }

    static let vacant = Flow(
        id: FlowID(rawValue: 0),
        client: TCPEndpoint(address: IPAddress(ipv4: 0), port: 0),
        server: TCPEndpoint(address: IPAddress(ipv4: 0), port: 0),
        lastSeen: 0
    )

    func stream(_ direction: FlowDirection) -> ReassemblyStream {
        switch direction {
        case .clientToServer: return toServer
        case .serverToClient: return toClient
        }
    }

    mutating func withStream(_ direction: FlowDirection, _ body: (inout ReassemblyStream) -> Void) {
        switch direction {
        case .clientToServer: body(&toServer)
        case .serverToClient: body(&toClient)
        }
    }
}
