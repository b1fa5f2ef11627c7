import SMTPConsole
import SMTPTranscript
import Testing

/// The ladder's layout: columns, the order of arrows, reply classes, and where marks go.
@Suite struct LadderTests {
    typealias F = ConsoleFixtures

    func arrows(_ ladder: Ladder) -> [Ladder.Arrow] {
        ladder.rows.compactMap { if case .arrow(let arrow) = $0 { return arrow } else { return nil } }
    }

    func marks(_ ladder: Ladder) -> [Ladder.Mark] {
        ladder.rows.compactMap { if case .mark(let mark) = $0 { return mark } else { return nil } }
    }

    /// The text of the arrow just before each mark of a kind.
    func anchors(_ ladder: Ladder, _ kind: Ladder.Mark.Kind) -> [String?] {
        var last: String?
        var found: [String?] = []
        for row in ladder.rows {
            switch row {
            case .arrow(let arrow): last = arrow.text
            case .mark(let mark) where mark.kind == kind: found.append(last)
            case .mark: break
            }
        }
        return found
    }

    @Test func aProxyRecordHasThreeColumnsAndEveryEventInOrder() {
        let record = F.proxyRecord()
        let ladder = Ladder(record)
        #expect(ladder.columns.map(\.title) == ["client", "smtpscope", "upstream"])
        #expect(ladder.columns.map(\.address) == ["127.0.0.1:40000", "127.0.0.1:2525", "127.0.0.1:2526"])
        let drawn = arrows(ladder)
        #expect(drawn.map(\.text) == record.events.map(\.text))
        #expect(drawn.map(\.t) == record.events.map(\.t))
        // Each leg in its columns: client 0, proxy 1, upstream 2.
        #expect(drawn[0].from == 2 && drawn[0].to == 1)
        #expect(drawn[1].from == 1 && drawn[1].to == 0)
        #expect(drawn[2].from == 0 && drawn[2].to == 1)
        #expect(drawn[10].from == 1 && drawn[10].to == 2)
    }

    @Test func repliesAreColouredByClassAndCommandsAreNot() {
        let drawn = arrows(Ladder(F.proxyRecord()))
        func kind(_ text: String) -> Ladder.Arrow.Kind? { drawn.first { $0.text == text }?.kind }
        #expect(kind("EHLO client.example") == .command)
        #expect(kind("250 Ok") == .reply(.positiveCompletion))
        #expect(kind("354 Go ahead") == .reply(.positiveIntermediate))
        #expect(kind("550 5.1.1 No such user") == .reply(.permanentNegative))
        #expect(kind("[message content: 120 octets]") == .content)
        // The AUTH payload is the record's "[redacted]", a command like any other; never more.
        #expect(kind("[redacted]") == .command)
        #expect(kind("334 [redacted]") == .reply(.positiveIntermediate))
        let tempfail = SessionRecord.Event(t: 0, from: .server, to: .client, text: "421 4.4.2 Timeout")
        var record = F.captureRecord()
        record.events = [tempfail]
        #expect(arrows(Ladder(record)).map(\.kind) == [.reply(.transientNegative)])
    }

    @Test func tlsStartsAfterThe220ToSTARTTLSOnItsLeg() {
        let ladder = Ladder(F.proxyRecord())
        #expect(anchors(ladder, .tls) == ["220 2.0.0 Ready to start TLS"])
        #expect(marks(ladder).first { $0.kind == .tls }?.text == "TLS starts: client leg")
        // A refused STARTTLS starts nothing.
        var record = F.proxyRecord()
        record.events[6].text = "454 4.7.0 TLS not available"
        #expect(anchors(Ladder(record), .tls) == [])
    }

    @Test func verdictsFollowTheClientsCommandOfTheirStage() {
        let ladder = Ladder(F.proxyRecord())
        // After the client's MAIL, not the proxy's copy upstream.
        var last: Ladder.Arrow?
        for row in ladder.rows {
            if case .arrow(let arrow) = row { last = arrow }
            if case .mark(let mark) = row, mark.kind == .rule {
                #expect(last?.text == "MAIL FROM:<alice@example.org>")
                #expect(last?.from == 0)
                #expect(mark.text == "rule tag-external: add_header at mail")
            }
        }
        // A connect verdict comes first; one whose command is not in the events, last, saying so.
        var record = F.proxyRecord()
        record.rules = [SessionRecord.RuleVerdict(rule: "blocklist", file: "f", stage: "connect", action: "reject", enforced: false, mode: .monitor)]
        record.transactions[0].rules.append(SessionRecord.RuleVerdict(rule: "late", file: "f", stage: "data", action: "reject", enforced: true))
        record.events.removeAll { $0.text == "DATA" }
        let rows = Ladder(record).rows
        guard case .mark(let first) = rows.first, case .mark(let final) = rows.last else {
            Issue.record("expected marks first and last")
            return
        }
        #expect(first.text == "rule blocklist: reject (not enforced, monitor) at connect")
        #expect(final.text == "rule late: reject at data (its place in the dialogue is not recorded)")
    }

    @Test func anomaliesGoWhereTheyHappenedAndGapsBreakTheLadder() {
        #expect(anchors(Ladder(F.proxyRecord()), .anomaly) == ["RCPT TO:<bob@example.net>"])
        let capture = Ladder(F.captureRecord())
        #expect(capture.columns.map(\.title) == ["client", "server"])
        #expect(capture.columns.map(\.address) == ["192.0.2.1:40000", "[2001:db8::25]:25"])
        #expect(anchors(capture, .gap) == ["MAIL FROM:<a@b>"])
        #expect(arrows(capture).map { [$0.from, $0.to] } == [[1, 0], [0, 1], [1, 0], [0, 1], [1, 0]])
    }

    @Test func theSVGDrawsEveryArrowWithItsClassAndEscapesItsText() {
        var record = F.proxyRecord()
        record.events.append(SessionRecord.Event(t: 400, from: .client, to: .proxy, text: F.hostileName))
        let ladder = Ladder(record)
        let svg = LadderSVG.render(ladder, title: "Dialogue of <session>").rendered
        #expect(svg.components(separatedBy: "<g class=\"arrow ").count - 1 == record.events.count)
        #expect(svg.contains("<g class=\"arrow reply r5xx\""))
        #expect(svg.contains("<g class=\"arrow reply r2xx\""))
        #expect(svg.contains("<g class=\"mark mark-tls\">"))
        #expect(svg.contains("aria-label=\"Dialogue of &lt;session&gt;\""))
        #expect(!svg.contains("<img"))
        #expect(svg.contains("&quot;&gt;&lt;img src=x onerror=&quot;document.title=&#39;pwned&#39;&quot;&gt;"))
        // Arrows go down the page in the record's order.
        let ys = svg.components(separatedBy: "<line x1=").dropFirst().compactMap { part -> Int? in
            guard let range = part.range(of: "y1=\"") else { return nil }
            return Int(part[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(ys == ys.sorted() && ys.count == record.events.count)
    }

    @Test func theCapturesGapIsDrawnAsABreakInTheLifelines() {
        let svg = LadderSVG.render(Ladder(F.captureRecord()), title: "t").rendered
        #expect(svg.contains("<g class=\"mark gap\">"))
        // Two columns, each drawn in two pieces: before and after the gap.
        #expect(svg.components(separatedBy: "class=\"lifeline\"").count - 1 == 4)
    }
}
