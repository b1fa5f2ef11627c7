import SMTPCore

/// What the rules of one stage decided (rules/README.md, "Actions").
public struct RuleOutcome: Sendable {
    /// The first enforced terminal action of the stage, if any.
    public var terminal: RuleTerminal?
    /// The verdict of `terminal`: which rule decided, where it is written.
    public var terminalVerdict: RuleVerdict?
    /// Enforced non-terminal actions, in rule order, strings interpolated and sanitised.
    public var effects: [RuleEffect]
    /// One per action of every matching rule, monitor ones included, in order.
    public var verdicts: [RuleVerdict]
    /// Rules that read what the facts do not hold (`RuleMessageFacts.knownHeaderFields`,
    /// `bodyKnown`) and were not evaluated: neither matched nor not.
    public var unjudged: [UnjudgedRule]

    public init(terminal: RuleTerminal? = nil, terminalVerdict: RuleVerdict? = nil, effects: [RuleEffect] = [], verdicts: [RuleVerdict] = [], unjudged: [UnjudgedRule] = []) {
        self.terminal = terminal
        self.terminalVerdict = terminalVerdict
        self.effects = effects
        self.verdicts = verdicts
        self.unjudged = unjudged
    }

    public static let none = RuleOutcome()
}

/// A rule that could not be judged on the facts at hand, and where it is written.
public struct UnjudgedRule: Sendable, Hashable {
    public var rule: String
    public var file: String
    public var line: Int?
    public var stage: RuleStage

    public init(rule: String, file: String, line: Int?, stage: RuleStage) {
        self.rule = rule
        self.file = file
        self.line = line
        self.stage = stage
    }
}

/// An action that ends the evaluation of a stage. Reply codes follow RFC 5321 §4.2 and enhanced codes
/// RFC 3463.
public enum RuleTerminal: Sendable, Hashable {
    /// Stop evaluating this stage; the command goes on as usual (to the upstream).
    case accept
    case reject(code: Int, enhanced: EnhancedStatusCode?, text: String)
    case tempfail(code: Int, enhanced: EnhancedStatusCode?, text: String)
    /// nil code/text: the proxy's own `421 4.7.0` closing reply.
    case disconnect(code: Int?, enhanced: EnhancedStatusCode?, text: String?)
    /// 250 to the client, nothing upstream.
    case discard
    /// Store the message with metadata, 250 to the client, nothing upstream.
    case quarantine(reason: String)

    /// The action's name in the rule language.
    public var actionName: String {
        switch self {
        case .accept: "accept"
        case .reject: "reject"
        case .tempfail: "tempfail"
        case .disconnect: "disconnect"
        case .discard: "discard"
        case .quarantine: "quarantine"
        }
    }
}

/// A non-terminal action, its strings interpolated and free of CR, LF and NUL.
public enum RuleEffect: Sendable, Hashable {
    case setMailFrom(String)
    case setRcpt(String)
    /// Added upstream only.
    case bcc(String)
    /// Replaces all recipients.
    case redirect(String)
    case addHeader(name: String, value: String)
    case setHeader(name: String, value: String)
    case removeHeader(name: String)
    case prefixSubject(String)
    case tag(String)
    case log(String)

    /// The action's name in the rule language.
    public var actionName: String {
        switch self {
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
}

/// A record that a rule matched and what one of its actions did or would have done, for the
/// transcript's `rules` verdicts, enforced or only recorded (`mode monitor`).
public struct RuleVerdict: Sendable, Hashable {
    public var rule: String
    public var file: String
    public var line: Int
    public var stage: RuleStage
    /// One of: accept reject tempfail disconnect discard quarantine set_mail_from set_rcpt bcc redirect
    /// add_header set_header remove_header prefix_subject tag log.
    public var action: String
    /// false for `mode monitor` rules.
    public var enforced: Bool
    /// e.g. "550 5.7.1 Sender domain x is not permitted here", the tag label, the log text, the address;
    /// then, for a rule that read limits, what it saw of each ("auth.user alice reached user-hourly:
    /// 200 messages in 1h").
    public var detail: String?
    /// The limits the rule read, with this session's key and count.
    public var limits: [LimitReading] = []

    public init(rule: String, file: String, line: Int, stage: RuleStage, action: String, enforced: Bool, detail: String?) {
        self.rule = rule
        self.file = file
        self.line = line
        self.stage = stage
        self.action = action
        self.enforced = enforced
        self.detail = detail
    }
}
