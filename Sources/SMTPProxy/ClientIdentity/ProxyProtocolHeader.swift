/// A HAProxy PROXY protocol header (haproxy.org proxy-protocol.txt, version 1 §2.1 and version 2
/// §2.2): the connection's real endpoints as a load balancer in front of the proxy saw them.
public struct ProxyProtocolHeader: Sendable, Hashable {
    public enum Version: Sendable, Hashable {
        /// The human-readable form: `PROXY TCP4 ... \r\n` (§2.1).
        case v1
        /// The binary form, after the 12-octet signature (§2.2).
        case v2
    }

    /// §2.2 "command": `LOCAL` is the balancer's own connection (a health check), `PROXY` relays a
    /// client. Version 1 always means `PROXY`.
    public enum Command: Sendable, Hashable {
        case local
        case proxy
    }

    /// One end of the relayed TCP connection, the address in its textual form.
    public struct Endpoint: Sendable, Hashable {
        public var ip: String
        public var port: Int

        public init(ip: String, port: Int) {
            self.ip = ip
            self.port = port
        }
    }

    /// §2.1 `TCP4`/`TCP6`/`UNKNOWN`; §2.2 `AF_INET`/`AF_INET6` over `STREAM`, anything else.
    public enum Addresses: Sendable, Hashable {
        /// The balancer relayed a TCP connection between these endpoints.
        case tcp(source: Endpoint, destination: Endpoint)
        /// `UNKNOWN`, `AF_UNSPEC`, `LOCAL`, or a family SMTP does not use (UNIX, UDP): the receiver
        /// keeps the real connection's endpoints (§2.1, §2.2).
        case unknown
    }

    public var version: Version
    public var command: Command
    public var addresses: Addresses
    /// Octets the header took on the wire, signature and TLVs included.
    public var length: Int

    public init(version: Version, command: Command, addresses: Addresses, length: Int) {
        self.version = version
        self.command = command
        self.addresses = addresses
        self.length = length
    }

    /// The relayed client, or nil when the real connection's peer stands.
    public var source: Endpoint? {
        guard command == .proxy, case .tcp(let source, _) = addresses else { return nil }
        return source
    }

    /// The address the client connected to, or nil when the real connection's local end stands.
    public var destination: Endpoint? {
        guard command == .proxy, case .tcp(_, let destination) = addresses else { return nil }
        return destination
    }
}
