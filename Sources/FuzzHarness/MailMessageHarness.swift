import MailMessage
import NIOCore

/// MailMessage under hostile input: header parsing, RFC 2047, MIME parts and the header rewriter.
/// With more than one chunk the first one lists header edits, one a line (`a`dd, `s`et, `r`emove,
/// `p`refix_subject, then `name:value`; octet 0x01 in a value stands for LF), and the other chunks are
/// the message content in pieces; one chunk is content alone.
public enum MailMessageHarness {
    public static func run(_ input: [UInt8]) throws(FuzzInvariantViolation) {
        let chunks = FuzzInput.chunks(input)
        let edits = chunks.count > 1 ? parseEdits(chunks[0]) : []
        let pieces = chunks.count > 1 ? Array(chunks.dropFirst()) : chunks
        let content = Array(pieces.joined())

        let summary = try inspect(pieces, content: content)
        try checkEncodedWords(summary, edits: edits)
        if !edits.isEmpty {
            try checkRewriter(edits, pieces: pieces, content: content)
        }
    }

    static func parseEdits(_ chunk: ArraySlice<UInt8>) -> [HeaderEdit] {
        chunk.split(separator: 10).prefix(8).compactMap { line -> HeaderEdit? in
            guard let kind = line.first else { return nil }
            let rest = line.dropFirst().map { $0 == 1 ? 10 : $0 }
            let colon = rest.firstIndex(of: 58) ?? rest.endIndex
            let name = String(decoding: rest[..<colon], as: UTF8.self)
            let value = colon < rest.endIndex ? String(decoding: rest[(colon + 1)...], as: UTF8.self) : ""
            switch kind {
            case UInt8(ascii: "a"): return .add(name: name, value: value)
            case UInt8(ascii: "s"): return .set(name: name, value: value)
            case UInt8(ascii: "r"): return .remove(name: name)
            case UInt8(ascii: "p"): return .prefixSubject(String(decoding: rest, as: UTF8.self))
            default: return nil
            }
        }
    }

    /// The reading must not depend on how the content is split.
    private static func inspect(_ pieces: [ArraySlice<UInt8>], content: [UInt8]) throws(FuzzInvariantViolation) -> MessageSummary {
        var whole = MessageInspector()
        whole.receive(ByteBuffer(bytes: content))
        let summary = whole.finish()
        var split = MessageInspector()
        for piece in pieces { split.receive(piece) }
        let splitSummary = split.finish()
        guard summary == splitSummary else {
            throw FuzzInvariantViolation("the message reads differently in pieces: \(summary) / \(splitSummary)")
        }
        for field in summary.header.fields {
            _ = AddressList.parse(field.value)
            _ = MIMEParameters.parse(field.value)
        }
        return summary
    }

    /// RFC 2047: what the rewriter encodes decodes to the same text.
    private static func checkEncodedWords(_ summary: MessageSummary, edits: [HeaderEdit]) throws(FuzzInvariantViolation) {
        var texts = summary.header.fields.map(\.value)
        for edit in edits {
            switch edit {
            case .add(_, let value), .set(_, let value): texts.append(value)
            case .prefixSubject(let prefix): texts.append(prefix)
            case .remove: break
            }
        }
        for text in texts {
            let clean = String(decoding: text.utf8.map { $0 == 13 || $0 == 10 || $0 == 0 ? 32 : $0 }, as: UTF8.self)
            let decoded = EncodedWord.decode(EncodedWord.encode(clean))
            guard decoded == clean else {
                throw FuzzInvariantViolation("RFC 2047 round trip: \(Array(clean.utf8).shown) came back as \(Array(decoded.utf8).shown)")
            }
        }
    }

    private static func rewrite(_ edits: [HeaderEdit], _ pieces: [ArraySlice<UInt8>]) -> (output: [UInt8], applied: Bool) {
        var rewriter = HeaderRewriter(edits: edits)
        var output = ByteBuffer()
        for piece in pieces { rewriter.receive(ByteBuffer(bytes: piece), into: &output) }
        rewriter.finish(into: &output)
        return (Array(output.readableBytesView), rewriter.applied)
    }

    private static func lines(_ octets: [UInt8]) -> [ArraySlice<UInt8>] {
        octets.split(separator: 10, omittingEmptySubsequences: false).map { $0.last == 13 ? $0.dropLast() : $0 }
    }

    private static func checkRewriter(_ edits: [HeaderEdit], pieces: [ArraySlice<UInt8>], content: [UInt8]) throws(FuzzInvariantViolation) {
        let (output, applied) = rewrite(edits, pieces)
        guard (output, applied) == rewrite(edits, [content[...]]) else {
            throw FuzzInvariantViolation("the rewriter's output depends on how the content is split")
        }
        // An edit never brings a line break or a NUL with it: none may reach the wire.
        if LineEnds.isCanonical(content), !LineEnds.isCanonical(output) {
            throw FuzzInvariantViolation("the rewriter wrote a bare CR or LF: \(output.shown)")
        }
        if !content.contains(0), output.contains(0) {
            throw FuzzInvariantViolation("the rewriter wrote a NUL")
        }
        // RFC 5322 §2.1.1: 998 octets a line at most.
        if lines(content).allSatisfy({ $0.count <= 998 }), let long = lines(output).first(where: { $0.count > 998 }) {
            throw FuzzInvariantViolation("the rewriter wrote a line of \(long.count) octets")
        }
        guard LineEnds.isCanonical(content), applied else { return }
        // The body after the header section goes through untouched.
        if let separator = headerEnd(content) {
            let body = content[separator...]
            guard output.count >= body.count, output.suffix(body.count).elementsEqual(body) else {
                throw FuzzInvariantViolation("the rewriter changed the body")
            }
        }
        // A single edit does what it says, as the message reader sees the result.
        guard edits.count == 1, case let name? = edits[0].fieldName, isFieldName(name) else { return }
        var reader = MessageInspector()
        reader.receive(output)
        let count = reader.finish().header.all(name).count
        switch edits[0] {
        case .remove where count != 0:
            throw FuzzInvariantViolation("\(name) is still there after remove: \(count)")
        case .set where count != 1:
            throw FuzzInvariantViolation("\(count) \(name) fields after set")
        default:
            break
        }
    }

    /// Where the body starts: after the empty line that ends the header section.
    private static func headerEnd(_ content: [UInt8]) -> Int? {
        if content.starts(with: [13, 10]) { return 0 }
        var index = 0
        while index + 4 <= content.count {
            if content[index..<(index + 4)].elementsEqual([13, 10, 13, 10]) { return index + 2 }
            index += 1
        }
        return nil
    }

    /// RFC 5322 §3.6.8 `field-name`, as the rewriter checks it.
    private static func isFieldName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 76 && name.utf8.allSatisfy { (33...126).contains($0) && $0 != 58 }
    }
}

extension HeaderEdit {
    fileprivate var fieldName: String? {
        switch self {
        case .add(let name, _), .set(let name, _), .remove(let name): name
        case .prefixSubject: nil
        }
    }
}
