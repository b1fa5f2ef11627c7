import Testing

@testable import MailMessage

/// Random field bodies made of the octets the header parsers treat specially: every parser must
/// terminate and never trap (a tiny in-test fuzzer; a hang here was a real bug).
@Suite struct HeaderValueRobustnessTests {
    static let alphabet: [String] = [
        ";", "=", "\"", "\\", "(", ")", "<", ">", ",", ":", "@", ".", "[", "]", "*", "'", "%", "?", "=?", "?=",
        " ", "\t", "\r\n ", "a", "Q", "B", "utf-8", "\u{0}", "é", "filename*0*", "%E2",
    ]

    @Test func randomFieldBodiesAlwaysParse() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<40, using: &generator)
            let text = (0..<length).map { _ in Self.alphabet[Int.random(in: 0..<Self.alphabet.count, using: &generator)] }.joined()
            _ = MIMEParameters.parse(text)
            _ = AddressList.parse(text)
            _ = EncodedWord.decode(text)
            #expect(EncodedWord.decode(EncodedWord.encode(text)) == text)
        }
    }
}
