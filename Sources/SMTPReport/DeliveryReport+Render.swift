import SMTPCore
import SMTPTranscript

extension DeliveryReport {
    /// The report as plain text (no ANSI colours), lines wrapped at `width` columns where text
    /// allows. The layout is stable: sections always appear, in the same order, with "none" when empty.
    public func render(width: Int = 100) -> String {
        var out = ReportWriter(width: max(width, 40))
        renderHeader(&out)
        renderFailures(&out)
        renderTiming(&out)
        renderTLS(&out)
        renderEndings(&out)
        renderCapture(&out)
        out.heading("Anomalies")
        out.text(Self.counts(anomalies.sorted.map { ($0.name, $0.count) }))
        if smuggling.total > 0 {
            out.text(
                "SMTP smuggling suspected: the server ended a message at a non-standard end of data (RFC 5321 "
                    + "§4.1.1.4 allows only CRLF.CRLF), so what followed it was read as commands. A server should "
                    + "refuse or normalise bare line ends (Postfix: smtpd_forbid_bare_newline = normalize):"
            )
            notes(smuggling, &out)
        }
        return out.result
    }

    private func renderHeader(_ out: inout ReportWriter) {
        out.title("smtpscope delivery report")
        var input = "\(files) file\(files == 1 ? "" : "s"), \(sessions) session\(sessions == 1 ? "" : "s")"
        let bySource = SessionRecord.Source.allCases.compactMap { source in
            sources[source].map { "\(source.rawValue) \($0)" }
        }
        if !bySource.isEmpty { input += " (\(bySource.joined(separator: ", ")))" }
        if skippedRecords > 0 { input += ", \(skippedRecords) unreadable record\(skippedRecords == 1 ? "" : "s") skipped" }
        out.field("Input", input)
        if unrecognisedFlows > 0 {
            out.field("Not read", Self.unrecognisedFlowsText(unrecognisedFlows))
        }
        if let firstStart, let lastEnd {
            out.field(
                "Time span",
                "\(ReportText.time(firstStart)) to \(ReportText.time(lastEnd)) (\(ReportText.span(lastEnd &- firstStart)))"
            )
        } else {
            out.field("Time span", "none")
        }
        out.field("Sessions", Self.counts(SessionRecord.SessionOutcome.reportOrder.map { ($0.rawValue, sessionOutcomes[$0] ?? 0) }))
        out.field(
            "Transactions",
            Self.counts(SessionRecord.TransactionOutcome.allCases.map { ($0.rawValue, transactionOutcomes[$0] ?? 0) })
        )
        let delivered = transactionOutcomes[.delivered] ?? 0
        let notDelivered = (transactionOutcomes[.rejected] ?? 0) + (transactionOutcomes[.tempfailed] ?? 0)
        var messages = "\(delivered) delivered"
        if partialDeliveries > 0 { messages += " (\(partialDeliveries) only to some recipients)" }
        messages += ", \(notDelivered) not delivered"
        let other: [(String, Int)] = [
            ("aborted", transactionOutcomes[.aborted] ?? 0),
            ("discarded", transactionOutcomes[.discarded] ?? 0),
            ("quarantined", transactionOutcomes[.quarantined] ?? 0),
            ("outcome unknown", transactionOutcomes[.unknown] ?? 0),
        ].filter { $0.1 > 0 }
        if !other.isEmpty { messages += ", " + other.map { "\($0.1) \($0.0)" }.joined(separator: ", ") }
        if mailInsideTLS > 0 {
            messages += "; \(mailInsideTLS) encrypted session\(mailInsideTLS == 1 ? "" : "s") carried \(mailInsideTLS == 1 ? "its" : "their") mail, if any, inside TLS, not seen here"
        }
        out.field("Messages", messages)
        let refused = recipientsRefusedPermanently + recipientsRefusedTemporarily
        out.field(
            "Recipients",
            "\(recipientsAccepted) accepted, \(refused) refused (\(recipientsRefusedPermanently) permanently, "
                + "\(recipientsRefusedTemporarily) temporarily)"
        )
    }

    private func renderFailures(_ out: inout ReportWriter) {
        let total = failures.values.reduce(0) { $0 + $1.total }
        let temporary = temporaryFailures.values.reduce(0, +)
        out.heading("Not delivered: \(total) failure\(total == 1 ? "" : "s") (\(total - temporary) permanent, \(temporary) temporary)")
        if total == 0 {
            out.text("none")
            return
        }
        let causes = FailureCause.allCases.filter { failures[$0] != nil }.sorted {
            (failures[$0]?.total ?? 0) > (failures[$1]?.total ?? 0)
        }
        for (index, cause) in causes.enumerated() {
            guard let list = failures[cause] else { continue }
            if index > 0 { out.blank() }
            let temporary = temporaryFailures[cause] ?? 0
            out.text("\(cause.label): \(list.total) (\(list.total - temporary) permanent, \(temporary) temporary)")
            out.text("hint: \(cause.hint)", indent: 2, hanging: 6)
            for failure in list.items {
                renderFailure(failure, &out)
            }
            out.more(list.omitted, indent: 2)
        }
    }

    private func renderFailure(_ failure: DeliveryFailure, _ out: inout ReportWriter) {
        let reference = "session \(ReportText.sanitize(failure.sessionID)), "
            + "\(ReportText.endpoint(failure.client)) -> \(ReportText.endpoint(failure.server)), "
            + Self.moment(start: failure.sessionStart, offset: failure.sentAt)
        out.text("- " + reference, indent: 2, hanging: 2)
        out.field("stage", failure.stage.rawValue, indent: 4)
        out.field("command", ReportText.sanitize(failure.command), indent: 4)
        guard let reply = failure.reply else {
            if let answer = failure.answerWithoutCode {
                let kind = failure.isTemporary ? "temporary" : "permanent"
                out.field("reply", "a line without a reply code (\(kind), by its status code)", indent: 4)
                out.field("", ReportText.sanitize(answer), indent: 4)
                renderMessage(failure, &out)
                return
            }
            let waited = failure.wait.map { " (waited \(ReportText.seconds($0)))" } ?? ""
            out.field("reply", "none before the session ended\(waited)", indent: 4)
            renderMessage(failure, &out)
            return
        }
        var notes: [String] = [failure.isTemporary ? "temporary" : "permanent"]
        if let wait = failure.wait { notes.append("after \(ReportText.seconds(wait))") }
        let code = "\(reply.code)" + (reply.enhanced.map { " " + ReportText.sanitize($0) } ?? "")
        out.field("reply", "\(code) (\(notes.joined(separator: ", ")))", indent: 4)
        for line in reply.text.split(separator: "\n", omittingEmptySubsequences: false) {
            out.text(ReportText.sanitize(line), indent: 4 + ReportWriter.labelWidth, hanging: 2)
        }
        var meanings: [String] = []
        if let words = ReplyCode(reply.code).meaning {
            meanings.append("\(reply.code): \(words)")
        } else {
            meanings.append("\(reply.code): not a standard reply code")
        }
        if let enhanced = reply.enhanced {
            let words = EnhancedStatusCode(enhanced)?.explanation ?? "malformed enhanced status code"
            meanings.append("\(ReportText.sanitize(enhanced)): \(words)")
        }
        out.field("meaning", meanings[0], indent: 4)
        for meaning in meanings.dropFirst() {
            out.text(meaning, indent: 4 + ReportWriter.labelWidth)
        }
        renderMessage(failure, &out)
    }

    private func renderMessage(_ failure: DeliveryFailure, _ out: inout ReportWriter) {
        var parts: [String] = []
        if let from = failure.mailFrom { parts.append("from <\(ReportText.sanitize(from))>") }
        var recipients = failure.recipients.map(ReportText.sanitize).joined(separator: ", ")
        if failure.moreRecipients > 0 { recipients += " and \(failure.moreRecipients) more" }
        if failure.isPartialDelivery {
            parts.append(
                "partial delivery: delivered to \(failure.acceptedRecipients) of \(failure.totalRecipients) recipients, "
                    + "not to \(recipients)"
            )
        } else if !failure.recipients.isEmpty {
            parts.append("not delivered to \(recipients)")
        } else if failure.mailFrom == nil {
            parts.append("no message was started")
        }
        guard !parts.isEmpty else { return }
        out.field("message", parts.joined(separator: "; "), indent: 4)
    }

    private func renderTiming(_ out: inout ReportWriter) {
        out.heading("Stage timing")
        out.text(
            "\(repliesTimed) server repl\(repliesTimed == 1 ? "y" : "ies") timed; "
                + "\(stalls.total) stall\(stalls.total == 1 ? "" : "s") of \(ReportText.seconds(options.stallThreshold)) or more"
        )
        for stall in stalls.items {
            let command = ReportText.sanitize(stall.pair.command ?? "(connection opened, awaiting the greeting)")
            let what = stall.answered
                ? "stalled \(ReportText.seconds(stall.wait)) at \(command) (server)"
                : "no reply for \(ReportText.seconds(stall.wait)) to \(command) (server; the session ended)"
            out.text("- \(what) in " + Self.reference(stall.session, offset: stall.pair.sentAt), indent: 2, hanging: 2)
        }
        out.more(stalls.omitted, indent: 2)
        out.text("Slowest server replies:")
        if slowest.isEmpty { out.text("none", indent: 2) }
        for stall in slowest {
            let command = ReportText.sanitize(stall.pair.command ?? "(greeting)")
            let reply = stall.pair.reply.map { " -> \($0.code)" + ($0.enhanced.map { " " + ReportText.sanitize($0) } ?? "") } ?? ""
            let seconds = ReportText.seconds(stall.wait)
            let padded = String(repeating: " ", count: max(0, 9 - seconds.count)) + seconds
            let stage = stall.pair.stage.rawValue
            let stageColumn = stage + String(repeating: " ", count: max(1, 13 - stage.count))
            out.text(
                "\(padded)  \(stageColumn)\(command)\(reply)  in session \(ReportText.sanitize(stall.session.id))",
                indent: 2,
                hanging: 24
            )
        }
    }

    private func renderTLS(_ out: inout ReportWriter) {
        out.heading("TLS")
        var modes = Self.counts(SessionRecord.TLS.Mode.allCases.map { ($0.rawValue, tlsModes[$0] ?? 0) })
        modes += "; handshakes completed \(tlsEstablished)"
        out.field("Modes", modes)
        out.field("Versions", Self.counts(tlsVersions.sorted.map { (ReportText.sanitize($0.name), $0.count) }))
        out.field("Failures", "\(tlsFailures.total)")
        notes(tlsFailures, &out)
        let downgrades = Self.downgradeAnomalyKinds.map { kind in
            (kind, anomalies.counts[kind] ?? 0)
        }
        out.field("Downgrades", Self.counts(downgrades, showZero: true))
        notes(tlsDowngrades, &out)
    }

    private func renderEndings(_ out: inout ReportWriter) {
        out.heading("Resets, timeouts and server closes")
        let kinds: [SessionRecord.SessionOutcome] = [.reset, .timeout, .serverClosed]
        out.text(Self.counts(kinds.map { ($0.rawValue, sessionOutcomes[$0] ?? 0) }, showZero: true))
        notes(endings, &out)
    }

    private func renderCapture(_ out: inout ReportWriter) {
        out.heading("Capture problems")
        var kinds = Self.captureAnomalyKinds.map { ($0, captureCounts[$0] ?? 0) }
        kinds.append(("incomplete sessions", captureCounts["incomplete"] ?? 0))
        out.text(Self.counts(kinds, showZero: true))
        for truncation in truncations {
            out.text("- " + ReportText.sanitize(truncation) + " (a message cut there is incomplete)", indent: 2, hanging: 2)
        }
        notes(captureProblems, &out)
    }

    /// What to say of flows that were not recognised as SMTP (shared with the command line's warning).
    public static func unrecognisedFlowsText(_ count: Int) -> String {
        "\(count) TCP flow\(count == 1 ? " was" : "s were") not recognised as SMTP (no greeting or EHLO/HELO at "
            + "their start, e.g. a capture that starts mid-session, or implicit TLS on another port); if "
            + "\(count == 1 ? "it is" : "they are") SMTP, name the server port with --ports"
    }

    private func notes(_ list: BoundedList<SessionNote>, _ out: inout ReportWriter) {
        for note in list.items {
            out.text("- " + Self.reference(note.session, offset: note.t) + ": " + ReportText.sanitize(note.text), indent: 2, hanging: 2)
        }
        out.more(list.omitted, indent: 2)
    }

    private static func reference(_ session: SessionReference, offset: Int64?) -> String {
        "session \(ReportText.sanitize(session.id)), \(ReportText.endpoint(session.client)) -> "
            + "\(ReportText.endpoint(session.server)), \(moment(start: session.start, offset: offset))"
    }

    /// "2026-11-29T06:45:01Z +0.412 s": the session's start and the offset into it.
    private static func moment(start: Int64, offset: Int64?) -> String {
        let base = ReportText.time(start)
        guard let offset else { return base }
        return base + " +" + ReportText.seconds(offset)
    }

    /// "a 1, b 2", or "none" when every count is zero (unless zeros are wanted).
    static func counts(_ pairs: [(String, Int)], showZero: Bool = false) -> String {
        let shown = showZero ? pairs : pairs.filter { $0.1 > 0 }
        return shown.isEmpty ? "none" : shown.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
    }
}

extension SessionRecord.SessionOutcome {
    /// Good news first, then the failures in the reverse of the precedence that picks a session's
    /// outcome (README, "Transcript schema").
    static let reportOrder: [Self] = [.completed, .rejected, .tempfail, .timeout, .serverClosed, .reset, .tlsFailed, .incomplete]
}

/// Accumulates report lines, wrapping long text with a hanging indent.
struct ReportWriter {
    static let labelWidth = 14
    let width: Int
    private(set) var lines: [String] = []

    init(width: Int) {
        self.width = width
    }

    var result: String { lines.joined(separator: "\n") + "\n" }

    mutating func title(_ text: String) {
        lines.append(text)
        lines.append(String(repeating: "=", count: min(text.count, width)))
    }

    mutating func heading(_ text: String) {
        lines.append("")
        lines.append(text)
        lines.append(String(repeating: "-", count: min(text.count, width)))
    }

    mutating func blank() { lines.append("") }

    /// `text` at `indent`, continuation lines at `indent + hanging`.
    mutating func text(_ text: String, indent: Int = 0, hanging: Int = 0) {
        let first = String(repeating: " ", count: indent)
        let rest = String(repeating: " ", count: indent + hanging)
        let wrapped = ReportText.wrap(text, width: width - indent, then: width - indent - hanging)
        for (index, line) in wrapped.enumerated() {
            lines.append((index == 0 ? first : rest) + line)
        }
    }

    /// "label         value", the value wrapped under itself.
    mutating func field(_ label: String, _ value: String, indent: Int = 0) {
        let padded = label + String(repeating: " ", count: max(1, Self.labelWidth - label.count))
        let column = String(repeating: " ", count: indent + padded.count)
        let wrapped = ReportText.wrap(value, width: width - indent - padded.count)
        for (index, line) in wrapped.enumerated() {
            lines.append(index == 0 ? String(repeating: " ", count: indent) + padded + line : column + line)
        }
    }

    mutating func more(_ omitted: Int, indent: Int) {
        guard omitted > 0 else { return }
        text("... and \(omitted) more", indent: indent)
    }
}
