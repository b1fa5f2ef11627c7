/// The fields a condition or an interpolation can read (rules/README.md, "Fields"), with the stage from
/// which each is known and how values compare.
struct RuleField: Sendable {
    enum Kind: Sendable, Hashable {
        /// Case-sensitive text.
        case text
        /// An address, local part or domain: compared case-insensitively as a whole.
        case address
        /// Case-insensitive keyword text (SASL mechanism, MIME type).
        case keyword
        case ip
        case integer
        case boolean

        var foldsCase: Bool { self == .address || self == .keyword }

        var typeName: String {
            switch self {
            case .text, .keyword: "a string"
            case .address: "an address or domain"
            case .ip: "an IP address"
            case .integer: "a number"
            case .boolean: "a boolean"
            }
        }
    }

    var name: String
    var kind: Kind
    /// The first stage at which the field is known.
    var stage: RuleStage
    /// From this stage on the field has many values (nil: always one value or none).
    var manyFrom: RuleStage?
    /// `header("Name")`-style fields take one string argument.
    var takesArgument = false
    /// Numeric comparisons parse the text as a decimal number (`mail_param("SIZE") > 10MB`).
    var numericText = false
    var summary: String

    func isMany(at stage: RuleStage) -> Bool {
        manyFrom.map { stage >= $0 } ?? false
    }

    static let all: [RuleField] = [
        RuleField(name: "client.ip", kind: .ip, stage: .connect, summary: "the client's IP address"),
        RuleField(name: "client.port", kind: .integer, stage: .connect, summary: "the client's TCP port"),
        RuleField(name: "server.ip", kind: .ip, stage: .connect, summary: "the address the client connected to"),
        RuleField(name: "server.port", kind: .integer, stage: .connect, summary: "the port the client connected to"),
        RuleField(name: "tls", kind: .boolean, stage: .connect, summary: "true once the client's leg is encrypted"),
        RuleField(name: "tls.version", kind: .text, stage: .connect, summary: "e.g. TLSv1.3"),
        RuleField(name: "helo", kind: .address, stage: .helo, summary: "the EHLO/HELO name"),
        RuleField(name: "auth.user", kind: .text, stage: .auth, summary: "the authenticated user"),
        RuleField(name: "auth.mechanism", kind: .keyword, stage: .auth, summary: "the SASL mechanism"),
        RuleField(name: "mail_from", kind: .address, stage: .mail, summary: "the envelope sender (\"\" for <>)"),
        RuleField(name: "mail_from.local", kind: .address, stage: .mail, summary: "its local part"),
        RuleField(name: "mail_from.domain", kind: .address, stage: .mail, summary: "its domain"),
        RuleField(name: "mail_param", kind: .text, stage: .mail, takesArgument: true, numericText: true, summary: "a MAIL parameter's value"),
        RuleField(name: "rcpt", kind: .address, stage: .rcpt, manyFrom: .data, summary: "the recipient"),
        RuleField(name: "rcpt.local", kind: .address, stage: .rcpt, manyFrom: .data, summary: "its local part"),
        RuleField(name: "rcpt.domain", kind: .address, stage: .rcpt, manyFrom: .data, summary: "its domain"),
        RuleField(name: "rcpt_count", kind: .integer, stage: .rcpt, summary: "recipients accepted so far"),
        RuleField(name: "header", kind: .text, stage: .message, takesArgument: true, summary: "the first such header field, decoded"),
        RuleField(name: "headers", kind: .text, stage: .message, manyFrom: .message, takesArgument: true, summary: "all such header fields"),
        RuleField(name: "subject", kind: .text, stage: .message, summary: "the decoded Subject"),
        RuleField(name: "from", kind: .address, stage: .message, manyFrom: .message, summary: "the header From addresses"),
        RuleField(name: "from.local", kind: .address, stage: .message, manyFrom: .message, summary: "their local parts"),
        RuleField(name: "from.domain", kind: .address, stage: .message, manyFrom: .message, summary: "their domains"),
        RuleField(name: "message_id", kind: .text, stage: .message, summary: "the Message-ID"),
        RuleField(name: "size", kind: .integer, stage: .message, summary: "the message size in octets"),
        RuleField(name: "body", kind: .text, stage: .message, summary: "the decoded text parts"),
        RuleField(name: "attachment.filename", kind: .text, stage: .message, manyFrom: .message, summary: "attachment file names"),
        RuleField(name: "attachment.content_type", kind: .keyword, stage: .message, manyFrom: .message, summary: "attachment MIME types"),
        RuleField(name: "attachment.size", kind: .integer, stage: .message, manyFrom: .message, summary: "attachment sizes in octets"),
        RuleField(name: "over_limit", kind: .boolean, stage: .connect, takesArgument: true,
                  summary: "true when this session's key has used up the limit's budget, counting this command"),
        RuleField(name: "limit_count", kind: .integer, stage: .connect, takesArgument: true, summary: "the limit's count for this session's key"),
    ]

    /// The fields that read a `limit` (their argument names it).
    static let limitFields: Set<String> = ["over_limit", "limit_count"]

    private static let byName: [String: RuleField] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    static func lookup(_ name: String) -> RuleField? { byName[name] }

    static var names: [String] { all.map(\.name) }
}

/// A field bound to a stage: how the evaluator reads its values from the facts.
enum FieldAccessor: Sendable, Hashable {
    case clientIP, clientPort, serverIP, serverPort, tls, tlsVersion, helo, authUser, authMechanism
    case mailFrom, mailFromLocal, mailFromDomain, mailParameter(String)
    case recipient, recipientLocal, recipientDomain
    case recipients, recipientsLocal, recipientsDomain, rcptCount
    case header(String), headers(String), subject, from, fromLocal, fromDomain, messageID, size, body
    case attachmentFilename, attachmentContentType, attachmentSize
    /// Indirect: a limit's probe holds the limit, whose key is itself a field.
    indirect case overLimit(LimitProbe)
    case limitCount(String)

    init?(_ field: RuleField, argument: String?, stage: RuleStage) {
        let many = field.isMany(at: stage)
        switch field.name {
        case "client.ip": self = .clientIP
        case "client.port": self = .clientPort
        case "server.ip": self = .serverIP
        case "server.port": self = .serverPort
        case "tls": self = .tls
        case "tls.version": self = .tlsVersion
        case "helo": self = .helo
        case "auth.user": self = .authUser
        case "auth.mechanism": self = .authMechanism
        case "mail_from": self = .mailFrom
        case "mail_from.local": self = .mailFromLocal
        case "mail_from.domain": self = .mailFromDomain
        case "mail_param": self = .mailParameter((argument ?? "").uppercased())
        case "rcpt": self = many ? .recipients : .recipient
        case "rcpt.local": self = many ? .recipientsLocal : .recipientLocal
        case "rcpt.domain": self = many ? .recipientsDomain : .recipientDomain
        case "rcpt_count": self = .rcptCount
        case "header": self = .header(argument ?? "")
        case "headers": self = .headers(argument ?? "")
        case "subject": self = .subject
        case "from": self = .from
        case "from.local": self = .fromLocal
        case "from.domain": self = .fromDomain
        case "message_id": self = .messageID
        case "size": self = .size
        case "body": self = .body
        case "attachment.filename": self = .attachmentFilename
        case "attachment.content_type": self = .attachmentContentType
        case "attachment.size": self = .attachmentSize
        default: return nil
        }
    }
}

/// One value of a field.
enum RuleValue: Sendable, Hashable {
    case text(String)
    case integer(Int)
    case boolean(Bool)

    /// The value as text, for interpolation and string operators.
    var text: String {
        switch self {
        case .text(let text): text
        case .integer(let value): String(value)
        case .boolean(let value): value ? "true" : "false"
        }
    }
}

/// The local part and domain of an address: split at the last "@" (a domain never holds one, RFC
/// 5321 §4.1.2); an address without "@" is all local part.
enum AddressParts {
    static func local(_ address: String) -> String {
        guard let at = address.lastIndex(of: "@") else { return address }
        return String(address[..<at])
    }

    static func domain(_ address: String) -> String? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        return String(address[address.index(after: at)...])
    }
}

extension FieldAccessor {
    /// The field's values in `facts`: empty when unknown.
    func values(_ facts: RuleFacts) -> [RuleValue] {
        func one(_ text: String?) -> [RuleValue] { text.map { [.text($0)] } ?? [] }
        func number(_ value: Int?) -> [RuleValue] { value.map { [.integer($0)] } ?? [] }
        switch self {
        case .clientIP: return one(facts.clientIP)
        case .clientPort: return number(facts.clientPort)
        case .serverIP: return one(facts.serverIP)
        case .serverPort: return number(facts.serverPort)
        case .tls: return [.boolean(facts.tls)]
        case .tlsVersion: return one(facts.tlsVersion)
        case .helo: return one(facts.helo)
        case .authUser: return one(facts.authUser)
        case .authMechanism: return one(facts.authMechanism)
        case .mailFrom: return one(facts.mailFrom)
        case .mailFromLocal: return one(facts.mailFrom.map(AddressParts.local))
        case .mailFromDomain: return one(facts.mailFrom.flatMap(AddressParts.domain))
        case .mailParameter(let keyword):
            guard let entry = facts.mailParameters[keyword] else { return [] }
            return [.text(entry ?? "")]
        case .recipient: return one(facts.recipient)
        case .recipientLocal: return one(facts.recipient.map(AddressParts.local))
        case .recipientDomain: return one(facts.recipient.flatMap(AddressParts.domain))
        case .recipients: return facts.recipients.map { .text($0) }
        case .recipientsLocal: return facts.recipients.map { .text(AddressParts.local($0)) }
        case .recipientsDomain: return facts.recipients.compactMap { AddressParts.domain($0).map(RuleValue.text) }
        case .rcptCount: return [.integer(facts.rcptCount)]
        case .header(let name):
            guard let message = facts.message else { return [] }
            return one(message.headers.first { $0.name.caseInsensitiveEquals(name) }?.value)
        case .headers(let name):
            guard let message = facts.message else { return [] }
            return message.headers.filter { $0.name.caseInsensitiveEquals(name) }.map { .text($0.value) }
        case .subject: return one(facts.message?.subject)
        case .from: return (facts.message?.from ?? []).map { .text($0) }
        case .fromLocal: return (facts.message?.from ?? []).map { .text(AddressParts.local($0)) }
        case .fromDomain: return (facts.message?.from ?? []).compactMap { AddressParts.domain($0).map(RuleValue.text) }
        case .messageID: return one(facts.message?.messageID)
        case .size: return number(facts.message?.size)
        case .body: return one(facts.message?.body)
        case .attachmentFilename: return (facts.message?.attachments ?? []).compactMap { $0.filename.map(RuleValue.text) }
        case .attachmentContentType: return (facts.message?.attachments ?? []).map { .text($0.contentType) }
        case .attachmentSize: return (facts.message?.attachments ?? []).map { .integer($0.size) }
        case .overLimit(let probe): return [.boolean(probe.isOver(facts))]
        case .limitCount(let name): return number(facts.limitCounts[name])
        }
    }
}

extension String {
    /// ASCII case-insensitive equality, for header field names (RFC 5322 §1.2.2).
    func caseInsensitiveEquals(_ other: String) -> Bool {
        let a = utf8
        let b = other.utf8
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { x, y in
            x == y || (x | 0x20 == y | 0x20 && x | 0x20 >= 0x61 && x | 0x20 <= 0x7A)
        }
    }
}
