import SMTPCore

/// A checked rule: where it was written, its condition and its actions.
struct CompiledRule: Sendable {
    var name: String
    var file: String
    var line: Int
    var stage: RuleStage
    var enforced: Bool
    /// nil: the rule always matches.
    var condition: RuleCondition?
    var actions: [CompiledAction]
    /// The limits the rule reads, whose state its verdicts name (set by `RuleSet`).
    var limits: [RuleLimit] = []

    /// Whether evaluating the rule can read a field that `matches`, in its condition or in an
    /// action's text.
    func reads(where matches: (FieldAccessor) -> Bool) -> Bool {
        condition?.reads(where: matches) == true || actions.contains { $0.templates.contains { $0.reads(where: matches) } }
    }
}

/// A checked action with its strings bound.
enum CompiledAction: Sendable {
    case accept
    case reject(code: Int, enhanced: EnhancedStatusCode?, text: RuleTemplate)
    case tempfail(code: Int, enhanced: EnhancedStatusCode?, text: RuleTemplate)
    case disconnect(code: Int?, enhanced: EnhancedStatusCode?, text: RuleTemplate?)
    case discard
    case quarantine(RuleTemplate)
    case setMailFrom(RuleTemplate)
    case setRcpt(RuleTemplate)
    case bcc(RuleTemplate)
    case redirect(RuleTemplate)
    case addHeader(name: String, value: RuleTemplate)
    case setHeader(name: String, value: RuleTemplate)
    case removeHeader(name: String)
    case prefixSubject(RuleTemplate)
    case tag(RuleTemplate)
    case log(RuleTemplate)

    /// The action's strings that are rendered against the facts.
    var templates: [RuleTemplate] {
        switch self {
        case .accept, .discard, .removeHeader: []
        case .reject(_, _, let text), .tempfail(_, _, let text): [text]
        case .disconnect(_, _, let text): text.map { [$0] } ?? []
        case .quarantine(let template), .setMailFrom(let template), .setRcpt(let template), .bcc(let template),
            .redirect(let template), .prefixSubject(let template), .tag(let template), .log(let template):
            [template]
        case .addHeader(_, let value), .setHeader(_, let value): [value]
        }
    }

    enum Rendered {
        case terminal(RuleTerminal)
        case effect(RuleEffect)
    }

    /// The action with its strings rendered against `facts`.
    func render(_ facts: RuleFacts, captures: [String?]) -> Rendered {
        func r(_ template: RuleTemplate) -> String { template.render(facts, captures: captures) }
        switch self {
        case .accept: return .terminal(.accept)
        case .reject(let code, let enhanced, let text): return .terminal(.reject(code: code, enhanced: enhanced, text: r(text)))
        case .tempfail(let code, let enhanced, let text): return .terminal(.tempfail(code: code, enhanced: enhanced, text: r(text)))
        case .disconnect(let code, let enhanced, let text): return .terminal(.disconnect(code: code, enhanced: enhanced, text: text.map(r)))
        case .discard: return .terminal(.discard)
        case .quarantine(let reason): return .terminal(.quarantine(reason: r(reason)))
        case .setMailFrom(let value): return .effect(.setMailFrom(r(value)))
        case .setRcpt(let value): return .effect(.setRcpt(r(value)))
        case .bcc(let value): return .effect(.bcc(r(value)))
        case .redirect(let value): return .effect(.redirect(r(value)))
        case .addHeader(let name, let value): return .effect(.addHeader(name: name, value: r(value)))
        case .setHeader(let name, let value): return .effect(.setHeader(name: name, value: r(value)))
        case .removeHeader(let name): return .effect(.removeHeader(name: name))
        case .prefixSubject(let value): return .effect(.prefixSubject(r(value)))
        case .tag(let value): return .effect(.tag(r(value)))
        case .log(let value): return .effect(.log(r(value)))
        }
    }
}

extension RuleTerminal {
    /// The verdict detail: "550 5.7.1 text", the quarantine reason, nil for accept/discard.
    var verdictDetail: String? {
        func reply(_ code: Int, _ enhanced: EnhancedStatusCode?, _ text: String) -> String {
            [String(code), enhanced?.description, text.isEmpty ? nil : text].compactMap { $0 }.joined(separator: " ")
        }
        switch self {
        case .accept, .discard: return nil
        case .reject(let code, let enhanced, let text), .tempfail(let code, let enhanced, let text): return reply(code, enhanced, text)
        case .disconnect(let code, let enhanced, let text):
            guard let code else { return text }
            return reply(code, enhanced, text ?? "")
        case .quarantine(let reason): return reason
        }
    }
}

extension RuleEffect {
    /// The verdict detail: the address, "Name: value", the label or the text.
    var verdictDetail: String {
        switch self {
        case .setMailFrom(let value), .setRcpt(let value), .bcc(let value), .redirect(let value), .prefixSubject(let value),
            .tag(let value), .log(let value):
            value
        case .addHeader(let name, let value), .setHeader(let name, let value): "\(name): \(value)"
        case .removeHeader(let name): name
        }
    }
}
