/// The parsed form of a rules file, before checking. Every node keeps the position the checker
/// reports errors at.
struct RuleFileSyntax: Sendable {
    var lists: [ListSyntax] = []
    var limits: [LimitSyntax] = []
    var rules: [RuleSyntax] = []
    var examples: [ExampleSyntax] = []
}

/// A word with its position.
struct Located<Value: Sendable & Hashable>: Sendable, Hashable {
    var value: Value
    var position: RulePosition
}

/// `list name = [entries]` or `list name from "file"`.
struct ListSyntax: Sendable {
    enum Body: Sendable {
        case inline([ListEntrySyntax])
        case file(Located<String>)
    }

    var name: Located<String>
    var body: Body
}

/// `limit "name" counts UNIT per FIELD over WINDOW max N`: a sliding-window counter that rules read
/// with `over_limit("name")` and `limit_count("name")`.
struct LimitSyntax: Sendable {
    var name: Located<String>
    /// `messages`, `recipients`, `sessions` or `bytes`, as written.
    var counts: Located<String>
    var per: FieldSyntax
    /// As written: `30s`, `10m`, `1h`, `7d`.
    var window: Located<String>
    /// As written: a number, or a size for `bytes`.
    var max: Located<String>
    var position: RulePosition
}

/// One entry of a list: a string, a bare word (number, size, IP, CIDR, domain-like word).
struct ListEntrySyntax: Sendable, Hashable {
    var text: String
    var isQuoted: Bool
    var position: RulePosition
}

/// `rule "name" on stage` with its clauses.
struct RuleSyntax: Sendable {
    var name: Located<String>
    var stage: Located<RuleStage>
    var conditions: [ExpressionSyntax] = []
    var monitor = false
    var actions: [ActionSyntax] = []
    var position: RulePosition
}

/// A field reference: `mail_from.domain`, `header("X-Foo")`.
struct FieldSyntax: Sendable, Hashable {
    var name: String
    var argument: String?
    var position: RulePosition
}

enum QuantifierSyntax: String, Sendable, Hashable {
    case any, all
}

/// The operators of a comparison (rules/README.md, "Operators").
enum OperatorSyntax: String, Sendable, Hashable {
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case `in`, matches, contains, startsWith = "starts_with", endsWith = "ends_with"
}

/// The right-hand side of a comparison.
indirect enum OperandSyntax: Sendable, Hashable {
    case field(FieldSyntax)
    case string(RuleStringLiteral, RulePosition)
    /// A bare word that is not a field: number, size, IP, CIDR; classified by the checker.
    case word(String, RulePosition)
    case none(RulePosition)
    case boolean(Bool, RulePosition)
    case listName(String, RulePosition)
    case inlineList([ListEntrySyntax], RulePosition)
    case regex(pattern: String, flags: String, position: RulePosition, patternPosition: RulePosition)

    var position: RulePosition {
        switch self {
        case .field(let field): field.position
        case .string(_, let position), .word(_, let position), .none(let position), .boolean(_, let position),
            .listName(_, let position), .inlineList(_, let position):
            position
        case .regex(_, _, let position, _): position
        }
    }
}

/// A condition.
indirect enum ExpressionSyntax: Sendable {
    /// Two or more terms; chains stay flat so a long `a and b and c ...` never nests.
    case and([ExpressionSyntax])
    case or([ExpressionSyntax])
    case not(ExpressionSyntax, RulePosition)
    /// `[any|all] field [not] op operand`
    case comparison(quantifier: QuantifierSyntax?, field: FieldSyntax, negated: Bool, op: Located<OperatorSyntax>, operand: OperandSyntax)
    /// A bare field used as a condition (`tls`).
    case truth(quantifier: QuantifierSyntax?, field: FieldSyntax)
}

/// An action with its arguments.
struct ActionSyntax: Sendable {
    enum Kind: Sendable {
        case accept
        case reject(code: Located<Int>, enhanced: Located<String>?, text: Located<RuleStringLiteral>)
        case tempfail(code: Located<Int>, enhanced: Located<String>?, text: Located<RuleStringLiteral>)
        case disconnect(code: Located<Int>?, enhanced: Located<String>?, text: Located<RuleStringLiteral>?)
        case discard
        case quarantine(Located<RuleStringLiteral>)
        case setMailFrom(Located<RuleStringLiteral>)
        case setRcpt(Located<RuleStringLiteral>)
        case bcc(Located<RuleStringLiteral>)
        case redirect(Located<RuleStringLiteral>)
        case addHeader(name: Located<RuleStringLiteral>, value: Located<RuleStringLiteral>)
        case setHeader(name: Located<RuleStringLiteral>, value: Located<RuleStringLiteral>)
        case removeHeader(name: Located<RuleStringLiteral>)
        case prefixSubject(Located<RuleStringLiteral>)
        case tag(Located<RuleStringLiteral>)
        case log(Located<RuleStringLiteral>)
    }

    var kind: Kind
    var position: RulePosition

    /// The name used in verdicts and error messages.
    var name: String {
        switch kind {
        case .accept: "accept"
        case .reject: "reject"
        case .tempfail: "tempfail"
        case .disconnect: "disconnect"
        case .discard: "discard"
        case .quarantine: "quarantine"
        case .setMailFrom: "set_mail_from"
        case .setRcpt: "set_rcpt"
        case .bcc: "bcc"
        case .redirect: "redirect"
        case .addHeader: "add_header"
        case .setHeader: "set_header"
        case .removeHeader: "remove_header"
        case .prefixSubject: "prefix_subject"
        case .tag: "tag"
        case .log: "log"
        }
    }

    var isTerminal: Bool {
        switch kind {
        case .accept, .reject, .tempfail, .disconnect, .discard, .quarantine: true
        default: false
        }
    }
}

/// `example "name"` with its `session` facts and `expect` clauses.
struct ExampleSyntax: Sendable {
    var name: Located<String>
    var session: [SessionItem] = []
    var expectations: [Expectation] = []
    var position: RulePosition

    enum SessionItem: Sendable {
        case client(String, RulePosition, port: Int?)
        case server(String, RulePosition, port: Int?)
        case helo(String)
        case tls(version: String?)
        case auth(user: String, mechanism: String?)
        case mailFrom(String)
        case mailParameter(String, String?)
        case rcpt(String)
        case subject(String)
        case from(String)
        case header(String, String)
        case messageID(String)
        case body(String)
        case attachment(name: String, type: String?, size: Int?)
        case size(Int)
        /// `count "limit" N`: the count the limit's counter holds for this session's key.
        case limitCount(String, Int)
    }

    struct Expectation: Sendable {
        enum Kind: Sendable {
            /// `delivered` or `accept`: no enforced terminal action other than accept.
            case delivered
            case terminal(action: String, code: Int?, detail: String?, stage: RuleStage?, rule: String?)
            case effect(action: String, values: [String])
            case matched(rule: String, action: String?)
        }

        var kind: Kind
        var negated: Bool
        var position: RulePosition
        var text: String
    }
}
