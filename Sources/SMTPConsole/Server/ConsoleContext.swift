import Hummingbird

/// A request's context: Hummingbird's own, and the credential `AccessMiddleware` found.
struct ConsoleContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var credential: ConsoleCredential?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        credential = nil
    }

    /// Forms and logins are small.
    var maxUploadSize: Int { 64 * 1024 }

    /// The CSRF token for the pages' forms; empty for a bearer token (its POSTs need none).
    func csrf(_ sessions: ConsoleSessions) -> String {
        if case .session(let id)? = credential { return sessions.csrfToken(for: id) }
        return ""
    }
}
