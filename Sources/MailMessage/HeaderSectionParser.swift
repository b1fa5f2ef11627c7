/// Reads one header section (RFC 5322 §2.2, §3.6; RFC 2045 §3 for a MIME part's) line by line, in
/// bounded memory.
///
/// Lines arrive from ``LineAssembler``: a short line whole, a long line as its head, then
/// continuation octets. Folding (§2.2.3) is undone by joining a continuation line (starting with WSP)
/// to the field before it, without the line break. The section ends at the first empty line.
///
/// A line that is neither a field nor a continuation (no colon after a valid field name, or a
/// continuation before any field) is not a header field under RFC 5322. As Postfix does (its
/// cleanup server treats the first non-header line as the start of the body), it ends the header
/// section and is the first line of the body; `header_without_colon` is flagged. This keeps the
/// inspector's view of where the body starts the same as the MTA's, so a message cannot hide header
/// fields from one of them (README, Security, case 19).
struct HeaderSectionParser: Sendable {
    enum LineKind: Sendable, Equatable {
        /// Starts a new field.
        case field
        /// Continues the previous field (folding).
        case continuation
        /// The empty line that ends the section.
        case end
        /// Not a header line: the section ends and this line belongs to the body.
        case notHeader
    }

    struct Field: Sendable, Equatable {
        var name: String
        var rawValue: String
    }

    /// Which fields are kept: all of them (the top-level section) or only those that matter to MIME
    /// structure (a part's section).
    enum Retention: Sendable {
        case allFields
        case mimeFields
    }

    let octetLimit: Int
    let fieldLimit: Int
    let retention: Retention

    private(set) var fields: [Field] = []
    /// Octets of the section so far, line breaks included.
    private(set) var octets = 0
    private(set) var exceededOctetLimit = false
    private(set) var exceededFieldLimit = false
    /// Names of kept fields whose value held octets above 0x7F or NUL.
    private(set) var namesWithEightBit: [String] = []

    /// The field being read, name and unfolded value, or nil between fields.
    private var current: [UInt8]?
    /// Whether ``current`` is kept once complete.
    private var currentKept = false
    /// Whether any field has started, so a WSP line continues one.
    private var inField = false

    init(octetLimit: Int, fieldLimit: Int, retention: Retention) {
        self.octetLimit = octetLimit
        self.fieldLimit = fieldLimit
        self.retention = retention
    }

    /// Classifies a line by its first octets (the whole line, or a long line's head) and, for a field
    /// or continuation, takes them.
    mutating func beginLine(_ head: [UInt8]) -> LineKind {
        guard let first = head.first else { return .end }
        if ASCII.isWhitespace(first) {
            guard inField else { return .notHeader }
            append(head)
            return .continuation
        }
        guard Self.fieldNameLength(head) != nil else { return .notHeader }
        finishField()
        inField = true
        let keep = !exceededOctetLimit && shouldRetain(head)
        if keep, fields.count >= fieldLimit {
            exceededFieldLimit = true
            currentKept = false
        } else {
            currentKept = keep
        }
        current = currentKept ? [] : nil
        append(head)
        return .field
    }

    /// More octets of the current long line.
    mutating func appendLineData(_ octets: UnsafeRawBufferPointer) {
        append(octets)
    }

    /// Counts the line break of a field or continuation line, or of the empty line.
    mutating func endLine(_ terminator: LineTerminator) {
        switch terminator {
        case .crlf: countOctets(2)
        case .lf: countOctets(1)
        case .none: break
        }
    }

    /// Ends the section and returns the kept fields.
    mutating func finish() -> [Field] {
        finishField()
        return fields
    }

    /// field-name = 1*ftext, then optional WSP (obs-optional, RFC 5322 §4.5.3), then ":".
    /// Returns the name's length, or nil if the line is not a field.
    static func fieldNameLength(_ line: [UInt8]) -> Int? {
        var index = 0
        while index < line.count, ASCII.isFieldNameCharacter(line[index]) { index += 1 }
        let nameLength = index
        guard nameLength > 0 else { return nil }
        while index < line.count, ASCII.isWhitespace(line[index]) { index += 1 }
        guard index < line.count, line[index] == ASCII.colon else { return nil }
        return nameLength
    }

    private static let mimeFieldNames: [[UInt8]] = [
        Array("content-type".utf8), Array("content-disposition".utf8), Array("content-transfer-encoding".utf8),
    ]

    private func shouldRetain(_ head: [UInt8]) -> Bool {
        switch retention {
        case .allFields:
            return true
        case .mimeFields:
            guard let length = Self.fieldNameLength(head) else { return false }
            return Self.mimeFieldNames.contains { name in
                name.count == length && zip(name, head).allSatisfy { $0 == ASCII.lowercased($1) }
            }
        }
    }

    private mutating func append(_ octets: some Collection<UInt8>) {
        countOctets(octets.count)
        guard currentKept else { return }
        current?.append(contentsOf: octets)
    }

    private mutating func countOctets(_ count: Int) {
        octets += count
        if octets > octetLimit, !exceededOctetLimit {
            // The field that crosses the limit is dropped whole: a truncated address or subject would
            // mislead rules more than a missing one.
            exceededOctetLimit = true
            currentKept = false
            current = nil
        }
    }

    private mutating func finishField() {
        defer {
            current = nil
            currentKept = false
        }
        guard currentKept, let line = current, let nameLength = Self.fieldNameLength(line) else { return }
        let name = String(decoding: line[0..<nameLength], as: UTF8.self)
        guard let colon = line.firstIndex(of: ASCII.colon) else { return }
        var valueStart = colon + 1
        var valueEnd = line.count
        while valueStart < valueEnd, ASCII.isWhitespace(line[valueStart]) { valueStart += 1 }
        while valueEnd > valueStart, ASCII.isWhitespace(line[valueEnd - 1]) { valueEnd -= 1 }
        let value = line[valueStart..<valueEnd]
        if value.contains(where: { $0 >= 0x80 || $0 == 0 }), namesWithEightBit.count < 16 {
            namesWithEightBit.append(name)
        }
        fields.append(Field(name: name, rawValue: String(decoding: value, as: UTF8.self)))
    }
}
