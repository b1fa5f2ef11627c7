/// One end of a TCP connection: an address and a port (RFC 9293 section 3.1).
public struct TCPEndpoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    public static func < (lhs: TCPEndpoint, rhs: TCPEndpoint) -> Bool {
        (lhs.address, lhs.port) < (rhs.address, rhs.port)
    }

    /// `192.0.2.1:25`, or `[2001:db8::1]:25` for IPv6 (RFC 5952 section 6).
    public var description: String {
        switch address.family {
        case .v4: return "\(address):\(port)"
        case .v6: return "[\(address)]:\(port)"
        }
    }
}
