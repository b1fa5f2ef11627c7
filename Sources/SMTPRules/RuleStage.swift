/// The point of an SMTP session at which a rule is evaluated (rules/README.md, "Stages"; they follow the
/// command sequence of RFC 5321 §3: greeting, EHLO/HELO, AUTH per RFC 4954, MAIL, RCPT, DATA, and the
/// received message content).
public enum RuleStage: String, Sendable, Hashable, CaseIterable, Comparable {
    case connect, helo, auth, mail, rcpt, data, message

    /// Session order: a stage sees every fact known at the stages before it.
    var order: Int {
        switch self {
        case .connect: 0
        case .helo: 1
        case .auth: 2
        case .mail: 3
        case .rcpt: 4
        case .data: 5
        case .message: 6
        }
    }

    public static func < (lhs: RuleStage, rhs: RuleStage) -> Bool { lhs.order < rhs.order }
}
