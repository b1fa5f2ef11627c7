import SMTPCore
import SMTPRules

/// The rule language over arbitrary text: lexer, parser, checker and compiler must never trap, a set
/// compiles exactly when the check finds no error, and a compiled set evaluated at every stage yields
/// replies in their classes and strings without CR, LF or NUL (so none reaches the wire). The first
/// chunk is the rules file; a second one, if any, is the text of every list file; a third one is put
/// into every text fact.
public enum RulesHarness {
    public static func run(_ input: [UInt8]) throws(FuzzInvariantViolation) {
        let chunks = FuzzInput.chunks(input)
        let text = String(decoding: chunks[0], as: UTF8.self)
        let list = chunks.count > 1 ? String(decoding: chunks[1], as: UTF8.self) : nil
        let fact = chunks.count > 2 ? String(decoding: chunks[2], as: UTF8.self) : "a\r\nb\0c@example.com"

        let result = RuleSet.compile([RuleSource(path: "fuzz.rules", text: text)]) { name in
            guard let list else { throw ListMissing(name: name) }
            return list
        }
        let hasErrors = result.diagnostics.contains { $0.severity == .error }
        guard hasErrors == (result.ruleSet == nil) else {
            throw FuzzInvariantViolation(hasErrors ? "a rule set compiled despite errors" : "no rule set, and no error says why")
        }
        for diagnostic in result.diagnostics {
            guard diagnostic.line >= 1, diagnostic.column >= 1 else {
                throw FuzzInvariantViolation("diagnostic at \(diagnostic.line):\(diagnostic.column): \(diagnostic.message)")
            }
        }
        guard let ruleSet = result.ruleSet else { return }
        let facts = facts(fact)
        for stage in RuleStage.allCases {
            try check(ruleSet.evaluate(stage, facts), stage: stage)
        }
    }

    private struct ListMissing: Error {
        var name: String
    }

    static func facts(_ text: String) -> RuleFacts {
        RuleFacts(
            clientIP: "192.0.2.1", clientPort: 40000, serverIP: "192.0.2.25", serverPort: 25,
            helo: text, tls: false, tlsVersion: text, authUser: text, authMechanism: "PLAIN",
            mailFrom: text, mailParameters: ["SIZE": "1000", "BODY": text],
            recipient: text, recipients: [text, "postmaster"], rcptCount: 2,
            message: RuleMessageFacts(
                headers: [("Subject", text), ("From", text), ("X-Policy", text)],
                subject: text, from: [text], messageID: text, size: 1000, body: text,
                attachments: [RuleAttachment(filename: text, contentType: "application/pdf", size: 10)]
            )
        )
    }

    private static func check(_ outcome: RuleOutcome, stage: RuleStage) throws(FuzzInvariantViolation) {
        func clean(_ text: String?, _ what: String) throws(FuzzInvariantViolation) {
            guard let text else { return }
            if text.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) {
                throw FuzzInvariantViolation("\(what) at \(stage) holds CR, LF or NUL: \(Array(text.utf8).shown)")
            }
        }
        func reply(_ code: Int?, _ enhanced: EnhancedStatusCode?, _ range: ClosedRange<Int>, _ what: String) throws(FuzzInvariantViolation) {
            guard let code else { return }
            guard range.contains(code) else { throw FuzzInvariantViolation("\(what) with code \(code)") }
            if let enhanced, enhanced.statusClass != code / 100 {
                throw FuzzInvariantViolation("\(what) \(code) with enhanced code \(enhanced)")
            }
        }
        switch outcome.terminal {
        case .reject(let code, let enhanced, let text)?:
            try reply(code, enhanced, 500...559, "reject")
            try clean(text, "reject text")
        case .tempfail(let code, let enhanced, let text)?:
            try reply(code, enhanced, 400...459, "tempfail")
            try clean(text, "tempfail text")
        case .disconnect(let code, let enhanced, let text)?:
            try reply(code, enhanced, 400...599, "disconnect")
            try clean(text, "disconnect text")
        case .quarantine(let reason)?:
            try clean(reason, "quarantine reason")
        case .accept?, .discard?, nil:
            break
        }
        for effect in outcome.effects {
            switch effect {
            case .setMailFrom(let text), .setRcpt(let text), .bcc(let text), .redirect(let text),
                 .prefixSubject(let text), .tag(let text), .log(let text), .removeHeader(let text):
                try clean(text, effect.actionName)
            case .addHeader(let name, let value), .setHeader(let name, let value):
                try clean(name, effect.actionName)
                try clean(value, effect.actionName)
            }
        }
        for verdict in outcome.verdicts {
            try clean(verdict.detail, "verdict detail")
        }
    }
}
