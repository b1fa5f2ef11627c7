import ArgumentParser
import MessageTrace
import SMTPTranscript

#if canImport(Glibc)
import Glibc
#endif

/// `smtpscope trace`: searches the message trace's index, newest first.
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Search the message trace: who sent what to whom, and what became of it.",
        discussion: """
            Every filter given must hold; --from, --to, a transaction --status, --subject and \
            --message-id must hold for one and the same transaction, and the table shows those \
            transactions. Addresses match whole and without regard to case; '*@example.net' matches \
            every address at that domain, and nothing else is a wildcard. Results are sessions, \
            newest first.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Sender (MAIL FROM), or *@DOMAIN; '' is the null sender <>.", valueName: "ADDR"))
    var from: String?

    @Option(name: .long, help: ArgumentHelp("A recipient (RCPT TO), or *@DOMAIN.", valueName: "ADDR"))
    var to: String?

    @Option(name: .long, help: ArgumentHelp("Client address or block.", valueName: "IP|CIDR"))
    var client: String?

    @Option(name: .long, help: ArgumentHelp("AUTH user, as recorded.", valueName: "NAME"))
    var user: String?

    @Option(name: .long, help: ArgumentHelp("Sessions that started at or after: RFC 3339, or an age (7d, 24h, 30m, 2w).", valueName: "TIME|AGE"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("Sessions that started before: RFC 3339, or an age.", valueName: "TIME|AGE"))
    var until: String?

    @Option(name: .long, help: ArgumentHelp("A transaction outcome (delivered, rejected, tempfailed, aborted, discarded, quarantined, unknown) or a session outcome (completed, tempfail, reset, timeout, server_closed, tls_failed, incomplete).", valueName: "OUTCOME"))
    var status: String?

    @Option(name: .long, help: ArgumentHelp("Sessions with a verdict of this rule.", valueName: "NAME"))
    var rule: String?

    @Option(name: .long, help: ArgumentHelp("Text found in the decoded Subject, without regard to case.", valueName: "TEXT"))
    var subject: String?

    @Option(name: .long, help: ArgumentHelp("Message-ID, with or without <>.", valueName: "ID"))
    var messageID: String?

    @Option(name: .long, help: ArgumentHelp("One session by id.", valueName: "ID"))
    var session: String?

    @Option(name: .long, help: ArgumentHelp("At most this many sessions.", valueName: "N"))
    var limit = 100

    @Option(name: .long, help: ArgumentHelp("table, or jsonl: the full records as the transcripts have them.", valueName: "table|jsonl"))
    var format: TraceFormat = .table

    @Option(name: .long, help: ArgumentHelp("The index: a SQLite file or postgres://USER@HOST:PORT/DB (default: ./transcripts/index.sqlite).", valueName: "PATH|postgres://..."))
    var index: String?

    func validate() throws {
        _ = try query(now: 0)
        if let index {
            switch IndexLocation.parse(index) {
            case .failure(let problem): throw ValidationError("--index \(index): \(problem.description)")
            case .success(.off): throw ValidationError("--index none: 'trace' needs an index to search")
            case .success: break
            }
        }
    }

    /// The filters as a query; a malformed one is a usage error naming its flag.
    func query(now: Int64) throws -> TraceQuery {
        var query = TraceQuery(limit: limit)
        if limit <= 0 { throw ValidationError("--limit must be a positive number") }
        query.from = from.map(AddressPattern.init(parsing:))
        query.to = to.map(AddressPattern.init(parsing:))
        if let client {
            guard let range = ClientRange(parsing: client) else {
                throw ValidationError("--client \(client): expected an IP address or a CIDR block, e.g. 192.0.2.7, 192.0.2.0/24 or 2001:db8::/32")
            }
            query.client = range
        }
        query.user = user
        if let since {
            guard let time = TraceTime.parse(since, now: now) else { throw ValidationError("--since \(since): expected RFC 3339 (2026-01-31T12:00:00Z) or an age (7d, 24h)") }
            query.since = time
        }
        if let until {
            guard let time = TraceTime.parse(until, now: now) else { throw ValidationError("--until \(until): expected RFC 3339 (2026-01-31T12:00:00Z) or an age (7d, 24h)") }
            query.until = time
        }
        if let status {
            guard let parsed = Status(parsing: status) else {
                throw ValidationError("--status \(status): expected one of \(Status.names.joined(separator: ", "))")
            }
            query.status = parsed
        }
        query.rule = rule
        query.subject = subject
        query.messageID = messageID
        query.session = session
        return query
    }

    func run() throws {
        let location = IndexLocation.given(index, default: .sqlite(inDirectory: IndexLocation.defaultDirectory))
        if case .sqlite(let path) = location, access(path, F_OK) != 0 {
            throw fail("no index at \(path): run 'smtpscope index FILE...' on the transcripts, or 'smtpscope proxy', which keeps one")
        }
        let hits: [TraceHit]
        do {
            hits = try location.open().search(try query(now: TraceClock.now()))
        } catch let error as TraceIndexError {
            throw fail(error.description)
        }
        switch format {
        case .jsonl:
            var out = ""
            for hit in hits { out += hit.line + "\n" }
            print(out, terminator: "")
        case .table:
            let decoder = SessionRecordDecoder()
            var rows: [[String]] = []
            for hit in hits {
                guard let record = try? decoder.decode(line: hit.line) else {
                    throw fail("the index holds a record that does not decode (session \(hit.sessionID)); rebuild it with 'smtpscope index'")
                }
                rows += TraceTable.rows(hit, record: record)
            }
            print(TraceTable.render(rows), terminator: "")
            let more = hits.count == limit ? " (the --limit; more may match)" : ""
            print("\(hits.count) session\(hits.count == 1 ? "" : "s")\(more)")
        }
    }
}

enum TraceFormat: String, ExpressibleByArgument {
    case table
    case jsonl
}
