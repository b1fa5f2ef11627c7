/// The frame every console page shares: the one stylesheet and the one script, both served by
/// the console itself (`/assets/...`), and no inline script or style anywhere (the
/// Content-Security-Policy forbids both).
public enum Page {
    /// `csrf` is the session's token when logged in: the navigation's logout form carries it.
    public static func document(title: String, csrf: String?, body: HTML) -> HTML {
        var navigation: HTML = .empty
        // The script only serves logged-in pages (the login page asks for no data).
        let script: HTML = csrf == nil ? .empty : "<script src=\"/assets/console.js\" defer></script>"
        if let csrf {
            navigation = """
                <nav><a href="/sessions">Sessions</a><a href="/overview">Overview</a><a href="/quarantine">Quarantine</a>\
                <form method="post" action="/logout" class="logout"><input type="hidden" name="csrf" value="\(csrf)">\
                <button type="submit">Log out</button></form></nav>
                """
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">\
            <meta name="viewport" content="width=device-width, initial-scale=1">\
            <title>\(title) · smtpscope</title>\
            <link rel="icon" href="data:,">\
            <link rel="stylesheet" href="/assets/console.css">\
            \(script)</head>
            <body><header><span class="brand">smtpscope</span>\(navigation)</header>
            <main>\(body)</main></body></html>

            """
    }

    public static func login(failed: Bool) -> HTML {
        let problem: HTML = failed ? "<p class=\"problem\">That token is not the console's.</p>" : .empty
        return document(title: "Log in", csrf: nil, body: """
            <h1>Log in</h1>\(problem)
            <p>The token was printed when the console started (or is in its <code>--console-token-file</code>).</p>
            <form method="post" action="/login" class="login"><label>Token <input type="password" name="token" autocomplete="off" autofocus></label> \
            <button type="submit">Log in</button></form>
            """)
    }

    public static func notFound(_ what: String, csrf: String?) -> HTML {
        document(title: "Not found", csrf: csrf, body: "<h1>Not found</h1><p>\(what)</p>")
    }
}
