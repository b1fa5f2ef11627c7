/// A mailbox of an address header field (RFC 5322 §3.4): `name-addr` or `addr-spec`.
public struct Mailbox: Sendable, Equatable {
    /// The display name (or, for the obsolete `addr (Name)` form, the comment), RFC 2047-decoded;
    /// nil when there is none.
    public var displayName: String?
    /// The addr-spec as written, without angle brackets, comments, whitespace or an obsolete route.
    public var address: String
    /// The part after the last `@` outside quotes, as written; nil when there is no `@`.
    public var domain: String?

    public init(displayName: String? = nil, address: String, domain: String? = nil) {
        self.displayName = displayName
        self.address = address
        self.domain = domain
    }
}
