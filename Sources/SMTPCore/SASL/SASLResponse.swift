/// A SASL initial response or continuation line (RFC 4954 §4), held only so that a relay can forward
/// it. It never prints its content: every description is "[redacted]".
public struct SASLResponse: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The base64 text exactly as sent ("=" for an empty initial response, "*" to cancel).
    public var base64Text: String

    public init(base64Text: String) {
        self.base64Text = base64Text
    }

    public var isCancellation: Bool { base64Text == "*" }

    public var description: String { "[redacted]" }
    public var debugDescription: String { "[redacted]" }
    /// `dump` and debuggers see no content either: no secret is written anywhere, crash logs included.
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
