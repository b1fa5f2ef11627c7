import SMTPTranscript

extension DeliveryReport {
    /// The report as one JSON object (RFC 8259) for scripts, `smtpscope report --format json`: the
    /// same counts as the text, and each listed failure with its session, stage, command, reply
    /// and cause. Lists are bounded as in the text; `*_total` fields give the exact counts.
    public func renderJSON() -> String {
        var out = JSONObject()
        out.string("report", "smtpscope.report/1")
        out.int("files", files)
        out.int("sessions", sessions)
        out.int("unreadable_records", skippedRecords)
        out.int("unrecognised_flows", unrecognisedFlows)
        out.optionalString("first_start", firstStart.map(ReportText.time))
        out.optionalString("last_end", lastEnd.map(ReportText.time))
        out.object("session_outcomes", SessionRecord.SessionOutcome.reportOrder.map { ($0.rawValue, sessionOutcomes[$0] ?? 0) })
        out.object("transaction_outcomes", SessionRecord.TransactionOutcome.allCases.map { ($0.rawValue, transactionOutcomes[$0] ?? 0) })
        out.object("recipients", [
            ("accepted", recipientsAccepted),
            ("refused_permanently", recipientsRefusedPermanently),
            ("refused_temporarily", recipientsRefusedTemporarily),
        ])
        out.int("partial_deliveries", partialDeliveries)
        var failureList: [[UInt8]] = []
        var failureTotals: [(String, Int)] = []
        for cause in FailureCause.allCases {
            guard let list = failures[cause] else { continue }
            failureTotals.append((cause.jsonName, list.total))
            for failure in list.items { failureList.append(Self.json(failure)) }
        }
        out.object("failures_total", failureTotals)
        out.raw("failures", JSONObject.array(failureList))
        out.object("tls_modes", SessionRecord.TLS.Mode.allCases.map { ($0.rawValue, tlsModes[$0] ?? 0) })
        out.int("tls_established", tlsEstablished)
        out.int("tls_failures_total", tlsFailures.total)
        out.object("downgrades", Self.downgradeAnomalyKinds.map { ($0, anomalies.counts[$0] ?? 0) })
        out.object("capture_problems", Self.captureAnomalyKinds.map { ($0, captureCounts[$0] ?? 0) } + [("incomplete_sessions", captureCounts["incomplete"] ?? 0)])
        out.object("anomalies", anomalies.sorted.map { ($0.name, $0.count) })
        return out.finish() + "\n"
    }

    private static func json(_ failure: DeliveryFailure) -> [UInt8] {
        var out = JSONObject()
        out.string("cause", failure.cause.jsonName)
        out.bool("temporary", failure.isTemporary)
        out.string("session_id", failure.sessionID)
        out.optionalString("client", failure.client.map { ReportText.endpoint($0) })
        out.optionalString("server", failure.server.map { ReportText.endpoint($0) })
        out.string("stage", failure.stage.rawValue)
        out.string("command", failure.command)
        if let reply = failure.reply {
            var object = JSONObject()
            object.int("code", reply.code)
            object.optionalString("enhanced", reply.enhanced)
            object.string("text", reply.text)
            out.raw("reply", object.finishBytes())
        } else {
            out.raw("reply", Array("null".utf8))
        }
        out.optionalString("answer_without_code", failure.answerWithoutCode)
        out.optionalString("mail_from", failure.mailFrom)
        out.raw("recipients", JSONObject.array(failure.recipients.map { JSONObject.stringBytes($0) }))
        out.int("more_recipients", failure.moreRecipients)
        out.bool("partial_delivery", failure.isPartialDelivery)
        return out.finishBytes()
    }
}

extension FailureCause {
    /// The cause's name in JSON output: its label in snake_case ("mailbox_unknown").
    var jsonName: String {
        String(label.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }
}

/// Builds one JSON object's members in order.
private struct JSONObject {
    private var bytes: [UInt8] = [UInt8(ascii: "{")]
    private var first = true

    private mutating func key(_ name: String) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        JSONOutput.writeString(name, into: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func string(_ name: String, _ value: String) {
        key(name)
        JSONOutput.writeString(value, into: &bytes)
    }

    mutating func optionalString(_ name: String, _ value: String?) {
        key(name)
        if let value { JSONOutput.writeString(value, into: &bytes) } else { JSONOutput.writeNull(into: &bytes) }
    }

    mutating func int(_ name: String, _ value: Int) {
        key(name)
        JSONOutput.writeInt(value, into: &bytes)
    }

    mutating func bool(_ name: String, _ value: Bool) {
        key(name)
        JSONOutput.writeBool(value, into: &bytes)
    }

    mutating func object(_ name: String, _ counts: [(String, Int)]) {
        var object = JSONObject()
        for (member, count) in counts { object.int(member, count) }
        raw(name, object.finishBytes())
    }

    mutating func raw(_ name: String, _ json: [UInt8]) {
        key(name)
        bytes.append(contentsOf: json)
    }

    func finishBytes() -> [UInt8] { bytes + [UInt8(ascii: "}")] }

    func finish() -> String { String(decoding: finishBytes(), as: UTF8.self) }

    static func array(_ elements: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "[")]
        for (index, element) in elements.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: element)
        }
        out.append(UInt8(ascii: "]"))
        return out
    }

    static func stringBytes(_ value: String) -> [UInt8] {
        var out: [UInt8] = []
        JSONOutput.writeString(value, into: &out)
        return out
    }
}
