import NIOCore

/// One change to a message's top-level header section (the rule language's header actions).
public enum HeaderEdit: Sendable, Hashable {
    /// Appends a field at the end of the header section, after the fields already there (as a
    /// milter's `smfi_addheader` does), so trace fields stay on top (RFC 5322 §3.6.7).
    case add(name: String, value: String)
    /// Replaces the first field of that name in place and removes the others; appends when absent.
    case set(name: String, value: String)
    /// Removes every field of that name.
    case remove(name: String)
    /// Puts text before the decoded `Subject`; a subject that already starts with it is left alone,
    /// so replies do not collect `[X] [X] [X]`. Adds a `Subject` when there is none.
    case prefixSubject(String)
}

/// Applies ``HeaderEdit``s to message content as it streams past, writing every new or changed field
/// canonically (RFC 5322 §2.2 and §2.1.1): field names checked against `ftext`, CR, LF and NUL in a
/// value replaced by a space (so no value can start a field of its own), non-ASCII values as
/// RFC 2047 encoded words, and lines folded at whitespace to stay under 78 octets where possible
/// and under 998 always.
///
/// Input is message content as DATA carries it once un-stuffed, with CRLF line ends. The header section
/// is held until its end (or the end of the content). It ends where the message reader and Postfix's
/// cleanup end it: at the empty line, or at the first line that is neither a field nor a continuation,
/// which begins the body (README, Security, case 19). So a field this rewriter adds is never written
/// below such a line, where every reader downstream would take it for body text; and the rewritten
/// section gets the empty line it lacked, so that line cannot be read as a continuation of the last
/// field, or as a field by a reader with looser rules. A section longer than `maxHeaderSectionOctets`
/// is passed through unchanged and ``applied`` is false, because editing half a header section could
/// remove a field the edit never saw.
public struct HeaderRewriter: Sendable {
    public static let defaultMaxHeaderSectionOctets = 1024 * 1024

    private let edits: [HeaderEdit]
    private let maxHeaderSectionOctets: Int
    private var held: [UInt8] = []
    /// Where the first line of `held` not yet classified starts, so each line is looked at once.
    private var searched = 0
    /// How far that line was searched for its LF: a long line arriving in small pieces is not
    /// searched again from its start each time.
    private var lineFeedSearched = 0
    /// A field line has been seen, so a line starting with whitespace continues it.
    private var sawField = false
    private var inBody = false
    /// False when the header section was too large to edit, or no edit could be applied.
    public private(set) var applied = true

    public init(edits: [HeaderEdit], maxHeaderSectionOctets: Int = HeaderRewriter.defaultMaxHeaderSectionOctets) {
        self.edits = edits
        self.maxHeaderSectionOctets = maxHeaderSectionOctets
    }

    /// Feeds content; whatever is settled is appended to `output`.
    public mutating func receive(_ bytes: ByteBuffer, into output: inout ByteBuffer) {
        guard !inBody else {
            output.writeImmutableBuffer(bytes)
            return
        }
        let view = bytes.readableBytesView
        held.append(contentsOf: view)
        if let (end, kind) = endOfHeaderSection(), end <= maxHeaderSectionOctets {
            let header = held[..<end]
            output.writeBytes(rewrite(header))
            if kind == .notHeader { output.writeStaticString("\r\n") }
            output.writeBytes(held[end...])
            held = []
            inBody = true
        } else if held.count > maxHeaderSectionOctets {
            applied = false
            output.writeBytes(held)
            held = []
            inBody = true
        }
    }

    /// The content ended; a message that is all header section (no empty line) is edited too.
    public mutating func finish(into output: inout ByteBuffer) {
        guard !inBody else { return }
        inBody = true
        guard !held.isEmpty else {
            output.writeBytes(rewrite([][...]))
            return
        }
        // The last line has no line end: it ends the section too if it is not a header line.
        if searched < held.count, Self.lineKind(held[searched...], sawField: sawField) == .notHeader {
            output.writeBytes(rewrite(held[..<searched]))
            output.writeStaticString("\r\n")
            output.writeBytes(held[searched...])
            held = []
            return
        }
        var header = held
        if header.last != ASCII.lf { header.append(contentsOf: [ASCII.cr, ASCII.lf]) }
        output.writeBytes(rewrite(header[...]))
        held = []
    }

    /// Where the header section ends, and how: at the start of its empty line (`.end`), or of the
    /// first line that is not a header line (`.notHeader`). Nil until a complete line says so.
    private mutating func endOfHeaderSection() -> (Int, HeaderSectionParser.LineKind)? {
        while true {
            guard let lineFeed = held[max(searched, lineFeedSearched)...].firstIndex(of: ASCII.lf) else {
                lineFeedSearched = held.count
                return nil
            }
            let start = searched
            let kind = Self.lineKind(held[start..<lineFeed], sawField: sawField)
            switch kind {
            case .end, .notHeader:
                return (start, kind)
            case .field:
                sawField = true
            case .continuation:
                break
            }
            searched = lineFeed + 1
        }
    }

    /// A line (without its LF) classified as `HeaderSectionParser` classifies it.
    private static func lineKind(_ line: ArraySlice<UInt8>, sawField: Bool) -> HeaderSectionParser.LineKind {
        let text = line.last == ASCII.cr ? line.dropLast() : line
        guard let first = text.first else { return .end }
        if ASCII.isWhitespace(first) { return sawField ? .continuation : .notHeader }
        return HeaderSectionParser.fieldNameLength(Array(text)) == nil ? .notHeader : .field
    }

    /// The header section with every edit applied; `section` is whole field lines, CRLF ended.
    private func rewrite(_ section: ArraySlice<UInt8>) -> [UInt8] {
        var fields = Self.split(section)
        for edit in edits {
            switch edit {
            case .add(let name, let value):
                guard Self.isFieldName(name) else { continue }
                fields.append(Self.field(name, value))
            case .set(let name, let value):
                guard Self.isFieldName(name) else { continue }
                let replacement = Self.field(name, value)
                if let first = fields.firstIndex(where: { $0.hasName(name) }) {
                    fields[first] = replacement
                    fields = fields.enumerated().filter { $0.offset == first || !$0.element.hasName(name) }.map(\.element)
                } else {
                    fields.append(replacement)
                }
            case .remove(let name):
                fields.removeAll { $0.hasName(name) }
            case .prefixSubject(let prefix):
                if let index = fields.firstIndex(where: { $0.hasName("Subject") }) {
                    let current = EncodedWord.decode(Self.unfold(fields[index].value))
                    guard !current.hasPrefix(prefix) else { continue }
                    fields[index] = Self.field("Subject", prefix + current)
                } else {
                    fields.append(Self.field("Subject", prefix))
                }
            }
        }
        return fields.flatMap(\.octets)
    }

    // MARK: Fields

    /// One field as written: its name and every octet of its lines, CRLFs included.
    private struct Field {
        var name: String
        var octets: [UInt8]

        func hasName(_ other: String) -> Bool { HeaderSection.namesMatch(name, other) }

        /// The field body as written: after the colon, folding kept, final CRLF dropped.
        var value: String {
            guard let colon = octets.firstIndex(of: ASCII.colon) else { return "" }
            var body = octets[(colon + 1)...]
            while let last = body.last, last == ASCII.cr || last == ASCII.lf { body = body.dropLast() }
            return String(decoding: body, as: UTF8.self)
        }
    }

    /// Splits whole lines into fields: a line that starts with whitespace continues the field before
    /// it (RFC 5322 §2.2.3). A line without a colon stays a field of its own, unnamed, kept as is.
    private static func split(_ section: ArraySlice<UInt8>) -> [Field] {
        var fields: [Field] = []
        var lineStart = section.startIndex
        var index = section.startIndex
        while index < section.endIndex {
            guard section[index] == ASCII.lf else {
                index += 1
                continue
            }
            let line = section[lineStart...index]
            if let first = line.first, first == ASCII.space || first == ASCII.tab, !fields.isEmpty {
                fields[fields.count - 1].octets.append(contentsOf: line)
            } else {
                let name = line.firstIndex(of: ASCII.colon).map { String(decoding: line[lineStart..<$0], as: UTF8.self).trimmingTrailingWhitespace() } ?? ""
                fields.append(Field(name: name, octets: Array(line)))
            }
            index += 1
            lineStart = index
        }
        if lineStart < section.endIndex {
            fields.append(Field(name: "", octets: Array(section[lineStart...]) + [ASCII.cr, ASCII.lf]))
        }
        return fields
    }

    private static func unfold(_ value: String) -> String {
        String(value.filter { $0 != "\r\n" && $0 != "\r" && $0 != "\n" }).trimmingLeadingWhitespace().trimmingTrailingWhitespace()
    }

    /// RFC 5322 §3.6.8: `field-name = 1*ftext`, `ftext = %d33-57 / %d59-126`.
    static func isFieldName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 76 && name.utf8.allSatisfy(ASCII.isFieldNameCharacter)
    }

    /// A new field, canonical: sanitised, encoded when not ASCII, folded.
    private static func field(_ name: String, _ value: String) -> Field {
        let clean = String(decoding: value.utf8.map { $0 == ASCII.cr || $0 == ASCII.lf || $0 == 0 ? ASCII.space : $0 }, as: UTF8.self)
        let encoded = EncodedWord.encode(clean)
        return Field(name: name, octets: Array(fold(name: name, body: encoded).utf8))
    }

    /// Folds at spaces so lines stay under 78 octets where the words allow (RFC 5322 §2.1.1); a
    /// word too long for a 998-octet line is written as encoded words, which may be split.
    static func fold(name: String, body: String) -> String {
        var words: [Substring] = body.split(separator: " ", omittingEmptySubsequences: false)
        if words.contains(where: { $0.utf8.count > 900 }) {
            words = EncodedWord.encodedWords(String(body)).split(separator: " ")
        }
        var result = name + ":"
        var lineLength = result.utf8.count
        for word in words {
            let length = word.utf8.count
            if lineLength + 1 + length > 78, lineLength > name.utf8.count + 1 {
                result += "\r\n"
                lineLength = 0
            }
            result += " " + word
            lineLength += 1 + length
        }
        return result + "\r\n"
    }
}

extension String {
    fileprivate func trimmingTrailingWhitespace() -> String {
        var view = Substring(self)
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }

    fileprivate func trimmingLeadingWhitespace() -> String {
        String(drop { $0 == " " || $0 == "\t" })
    }
}
