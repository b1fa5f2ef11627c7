import NIOCore

/// Where one stream's events go: the flow, the direction and the current packet's capture time.
struct StreamContext {
    let flowID: FlowID
    let direction: FlowDirection
    let time: Int64
}

/// Shared state a stream charges its buffering to.
struct ReassemblyAccounting {
    var bufferedOctets = 0
    var statistics = ReassemblyStatistics()
}

/// Out-of-order octets waiting for the hole before them to fill.
struct QueuedSegment {
    var offset: UInt64
    var bytes: ByteBuffer

    var end: UInt64 { offset + UInt64(bytes.readableBytes) }
}

/// One direction of a connection: turns segments into the in-order byte stream (RFC 9293 section
/// 3.10.7.4).
///
/// Positions are 64-bit offsets from the stream's first sequence number, so comparisons never wrap;
/// a segment's 32-bit sequence number is placed by serial arithmetic (RFC 1982 section 3.2) relative to
/// the next expected one, which is why the sequence space may wrap any number of times. SYN and FIN
/// occupy a sequence number each (RFC 9293 section 3.4); the SYN comes before offset 0, the FIN at
/// `finOffset`.
struct ReassemblyStream {
    private(set) var isSynchronized = false
    private(set) var sawSYN = false
    private(set) var initialSequence: UInt32 = 0
    /// Sequence number and offset of the next octet to deliver.
    private(set) var nextSequence: UInt32 = 0
    private(set) var nextOffset: UInt64 = 0
    /// Where the FIN sits once one has been seen.
    private(set) var finOffset: UInt64?
    /// True once every octet before the FIN was delivered or reported as a gap.
    private(set) var finReached = false
    /// Until the stream is synchronized: the latest acknowledgment the other side sent for it, which
    /// marks where a mid-session stream really continues.
    private var ackHint: UInt32?
    /// Sorted by offset, non-overlapping, all after `nextOffset`.
    private var queue: [QueuedSegment] = []
    private var queuedOctets = 0
    private var retained = RetainedOctets()

    private mutating func synchronize(at sequence: UInt32) {
        isSynchronized = true
        nextSequence = sequence
        nextOffset = 0
        ackHint = nil
        retained.reset(at: 0)
    }

    /// Offset of `sequence`, or nil when it is further than `maxSequenceJump` from the next expected one.
    private func offset(of sequence: UInt32, limits: ReassemblyLimits) -> Int64? {
        let delta = Int32(bitPattern: sequence &- nextSequence)
        guard delta.magnitude <= limits.maxSequenceJump else { return nil }
        return Int64(nextOffset) + Int64(delta)
    }

    /// A SYN from this side: its sequence number is the initial one; data starts one after it.
    mutating func receiveSYN(sequence: UInt32) {
        guard !isSynchronized else { return }
        synchronize(at: sequence &+ 1)
        sawSYN = true
        initialSequence = sequence
    }

    /// Whether a RST with this sequence number may end the connection (RFC 9293 section 3.10.7.3 asks
    /// for an in-window check; a blind RST far outside the window is ignored).
    func acceptsReset(sequence: UInt32, limits: ReassemblyLimits) -> Bool {
        !isSynchronized || offset(of: sequence, limits: limits) != nil
    }

    /// A segment's payload and FIN bit. `sequence` is the sequence number of the first payload octet
    /// (one past the SYN's for a SYN with data).
    mutating func receive(
        sequence: UInt32,
        payload: ByteBuffer,
        fin: Bool,
        limits: ReassemblyLimits,
        accounting: inout ReassemblyAccounting,
        context: StreamContext,
        emit: (FlowEvent) -> Void
    ) {
        if !isSynchronized {
            var start = sequence
            if let hint = ackHint {
                let distance = Int32(bitPattern: sequence &- hint)
                if distance > 0, distance.magnitude <= limits.maxSequenceJump { start = hint }
            }
            synchronize(at: start)
        }
        guard var start = offset(of: sequence, limits: limits) else {
            accounting.statistics.segmentsOutOfWindow += 1
            return
        }
        var payload = payload
        let next = Int64(nextOffset)
        var end = start + Int64(payload.readableBytes)
        if fin, finOffset == nil, !finReached, end >= next {
            finOffset = UInt64(end)
        }
        if let finOffset, end > Int64(finOffset) {
            // Octets after the FIN do not exist (RFC 9293 section 3.10.7.4, "FIN bit").
            let keep = max(0, Int64(finOffset) - start)
            payload.moveWriterIndex(to: payload.readerIndex + Int(min(keep, Int64(payload.readableBytes))))
            end = start + Int64(payload.readableBytes)
        }
        if start < 0 {
            // Before the first octet of the stream: nothing to compare with or deliver.
            let cut = Int(min(-start, Int64(payload.readableBytes)))
            payload.moveReaderIndex(forwardBy: cut)
            start += Int64(cut)
        }
        let length = payload.readableBytes
        if length == 1, start == next - 1, !fin {
            // Keep-alive probe: one garbage octet just before the next expected one (RFC 9293
            // section 3.8.4); comparing it would report a false conflict.
            accounting.statistics.keepAlives += 1
            return
        }
        if length > 0 {
            if end <= next {
                accounting.statistics.retransmittedSegments += 1
                if !retained.matches(payload, at: UInt64(start)) {
                    reportConflict(&accounting, context, emit)
                }
            } else {
                if start < next {
                    let overlap = payload.readSlice(length: Int(next - start)) ?? ByteBuffer()
                    if !retained.matches(overlap, at: UInt64(start)) {
                        reportConflict(&accounting, context, emit)
                    }
                    start = next
                }
                if start == next, queue.isEmpty {
                    deliver(payload, limits: limits, accounting: &accounting, context: context, emit: emit)
                } else {
                    if enqueue(payload, at: UInt64(start), accounting: &accounting) {
                        reportConflict(&accounting, context, emit)
                    }
                    if queuedOctets > limits.maxQueuedOctetsPerDirection
                        || queue.count > limits.maxQueuedSegmentsPerDirection
                        || accounting.bufferedOctets > limits.maxBufferedOctetsTotal
                    {
                        accounting.statistics.capSkips += 1
                        flush(limits: limits, accounting: &accounting, context: context, emit: emit)
                    } else {
                        drain(limits: limits, accounting: &accounting, context: context, emit: emit)
                    }
                }
            }
        }
        reachFINIfDue(accounting: &accounting)
    }

    /// The other side acknowledged up to `acknowledgment`. Octets it acknowledged that were never
    /// captured will not be retransmitted, so when data (or a FIN) waits behind them the hole is
    /// reported and skipped. With nothing waiting, nothing is decided yet: the capture may simply show
    /// the ACK before the data.
    /// - Parameter carriesData: the acknowledging segment carries data of its own. A bare ACK of
    ///   bytes not captured may only have overtaken them in the capture, so it skips only up to
    ///   what is queued; a segment with data answers bytes the peer already received, so a hole
    ///   it acknowledges is lost for good and reported at once, even with nothing queued after it.
    mutating func receiveAcknowledgment(
        _ acknowledgment: UInt32,
        carriesData: Bool = false,
        limits: ReassemblyLimits,
        accounting: inout ReassemblyAccounting,
        context: StreamContext,
        emit: (FlowEvent) -> Void
    ) {
        guard isSynchronized else {
            ackHint = acknowledgment
            return
        }
        guard !finReached, !queue.isEmpty || finOffset != nil || carriesData else { return }
        guard let acknowledged = offset(of: acknowledgment, limits: limits), acknowledged > Int64(nextOffset) else {
            return
        }
        var target = UInt64(acknowledged)
        if let first = queue.first {
            target = min(target, first.offset)
        } else if let finOffset {
            target = min(target, finOffset)
        }
        skip(to: target, accounting: &accounting, context: context, emit: emit)
        drain(limits: limits, accounting: &accounting, context: context, emit: emit)
        reachFINIfDue(accounting: &accounting)
    }

    /// Delivers everything queued, reporting each hole as a gap, and reaches a pending FIN.
    /// Used when a cap is hit, on RST, when both FINs are seen, and when the flow is flushed.
    mutating func flush(
        limits: ReassemblyLimits,
        accounting: inout ReassemblyAccounting,
        context: StreamContext,
        emit: (FlowEvent) -> Void
    ) {
        while let first = queue.first {
            skip(to: first.offset, accounting: &accounting, context: context, emit: emit)
            drain(limits: limits, accounting: &accounting, context: context, emit: emit)
        }
        if let finOffset, !finReached {
            skip(to: finOffset, accounting: &accounting, context: context, emit: emit)
        }
        reachFINIfDue(accounting: &accounting)
    }

    /// Gives back everything this stream charged to the shared budget.
    mutating func release(accounting: inout ReassemblyAccounting) {
        accounting.bufferedOctets -= queuedOctets + retained.capacity
        queue = []
        queuedOctets = 0
        retained.release()
    }

    private func reportConflict(
        _ accounting: inout ReassemblyAccounting,
        _ context: StreamContext,
        _ emit: (FlowEvent) -> Void
    ) {
        accounting.statistics.conflictingRetransmissions += 1
        emit(.conflictingRetransmission(context.flowID, context.direction, time: context.time))
    }

    private mutating func deliver(
        _ bytes: ByteBuffer,
        limits: ReassemblyLimits,
        accounting: inout ReassemblyAccounting,
        context: StreamContext,
        emit: (FlowEvent) -> Void
    ) {
        let count = bytes.readableBytes
        guard count > 0 else { return }
        emit(.data(context.flowID, context.direction, bytes, time: context.time))
        if retained.capacity == 0, limits.maxRetainedOctetsPerDirection > 0,
            accounting.bufferedOctets + limits.maxRetainedOctetsPerDirection <= limits.maxBufferedOctetsTotal
        {
            retained.allocate(capacity: limits.maxRetainedOctetsPerDirection)
            retained.reset(at: nextOffset)
            accounting.bufferedOctets += limits.maxRetainedOctetsPerDirection
        }
        retained.append(bytes, at: nextOffset)
        nextOffset += UInt64(count)
        nextSequence &+= UInt32(truncatingIfNeeded: count)
    }

    /// Moves past octets that will never be seen, reporting them as a gap.
    private mutating func skip(
        to target: UInt64,
        accounting: inout ReassemblyAccounting,
        context: StreamContext,
        emit: (FlowEvent) -> Void
    ) {
        guard target > nextOffset else { return }
        let missing = target - nextOffset
        accounting.statistics.gaps += 1
        accounting.statistics.gapOctets += missing
        emit(.gap(context.flowID, context.direction, missingOctets: missing, time: context.time))
        nextOffset = target
        nextSequence &+= UInt32(truncatingIfNeeded: missing)
        retained.reset(at: target)
    }

    /// Delivers the queued segments that are now in order.
    private mutating func drain(
        limits: ReassemblyLimits,
        accounting: inout ReassemblyAccounting,
        context: StreamContext,
        emit: (FlowEvent) -> Void
    ) {
        var taken = 0
        while taken < queue.count, queue[taken].offset <= nextOffset {
            var segment = queue[taken]
            taken += 1
            queuedOctets -= segment.bytes.readableBytes
            accounting.bufferedOctets -= segment.bytes.readableBytes
            guard segment.end > nextOffset else { continue }
            segment.bytes.moveReaderIndex(forwardBy: Int(nextOffset - segment.offset))
            deliver(segment.bytes, limits: limits, accounting: &accounting, context: context, emit: emit)
        }
        if taken > 0 { queue.removeFirst(taken) }
    }

    /// Queues `bytes` at `start` (after `nextOffset`). Where it overlaps queued octets the queued ones
    /// win; returns true when the overlapping octets differ.
    private mutating func enqueue(_ bytes: ByteBuffer, at start: UInt64, accounting: inout ReassemblyAccounting) -> Bool {
        var rest = bytes
        var position = start
        var conflict = false
        // First queued segment that ends after `start`.
        var low = 0
        var high = queue.count
        while low < high {
            let middle = (low + high) / 2
            if queue[middle].end <= start { low = middle + 1 } else { high = middle }
        }
        var index = low
        while rest.readableBytes > 0 {
            let restEnd = position + UInt64(rest.readableBytes)
            if index == queue.count || queue[index].offset >= restEnd {
                insert(QueuedSegment(offset: position, bytes: rest), at: index, accounting: &accounting)
                break
            }
            let queued = queue[index]
            if queued.offset > position {
                let before = Int(queued.offset - position)
                let piece = rest.readSlice(length: before) ?? ByteBuffer()
                insert(QueuedSegment(offset: position, bytes: piece), at: index, accounting: &accounting)
                index += 1
                position = queued.offset
                continue
            }
            let overlap = Int(min(queued.end, restEnd) - position)
            let mine = rest.readSlice(length: overlap) ?? ByteBuffer()
            let theirs = queued.bytes.getSlice(at: queued.bytes.readerIndex + Int(position - queued.offset), length: overlap)
            if theirs != mine { conflict = true }
            position += UInt64(overlap)
            index += 1
        }
        return conflict
    }

    private mutating func insert(_ segment: QueuedSegment, at index: Int, accounting: inout ReassemblyAccounting) {
        queue.insert(segment, at: index)
        queuedOctets += segment.bytes.readableBytes
        accounting.bufferedOctets += segment.bytes.readableBytes
    }

    private mutating func reachFINIfDue(accounting: inout ReassemblyAccounting) {
        guard let finOffset, !finReached, nextOffset == finOffset else { return }
        finReached = true
        nextOffset += 1
        nextSequence &+= 1
        // Nothing follows a FIN.
        accounting.bufferedOctets -= queuedOctets
        queue = []
        queuedOctets = 0
    }
}
