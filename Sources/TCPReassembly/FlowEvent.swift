import NIOCore

/// Identifies one TCP connection (RFC 9293 section 3.2) for its whole life in the flow table.
/// Identifiers are assigned in order of opening and never reused within one reassembler.
public struct FlowID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public static func < (lhs: FlowID, rhs: FlowID) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "flow#\(rawValue)" }
}

/// One of the two byte streams of a TCP connection (RFC 9293 section 3.4: each side has its own
/// sequence space).
public enum FlowDirection: Hashable, Sendable, CaseIterable {
    case clientToServer
    case serverToClient

    /// The other direction.
    public var reversed: FlowDirection {
        switch self {
        case .clientToServer: return .serverToClient
        case .serverToClient: return .clientToServer
        }
    }
}

/// Why a flow ended.
public enum FlowCloseReason: Hashable, Sendable {
    /// Both directions sent a FIN (RFC 9293 section 3.6); `by` is the side whose FIN came first.
    case fin(by: FlowDirection)
    /// A reset (RFC 9293 section 3.5.2) sent by the given side. `afterFINFrom` is the side whose
    /// FIN came before it, if any: a reset after the peer's FIN only tears down a connection that
    /// side had already ended.
    case rst(by: FlowDirection, afterFINFrom: FlowDirection?)
    /// No segment for `ReassemblyLimits.idleTimeout`, the flow table was full and this was the
    /// least recently active flow, or a new SYN reused the flow's address and port pair.
    case idle
    /// The capture ended while the flow was open.
    case endOfCapture
}

/// What reassembly reports about a flow, in stream order (RFC 9293 section 3.10.7.4: data is
/// delivered in sequence-number order).
///
/// Events of one flow come in this order: `opened`, then `data` and `gap` in stream order for each
/// direction (data is delivered as soon as it is in order), `conflictingRetransmission` when the
/// conflicting copy is seen, then `closed` exactly once. Each event's time is
/// the capture time (microseconds since the epoch) of the packet that made it possible; for `.idle`
/// and `.endOfCapture` it is the flow's last activity.
public enum FlowEvent: Hashable, Sendable {
    /// A new flow. `sawHandshake` is true when the roles come from a SYN or SYN-ACK; when false the
    /// capture started mid-session and the roles are a guess (server port, else the lower port).
    case opened(FlowID, client: TCPEndpoint, server: TCPEndpoint, sawHandshake: Bool, time: Int64)
    /// The next in-order bytes of one direction.
    case data(FlowID, FlowDirection, ByteBuffer, time: Int64)
    /// Bytes of one direction that were never captured; the next `data` of that direction follows the
    /// hole. `missingOctets` is nil when the size of the hole is unknown.
    case gap(FlowID, FlowDirection, missingOctets: UInt64?, time: Int64)
    /// A segment overlapped bytes already delivered or queued, with different content. The bytes seen
    /// first were kept (the default policy of Zeek and Suricata on Linux-like targets): a later copy
    /// cannot change what was already reported, and an attacker racing a retransmission gains nothing.
    case conflictingRetransmission(FlowID, FlowDirection, time: Int64)
    /// The flow ended; no further events of this flow follow.
    case closed(FlowID, FlowCloseReason, time: Int64)

    /// The flow the event belongs to.
    public var flowID: FlowID {
        switch self {
        case .opened(let id, _, _, _, _), .data(let id, _, _, _), .gap(let id, _, _, _),
            .conflictingRetransmission(let id, _, _), .closed(let id, _, _):
            return id
        }
    }
}
