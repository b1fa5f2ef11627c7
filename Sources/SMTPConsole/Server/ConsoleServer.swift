import HTTPTypes
import Hummingbird
import Logging
import MessageTrace
import NIOCore
import ServiceLifecycle
import SMTPCore
import SMTPTranscript

/// The web console: pages and the JSON API over one message-trace index, on Hummingbird.
/// `service(onRunning:)` is a ServiceLifecycle `Service`: `smtpscope console` runs it alone,
/// `smtpscope proxy --console` beside the proxy.
public struct ConsoleServer: Sendable {
    public var address: ConsoleAddress
    let token: ConsoleToken
    let sessions: ConsoleSessions
    let index: ConsoleIndex
    /// The proxy's quarantine folder, when the console has one.
    let quarantine: QuarantineStore?
    let logger: Logger
    /// Microseconds since the epoch, for `since=24h`.
    let now: @Sendable () -> Int64

    /// How far back each poll of the live list looks: a session is indexed when it ends, so one
    /// that started before the last poll can still be new.
    static let liveLookback: Int64 = 10 * 60 * 1_000_000

    public init(address: ConsoleAddress, token: ConsoleToken, index: ConsoleIndex, quarantine: QuarantineStore?, logger: Logger, now: @escaping @Sendable () -> Int64) {
        self.address = address
        self.token = token
        sessions = ConsoleSessions()
        self.index = index
        self.quarantine = quarantine
        self.logger = logger
        self.now = now
    }

    /// The server as a service; `onRunning` gets the address it listens on (port 0 resolved).
    public func service(onRunning: @escaping @Sendable (_ host: String, _ port: Int) async -> Void) -> some Service {
        Application(
            router: router(),
            configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port), serverName: nil),
            onServerRunning: { channel in
                await onRunning(channel.localAddress?.ipAddress ?? address.host, channel.localAddress?.port ?? address.port)
            },
            logger: logger
        )
    }

    func router() -> Router<ConsoleContext> {
        let router = Router(context: ConsoleContext.self)
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: AccessMiddleware(token: token, sessions: sessions))
        let server = self
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/sessions"]) }
        router.get("/assets/console.css") { _, _ in
            ConsoleResponses.make(ConsoleStyle.source, type: "text/css; charset=utf-8", status: .ok, headers: [:])
        }
        router.get("/assets/console.js") { _, _ in
            ConsoleResponses.make(ConsoleScript.source, type: "text/javascript; charset=utf-8", status: .ok, headers: [:])
        }
        router.get("/login") { _, _ in ConsoleResponses.html(Page.login(failed: false)) }
        router.post("/login") { request, context in try await server.login(request, context) }
        router.post("/logout") { _, context in server.logout(context) }
        router.get("/sessions") { request, context in try await server.sessionsPage(request, context) }
        router.get("/sessions/:id") { _, context in try await server.sessionPage(context) }
        router.get("/overview") { request, context in try await server.overviewPage(request, context) }
        router.get("/api/sessions") { request, _ in try await server.apiSessions(request) }
        router.get("/api/sessions/:id") { _, context in try await server.apiSession(context) }
        router.get("/api/stats") { request, _ in try await server.apiStats(request) }
        router.get("/quarantine") { request, context in try await server.quarantineList(request, context) }
        router.get("/quarantine/:id") { _, context in try await server.quarantineMessage(context) }
        router.post("/quarantine/:id/release") { _, context in try await server.quarantineAction(context, release: true, api: false) }
        router.post("/quarantine/:id/delete") { _, context in try await server.quarantineAction(context, release: false, api: false) }
        router.get("/api/quarantine") { _, _ in try await server.apiQuarantine() }
        router.post("/api/quarantine/:id/release") { _, context in try await server.quarantineAction(context, release: true, api: true) }
        router.post("/api/quarantine/:id/delete") { _, context in try await server.quarantineAction(context, release: false, api: true) }
        return router
    }

    func login(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: context.maxUploadSize)
        let given = SessionsQuery.formPairs(String(buffer: body)).first { $0.name == "token" }?.value ?? ""
        guard token.matches(given) else {
            logger.notice("console: a login with a wrong token")
            return ConsoleResponses.html(Page.login(failed: true), status: .unauthorized)
        }
        let id = sessions.start()
        return Response(status: .seeOther, headers: [.location: "/sessions", .setCookie: ConsoleSessions.setCookie(id)])
    }

    func logout(_ context: ConsoleContext) -> Response {
        if case .session(let id)? = context.credential { sessions.end(id) }
        return Response(status: .seeOther, headers: [.location: "/login", .setCookie: ConsoleSessions.clearCookie])
    }

    func queryPairs(_ request: Request) -> [(name: String, value: String)] {
        SessionsQuery.formPairs(request.uri.query ?? "")
    }

    func apiSessions(_ request: Request) async throws -> Response {
        switch SessionsQuery.parse(queryPairs(request), now: now()) {
        case .failure(let problem):
            return ConsoleResponses.json(ConsoleJSON.error(problem.description), status: .badRequest)
        case .success(let query):
            let hits = try await indexCall { try await index.search(query) }
            return ConsoleResponses.json(ConsoleJSON.sessions(hits.map(\.line)))
        }
    }

    func apiSession(_ context: ConsoleContext) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        guard let line = try await indexCall({ try await index.session(id) }) else {
            return ConsoleResponses.json(ConsoleJSON.error("no session \(id) in the index"), status: .notFound)
        }
        return ConsoleResponses.json(line)
    }

    func apiStats(_ request: Request) async throws -> Response {
        var since: Int64?
        var until: Int64?
        var bucket: Int64?
        for (name, value) in queryPairs(request) where !value.isEmpty {
            if name == "bucket" {
                // Seconds, from a minute to a day: a chart's bars, not a dump of the index.
                guard let seconds = Int64(value), (60...86_400).contains(seconds) else {
                    return ConsoleResponses.json(ConsoleJSON.error("bucket '\(value)': expected seconds from 60 to 86400"), status: .badRequest)
                }
                bucket = seconds * 1_000_000
                continue
            }
            guard name == "since" || name == "until" else {
                return ConsoleResponses.json(ConsoleJSON.error("unknown parameter '\(name)'; known: since, until, bucket"), status: .badRequest)
            }
            guard let time = TraceTime.parse(value, now: now()) else {
                return ConsoleResponses.json(ConsoleJSON.error("\(name) '\(value)': expected RFC 3339 or an age (7d, 24h, 30m)"), status: .badRequest)
            }
            if name == "since" { since = time } else { until = time }
        }
        let stats = try await indexCall { [bucket] in try await index.stats(since: since, until: until, bucket: bucket) }
        return ConsoleResponses.json(ConsoleJSON.stats(stats, since: since, until: until, bucket: bucket))
    }

    func sessionsPage(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let pairs = queryPairs(request)
        var values: [String: String] = [:]
        for (name, value) in pairs { values[name] = value }
        let csrf = context.csrf(sessions)
        switch SessionsQuery.parse(pairs, now: now()) {
        case .failure(let problem):
            let search = SessionsPage.Search(values: values, problem: problem.description)
            return ConsoleResponses.html(SessionsPage.render(rows: [], search: search, limit: 0, liveSince: nil, csrf: csrf), status: .badRequest)
        case .success(let query):
            let hits = try await indexCall { try await index.search(query) }
            let decoder = SessionRecordDecoder()
            let rows = hits.compactMap { try? decoder.decode(line: $0.line) }.map(SessionRow.init)
            var liveSince: String?
            if query.until == nil {
                // A sliding window ("10m", an age the API reads against its own clock), unless the
                // search's own since is later: each poll then asks for little, however long the
                // page stays open.
                let lookback = now() - Self.liveLookback
                if let since = query.since, since > lookback {
                    liveSince = RFC3339.format(Timestamp(microsecondsSinceEpoch: since))
                } else {
                    liveSince = "\(Self.liveLookback / 60_000_000)m"
                }
            }
            let page = SessionsPage.render(rows: rows, search: SessionsPage.Search(values: values, problem: nil), limit: query.limit, liveSince: liveSince, csrf: csrf)
            return ConsoleResponses.html(page)
        }
    }

    func overviewPage(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        var period = OverviewPage.Period.day
        for (name, value) in queryPairs(request) {
            guard name == "period", let chosen = OverviewPage.Period(rawValue: value) else {
                let choices = OverviewPage.Period.allCases.map(\.rawValue).joined(separator: ", ")
                return ConsoleResponses.html(Page.notFound("The overview's one parameter is period, one of \(choices).", csrf: context.csrf(sessions)), status: .badRequest)
            }
            period = chosen
        }
        let now = now()
        let stats = try await indexCall { try await index.stats(since: now - period.length, until: nil, bucket: period.bucket) }
        return ConsoleResponses.html(OverviewPage.render(stats, period: period, now: now, csrf: context.csrf(sessions)))
    }

    func sessionPage(_ context: ConsoleContext) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        let csrf = context.csrf(sessions)
        guard let line = try await indexCall({ try await index.session(id) }) else {
            return ConsoleResponses.html(Page.notFound("No session \(id) in the index.", csrf: csrf), status: .notFound)
        }
        guard let record = try? SessionRecordDecoder().decode(line: line) else {
            return ConsoleResponses.html(Page.notFound("The index holds a record for \(id) that does not decode; rebuild it with 'smtpscope index'.", csrf: csrf), status: .internalServerError)
        }
        return ConsoleResponses.html(SessionPage.render(record, csrf: csrf))
    }

    /// An index that fails is a 503 saying why (the error names the file or server, never a password).
    func indexCall<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as TraceIndexError {
            logger.warning("console: \(error.description)")
            throw IndexUnavailable(problem: error.description)
        }
    }
}
