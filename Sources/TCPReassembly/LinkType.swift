/// The link-layer header types the decoder understands, by the value `pcap_datalink` reports
/// (the tcpdump.org LINKTYPE_/DLT_ registry, https://www.tcpdump.org/linktypes.html).
///
/// libpcap maps a file's LINKTYPE_ value to the platform's DLT_ value, so raw IP appears as 12 on
/// Linux (DLT_RAW), 14 on some BSDs, or 101 (LINKTYPE_RAW); all three are accepted.
public enum LinkType {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    public static let null: Int32 = 0
    /// Ethernet II, possibly with 802.1Q / 802.1ad (QinQ) tags.
    public static let ethernet: Int32 = 1
    /// DLT_RAW on most platforms: the packet starts with an IPv4 or IPv6 header.
    public static let rawDLT12: Int32 = 12
    /// DLT_RAW on OpenBSD and some older BSDs.
    public static let rawDLT14: Int32 = 14
    /// LINKTYPE_RAW.
    public static let raw: Int32 = 101
    /// OpenBSD loopback: like `null` but the family is in network byte order.
    public static let loop: Int32 = 108
    /// Linux "cooked" capture, version 1 (16-byte header).
    public static let linuxSLL: Int32 = 113
    /// Raw IPv4.
    public static let ipv4: Int32 = 228
    /// Raw IPv6.
    public static let ipv6: Int32 = 229
    /// Linux "cooked" capture, version 2 (20-byte header).
    public static let linuxSLL2: Int32 = 276

    /// Every link type `PacketDecoder.decode` accepts. A capture with another link type cannot be read.
    public static let supported: Set<Int32> = [
        null, ethernet, rawDLT12, rawDLT14, raw, loop, linuxSLL, ipv4, ipv6, linuxSLL2,
    ]

    /// A short name for messages, such as `EN10MB`; nil for an unsupported type.
    public static func name(_ linkType: Int32) -> String? {
        switch linkType {
        case null: return "NULL"
        case ethernet: return "EN10MB"
        case rawDLT12, rawDLT14, raw: return "RAW"
        case loop: return "LOOP"
        case linuxSLL: return "LINUX_SLL"
        case ipv4: return "IPV4"
        case ipv6: return "IPV6"
        case linuxSLL2: return "LINUX_SLL2"
        default: return nil
        }
    }
}
