import HTTPTypes
import Hummingbird

/// 503: the index could not be opened or read. JSON (`{"error": ...}`) for the API, a page otherwise.
struct IndexUnavailable: HTTPResponseError {
    var problem: String
    var status: HTTPResponse.Status { .serviceUnavailable }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        if request.uri.path.hasPrefix("/api/") {
            return ConsoleResponses.json(ConsoleJSON.error(problem), status: status)
        }
        return ConsoleResponses.html(Page.document(title: "Index unavailable", csrf: nil, body: """
            <h1>The index is unavailable</h1><p class="problem">\(problem)</p><p>Reload to try again.</p>
            """), status: status)
    }
}
