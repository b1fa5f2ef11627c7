/// An SMTP service extension keyword (RFC 5321 §2.2.2, §4.1.1.1: `ehlo-keyword`). Keywords are
/// case-insensitive (§2.4), so they are kept upper-cased.
public struct ServiceExtension: Sendable, Hashable, CustomStringConvertible {
    public let keyword: String

    public init(_ keyword: some StringProtocol) {
        self.keyword = keyword.uppercased()
    }

    public var description: String { keyword }

    public static let pipelining = ServiceExtension("PIPELINING")  // RFC 2920
    public static let size = ServiceExtension("SIZE")  // RFC 1870
    public static let chunking = ServiceExtension("CHUNKING")  // RFC 3030
    public static let startTLS = ServiceExtension("STARTTLS")  // RFC 3207
    public static let auth = ServiceExtension("AUTH")  // RFC 4954
    public static let eightBitMIME = ServiceExtension("8BITMIME")  // RFC 6152
    public static let smtpUTF8 = ServiceExtension("SMTPUTF8")  // RFC 6531
    public static let enhancedStatusCodes = ServiceExtension("ENHANCEDSTATUSCODES")  // RFC 2034
    public static let dsn = ServiceExtension("DSN")  // RFC 3461
    /// Postfix's XCLIENT: the client's identity handed to the server (www.postfix.org/XCLIENT_README.html).
    public static let xclient = ServiceExtension("XCLIENT")
}

/// What a server offered in its reply to EHLO: each line after the first is a keyword with its
/// parameters (RFC 5321 §4.1.1.1). A HELO's reply offers nothing.
public struct ServiceExtensions: Sendable, Hashable {
    /// The parameter text after each keyword; `nil` for a bare keyword.
    private var offered: [ServiceExtension: String?]

    /// Nothing offered (a HELO's reply, or before any greeting).
    public init() {
        offered = [:]
    }

    /// From the EHLO reply's lines after the first (`SMTPReply.ehloExtensions`). When a keyword comes
    /// twice, the first line counts.
    public init(ehloLines lines: some Sequence<String>) {
        offered = [:]
        for line in lines {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard let keyword = parts.first else { continue }
            let name = ServiceExtension(keyword)
            if offered[name] == nil { offered.updateValue(parts.count > 1 ? String(parts[1]) : nil, forKey: name) }
        }
    }

    /// From a whole reply to EHLO.
    public init(_ reply: SMTPReply) {
        self.init(ehloLines: reply.ehloExtensions)
    }

    public var isEmpty: Bool { offered.isEmpty }

    public func offers(_ name: ServiceExtension) -> Bool {
        offered[name] != nil
    }

    /// The parameters after the keyword; `nil` when it is not offered or offered bare.
    public func parameters(of name: ServiceExtension) -> String? {
        offered[name] ?? nil
    }

    /// The fixed maximum message size the server declared (RFC 1870 §4); `nil` when SIZE is not
    /// offered, has no number, or is 0, which all mean no fixed limit.
    public var sizeLimit: Int? {
        guard let text = parameters(of: .size), let value = Int(text), value > 0 else { return nil }
        return value
    }

    /// The SASL mechanisms AUTH offers (RFC 4954 §3), upper-cased.
    public var authMechanisms: [String] {
        parameters(of: .auth).map { $0.uppercased().split(separator: " ").map(String.init) } ?? []
    }
}
