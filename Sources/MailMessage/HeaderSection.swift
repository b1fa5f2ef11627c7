/// One header field of a message (RFC 5322 §2.2), unfolded (§2.2.3).
public struct HeaderField: Sendable, Equatable {
    /// The field name as written.
    public var name: String
    /// The field body unfolded, leading and trailing whitespace removed, not decoded.
    public var rawValue: String
    /// ``rawValue`` with RFC 2047 encoded words decoded.
    public var value: String

    public init(name: String, rawValue: String, value: String) {
        self.name = name
        self.rawValue = rawValue
        self.value = value
    }

    public init(name: String, rawValue: String) {
        self.init(name: name, rawValue: rawValue, value: EncodedWord.decode(rawValue))
    }
}

/// The header section of a message (RFC 5322 §2.1): its fields in order. Names compare
/// case-insensitively (RFC 5322 §1.2.2).
public struct HeaderSection: Sendable, Equatable {
    public var fields: [HeaderField]

    public init(fields: [HeaderField] = []) {
        self.fields = fields
    }

    /// The first field named `name`, compared case-insensitively.
    public func first(_ name: String) -> HeaderField? {
        fields.first { Self.namesMatch($0.name, name) }
    }

    /// Every field named `name`, in order, compared case-insensitively.
    public func all(_ name: String) -> [HeaderField] {
        fields.filter { Self.namesMatch($0.name, name) }
    }

    /// Field names are ASCII (RFC 5322 §2.2), so ASCII case folding is the whole comparison.
    static func namesMatch(_ a: String, _ b: String) -> Bool {
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }
        return zip(x, y).allSatisfy { ASCII.lowercased($0) == ASCII.lowercased($1) }
    }
}
