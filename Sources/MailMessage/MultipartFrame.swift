/// An open multipart entity (RFC 2046 §5.1): its boundary, and how its delimiter lines look.
struct MultipartFrame: Sendable {
    /// The boundary parameter, without the leading "--".
    let boundary: [UInt8]
    /// multipart/digest: a part without Content-Type is message/rfc822 (RFC 2046 §5.1.5).
    let isDigest: Bool

    /// RFC 2046 §5.1.1 allows 70 characters; longer ones are followed up to this, so a boundary
    /// line still fits in ``LineAssembler/headCapacity``.
    static let maxBoundaryOctets = 900

    enum Delimiter: Sendable, Equatable {
        /// `--boundary` then transport padding: a part follows.
        case part
        /// `--boundary--` then transport padding: the multipart ends.
        case close
    }

    /// Whether `line` (without its line break) is a delimiter line of this multipart. Trailing
    /// whitespace (transport padding) is allowed; anything else after the boundary makes it content.
    func delimiter(in line: [UInt8]) -> Delimiter? {
        let boundaryEnd = 2 + boundary.count
        guard line.count >= boundaryEnd, line[0] == ASCII.hyphen, line[1] == ASCII.hyphen else { return nil }
        var index = 0
        while index < boundary.count {
            if line[2 + index] != boundary[index] { return nil }
            index += 1
        }
        var rest = boundaryEnd
        var kind = Delimiter.part
        if rest + 1 < line.count, line[rest] == ASCII.hyphen, line[rest + 1] == ASCII.hyphen {
            kind = .close
            rest += 2
        }
        while rest < line.count {
            guard ASCII.isWhitespace(line[rest]) else { return nil }
            rest += 1
        }
        return kind
    }
}
