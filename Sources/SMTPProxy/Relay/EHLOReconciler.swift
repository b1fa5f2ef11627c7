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
    /// Upper-cased keyword to its parameter text (`nil` for a bare keyword).
    public static func extensions(of reply: SMTPReply) -> [String: String?] {
        var result: [String: String?] = [:]
        for line in reply.ehloExtensions {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard let keyword = parts.first else { continue }
            result[keyword.uppercased()] = parts.count > 1 ? String(parts[1]) : nil
        }
        return result
    }

    /// The reply lines (text after the code) for the client.
    public static func clientLines(
        upstream reply: SMTPReply,
        configuration: RelayConfiguration,
        clientLegIsTLS: Bool
    ) -> [String] {
        let upstream = extensions(of: reply)
        var lines = [reply.lines.first ?? configuration.hostname]
        lines.append("PIPELINING")
        lines.append("SIZE \(clientSizeLimit(upstream: upstream, proxyLimit: configuration.limits.maxMessageOctets))")
        for keyword in ["8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN"] where upstream[keyword] != nil {
            lines.append(keyword)
        }
        lines.append("CHUNKING")
        switch configuration.clientTLS {
        case .offer, .require:
            if !clientLegIsTLS { lines.append("STARTTLS") }
        case .passthrough:
            if !clientLegIsTLS && upstream["STARTTLS"] != nil { lines.append("STARTTLS") }
        case .off:
            break
        }
        if case .some(.some(let mechanisms)) = upstream["AUTH"], configuration.clientTLS != .require || clientLegIsTLS {
            lines.append("AUTH \(mechanisms)")
        }
        return lines
    }

    /// RFC 1870 §4: `SIZE 0` or a SIZE without a number means no fixed limit.
    static func clientSizeLimit(upstream: [String: String?], proxyLimit: Int) -> Int {
        guard case .some(.some(let text)) = upstream["SIZE"], let value = Int(text), value > 0 else {
            return proxyLimit
        }
        return min(value, proxyLimit)
    }
}
