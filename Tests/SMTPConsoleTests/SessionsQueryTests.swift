import MessageTrace
import SMTPConsole
import Testing

/// The API's and the search form's parameters, as `smtpscope trace`'s filters.
@Suite struct SessionsQueryTests {
    let now: Int64 = 1_768_046_400_000_000

    func parse(_ query: String) -> Result<TraceQuery, SessionsQuery.Problem> {
        SessionsQuery.parse(SessionsQuery.formPairs(query), now: now)
    }

    @Test func everyFilter() throws {
        let query = try parse("from=Alice%40Example.org&to=*%40example.net&client=192.0.2.0%2F24&user=alice&status=rejected"
            + "&rule=no-spam&subject=Quarterly+report&message_id=%3Cq1%40x%3E&session=01ABC&since=24h&until=2026-01-10T12%3A00%3A00Z&limit=5").get()
        #expect(query.from == .address("alice@example.org"))
        #expect(query.to == .domain("example.net"))
        #expect(query.client == ClientRange(parsing: "192.0.2.0/24"))
        #expect(query.user == "alice")
        #expect(query.status == Status(parsing: "rejected"))
        #expect(query.rule == "no-spam")
        #expect(query.subject == "Quarterly report")
        #expect(query.messageID == "<q1@x>")
        #expect(query.session == "01ABC")
        #expect(query.since == now - 24 * 3600 * 1_000_000)
        #expect(query.until == 1_768_046_400_000_000)
        #expect(query.limit == 5)
    }

    @Test func emptyFieldsAreNoFilterAndTheNullSenderIsWrittenAngleBrackets() throws {
        let empty = try parse("from=&to=&status=&limit=").get()
        #expect(empty == TraceQuery(limit: SessionsQuery.defaultLimit))
        #expect(try parse("from=%3C%3E").get().from == .address(""))
    }

    @Test func aBadParameterIsNamed() {
        func problem(_ query: String) -> String? {
            if case .failure(let problem) = parse(query) { return problem.description }
            return nil
        }
        #expect(problem("sender=a") == "unknown parameter 'sender'; known: from, to, client, user, status, rule, subject, message_id, session, since, until, limit")
        #expect(problem("from=a&from=b") == "parameter 'from' given twice")
        #expect(problem("status=bounced")?.hasPrefix("status 'bounced': expected one of delivered, rejected") == true)
        #expect(problem("client=example.org")?.hasPrefix("client 'example.org'") == true)
        #expect(problem("since=yesterday")?.hasPrefix("since 'yesterday'") == true)
        #expect(problem("limit=0")?.hasPrefix("limit '0'") == true)
        #expect(problem("limit=1001")?.hasPrefix("limit '1001'") == true)
    }

    @Test func formEncodingIsDecoded() {
        let pairs = SessionsQuery.formPairs("a=1+2&b=%3Cscript%3E&c&d=%E2%9C%93&e=%zz&f=%FF")
        #expect(pairs.map(\.name) == ["a", "b", "c", "d", "e", "f"])
        #expect(pairs.map(\.value) == ["1 2", "<script>", "", "✓", "%zz", "\u{FFFD}"])
    }
}
