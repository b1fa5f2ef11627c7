/// The quarantine's pages: the list, and one message with its envelope, the rules that held it,
/// its header section as text, and the Release and Delete forms (POSTs carrying the CSRF token).
public enum QuarantinePage {
    public static func list(_ entries: [QuarantineEntry], notice: String?, csrf: String) -> HTML {
        let rows = entries.map { entry -> HTML in
            """
            <tr data-quarantine="\(entry.id)"><td class="time">\(entry.quarantined)</td><td>\(entry.reason)</td>\
            <td>\(entry.rules.joined(separator: ", "))</td><td>\(SessionRow.address(entry.mailFrom))</td>\
            <td>\(entry.rcptTo.joined(separator: ", "))</td><td>\(entry.size)</td>\
            <td><a href="/quarantine/\(PathComponent.encode(entry.id))">view</a></td></tr>
            """
        }
        let body: HTML = entries.isEmpty
            ? "<p>The quarantine is empty.</p>"
            : """
                <table class="quarantine" id="quarantine"><thead><tr><th>Quarantined (UTC)</th><th>Reason</th><th>Rules</th>\
                <th>From</th><th>To</th><th>Octets</th><th></th></tr></thead><tbody>\(HTML.joined(rows))</tbody></table>
                """
        let shown: HTML = notice.map { "<p class=\"notice\">\($0)</p>" } ?? .empty
        return Page.document(title: "Quarantine", csrf: csrf, body: "<h1>Quarantine</h1>\(shown)\(body)")
    }

    public static func message(_ entry: QuarantineEntry, headers: String, canRelease: String?, problem: String?, csrf: String) -> HTML {
        let action = "/quarantine/\(PathComponent.encode(entry.id))"
        let release: HTML = canRelease.map { upstream in
            """
            <form method="post" action="\(action)/release" class="release"><input type="hidden" name="csrf" value="\(csrf)">\
            <button type="submit">Release to \(upstream)</button></form>
            """
        } ?? "<p class=\"note\">Releasing needs an upstream (the console's --upstream).</p>"
        let shown: HTML = problem.map { "<p class=\"problem\">\($0)</p>" } ?? .empty
        return Page.document(title: "Quarantined \(entry.id)", csrf: csrf, body: """
            <h1>Quarantined <span class="id">\(entry.id)</span></h1>\(shown)
            <dl><dt>Quarantined</dt><dd>\(entry.quarantined)</dd><dt>Reason</dt><dd>\(entry.reason)</dd>\
            <dt>Rules</dt><dd>\(entry.rules.joined(separator: ", "))</dd><dt>MAIL FROM</dt><dd>\(SessionRow.address(entry.mailFrom))</dd>\
            <dt>RCPT TO</dt><dd>\(entry.rcptTo.joined(separator: ", "))</dd><dt>Octets</dt><dd>\(entry.size)</dd>\
            <dt>Client</dt><dd>\(entry.clientIP ?? "?")\(entry.helo.map { " (HELO " + $0 + ")" } ?? "")</dd>\
            <dt>Session</dt><dd><a href="/sessions/\(PathComponent.encode(entry.sessionID))">\(entry.sessionID)</a></dd></dl>
            <div class="actions">\(release)\
            <form method="post" action="\(action)/delete" class="delete"><input type="hidden" name="csrf" value="\(csrf)">\
            <button type="submit">Delete</button></form></div>
            <h2>Header section</h2><pre class="headers">\(headers)</pre>
            """)
    }
}
