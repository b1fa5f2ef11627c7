import NIOCore
import Testing

@testable import MailMessage

@Suite struct HeaderRewriterTests {
    static let message = "Received: from a by b\r\nSubject: Quarterly report\r\nX-Old: 1\r\nTo: b@example.org\r\nX-Old: 2\r\n\r\nBody line\r\n"

    /// Rewrites whole, and one octet at a time; both must agree.
    static func rewrite(_ text: String, _ edits: [HeaderEdit]) -> String {
        var whole = HeaderRewriter(edits: edits)
        var out = ByteBuffer()
        whole.receive(ByteBuffer(string: text), into: &out)
        whole.finish(into: &out)
        var dripped = HeaderRewriter(edits: edits)
        var drippedOut = ByteBuffer()
        for byte in text.utf8 { dripped.receive(ByteBuffer(bytes: [byte]), into: &drippedOut) }
        dripped.finish(into: &drippedOut)
        #expect(out == drippedOut)
        return String(buffer: out)
    }

    @Test(arguments: [
        ([HeaderEdit.add(name: "X-Policy", value: "confidential")],
         "Received: from a by b\r\nSubject: Quarterly report\r\nX-Old: 1\r\nTo: b@example.org\r\nX-Old: 2\r\nX-Policy: confidential\r\n\r\nBody line\r\n"),
        ([.set(name: "x-old", value: "new")],
         "Received: from a by b\r\nSubject: Quarterly report\r\nx-old: new\r\nTo: b@example.org\r\n\r\nBody line\r\n"),
        ([.set(name: "X-Absent", value: "v")],
         "Received: from a by b\r\nSubject: Quarterly report\r\nX-Old: 1\r\nTo: b@example.org\r\nX-Old: 2\r\nX-Absent: v\r\n\r\nBody line\r\n"),
        ([.remove(name: "X-OLD")],
         "Received: from a by b\r\nSubject: Quarterly report\r\nTo: b@example.org\r\n\r\nBody line\r\n"),
        ([.prefixSubject("[SECURE] ")],
         "Received: from a by b\r\nSubject: [SECURE] Quarterly report\r\nX-Old: 1\r\nTo: b@example.org\r\nX-Old: 2\r\n\r\nBody line\r\n"),
    ])
    func appliesEachEdit(edits: [HeaderEdit], expected: String) {
        #expect(Self.rewrite(Self.message, edits) == expected)
    }

    @Test func prefixIsNotRepeated() {
        let once = Self.rewrite(Self.message, [.prefixSubject("[SECURE] ")])
        #expect(Self.rewrite(once, [.prefixSubject("[SECURE] ")]) == once)
    }

    @Test func prefixDecodesAndReencodesTheSubject() {
        let text = "Subject: =?UTF-8?B?w6l0w6k=?=\r\n\r\nx\r\n"
        let out = Self.rewrite(text, [.prefixSubject("[EXT] ")])
        #expect(out.hasPrefix("Subject: =?UTF-8?B?"))
        let value = out.dropFirst("Subject:".count).prefix { $0 != "\r\n" }
        #expect(EncodedWord.decode(String(value)) == " [EXT] été")
    }

    @Test func addsASubjectWhenThereIsNone() {
        #expect(Self.rewrite("To: a@b\r\n\r\nx\r\n", [.prefixSubject("[X]")]) == "To: a@b\r\nSubject: [X]\r\n\r\nx\r\n")
    }

    /// Hostile-input case 18: a value can never start a new header line or end the header section.
    @Test(arguments: ["a\r\nBcc: victim@example.com", "a\nX: y", "a\rb", "a\u{0}b", "a\r\n\r\nbody"])
    func lineBreaksInValuesBecomeSpaces(value: String) {
        let out = Self.rewrite("To: a@b\r\n\r\nx\r\n", [.add(name: "X-Test", value: value)])
        let header = out.components(separatedBy: "\r\n\r\n")[0]
        #expect(!header.contains("\r\nBcc:"))
        #expect(header.components(separatedBy: "\r\n").count == 2)
        #expect(!out.utf8.contains(0))
        #expect(out.hasSuffix("\r\n\r\nx\r\n"))
    }

    @Test(arguments: ["", "Bad Name", "Colon:Name", "Ünïcode", "X\r\nY"])
    func invalidFieldNamesAreNotWritten(name: String) {
        #expect(Self.rewrite("To: a@b\r\n\r\nx\r\n", [.add(name: name, value: "v"), .set(name: name, value: "v")]) == "To: a@b\r\n\r\nx\r\n")
    }

    @Test func nonASCIIValuesAreEncodedWords() {
        let out = Self.rewrite("To: a@b\r\n\r\nx\r\n", [.add(name: "X-Note", value: "Grüße")])
        #expect(out == "To: a@b\r\nX-Note: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\nx\r\n")
    }

    @Test func longValuesAreFoldedUnder78Octets() {
        let value = Array(repeating: "word", count: 60).joined(separator: " ")
        let out = Self.rewrite("To: a@b\r\n\r\nx\r\n", [.add(name: "X-Long", value: value)])
        let lines = out.components(separatedBy: "\r\n\r\n")[0].components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.utf8.count <= 78 })
        #expect(lines.dropFirst(2).allSatisfy { $0.hasPrefix(" ") })
        #expect(lines.count > 3)
    }

    @Test func anUnbreakableValueStaysUnder998Octets() {
        let out = Self.rewrite("To: a@b\r\n\r\nx\r\n", [.add(name: "X-Blob", value: String(repeating: "A", count: 3000))])
        let lines = out.components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.utf8.count <= 998 })
    }

    @Test func foldedFieldsAreRemovedWhole() {
        let text = "X-Fold: one\r\n two\r\n\tthree\r\nTo: a@b\r\n\r\nx\r\n"
        #expect(Self.rewrite(text, [.remove(name: "X-Fold")]) == "To: a@b\r\n\r\nx\r\n")
    }

    @Test func aMessageWithoutBodyIsEdited() {
        #expect(Self.rewrite("To: a@b\r\n", [.add(name: "X-A", value: "1")]) == "To: a@b\r\nX-A: 1\r\n")
    }

    @Test func anOversizedHeaderSectionPassesThroughUnchanged() {
        let text = "X-Big: " + String(repeating: "b", count: 200) + "\r\n\r\nbody\r\n"
        var rewriter = HeaderRewriter(edits: [.remove(name: "X-Big")], maxHeaderSectionOctets: 64)
        var out = ByteBuffer()
        rewriter.receive(ByteBuffer(string: text), into: &out)
        rewriter.finish(into: &out)
        #expect(String(buffer: out) == text)
        #expect(!rewriter.applied)
    }

    @Test func theBodyIsNeverTouched() {
        let text = "Subject: s\r\n\r\nSubject: not a header\r\n.\r\nX-Old: 1\r\n"
        #expect(Self.rewrite(text, [.remove(name: "Subject"), .remove(name: "X-Old")]) == "\r\nSubject: not a header\r\n.\r\nX-Old: 1\r\n")
    }

    /// Hostile-input case 19: the first line that is neither a field nor a continuation begins the
    /// body for the message reader and for Postfix's cleanup, so the rewriter ends the section there
    /// too: a field it writes stays above that line, the "fields" below it stay body text, and the
    /// empty line the section lacked is added, so the body's first line cannot become a
    /// continuation of the new field.
    @Test(arguments: [
        ("Subject ok\r\nFrom: evil@x\r\n\r\nb\r\n", "X-Set: 1\r\n\r\nSubject ok\r\nFrom: evil@x\r\n\r\nb\r\n"),
        ("To: a@b\r\nnot a field\r\nX-Set: 0\r\n\r\nb\r\n", "To: a@b\r\nX-Set: 1\r\n\r\nnot a field\r\nX-Set: 0\r\n\r\nb\r\n"),
        (" continuation first\r\nX-Set: 0\r\n", "X-Set: 1\r\n\r\n continuation first\r\nX-Set: 0\r\n"),
        ("To: a@b\r\nno line end", "To: a@b\r\nX-Set: 1\r\n\r\nno line end"),
    ])
    func aLineThatIsNotAHeaderEndsTheSection(text: String, expected: String) {
        let output = Self.rewrite(text, [.set(name: "X-Set", value: "1")])
        #expect(output == expected)
        var reader = MessageInspector()
        reader.receive(ByteBuffer(string: output))
        #expect(reader.finish().header.all("X-Set").map(\.value) == ["1"])
    }
}
