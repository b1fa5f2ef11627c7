import Foundation
import MessageTrace
import SMTPTranscript
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The schema, the searches and the filters, on a real SQLite file.
@Suite struct SQLiteTraceIndexTests {
    typealias F = TraceFixtures

    /// A small corpus: each session made to be found by one filter and missed by the others.
    static let corpus: [SessionRecord] = [
        F.session("S1", at: 0, client: "192.0.2.10", user: "alice", transactions: [
            F.message(from: "alice@example.org", to: [("bob@example.net", 250), ("carol@example.com", 550)],
                      subject: "Quarterly report", messageID: "<q1@example.org>"),
        ]),
        F.session("S2", at: 10, client: "198.51.100.7", outcome: .rejected, transactions: [
            F.message(from: "mallory@spam.example", to: [("bob@example.net", 250)], outcome: .rejected, subject: "Win",
                      dataReply: SessionRecord.Reply(code: 550, enhanced: "5.7.1", text: "Not here"),
                      rules: [SessionRecord.RuleVerdict(rule: "no-spam", file: "10.rules", stage: "message", action: "reject", enforced: true)]),
        ]),
        F.session("S3", at: 20, client: "2001:db8::5", transactions: [
            F.message(from: "", to: [("postmaster@example.net", 250)], subject: "Undeliverable"),
            F.message(from: "dave@example.org", to: [("erin@other.example", 451)], outcome: .tempfailed, subject: "Lunch"),
        ]),
        // Refused at connect by a rule: no transaction, the outcome only on the session.
        F.session("S4", at: 30, client: "203.0.113.9", outcome: .rejected,
                  rules: [SessionRecord.RuleVerdict(rule: "blocklist", file: "00.rules", stage: "connect", action: "reject", enforced: true)]),
    ]

    func withIndex(_ body: (SQLiteTraceIndex, String) throws -> Void) throws {
        let directory = F.temporaryDirectory()
        defer { F.remove(directory) }
        let index = try SQLiteTraceIndex(path: directory + "/index.sqlite")
        try index.add(Self.corpus.map(F.indexed))
        try body(index, directory)
    }

    func ids(_ index: SQLiteTraceIndex, _ configure: (inout TraceQuery) -> Void) throws -> [String] {
        var query = TraceQuery()
        configure(&query)
        return try index.search(query).map(\.sessionID)
    }

    @Test func addingTwiceChangesNothing() throws {
        try withIndex { (index, _) throws in
            #expect(try index.add(Self.corpus.map(F.indexed)) == 0)
            #expect(try index.sessionCount() == 4)
            #expect(try ids(index) { _ in } == ["S4", "S3", "S2", "S1"])
        }
    }

    @Test func jsonlIsTheStoredLine() throws {
        try withIndex { (index, _) throws in
            let hit = try #require(try index.search(TraceQuery()).last)
            #expect(hit.line == SessionRecordEncoder.jsonLine(Self.corpus[0]))
        }
    }

    @Test func everyFilter() throws {
        try withIndex { (index, _) throws in
            #expect(try ids(index) { $0.from = AddressPattern(parsing: "ALICE@example.org") } == ["S1"])
            #expect(try ids(index) { $0.from = AddressPattern(parsing: "*@example.org") } == ["S3", "S1"])
            #expect(try ids(index) { $0.from = AddressPattern(parsing: "") } == ["S3"])
            #expect(try ids(index) { $0.to = AddressPattern(parsing: "bob@example.net") } == ["S2", "S1"])
            #expect(try ids(index) { $0.to = AddressPattern(parsing: "*@example.net") } == ["S3", "S2", "S1"])
            #expect(try ids(index) { $0.client = ClientRange(parsing: "192.0.2.0/24") } == ["S1"])
            #expect(try ids(index) { $0.client = ClientRange(parsing: "2001:db8::/32") } == ["S3"])
            #expect(try ids(index) { $0.client = ClientRange(parsing: "0.0.0.0/0") } == ["S4", "S2", "S1"])
            #expect(try ids(index) { $0.user = "alice" } == ["S1"])
            #expect(try ids(index) { $0.user = "Alice" } == [])
            #expect(try ids(index) { $0.since = F.time(10).microsecondsSinceEpoch } == ["S4", "S3", "S2"])
            #expect(try ids(index) { $0.until = F.time(10).microsecondsSinceEpoch } == ["S1"])
            #expect(try ids(index) { $0.status = Status(parsing: "rejected") } == ["S4", "S2"])
            #expect(try ids(index) { $0.status = Status(parsing: "tempfailed") } == ["S3"])
            #expect(try ids(index) { $0.status = Status(parsing: "completed") } == ["S3", "S1"])
            #expect(try ids(index) { $0.rule = "no-spam" } == ["S2"])
            #expect(try ids(index) { $0.rule = "blocklist" } == ["S4"])
            #expect(try ids(index) { $0.subject = "REPORT" } == ["S1"])
            #expect(try ids(index) { $0.messageID = "q1@example.org" } == ["S1"])
            #expect(try ids(index) { $0.messageID = "<q1@example.org>" } == ["S1"])
            #expect(try ids(index) { $0.session = "S2" } == ["S2"])
            #expect(try ids(index) { $0.limit = 2 } == ["S4", "S3"])
        }
    }

    /// `--to` and `--status` hold for one and the same transaction, and only it is listed.
    @Test func transactionFiltersHoldTogether() throws {
        try withIndex { (index, _) throws in
            #expect(try ids(index) {
                $0.to = AddressPattern(parsing: "*@example.net")
                $0.status = Status(parsing: "tempfailed")
            } == [])
            #expect(try ids(index) {
                $0.from = AddressPattern(parsing: "dave@example.org")
                $0.to = AddressPattern(parsing: "postmaster@example.net")
            } == [])
            var query = TraceQuery()
            query.to = AddressPattern(parsing: "*@other.example")
            let hits = try index.search(query)
            #expect(hits.map(\.sessionID) == ["S3"])
            #expect(hits.first?.matchingPositions == [1])
        }
    }

    @Test func tableShowsRepliesOutcomeAndRule() throws {
        try withIndex { (index, _) throws in
            var query = TraceQuery()
            query.session = "S2"
            let hit = try #require(try index.search(query).first)
            let rows = TraceTable.rows(hit, record: Self.corpus[1])
            #expect(rows == [[
                "2026-01-10T12:10:00Z", "198.51.100.7", "mallory@spam.example", "bob@example.net 250", "rejected",
                "550 5.7.1 Not here", "no-spam", "S2",
            ]])
            query.session = "S4"
            let refused = try #require(try index.search(query).first)
            #expect(TraceTable.rows(refused, record: Self.corpus[3]).first?[4] == "session rejected")
            #expect(TraceTable.rows(refused, record: Self.corpus[3]).first?[6] == "blocklist")
        }
    }

    /// Quotes, LIKE's metacharacters, controls and UTF-8 are stored and found exactly: `%` and `_`
    /// match only themselves.
    @Test func hostileValuesAreFoundExactly() throws {
        let directory = F.temporaryDirectory()
        defer { F.remove(directory) }
        let index = try SQLiteTraceIndex(path: directory + "/index.sqlite")
        let hostile = [
            ("o'brien\"x@quote.example", "It's \"quoted\""),
            ("100%@percent.example", "100% sure"),
            ("a_b@under.example", "snake_case"),
            ("tab\tbell\u{07}@ctl.example", "esc \u{1B}[31m red"),
            ("jörg@bücher.example", "Grüße 🎉"),
            ("%@wild.example", "%"),
        ]
        let records = hostile.enumerated().map { position, value in
            F.session("H\(position)", at: Int64(position), transactions: [F.message(from: value.0, to: [(value.0, 250)], subject: value.1)])
        }
        try index.add(records.map(F.indexed))
        for (position, value) in hostile.enumerated() {
            #expect(try ids(index) { $0.from = AddressPattern(parsing: value.0) } == ["H\(position)"], "from \(value.0)")
            #expect(try ids(index) { $0.to = AddressPattern(parsing: value.0) } == ["H\(position)"], "to \(value.0)")
            let domain = String(value.0[value.0.index(after: value.0.lastIndex(of: "@")!)...])
            #expect(try ids(index) { $0.to = AddressPattern(parsing: "*@" + domain) } == ["H\(position)"], "domain \(domain)")
        }
        #expect(try ids(index) { $0.subject = "%" } == ["H5", "H1"])
        #expect(try ids(index) { $0.subject = "_" } == ["H2"])
        #expect(try ids(index) { $0.subject = "\"quoted\"" } == ["H0"])
        #expect(try ids(index) { $0.subject = "GRÜSSE" } == [])
        #expect(try ids(index) { $0.subject = "GRÜßE" } == ["H4"])
        #expect(try ids(index) { $0.subject = "\u{1B}[31m" } == ["H3"])
        #expect(try ids(index) { $0.to = AddressPattern(parsing: "*@example") } == [])
        // The table escapes the controls.
        let hit = try #require(try index.search({ var q = TraceQuery(); q.session = "H3"; return q }()).first)
        let row = try #require(TraceTable.rows(hit, record: records[3]).first)
        #expect(row[2] == "tab\\u{9}bell\\u{7}@ctl.example")
    }

    @Test func retentionDeletesInBatchesAndCascades() throws {
        try withIndex { (index, _) throws in
            #expect(try index.deleteSessions(startedBefore: F.time(15).microsecondsSinceEpoch, batch: 1) == 2)
            #expect(try ids(index) { _ in } == ["S4", "S3"])
            #expect(try ids(index) { $0.to = AddressPattern(parsing: "bob@example.net") } == [])
            // Re-adding a deleted session brings its rows back.
            try index.add([F.indexed(Self.corpus[0])])
            #expect(try ids(index) { $0.to = AddressPattern(parsing: "bob@example.net") } == ["S1"])
        }
    }

    @Test func reopeningKeepsTheIndex() throws {
        try withIndex { (_, directory) throws in
            let again = try SQLiteTraceIndex(path: directory + "/index.sqlite")
            #expect(try again.sessionCount() == 4)
        }
    }

    /// `--subject` of three characters or more reads the trigram index (schema v2), and finds the
    /// same as the substring scan: a short needle, which trigrams cannot serve, still works.
    @Test func subjectSearchUsesTheTrigramIndexAndStaysExact() throws {
        try withIndex { (index, directory) throws in
            let path = directory + "/index.sqlite"
            let statement = TraceSQL.search({ var q = TraceQuery(); q.subject = "report"; return q }(), dialect: .sqlite, subjectTrigrams: true)
            let plan = try TraceTestDatabase.strings("EXPLAIN QUERY PLAN " + statement.sql.replacingOccurrences(of: "?", with: "'x'"), path: path).joined(separator: "\n")
            #expect(plan.contains("message_subject"), "\(plan)")
            #expect(try ids(index) { $0.subject = "report" } == ["S1"])
            #expect(try ids(index) { $0.subject = "rt" } == ["S1"])
            #expect(try ids(index) { $0.subject = "QUARTERLY REPORT" } == ["S1"])
            #expect(try ids(index) { $0.subject = "quarterly  report" } == [])
        }
    }

    /// Retention's deletions reach the trigram table through its trigger, and FTS5's own check
    /// finds it consistent with the messages.
    @Test func retentionKeepsTheTrigramIndexConsistent() throws {
        try withIndex { (index, directory) throws in
            #expect(try index.deleteSessions(startedBefore: F.time(15).microsecondsSinceEpoch, batch: 1) == 2)
            try TraceTestDatabase.execute("INSERT INTO message_subject (message_subject) VALUES ('integrity-check')", path: directory + "/index.sqlite")
            #expect(try ids(index) { $0.subject = "report" } == [])
            #expect(try ids(index) { $0.subject = "lunch" } == ["S3"])
        }
    }

    /// An index made before the trigram table (schema v1 only) is searched by scan when opened
    /// read-only, and brought up to date, its subjects filled in, when opened for writing.
    @Test func aVersionOneIndexGetsItsTrigramTableInPlace() throws {
        try withIndex { (_, directory) throws in
            let path = directory + "/index.sqlite"
            for sql in ["DROP TABLE message_subject", "DROP TRIGGER IF EXISTS message_subject_insert", "DROP TRIGGER IF EXISTS message_subject_delete",
                        "DELETE FROM grdb_migrations WHERE identifier = 'v2-subject-trigrams'"] {
                try TraceTestDatabase.execute(sql, path: path)
            }
            let reader = try SQLiteTraceIndex(path: path, readOnly: true)
            #expect(try ids(reader) { $0.subject = "report" } == ["S1"])
            let writer = try SQLiteTraceIndex(path: path)
            #expect(try ids(writer) { $0.subject = "report" } == ["S1"])
            #expect(try TraceTestDatabase.strings("SELECT count(*) FROM message_subject WHERE message_subject MATCH '\"report\"'", path: path) == ["[count(*):1]"])
        }
    }

    /// A new index packs several records a page (16 KiB); an existing one keeps the pages it has.
    @Test func aNewIndexUsesSixteenKiBPagesAndAnOldOneKeepsItsOwn() throws {
        try withIndex { (_, directory) throws in
            #expect(try TraceTestDatabase.strings("PRAGMA page_size", path: directory + "/index.sqlite") == ["[page_size:16384]"])
            let old = directory + "/old.sqlite"
            try TraceTestDatabase.execute("CREATE TABLE t (x)", path: old)
            _ = try SQLiteTraceIndex(path: old)
            #expect(try TraceTestDatabase.strings("PRAGMA page_size", path: old) == ["[page_size:4096]"])
        }
    }

    @Test func aNewerSchemaIsRefused() throws {
        try withIndex { (_, directory) throws in
            let path = directory + "/index.sqlite"
            // What a later smtpscope would leave: a migration this build does not know.
            let sqlite = try SQLiteTraceIndex(path: path)
            _ = sqlite
            try TraceTestDatabase.execute("INSERT INTO grdb_migrations (identifier) VALUES ('v99')", path: path)
            #expect(throws: TraceIndexError.self) { _ = try SQLiteTraceIndex(path: path) }
        }
    }
}

/// Two writers opening one new index at the same time (the proxy and `smtpscope index`) both get a
/// working index: each migration runs once.
struct SQLiteTraceIndexConcurrentOpenTests {
    @Test func twoWritersOpeningANewIndexTogetherBothSucceed() throws {
        let directory = NSTemporaryDirectory() + "/trace-open-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for round in 0..<10 {
            let path = directory + "/index-\(round).sqlite"
            let failures = CollectedFailures()
            let group = DispatchGroup()
            for _ in 0..<3 {
                DispatchQueue.global().async(group: group) {
                    do { _ = try SQLiteTraceIndex(path: path) } catch { failures.append("\(error)") }
                }
            }
            group.wait()
            #expect(failures.all.isEmpty, "round \(round): \(failures.all)")
            #expect(try SQLiteTraceIndex(path: path).sessionCount() == 0)
        }
    }
}

/// Failures collected from several threads.
final class CollectedFailures: @unchecked Sendable {
    private let lock = NSLock()
    private var failures: [String] = []
    func append(_ failure: String) { lock.lock(); failures.append(failure); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return failures }
}
