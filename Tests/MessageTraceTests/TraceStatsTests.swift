import MessageTrace
import SMTPTranscript
import Testing

/// The console's counts (`GET /api/stats`), on a real SQLite file holding the search tests' corpus.
@Suite struct TraceStatsTests {
    typealias F = TraceFixtures

    func withIndex(_ body: (SQLiteTraceIndex) throws -> Void) throws {
        let directory = F.temporaryDirectory()
        defer { F.remove(directory) }
        let index = try SQLiteTraceIndex(path: directory + "/index.sqlite")
        try index.add(SQLiteTraceIndexTests.corpus.map(F.indexed))
        try body(index)
    }

    @Test func countsPerOutcomeCauseAndRule() throws {
        try withIndex { index in
            let stats = try index.stats(since: nil, until: nil, bucket: nil)
            #expect(stats.sessions == ["completed": 2, "rejected": 2])
            #expect(stats.messages == ["delivered": 2, "rejected": 1, "tempfailed": 1])
            // S2's end of data refused by its rule; S3's second message by its only recipient's 451.
            #expect(stats.refusalsByCause == ["550 5.7.1": 1, "451": 1])
            #expect(stats.refusalsByRule == ["no-spam": 1])
            // Senders folded, "" the null sender; recipient domains by recipients.
            #expect(stats.topSenders == ["alice@example.org": 1, "mallory@spam.example": 1, "": 1, "dave@example.org": 1])
            #expect(stats.topRecipientDomains == ["example.net": 3, "example.com": 1, "other.example": 1])
        }
    }

    @Test func aPeriodCountsOnlyTheSessionsThatStartedInIt() throws {
        try withIndex { index in
            let stats = try index.stats(since: F.time(10).microsecondsSinceEpoch, until: F.time(30).microsecondsSinceEpoch, bucket: nil)
            #expect(stats.sessions == ["completed": 1, "rejected": 1])
            #expect(stats.messages == ["delivered": 1, "rejected": 1, "tempfailed": 1])
            let none = try index.stats(since: F.time(31).microsecondsSinceEpoch, until: nil, bucket: nil)
            #expect(none == TraceStats())
        }
    }

    @Test func transactionsPerBucketOfTheirSessionsStart() throws {
        try withIndex { index in
            // Sessions at minutes 0, 10, 20 (two transactions), 30 (none); ten-minute buckets.
            let width: Int64 = 10 * 60_000_000
            let stats = try index.stats(since: F.time(5).microsecondsSinceEpoch, until: nil, bucket: width)
            let first = F.time(0).microsecondsSinceEpoch / width
            #expect(stats.messagesPerBucket == [first + 1: 1, first + 2: 2])
            #expect(try index.stats(since: nil, until: nil, bucket: nil).messagesPerBucket == [:])
        }
    }

    @Test func theCauseIsTheCodeAndTheEnhancedCode() {
        #expect(TraceStats.cause(ofDecidingReply: "550 5.1.1 <bob@example.net>: Recipient address rejected") == "550 5.1.1")
        #expect(TraceStats.cause(ofDecidingReply: "451 No") == "451")
        #expect(TraceStats.cause(ofDecidingReply: "554") == "554")
        #expect(TraceStats.cause(ofDecidingReply: "550 5.x.1 odd") == "550")
    }
}
