import SMTPCore

/// Runs an `example` block: builds the session it describes, drives the stages connect → helo → auth →
/// mail → rcpt (each) → data → message through the rule set, stopping at the first enforced terminal
/// action other than `accept`, and compares what happened with its `expect` clauses.
enum RuleExampleRunner {
    /// What a simulated session did.
    struct Trace {
        /// The terminal action that ended the session, with its verdict.
        var terminal: (RuleTerminal, RuleVerdict)?
        var effects: [RuleEffect] = []
        var verdicts: [RuleVerdict] = []
        var stagesRun: [RuleStage] = []
    }

    static func run(_ example: ExampleSyntax, file: String, ruleSet: RuleSet) -> RuleExampleResult {
        let trace = simulate(example.session, ruleSet: ruleSet)
        var failures: [String] = []
        for expectation in example.expectations where !holds(expectation, in: trace) {
            failures.append("expected '\(expectation.text)'")
        }
        let happened = describe(trace)
        let passed = failures.isEmpty
        let detail = passed ? happened : "\(failures.joined(separator: "; ")); got: \(happened)"
        return RuleExampleResult(name: example.name.value, file: file, line: example.position.line, passed: passed, detail: detail)
    }

    static func simulate(_ session: [ExampleSyntax.SessionItem], ruleSet: RuleSet) -> Trace {
        var client: (ip: String, port: Int?)?
        var server: (ip: String, port: Int?)?
        var helo: String?
        var tlsVersion: String??
        var auth: (user: String, mechanism: String)?
        var mailFrom: String?
        var mailParameters: [ESMTPParameter] = []
        var recipients: [String] = []
        var message = RuleMessageFacts()
        var explicitSize: Int?
        var limitCounts: [String: Int] = [:]
        for item in session {
            switch item {
            case .client(let ip, _, let port): client = (ip, port)
            case .server(let ip, _, let port): server = (ip, port)
            case .helo(let name): helo = name
            case .tls(let version): tlsVersion = .some(version)
            case .auth(let user, let mechanism): auth = (user, mechanism ?? "PLAIN")
            case .mailFrom(let address): mailFrom = address
            case .mailParameter(let keyword, let value): mailParameters.append(ESMTPParameter(keyword: keyword.uppercased(), value: value))
            case .rcpt(let address): recipients.append(address)
            case .subject(let subject):
                message.subject = subject
                message.headers.append((name: "Subject", value: subject))
            case .from(let address):
                message.from.append(address)
                message.headers.append((name: "From", value: address))
            case .header(let name, let value):
                message.headers.append((name: name, value: value))
                if name.caseInsensitiveEquals("Subject") { message.subject = value }
                if name.caseInsensitiveEquals("Message-ID") { message.messageID = value }
                if name.caseInsensitiveEquals("From") { message.from.append(Self.address(inFromField: value)) }
            case .messageID(let id):
                message.messageID = id
                message.headers.append((name: "Message-ID", value: id))
            case .body(let body):
                message.body += body
            case .attachment(let name, let type, let size):
                message.attachments.append(RuleAttachment(filename: name, contentType: type ?? "application/octet-stream", size: size ?? 0))
            case .size(let size):
                explicitSize = size
            case .limitCount(let limit, let count):
                limitCounts[limit] = count
            }
        }
        message.size = explicitSize ?? (message.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 } + 2
            + message.body.utf8.count + message.attachments.reduce(0) { $0 + $1.size })

        // The session's facts move along exactly as in the proxy (`SessionFacts`): an example that
        // passes here is what the proxy does with the same session. A rewrite changes what goes
        // upstream, not the facts later rules read.
        var facts = SessionFacts(clientIP: client?.ip, clientPort: client?.port, serverIP: server?.ip, serverPort: server?.port)
        var trace = Trace()
        func stage(_ stage: RuleStage, _ facts: SessionFacts) -> Bool {
            trace.stagesRun.append(stage)
            var ruleFacts = RuleFacts(facts, at: stage)
            // The counts the example states stand for the proxy's counters.
            ruleFacts.limitCounts = limitCounts
            let outcome = ruleSet.evaluate(stage, ruleFacts)
            trace.verdicts += outcome.verdicts
            trace.effects += outcome.effects
            if let terminal = outcome.terminal, let verdict = outcome.terminalVerdict, terminal != .accept {
                trace.terminal = (terminal, verdict)
                return false
            }
            return true
        }
        // An example's `tls` is a session under TLS from its first octet, as on an implicit-TLS
        // listener: `connect` rules see TLS, and its version once the handshake is over.
        if tlsVersion != nil { facts.becameEncrypted() }
        guard stage(.connect, facts) else { return trace }
        if let version = tlsVersion { facts.negotiatedTLS(version: version) }
        if let helo {
            guard stage(.helo, facts.probing(helo: helo)) else { return trace }
            facts.greeted(as: helo)
        }
        if let auth {
            facts.authenticating(mechanism: auth.mechanism, user: auth.user)
            guard stage(.auth, facts) else { return trace }
        }
        guard let mailFrom else { return trace }
        let reversePath = SMTPPath(address: mailFrom)
        guard stage(.mail, facts.probing(mailFrom: reversePath, parameters: mailParameters)) else { return trace }
        facts.beganTransaction(mailFrom: reversePath, parameters: mailParameters)
        for recipient in recipients {
            let path = SMTPPath(address: recipient)
            guard stage(.rcpt, facts.probing(recipient: path)) else { return trace }
            facts.gaveRecipient()
            facts.acceptedRecipient(path)
        }
        guard !facts.recipients.isEmpty else { return trace }
        guard stage(.data, facts) else { return trace }
        _ = stage(.message, facts.probing(message: message))
        return trace
    }

    /// The address of a simple From value: inside `<...>` when present, else the whole value trimmed.
    static func address(inFromField value: String) -> String {
        if let open = value.lastIndex(of: "<"), let close = value[open...].firstIndex(of: ">") {
            return String(value[value.index(after: open)..<close])
        }
        return value.trimmingASCIISpaces()
    }

    static func holds(_ expectation: ExampleSyntax.Expectation, in trace: Trace) -> Bool {
        let result: Bool
        switch expectation.kind {
        case .delivered:
            result = trace.terminal == nil
        case .terminal(let action, let code, let detail, let stage, let rule):
            guard let (terminal, verdict) = trace.terminal, terminal.actionName == action else {
                result = false
                break
            }
            var ok = true
            if let code {
                switch terminal {
                case .reject(let c, _, _), .tempfail(let c, _, _): ok = ok && c == code
                case .disconnect(let c, _, _): ok = ok && (c ?? 421) == code
                default: ok = false
                }
            }
            if let detail, case .quarantine(let reason) = terminal { ok = ok && reason == detail }
            if let stage { ok = ok && verdict.stage == stage }
            if let rule { ok = ok && verdict.rule == rule }
            result = ok
        case .effect(let action, let values):
            result = trace.effects.contains { effect in
                guard effect.actionName == action else { return false }
                switch effect {
                case .addHeader(let name, let value), .setHeader(let name, let value):
                    return values == [name, value]
                default:
                    return values == [effect.verdictDetail]
                }
            }
        case .matched(let rule, let action):
            result = trace.verdicts.contains { $0.rule == rule && (action == nil || $0.action == action) }
        }
        return result != expectation.negated
    }

    static func describe(_ trace: Trace) -> String {
        var text: String
        if let (terminal, verdict) = trace.terminal {
            text = "\(terminal.actionName)\(terminal.verdictDetail.map { " \($0)" } ?? "") at \(verdict.stage.rawValue) by \"\(verdict.rule)\""
        } else {
            text = "delivered (stages run: \(trace.stagesRun.map(\.rawValue).joined(separator: ", ")))"
        }
        if !trace.effects.isEmpty {
            text += "; effects: " + trace.effects.map { "\($0.actionName) \"\($0.verdictDetail)\"" }.joined(separator: ", ")
        }
        let monitored = trace.verdicts.filter { !$0.enforced }
        if !monitored.isEmpty {
            text += "; monitor verdicts: " + monitored.map { "\($0.action) by \"\($0.rule)\"" }.joined(separator: ", ")
        }
        return text
    }
}
