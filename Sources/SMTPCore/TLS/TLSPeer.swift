/// Which end of a TLS connection sent something (RFC 8446 §2: client and server).
public enum TLSPeer: String, Sendable, Hashable {
    case client
    case server
}
