/// Why a captured packet was skipped instead of yielding a TCP segment.
///
/// Damaged packets (headers that contradict each other or are cut short) and packets the decoder
/// deliberately does not handle (IP fragments) are both reported here so that they can be counted by
/// reason; `isDamage` tells them apart.
public enum PacketDecodeError: Error, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The capture's link type is not in `LinkType.supported`.
    case unsupportedLinkType
    /// The packet ends inside its link-layer header (Ethernet, VLAN tag, SLL, loopback family).
    case truncatedLinkHeader
    /// More stacked 802.1Q/802.1ad tags than `PacketDecoder.maxVLANTags`.
    case tooManyVLANTags
    /// The packet ends inside the fixed IPv4 or IPv6 header.
    case truncatedIPHeader
    /// The IP version nibble is not the one the link layer announced.
    case invalidIPVersion
    /// IPv4 IHL below 5 or past the total length (RFC 791 section 3.1).
    case invalidIPHeaderLength
    /// The IPv4 total length or IPv6 payload length is inconsistent with the headers.
    case invalidIPLength
    /// The capture holds fewer bytes than the IP length says (snapshot length cut the packet).
    case truncatedIPPacket
    /// An IPv4 fragment (RFC 791 section 2.3). Fragments are counted and skipped, not reassembled:
    /// SMTP stacks send segments that fit the path MTU, so fragmented TCP is rare and usually hostile.
    case ipv4Fragment
    /// An IPv6 packet with a Fragment header (RFC 8200 section 4.5); counted and skipped like IPv4 ones.
    case ipv6Fragment
    /// An IPv6 extension header runs past the packet, or more than
    /// `PacketDecoder.maxIPv6ExtensionHeaders` are chained.
    case invalidIPv6ExtensionHeader
    /// The IP payload is shorter than the 20-byte TCP header.
    case truncatedTCPHeader
    /// TCP data offset below 5 or past the end of the IP payload (RFC 9293 section 3.1).
    case invalidTCPDataOffset

    /// True for a packet that is malformed or cut short; false for one that is well formed but
    /// deliberately not processed.
    public var isDamage: Bool {
        switch self {
        case .unsupportedLinkType, .ipv4Fragment, .ipv6Fragment:
            return false
        case .truncatedLinkHeader, .tooManyVLANTags, .truncatedIPHeader, .invalidIPVersion,
            .invalidIPHeaderLength, .invalidIPLength, .truncatedIPPacket, .invalidIPv6ExtensionHeader,
            .truncatedTCPHeader, .invalidTCPDataOffset:
            return true
        }
    }

    public var description: String {
        switch self {
        case .unsupportedLinkType: return "unsupported link type"
        case .truncatedLinkHeader: return "truncated link-layer header"
        case .tooManyVLANTags: return "too many VLAN tags"
        case .truncatedIPHeader: return "truncated IP header"
        case .invalidIPVersion: return "invalid IP version"
        case .invalidIPHeaderLength: return "invalid IPv4 header length"
        case .invalidIPLength: return "invalid IP length"
        case .truncatedIPPacket: return "IP packet truncated by the snapshot length"
        case .ipv4Fragment: return "IPv4 fragment (not reassembled)"
        case .ipv6Fragment: return "IPv6 fragment (not reassembled)"
        case .invalidIPv6ExtensionHeader: return "invalid IPv6 extension header chain"
        case .truncatedTCPHeader: return "truncated TCP header"
        case .invalidTCPDataOffset: return "invalid TCP data offset"
        }
    }
}
