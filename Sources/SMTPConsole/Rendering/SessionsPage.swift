import MessageTrace
import SMTPTranscript

/// The Sessions page: the trace search as a form, and the matching sessions newest first. When
/// the search has no `until`, the list is live: the script asks `/api/sessions` every 2 s for
/// sessions with the same filters that started since `data-live-since` (by default the last 10
/// minutes), and adds the ones it does not have.
public enum SessionsPage {
    public struct Search: Sendable {
        /// The form's values as given (shown again in the form).
        public var values: [String: String]
        public var problem: String?

        public init(values: [String: String], problem: String?) {
            self.values = values
            self.problem = problem
        }
    }

    /// `liveSince` is the `since` of each poll: RFC 3339, or an age such as `10m` that the API reads
    /// against its own clock (a sliding window).
    public static func render(rows: [SessionRow], search: Search, limit: Int, liveSince: String?, csrf: String) -> HTML {
        func field(_ name: String, _ label: String, _ placeholder: String) -> HTML {
            "<label>\(label) <input name=\"\(name)\" value=\"\(search.values[name] ?? "")\" placeholder=\"\(placeholder)\"></label>"
        }
        let selected = search.values["status"] ?? ""
        var options: HTML = "<option value=\"\">any</option>"
        for name in Status.names {
            options += name == selected ? "<option selected>\(name)</option>" : "<option>\(name)</option>"
        }
        let problem: HTML = search.problem.map { "<p class=\"problem\">\($0)</p>" } ?? .empty
        var live: HTML = .empty
        if let liveSince {
            // The filters the live list keeps: all but the period and the limit.
            let kept = SessionsQuery.names.filter { !["since", "until", "limit"].contains($0) }
                .compactMap { name in search.values[name].flatMap { $0.isEmpty ? nil : "\(name)=\(FormValue.encode($0))" } }
                .joined(separator: "&")
            live = " data-live-query=\"\(kept)\" data-live-since=\"\(liveSince)\""
        }
        let more: HTML = rows.count >= limit ? "<p class=\"note\">Showing the newest \(limit); narrow the search for the rest.</p>" : .empty
        return Page.document(title: "Sessions", csrf: csrf, body: """
            <h1>Sessions</h1>
            <form method="get" action="/sessions" class="search">\
            \(field("from", "From", "alice@example.org or *@example.org"))\(field("to", "To", "bob@example.net or *@example.net"))\
            \(field("client", "Client", "192.0.2.0/24"))\(field("user", "AUTH user", ""))\
            <label>Status <select name="status">\(options)</select></label>\
            \(field("rule", "Rule", ""))\(field("subject", "Subject", "text"))\(field("message_id", "Message-ID", ""))\
            \(field("since", "Since", "24h or 2026-01-31T12:00:00Z"))\(field("until", "Until", ""))\
            \(field("limit", "Limit", "100"))<button type="submit">Search</button></form>
            \(problem)<p class="live-status" id="live-status"></p>
            <table class="sessions" id="sessions"\(live)><thead><tr><th>Start (UTC)</th><th>Client</th><th>From</th><th>To</th>\
            <th>Subject</th><th>Outcome</th><th></th></tr></thead><tbody>\(HTML.joined(rows.map(\.html)))</tbody></table>\(more)
            """)
    }
}

/// `application/x-www-form-urlencoded` for one value (a space is `%20`; the script passes the
/// string on to `fetch` as it is).
enum FormValue {
    static func encode(_ text: String) -> String {
        PathComponent.encode(text)
    }
}
