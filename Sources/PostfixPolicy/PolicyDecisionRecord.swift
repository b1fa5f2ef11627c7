import SMTPCore
import SMTPRules
import SMTPTranscript
import SenderLimits

/// One decision of the policy service, as a `smtpscope.policy/1` JSON line (README, "Policy
/// service"): the request's identity and facts, the action returned, the rule that decided, every
/// verdict, and what limits counted. Never a credential: Postfix's policy requests carry none.
public struct PolicyDecisionRecord: Sendable {
    public static let schema = "smtpscope.policy/1"
    /// The request attributes a record keeps, in this order.
    static let keptAttributes = [
        "queue_id", "instance", "protocol_state", "client_address", "client_port", "client_name", "helo_name", "sasl_method",
        "sasl_username", "sender", "recipient", "recipient_count", "size", "encryption_protocol",
    ]

    public var time: Timestamp
    public var request: PolicyRequest
    /// nil when no rule stage matches the request's state.
    public var stage: RuleStage?
    /// The `action=` value returned.
    public var action = "DUNNO"
    /// The rule whose verdict became the action.
    public var rule: String?
    public var verdicts: [RuleVerdict] = []
    /// Rules not judged: they read header fields or the body, which Postfix does not send.
    public var unjudged: [String] = []
    /// What limits counted because of this answer.
    public var counted: [LimitAddition] = []
    public var note: String?

    public init(time: Timestamp, request: PolicyRequest) {
        self.time = time
        self.request = request
    }

    /// The response to Postfix: one attribute and an empty line.
    public var response: String { "action=\(action)\n\n" }

    /// The record as one JSON line, with its newline.
    public func jsonLine() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        func key(_ name: String) {
            if out.last != UInt8(ascii: "{") && out.last != UInt8(ascii: "[") { out.append(UInt8(ascii: ",")) }
            JSONOutput.writeString(name, into: &out)
            out.append(UInt8(ascii: ":"))
        }
        func string(_ name: String, _ value: String?) {
            guard let value else { return }
            key(name)
            JSONOutput.writeString(value, into: &out)
        }
        out.append(UInt8(ascii: "{"))
        string("schema", Self.schema)
        string("time", RFC3339.format(time))
        for name in Self.keptAttributes {
            guard let value = request.attributes[name] else { continue }
            if ["client_port", "recipient_count", "size"].contains(name), let number = Int(value) {
                key(name)
                JSONOutput.writeInt(number, into: &out)
            } else if !value.isEmpty || name == "sender" {
                string(name, value)
            }
        }
        string("stage", stage?.rawValue)
        string("action", action)
        string("rule", rule)
        if !verdicts.isEmpty {
            key("verdicts")
            out.append(UInt8(ascii: "["))
            for verdict in verdicts {
                if out.last != UInt8(ascii: "[") { out.append(UInt8(ascii: ",")) }
                out.append(UInt8(ascii: "{"))
                string("rule", verdict.rule)
                string("file", verdict.file)
                key("line")
                JSONOutput.writeInt(verdict.line, into: &out)
                string("stage", verdict.stage.rawValue)
                string("action", verdict.action)
                key("enforced")
                JSONOutput.writeBool(verdict.enforced, into: &out)
                string("detail", verdict.detail)
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: "]"))
        }
        if !unjudged.isEmpty {
            key("unjudged")
            out.append(UInt8(ascii: "["))
            for (index, rule) in unjudged.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONOutput.writeString(rule, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        if !counted.isEmpty {
            key("counted")
            out.append(UInt8(ascii: "{"))
            for addition in counted {
                key(addition.limit)
                JSONOutput.writeInt(addition.amount, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        string("note", note)
        out.append(UInt8(ascii: "}"))
        out.append(UInt8(ascii: "\n"))
        return out
    }
}
