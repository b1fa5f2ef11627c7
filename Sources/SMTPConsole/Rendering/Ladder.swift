import SMTPTranscript

/// A session's dialogue laid out as a ladder (a sequence diagram): one column per party, time
/// going down, one arrow per command or reply line in the record's `events`, in their order, and
/// marks where TLS started, a rule gave a verdict, an anomaly was seen, or a capture lost bytes.
///
/// A proxy record has three columns (client, smtpscope, upstream): its events say which leg each
/// line was on (client → proxy, proxy → server, server → proxy, proxy → client). A capture has two
/// (client, server). Pure: the same record always gives the same ladder; `LadderSVG` draws it.
public struct Ladder: Sendable, Equatable {
    public var columns: [Column]
    public var rows: [Row]

    public struct Column: Sendable, Equatable {
        public var party: SessionRecord.Party
        public var title: String
        /// The endpoint's address, when the record has it.
        public var address: String?
    }

    public enum Row: Sendable, Equatable {
        case arrow(Arrow)
        case mark(Mark)
    }

    public struct Arrow: Sendable, Equatable {
        /// Indexes into `columns`.
        public var from: Int
        public var to: Int
        /// The line as the record has it (AUTH payloads already "[redacted]" there).
        public var text: String
        /// Microseconds since the session's start.
        public var t: Int64
        public var kind: Kind

        public enum Kind: Sendable, Equatable {
            case command
            /// Message content, one arrow per DATA or BDAT with its octet count.
            case content
            case reply(ReplyClass)
            /// A line the recorder wrote about the dialogue ("[3 more reply lines not kept]").
            case note
        }
    }

    /// RFC 5321 §4.2.1: the first digit of a reply code.
    public enum ReplyClass: String, Sendable, Equatable, CaseIterable {
        case positiveCompletion = "2xx"
        case positiveIntermediate = "3xx"
        case transientNegative = "4xx"
        case permanentNegative = "5xx"
        case unknown = "other"

        init(replyLine: String) {
            switch replyLine.unicodeScalars.first {
            case "2": self = .positiveCompletion
            case "3": self = .positiveIntermediate
            case "4": self = .transientNegative
            case "5": self = .permanentNegative
            default: self = .unknown
            }
        }
    }

    public struct Mark: Sendable, Equatable {
        public var kind: Kind
        public var text: String
        /// When it happened, if the record says.
        public var t: Int64?

        public enum Kind: String, Sendable, Equatable {
            case tls
            case rule
            case anomaly
            /// Bytes the capture lost: drawn as a break in the ladder.
            case gap
        }
    }
}

extension Ladder {
    public init(_ record: SessionRecord) {
        columns = Self.columns(record)
        let index: [SessionRecord.Party: Int] = Dictionary(uniqueKeysWithValues: columns.enumerated().map { ($1.party, $0) })
        var arrows: [Arrow] = []
        var placement = MarkPlacement()
        if record.tls.mode == .implicit {
            placement.add(Mark(kind: .tls, text: "TLS from the first octet (implicit TLS, RFC 8314)", t: 0), after: -1)
        }
        // The leg (the pair of parties) on which STARTTLS awaits its 220.
        var startTLSPending: Set<Set<SessionRecord.Party>> = []
        for event in record.events {
            guard let from = index[event.from], let to = index[event.to] else { continue }
            let kind = Self.kind(of: event)
            arrows.append(Arrow(from: from, to: to, text: event.text, t: event.t, kind: kind))
            let position = arrows.count - 1
            let leg: Set<SessionRecord.Party> = [event.from, event.to]
            switch kind {
            case .command:
                // Verdicts follow the client's own commands, not the proxy's copies upstream.
                if event.from == .client { placement.noteCommand(event.text, at: position) }
                if Self.verb(event.text) == "STARTTLS" { startTLSPending.insert(leg) }
            case .content:
                placement.noteContent(at: position)
            case .reply(let replyClass):
                // The last line of the reply (a space after the code) settles STARTTLS on its leg.
                if startTLSPending.contains(leg), Self.isLastReplyLine(event.text) {
                    startTLSPending.remove(leg)
                    if replyClass == .positiveCompletion, event.text.hasPrefix("220") {
                        placement.add(Mark(kind: .tls, text: "TLS starts: \(Self.legName(leg, record))", t: event.t), after: position)
                    }
                }
            case .note:
                break
            }
        }
        for verdict in record.rules {
            placement.addVerdict(verdict, transaction: nil)
        }
        for (position, transaction) in record.transactions.enumerated() {
            for verdict in transaction.rules { placement.addVerdict(verdict, transaction: position) }
        }
        for anomaly in record.anomalies {
            // After the last line seen at or before the anomaly's time.
            let after = arrows.lastIndex { $0.t <= anomaly.t } ?? -1
            let text = anomaly.kind + (anomaly.detail.map { ": " + $0 } ?? "")
            placement.add(Mark(kind: anomaly.kind == "capture_gap" ? .gap : .anomaly, text: text, t: anomaly.t), after: after)
        }
        rows = placement.merge(arrows)
    }

    static func columns(_ record: SessionRecord) -> [Column] {
        func address(_ endpoint: SessionRecord.Endpoint?) -> String? {
            endpoint.map { $0.ip.contains(":") ? "[\($0.ip)]:\($0.port)" : "\($0.ip):\($0.port)" }
        }
        switch record.source {
        case .proxy:
            return [
                Column(party: .client, title: "client", address: address(record.client)),
                Column(party: .proxy, title: "smtpscope", address: address(record.server)),
                Column(party: .server, title: "upstream", address: address(record.upstream)),
            ]
        case .pcap:
            return [
                Column(party: .client, title: "client", address: address(record.client)),
                Column(party: .server, title: "server", address: address(record.server)),
            ]
        }
    }

    /// Replies travel towards the client: from the server, or from the proxy to the client.
    static func kind(of event: SessionRecord.Event) -> Arrow.Kind {
        if event.octets != nil { return .content }
        if event.text.hasPrefix("[") && event.text != "[redacted]" { return .note }
        if event.from == .server || event.to == .client {
            return .reply(ReplyClass(replyLine: event.text))
        }
        return .command
    }

    /// The command's verb, upper-cased ("MAIL" for "mail from:<a@b>").
    static func verb(_ line: String) -> String {
        String(line.prefix { $0 != " " && $0 != ":" }).uppercased()
    }

    static func isLastReplyLine(_ line: String) -> Bool {
        let scalars = Array(line.unicodeScalars.prefix(4))
        return scalars.count < 4 || scalars[3] != "-"
    }

    static func legName(_ leg: Set<SessionRecord.Party>, _ record: SessionRecord) -> String {
        if record.source == .pcap { return "client and server" }
        return leg.contains(.client) ? "client leg" : "upstream leg"
    }
}

/// Where the marks go: after a row of the ladder (-1: before the first), in the order added.
/// Verdicts have no time in the record, only a stage; each goes after the client's command of
/// that stage (in its transaction, counted by MAIL commands), or at the end when the dialogue has
/// no such command (a record whose events were truncated).
struct MarkPlacement {
    private var anchored: [(after: Int, mark: Ladder.Mark)] = []
    private var unplaced: [Ladder.Mark] = []
    /// The client's commands (to the first hop) by verb, and content, per transaction.
    private var lastHelo: Int?
    private var lastAuth: Int?
    private var mail: [Int] = []
    private var lastRcpt: [Int: Int] = [:]
    private var firstData: [Int: Int] = [:]
    private var lastContent: [Int: Int] = [:]

    private var transaction: Int { mail.count - 1 }

    mutating func add(_ mark: Ladder.Mark, after position: Int) {
        anchored.append((position, mark))
    }

    mutating func noteCommand(_ line: String, at position: Int) {
        switch Ladder.verb(line) {
        case "HELO", "EHLO", "LHLO": lastHelo = position
        case "AUTH": lastAuth = position
        case "MAIL": mail.append(position)
        case "RCPT":
            if transaction >= 0 { lastRcpt[transaction] = position }
        case "DATA", "BDAT":
            if transaction >= 0, firstData[transaction] == nil { firstData[transaction] = position }
        default: break
        }
    }

    mutating func noteContent(at position: Int) {
        if transaction >= 0 { lastContent[transaction] = position }
    }

    mutating func addVerdict(_ verdict: SessionRecord.RuleVerdict, transaction: Int?) {
        var text = "rule \(verdict.rule): \(verdict.action)"
        if !verdict.enforced { text += " (not enforced\(verdict.mode == .monitor ? ", monitor" : ""))" }
        if let detail = verdict.detail { text += ", " + detail }
        text += " at \(verdict.stage)"
        let mark = Ladder.Mark(kind: .rule, text: text, t: nil)
        let position: Int?
        switch (verdict.stage, transaction) {
        case ("connect", _): position = -1
        case ("helo", _): position = lastHelo
        case ("auth", _): position = lastAuth
        case ("mail", let index?): position = index < mail.count ? mail[index] : nil
        case ("rcpt", let index?): position = lastRcpt[index]
        case ("data", let index?): position = firstData[index]
        case ("message", let index?): position = lastContent[index] ?? firstData[index]
        default: position = nil
        }
        if let position { add(mark, after: position) } else { unplaced.append(mark) }
    }

    func merge(_ arrows: [Ladder.Arrow]) -> [Ladder.Row] {
        var byPosition: [Int: [Ladder.Mark]] = [:]
        for (after, mark) in anchored { byPosition[after, default: []].append(mark) }
        var rows: [Ladder.Row] = (byPosition[-1] ?? []).map(Ladder.Row.mark)
        for (position, arrow) in arrows.enumerated() {
            rows.append(.arrow(arrow))
            rows += (byPosition[position] ?? []).map(Ladder.Row.mark)
        }
        rows += unplaced.map { mark in
            var mark = mark
            mark.text += " (its place in the dialogue is not recorded)"
            return .mark(mark)
        }
        return rows
    }
}
