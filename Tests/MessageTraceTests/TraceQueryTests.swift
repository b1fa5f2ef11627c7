import MessageTrace
import Testing

@Suite struct TraceQueryTests {
    @Test func addressPatterns() {
        #expect(AddressPattern(parsing: "Alice@Example.ORG") == .address("alice@example.org"))
        #expect(AddressPattern(parsing: "*@Example.NET") == .domain("example.net"))
        #expect(AddressPattern(parsing: "@example.net") == .domain("example.net"))
        // Only a leading "*@" is a pattern; every other character is itself.
        #expect(AddressPattern(parsing: "a%b_c*@x") == .address("a%b_c*@x"))
        #expect(AddressPattern(parsing: "") == .address(""))
    }

    @Test func domainsAreTheLastAtSign() {
        #expect(AddressKey.domain("\"a@b\"@Example.net") == "example.net")
        #expect(AddressKey.domain("") == nil)
        #expect(AddressKey.domain("postmaster") == nil)
    }

    @Test func messageIDsLoseTheirBrackets() {
        #expect(MessageIDKey.key(" <abc@host> ") == "abc@host")
        #expect(MessageIDKey.key("abc@host") == "abc@host")
        #expect(MessageIDKey.key("<>") == "")
    }

    @Test func cidrBlocksAreRanges() throws {
        let v4 = try #require(ClientRange(parsing: "192.0.2.0/24"))
        #expect(v4.low == IPAddressBytes.parse("192.0.2.0"))
        #expect(v4.high == IPAddressBytes.parse("192.0.2.255"))
        let host = try #require(ClientRange(parsing: "192.0.2.7"))
        #expect(host.low == host.high)
        let v6 = try #require(ClientRange(parsing: "2001:db8::/32"))
        #expect(v6.low == IPAddressBytes.parse("2001:db8::"))
        #expect(v6.high == IPAddressBytes.parse("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"))
        #expect(ClientRange(parsing: "192.0.2.0/33") == nil)
        #expect(ClientRange(parsing: "192.0.2.0/") == nil)
        #expect(ClientRange(parsing: "example.net") == nil)
    }

    @Test func timesAreAgesOrRFC3339() {
        let now: Int64 = 1_000_000_000_000_000
        #expect(TraceTime.parse("7d", now: now) == now - 7 * 86_400_000_000)
        #expect(TraceTime.parse("24h", now: now) == now - 24 * 3_600_000_000)
        #expect(TraceTime.parse("2026-01-10T12:00:00Z", now: now) == 1_768_046_400_000_000)
        #expect(TraceTime.parse("7x", now: now) == nil)
        #expect(TraceTime.parse("d", now: now) == nil)
        #expect(TraceTime.parse("-1d", now: now) == nil)
    }

    @Test func statusNamesBothLevels() throws {
        let rejected = try #require(Status(parsing: "rejected"))
        #expect(rejected.transactionOutcome == "rejected" && rejected.sessionOutcome == "rejected")
        let tempfailed = try #require(Status(parsing: "tempfailed"))
        #expect(tempfailed.sessionOutcome == "tempfail")
        let reset = try #require(Status(parsing: "reset"))
        #expect(reset.transactionOutcome == nil && reset.sessionOutcome == "reset")
        #expect(Status(parsing: "bounced") == nil)
    }

    /// No searched value ever reaches the SQL text: it is all placeholders.
    @Test(arguments: [TraceSQL.Dialect.sqlite, .postgres])
    func valuesAreBoundNeverSpliced(dialect: TraceSQL.Dialect) {
        let hostile = "x'); DROP TABLE session; --%_"
        var query = TraceQuery(limit: 5)
        query.from = .address(hostile)
        query.to = .domain(hostile)
        query.user = hostile
        query.rule = hostile
        query.subject = hostile
        query.messageID = hostile
        query.session = hostile
        query.status = Status(parsing: "rejected")
        let statement = TraceSQL.search(query, dialect: dialect)
        #expect(!statement.sql.contains("DROP"))
        #expect(!statement.sql.contains("'"))
        #expect(!statement.sql.contains(" LIKE "))
        #expect(statement.arguments.contains(.text(hostile)))
        let placeholders = dialect == .sqlite
            ? statement.sql.filter { $0 == "?" }.count
            : statement.sql.split(separator: "$").count - 1
        #expect(placeholders == statement.arguments.count)
    }
}
