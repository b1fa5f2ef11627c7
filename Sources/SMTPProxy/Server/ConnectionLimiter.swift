import NIOConcurrencyHelpers

/// Counts open client connections, in total and per client IP (`421 4.7.0` above either).
public final class ConnectionLimiter: Sendable {
    public let maxTotal: Int
    public let maxPerClient: Int
    private let state = NIOLockedValueBox<(total: Int, perClient: [String: Int])>((0, [:]))

    public init(maxTotal: Int, maxPerClient: Int) {
        precondition(maxTotal > 0 && maxPerClient > 0, "connection limits must be positive")
        self.maxTotal = maxTotal
        self.maxPerClient = maxPerClient
    }

    /// Takes a place for `client`; false when a limit is reached.
    public func acquire(_ client: String) -> Bool {
        state.withLockedValue { state in
            guard state.total < maxTotal, state.perClient[client, default: 0] < maxPerClient else { return false }
            state.total += 1
            state.perClient[client, default: 0] += 1
            return true
        }
    }

    public func release(_ client: String) {
        state.withLockedValue { state in
            state.total -= 1
            let left = state.perClient[client, default: 1] - 1
            state.perClient[client] = left > 0 ? left : nil
        }
    }

    public var openConnections: Int { state.withLockedValue { $0.total } }
}
