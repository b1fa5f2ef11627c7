import RuleSimulation
import SMTPRules
import SMTPTranscript

/// The text `rules check` and `rules test` print.
enum RulesReport {
    static func check(_ result: RuleCheckResult, directory: String) -> String {
        var out = ""
        // A failed example is one of the diagnostics, with its position.
        for diagnostic in result.diagnostics { out += "\(diagnostic)\n" }
        let failed = result.examples.filter { !$0.passed }
        let errors = result.diagnostics.filter { $0.severity == .error }.count
        let warnings = result.diagnostics.count - errors
        if let rules = result.ruleSet {
            out += "\(directory): \(rules.ruleCount) rules, \(result.examples.count - failed.count) of \(result.examples.count) examples passed"
        } else {
            out += "\(directory): not loaded"
        }
        out += ", \(errors) errors, \(warnings) warnings: \(result.isValid ? "valid" : "INVALID")\n"
        return out
    }

    /// One session's verdicts, or nil when no rule matched it and every rule could be judged.
    static func session(_ simulated: SimulatedSession) -> String? {
        let verdicts = simulated.verdicts
        guard !verdicts.isEmpty || !simulated.unjudged.isEmpty else { return nil }
        let record = simulated.record
        var out = "session \(record.sessionID)"
        if let client = record.client { out += " client \(client.ip):\(client.port)" }
        out += "\n"
        if simulated.decisions.isEmpty {
            out += "  would go on as recorded\n"
        } else {
            for decision in simulated.decisions { out += "  would \(decision)\n" }
        }
        for verdict in record.rules { out += "    \(line(verdict))\n" }
        for (index, transaction) in record.transactions.enumerated() where !transaction.rules.isEmpty {
            let recipients = transaction.rcptTo.compactMap(\.address).map { "<\($0)>" }.joined(separator: " ")
            out += "  transaction \(index + 1): <\(transaction.mailFrom?.address ?? "?")> to \(recipients.isEmpty ? "nobody" : recipients)\n"
            for verdict in transaction.rules { out += "    \(line(verdict))\n" }
        }
        for rule in simulated.unjudged { out += "  not judged: \(rule.stage.rawValue) \"\(rule.rule)\" [\(place(rule))]\n" }
        return out
    }

    static func place(_ rule: UnjudgedRule) -> String {
        "\(rule.file)\(rule.line.map { ":\($0)" } ?? "")"
    }

    static func line(_ verdict: SessionRecord.RuleVerdict) -> String {
        var text = "\(verdict.stage) \"\(verdict.rule)\" \(verdict.action)"
        if let detail = verdict.detail { text += " \(detail)" }
        if verdict.mode == .monitor { text += " (monitor)" }
        text += " [\(verdict.file)\(verdict.line.map { ":\($0)" } ?? "")]"
        return text
    }

    static func comparison(_ comparison: RuleSetComparison, old: String, new: String) -> String {
        var out = ""
        for change in comparison.changes {
            out += "session \(change.sessionID)"
            if let client = change.client { out += " client \(client.ip):\(client.port)" }
            out += "\n"
            out += "  before (\(old)): \(change.before.isEmpty ? "goes on as recorded" : change.before.map(\.description).joined(separator: "; "))\n"
            out += "  after  (\(new)): \(change.after.isEmpty ? "goes on as recorded" : change.after.map(\.description).joined(separator: "; "))\n"
            for verdict in change.removed { out += "  - \(line(verdict))\n" }
            for verdict in change.added { out += "  + \(line(verdict))\n" }
        }
        out += "\(comparison.changes.count) of \(comparison.sessions) sessions change between \(old) and \(new)\n"
        return out
    }

    /// Counts by rule and action over every session of a `rules test` run.
    struct Summary {
        private var sessions = 0
        private var matched = 0
        private var decided = 0
        private var counts: [String: Int] = [:]
        private var order: [String] = []
        private var unjudged: [UnjudgedRule: Int] = [:]
        private var unjudgedOrder: [UnjudgedRule] = []
        /// Refusals by rules that read a limit over its budget, by limit and key.
        private var stops: [StoppedSender: [LimitStop]] = [:]
        private var stopOrder: [StoppedSender] = []

        struct StoppedSender: Hashable {
            var limit: String
            var per: String
            var key: String
        }

        mutating func add(_ simulated: SimulatedSession) {
            sessions += 1
            let verdicts = simulated.verdicts
            if !verdicts.isEmpty { matched += 1 }
            if !simulated.decisions.isEmpty { decided += 1 }
            for verdict in verdicts {
                let key = "\(verdict.rule)\t\(verdict.action)\(verdict.mode == .monitor ? " (monitor)" : "")"
                if counts[key] == nil { order.append(key) }
                counts[key, default: 0] += 1
            }
            for rule in simulated.unjudged {
                if unjudged[rule] == nil { unjudgedOrder.append(rule) }
                unjudged[rule, default: 0] += 1
            }
            for stop in simulated.limitStops {
                let sender = StoppedSender(limit: stop.reading.limit, per: stop.reading.per, key: stop.reading.key)
                if stops[sender] == nil { stopOrder.append(sender) }
                stops[sender, default: []].append(stop)
            }
        }

        func render() -> String {
            var out = "\n\(sessions) sessions: \(matched) matched a rule, \(decided) would have been stopped or settled by one\n"
            let width = order.map { $0.split(separator: "\t").first?.count ?? 0 }.max() ?? 0
            for key in order {
                let parts = key.split(separator: "\t", maxSplits: 1)
                let rule = String(parts.first ?? "")
                let action = parts.count > 1 ? String(parts[1]) : ""
                out += "  \(rule.padding(to: width))  \(action): \(counts[key] ?? 0)\n"
            }
            if !stopOrder.isEmpty {
                // "Which senders would this budget have stopped, and when?"
                out += "limits: who would have been stopped, and when:\n"
                for sender in stopOrder {
                    let all = stops[sender] ?? []
                    let times = all.map(\.time)
                    let first = times.min().map(RFC3339.format) ?? "?"
                    let last = times.max().map(RFC3339.format) ?? "?"
                    let rules = Set(all.map { "\($0.action) by \"\($0.rule)\"\($0.enforced ? "" : " (monitor)")" }).sorted().joined(separator: ", ")
                    let budget = all.first.map { "\($0.reading.max) \($0.reading.unit.rawValue) in \($0.reading.window)" } ?? ""
                    out += "  \(sender.limit) (\(budget)): \(sender.per) \(sender.key): \(all.count) refusal\(all.count == 1 ? "" : "s"), \(first == last ? "at \(first)" : "from \(first) to \(last)"); \(rules)\n"
                }
            }
            if !unjudgedOrder.isEmpty {
                // Saying nothing would read as "never matched".
                out += "not judged (they read header fields or text that was not at hand: a transcript file keeps only Subject, From, To, Cc, Date and Message-ID of a message and none of its text, and a capture lacks a message it did not see whole):\n"
                for rule in unjudgedOrder {
                    let count = unjudged[rule] ?? 0
                    out += "  \"\(rule.rule)\" [\(place(rule))]: \(count) session\(count == 1 ? "" : "s")\n"
                }
            }
            return out
        }
    }
}

extension String {
    fileprivate func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
