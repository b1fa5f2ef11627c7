/// One request of Postfix's SMTPD policy delegation protocol (Postfix's SMTPD_POLICY_README,
/// "Protocol description"): `name=value` attributes, one a line, ended by an empty line.
public struct PolicyRequest: Sendable, Hashable {
    public var attributes: [String: String]

    public init(_ attributes: [String: String]) {
        self.attributes = attributes
    }

    /// The attribute's value; nil when absent or empty (Postfix sends empty values for what it does
    /// not know, such as `sasl_username=` without AUTH).
    public subscript(_ name: String) -> String? {
        guard let value = attributes[name], !value.isEmpty else { return nil }
        return value
    }
}

/// Reads requests from the bytes of one connection, incrementally, with everything bounded: a
/// line without an end, a request of a million attributes or of megabytes is an error, and the
/// connection is closed (the caller's part), so no peer makes it hold more than `Limits` allow.
///
/// Lines end with LF, as Postfix writes them; a CR before the LF is dropped.
public struct PolicyRequestParser: Sendable {
    public struct Limits: Sendable, Hashable {
        /// Octets of one `name=value` line. Postfix's longest attributes are certificate subjects
        /// and issuers, well below this.
        public var maxLineOctets = 8192
        /// Attributes in one request: Postfix 3.x sends about forty.
        public var maxAttributes = 128
        /// Octets of one request.
        public var maxRequestOctets = 64 << 10

        public init() {}
    }

    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        case lineTooLong
        case tooManyAttributes
        case requestTooLarge
        case notAnAttribute
        case duplicateAttribute(String)
        case notUTF8

        public var description: String {
            switch self {
            case .lineTooLong: "a line is longer than the limit"
            case .tooManyAttributes: "a request has more attributes than the limit"
            case .requestTooLarge: "a request is larger than the limit"
            case .notAnAttribute: "a line is not name=value"
            case .duplicateAttribute(let name): "attribute '\(name)' given twice"
            case .notUTF8: "a line is not UTF-8"
            }
        }
    }

    public let limits: Limits
    private var line: [UInt8] = []
    private var attributes: [String: String] = [:]
    private var requestOctets = 0

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Whether a request has begun and not ended: a connection closed now cut it short.
    public var isInsideRequest: Bool { !line.isEmpty || !attributes.isEmpty }

    /// The requests `bytes` complete, in order. After a failure the parser must not be used again.
    public mutating func receive(_ bytes: some Sequence<UInt8>) throws(Failure) -> [PolicyRequest] {
        var requests: [PolicyRequest] = []
        for byte in bytes {
            requestOctets += 1
            if requestOctets > limits.maxRequestOctets { throw .requestTooLarge }
            guard byte == 0x0A else {
                if line.count >= limits.maxLineOctets { throw .lineTooLong }
                line.append(byte)
                continue
            }
            if line.last == 0x0D { line.removeLast() }
            if line.isEmpty {
                requests.append(PolicyRequest(attributes))
                attributes.removeAll(keepingCapacity: true)
                requestOctets = 0
                continue
            }
            try endAttribute()
        }
        return requests
    }

    private mutating func endAttribute() throws(Failure) {
        defer { line.removeAll(keepingCapacity: true) }
        guard let equals = line.firstIndex(of: UInt8(ascii: "=")), equals > 0 else { throw .notAnAttribute }
        guard let name = String(validating: line[..<equals], as: UTF8.self),
            let value = String(validating: line[(equals + 1)...], as: UTF8.self)
        else { throw .notUTF8 }
        guard attributes[name] == nil else { throw .duplicateAttribute(name) }
        if attributes.count >= limits.maxAttributes { throw .tooManyAttributes }
        attributes[name] = value
    }
}
