/// The headers every console response carries, errors included.
///
/// - The Content-Security-Policy allows script, style and images only from the console itself
///   (and `data:` images), no inline script or style, no plugin, no framing, forms posted only
///   to the console: a value from mail that escaped its escaping still could not run.
/// - `nosniff`: a JSON record is never taken for HTML. `no-referrer`: a session id in a URL does
///   not leave with a click.
public enum SecurityHeaders {
    public static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'"

    public static let all: [(name: String, value: String)] = [
        ("Content-Security-Policy", contentSecurityPolicy),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    ]
}
