import NIOCore

/// The most recently delivered octets of one direction, in a fixed ring, so that a retransmission of
/// delivered data can be compared with what was delivered (RFC 9293 section 3.10.7.4 lets segments
/// overlap; different bytes in an overlap are an evasion sign, RFC 9293 section 3.9 / Ptacek-Newsham).
///
/// Copying into a ring costs one memcpy per segment but bounds memory exactly, whereas keeping slices
/// would pin whole packet buffers.
struct RetainedOctets {
    private var ring: [UInt8] = []
    /// Stream offset of the oldest retained octet.
    private(set) var start: UInt64 = 0
    /// Stream offset just past the newest retained octet.
    private(set) var end: UInt64 = 0

    var capacity: Int { ring.count }

    mutating func allocate(capacity: Int) {
        ring = [UInt8](repeating: 0, count: capacity)
    }

    mutating func release() {
        ring = []
    }

    /// Forgets everything; the next octets retained start at `offset`.
    mutating func reset(at offset: UInt64) {
        start = offset
        end = offset
    }

    mutating func append(_ bytes: ByteBuffer, at offset: UInt64) {
        let capacity = ring.count
        guard capacity > 0 else { return }
        if offset != end { reset(at: offset) }
        let count = bytes.readableBytes
        // Only the last `capacity` octets can survive.
        var sourceIndex = max(0, count - capacity)
        var writeOffset = offset + UInt64(sourceIndex)
        bytes.withUnsafeReadableBytes { source in
            ring.withUnsafeMutableBytes { destination in
                while sourceIndex < count {
                    let position = Int(writeOffset % UInt64(capacity))
                    let chunk = min(count - sourceIndex, capacity - position)
                    destination[position..<(position + chunk)].copyBytes(
                        from: source[sourceIndex..<(sourceIndex + chunk)]
                    )
                    sourceIndex += chunk
                    writeOffset += UInt64(chunk)
                }
            }
        }
        end = offset + UInt64(count)
        if end - start > UInt64(capacity) { start = end - UInt64(capacity) }
    }

    /// False when an octet of `bytes` (at stream `offset`) that is still retained differs from the one
    /// delivered; octets no longer retained cannot be checked and count as matching.
    func matches(_ bytes: ByteBuffer, at offset: UInt64) -> Bool {
        let capacity = UInt64(ring.count)
        let from = max(offset, start)
        let to = min(offset + UInt64(bytes.readableBytes), end)
        guard capacity > 0, from < to else { return true }
        return bytes.withUnsafeReadableBytes { source in
            var position = from
            while position < to {
                if ring[Int(position % capacity)] != source[Int(position - offset)] { return false }
                position += 1
            }
            return true
        }
    }
}
