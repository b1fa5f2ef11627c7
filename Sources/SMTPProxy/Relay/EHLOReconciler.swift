import SMTPCore

/// Builds the EHLO reply the client sees from the upstream's (RFC 5321 §4.1.1.1): the client is offered
/// what both the proxy and the upstream support.
///
/// - PIPELINING (RFC 2920) and CHUNKING (RFC 3030) are always offered: the proxy handles them
///   itself on the client leg.
/// - SIZE (RFC 1870) is the smaller of the proxy's limit and the upstream's (0 means none).
/// - STARTTLS (RFC 3207) follows `--client-tls`; under `passthrough` the STARTTLS is the
///   upstream's, so it is offered only when the upstream offers it.
/// - 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, DSN and AUTH only when the upstream has them; AUTH is
///   hidden before TLS under `--client-tls require`.
/// - Anything else (XCLIENT, XFORWARD, BINARYMIME, vendor extensions) is never shown.
public enum EHLOReconciler {
    /// The reply lines (text after the code) for the client.
    public static func clientLines(
        upstream reply: SMTPReply,
        configuration: RelayConfiguration,
        clientLegIsTLS: Bool
    ) -> [String] {
        let upstream = ServiceExtensions(reply)
        var lines = [reply.lines.first ?? configuration.hostname]
        lines.append("PIPELINING")
        lines.append("SIZE \(clientSizeLimit(upstream: upstream, proxyLimit: configuration.limits.maxMessageOctets))")
        for relayed: ServiceExtension in [.eightBitMIME, .smtpUTF8, .enhancedStatusCodes, .dsn] where upstream.offers(relayed) {
            lines.append(relayed.keyword)
        }
        lines.append("CHUNKING")
        switch configuration.clientTLS {
        case .offer, .require:
            if !clientLegIsTLS { lines.append("STARTTLS") }
        case .passthrough:
            if !clientLegIsTLS && upstream.offers(.startTLS) { lines.append("STARTTLS") }
        case .off:
            break
        }
        if let mechanisms = upstream.parameters(of: .auth), configuration.clientTLS != .require || clientLegIsTLS {
            lines.append("AUTH \(mechanisms)")
        }
        return lines
    }

    /// RFC 1870 §4: `SIZE 0` or a SIZE without a number means no fixed limit.
    static func clientSizeLimit(upstream: ServiceExtensions, proxyLimit: Int) -> Int {
        upstream.sizeLimit.map { min($0, proxyLimit) } ?? proxyLimit
    }
}
