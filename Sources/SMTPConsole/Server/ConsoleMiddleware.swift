import HTTPTypes
import Hummingbird

/// Adds `SecurityHeaders` to every response, including the ones made from errors (a 404 for an
/// unknown path, a 503, a 500), which Hummingbird would otherwise make after it.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = ConsoleContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        } catch {
            // Anything else is the console's fault: said in the log, not to the browser.
            context.logger.error("console: \(request.method) \(request.uri.path): \(error)")
            response = ConsoleResponses.text("Internal error; the console's log says what.\n", status: .internalServerError)
        }
        for header in SecurityHeaders.all {
            if let name = HTTPField.Name(header.name) { response.headers[name] = header.value }
        }
        return response
    }
}

/// Every request needs the token, except the login page itself and the stylesheet it uses:
/// without it, `/api/...` answers 401 and a page redirects to `/login`. A POST (other than the
/// login) from a browser session also needs the session's CSRF token, else 403.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = ConsoleContext
    let token: ConsoleToken
    let sessions: ConsoleSessions

    static let open: Set<String> = ["/login", "/assets/console.css"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if Self.open.contains(path) { return try await next(request, context) }
        let credential = ConsoleCredential.of(
            cookieHeader: request.headers[.cookie],
            authorization: request.headers[.authorization],
            token: token,
            sessions: sessions
        )
        guard let credential else {
            if path == "/api" || path.hasPrefix("/api/") {
                return ConsoleResponses.json(ConsoleJSON.error("the console's token is needed: Authorization: Bearer TOKEN"), status: .unauthorized,
                                             headers: [.wwwAuthenticate: "Bearer realm=\"smtpscope console\""])
            }
            return Response(status: .seeOther, headers: [.location: "/login"])
        }
        var request = request
        var context = context
        context.credential = credential
        if request.method == .post {
            var csrf = request.headers[HTTPField.Name(ConsoleSessions.csrfHeader)!]
            if csrf == nil {
                let body = try await request.collectBody(upTo: context.maxUploadSize)
                let form = SessionsQuery.formPairs(String(buffer: body))
                csrf = form.first { $0.name == ConsoleSessions.csrfField }?.value
            }
            guard credential.mayChangeState(csrf: csrf, sessions: sessions) else {
                return ConsoleResponses.text("Refused: this form has no valid CSRF token. Reload the page and try again.\n", status: .forbidden)
            }
        }
        return try await next(request, context)
    }
}
