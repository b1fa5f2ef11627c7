import NIOCore

/// Keeps a transparent proxy from relaying to itself.
///
/// A client that connects straight to the proxy's port, with no firewall rule in between, has the
/// proxy's own address as its original destination; relaying there would open one connection
/// after another into the proxy until a limit ended it. Such a session is refused with
/// `554 5.4.6` (RFC 3463 "Routing loop detected") instead. Under TPROXY the accepted socket's local
/// address is the foreign destination, which is not one of the host's, so it passes.
struct LoopGuard: Sendable {
    /// The bound listening addresses of this proxy (port 0 already replaced by the real port).
    var listeners: [SocketAddress]

    init(listeners: [SocketAddress]) {
        self.listeners = listeners
    }

    /// Why a connection to `destination` would reach this proxy, or nil when it would not.
    /// `localAddresses` (the host's interface addresses) is asked only when a listener has the
    /// destination's port.
    func loop(to destination: SocketAddress, localAddresses: () -> [SocketAddress]) -> String? {
        guard let port = destination.port, let octets = destination.ipOctets else { return nil }
        let sharingPort = listeners.filter { $0.port == port }
        guard !sharingPort.isEmpty else { return nil }
        let text = "\(destination.unmappingIPv4.ipAddress ?? "?"):\(port)"
        for listener in sharingPort {
            guard let listening = listener.ipOctets else { continue }
            if listening == octets {
                return "destination \(text) is this proxy's listener"
            }
        }
        // A wildcard listener answers on every address the host has.
        guard sharingPort.contains(where: { $0.ipOctets.map(Self.isUnspecified) ?? false }) else { return nil }
        if Self.isLoopback(octets) || Self.isUnspecified(octets) || localAddresses().contains(where: { $0.ipOctets == octets }) {
            return "destination \(text) is this host on the proxy's listening port"
        }
        return nil
    }

    /// 127.0.0.0/8 (RFC 1122 §3.2.1.3) or ::1.
    static func isLoopback(_ octets: [UInt8]) -> Bool {
        if octets.count == 4 { return octets[0] == 127 }
        return octets.count == 16 && octets[0..<15].allSatisfy { $0 == 0 } && octets[15] == 1
    }

    /// 0.0.0.0 or ::, which a connect(2) takes to mean this host.
    static func isUnspecified(_ octets: [UInt8]) -> Bool {
        octets.allSatisfy { $0 == 0 }
    }
}
