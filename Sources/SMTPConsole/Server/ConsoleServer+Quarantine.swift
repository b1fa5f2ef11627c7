import HTTPTypes
import Hummingbird

/// The quarantine's pages and API: list, view, release, delete.
extension ConsoleServer {
    static let noQuarantine = "This console has no quarantine folder (smtpscope console --quarantine DIR)."

    func quarantineList(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let csrf = context.csrf(sessions)
        guard let quarantine else { return ConsoleResponses.html(Page.notFound(Self.noQuarantine, csrf: csrf), status: .notFound) }
        var notice: String?
        for (name, value) in queryPairs(request) where QuarantineEntry.isValidID(value) {
            if name == "released" { notice = "\(value) was released to the upstream." }
            if name == "deleted" { notice = "\(value) was deleted." }
        }
        return ConsoleResponses.html(QuarantinePage.list(try await quarantine.list(), notice: notice, csrf: csrf))
    }

    func quarantineMessage(_ context: ConsoleContext, problem: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        let csrf = context.csrf(sessions)
        let id = context.parameters.get("id") ?? ""
        guard let quarantine else { return ConsoleResponses.html(Page.notFound(Self.noQuarantine, csrf: csrf), status: .notFound) }
        guard let (entry, headers) = try await quarantine.entry(id) else {
            return ConsoleResponses.html(Page.notFound("No quarantined message \(id).", csrf: csrf), status: .notFound)
        }
        let page = QuarantinePage.message(entry, headers: headers, canRelease: quarantine.upstream?.description, problem: problem, csrf: csrf)
        return ConsoleResponses.html(page, status: status)
    }

    /// Release or delete (a POST: `AccessMiddleware` has checked the CSRF token of a session).
    func quarantineAction(_ context: ConsoleContext, release: Bool, api: Bool) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        guard let quarantine else {
            return api ? ConsoleResponses.json(ConsoleJSON.error(Self.noQuarantine), status: .notFound)
                : ConsoleResponses.html(Page.notFound(Self.noQuarantine, csrf: context.csrf(sessions)), status: .notFound)
        }
        do {
            if release {
                let reply = try await quarantine.release(id)
                logger.notice("console: quarantined message \(id) released", metadata: ["reply": "\(reply)"])
                if api { return ConsoleResponses.json(ConsoleJSON.quarantineAction("released", id: id, reply: reply)) }
                return Response(status: .seeOther, headers: [.location: "/quarantine?released=\(PathComponent.encode(id))"])
            }
            try await quarantine.delete(id)
            logger.notice("console: quarantined message \(id) deleted")
            if api { return ConsoleResponses.json(ConsoleJSON.quarantineAction("deleted", id: id, reply: nil)) }
            return Response(status: .seeOther, headers: [.location: "/quarantine?deleted=\(PathComponent.encode(id))"])
        } catch let problem as QuarantineStore.Problem {
            let status: HTTPResponse.Status = problem.description.hasPrefix("no quarantined message") ? .notFound : .badGateway
            if api { return ConsoleResponses.json(ConsoleJSON.error(problem.description), status: status) }
            if status == .notFound { return ConsoleResponses.html(Page.notFound(problem.description, csrf: context.csrf(sessions)), status: status) }
            return try await quarantineMessage(context, problem: problem.description, status: status)
        }
    }

    func apiQuarantine() async throws -> Response {
        guard let quarantine else { return ConsoleResponses.json(ConsoleJSON.error(Self.noQuarantine), status: .notFound) }
        return ConsoleResponses.json(ConsoleJSON.quarantine(try await quarantine.list()))
    }
}
