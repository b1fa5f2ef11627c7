/// The attribute lists of Postfix XCLIENT commands that tell the upstream who the real client is
/// (https://www.postfix.org/XCLIENT_README.html).
///
/// - Only the attributes the upstream names after its `XCLIENT` EHLO keyword are sent.
/// - NAME is always `[UNAVAILABLE]`: the proxy does no DNS lookups.
/// - ADDR is an IPv4 address, or `IPV6:` and an IPv6 address; PORT is the client's TCP port.
/// - HELO is the client's HELO/EHLO name, PROTO `ESMTP` or `SMTP` after its verb.
/// - Values are xtext (RFC 3461 §4), and each command line stays within RFC 5321's 512 octets
///   (§4.5.3.1.4), so the attributes are split over several commands when needed (README note 1).
public enum XCLIENTCommand {
    /// The attributes the proxy knows, in the order the README suggests: NAME and ADDR first, then
    /// HELO and PROTO.
    public enum Attribute: String, Sendable, CaseIterable {
        case name = "NAME"
        case addr = "ADDR"
        case port = "PORT"
        case helo = "HELO"
        case proto = "PROTO"
    }

    /// PROTO: which greeting the client used.
    public enum ClientProtocol: String, Sendable, Hashable {
        case smtp = "SMTP"
        case esmtp = "ESMTP"
    }

    /// What the proxy knows about its client.
    public struct Client: Sendable, Hashable {
        /// Dotted quad or RFC 5952 IPv6 text, as the socket or the PROXY header gave it.
        public var address: String?
        public var port: Int?
        public var helo: String?
        public var proto: ClientProtocol?

        public init(address: String? = nil, port: Int? = nil, helo: String? = nil, proto: ClientProtocol? = nil) {
            self.address = address
            self.port = port
            self.helo = helo
            self.proto = proto
        }
    }

    /// The value of an attribute the proxy cannot give.
    static let unavailable = "[UNAVAILABLE]"
    /// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with its CRLF.
    public static let maxLineOctets = 512

    /// The argument text (after `XCLIENT `) of each command to send, in order; empty when the
    /// upstream offers none of the attributes. `offered` is the parameter text of the upstream's
    /// `XCLIENT` EHLO keyword, for example `NAME ADDR PROTO HELO PORT LOGIN`.
    public static func arguments(for client: Client, offered: String) -> [String] {
        let names = offeredAttributes(offered)
        // "XCLIENT" and CRLF take 9 of the 512 octets; each attribute adds a space before it.
        let budget = maxLineOctets - "XCLIENT".utf8.count - 2
        var commands: [String] = []
        var current = ""
        for attribute in Attribute.allCases where names.contains(attribute) {
            var pair = attribute.rawValue + "=" + xtext(value(of: attribute, for: client))
            if pair.utf8.count + 1 > budget {
                // Only a HELO name can be this long; the upstream is told it is unknown instead.
                pair = attribute.rawValue + "=" + unavailable
            }
            if !current.isEmpty, current.utf8.count + 1 + pair.utf8.count + 1 > budget {
                commands.append(current)
                current = ""
            }
            current += current.isEmpty ? pair : " " + pair
        }
        if !current.isEmpty { commands.append(current) }
        return commands
    }

    /// The known attributes among the upstream's (case-insensitive, README "XCLIENT Command syntax").
    /// Unknown names are ignored, so the set is bounded whatever the upstream sends.
    static func offeredAttributes(_ offered: String) -> Set<Attribute> {
        var result = Set<Attribute>()
        for word in offered.split(separator: " ") {
            if let attribute = Attribute(rawValue: word.uppercased()) { result.insert(attribute) }
        }
        return result
    }

    static func value(of attribute: Attribute, for client: Client) -> String {
        switch attribute {
        case .name:
            return unavailable
        case .addr:
            return client.address.flatMap(addressValue) ?? unavailable
        case .port:
            return client.port.map(String.init) ?? unavailable
        case .helo:
            guard let helo = client.helo, !helo.isEmpty else { return unavailable }
            return helo
        case .proto:
            return client.proto?.rawValue ?? unavailable
        }
    }

    /// ADDR: IPv4 as is, IPv6 after `IPV6:`; an IPv4-mapped IPv6 address is its IPv4 address, as
    /// Postfix itself shows it. A zone index means nothing to the upstream and is dropped.
    static func addressValue(_ address: String) -> String? {
        guard !address.isEmpty else { return nil }
        guard address.contains(":") else { return address }
        let unzoned = address.split(separator: "%", maxSplits: 1).first.map(String.init) ?? address
        let lowered = unzoned.lowercased()
        if lowered.hasPrefix("::ffff:"), lowered.contains(".") {
            return String(unzoned.dropFirst("::ffff:".count))
        }
        return "IPV6:" + unzoned
    }

    /// RFC 3461 §4 xtext: `!` to `~` stand for themselves except `+` and `=`; every other octet is
    /// `+` and two upper-case hex digits.
    public static func xtext(_ value: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count)
        for octet in value.utf8 {
            if octet >= 0x21, octet <= 0x7E, octet != UInt8(ascii: "+"), octet != UInt8(ascii: "=") {
                out.append(octet)
            } else {
                out.append(UInt8(ascii: "+"))
                out.append(hex[Int(octet >> 4)])
                out.append(hex[Int(octet & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
