import Testing

@testable import MailMessage

@Suite struct AddressListTests {
    static let cases: [(input: String, expected: [Mailbox])] = [
        ("a@example.com", [Mailbox(address: "a@example.com", domain: "example.com")]),
        ("<a@example.com>", [Mailbox(address: "a@example.com", domain: "example.com")]),
        (
            "\"Gurpartap Singh\" <gurpartap@patriots.in>",
            [Mailbox(displayName: "Gurpartap Singh", address: "gurpartap@patriots.in", domain: "patriots.in")]
        ),
        ("John Q. Public <jq@x.test>", [Mailbox(displayName: "John Q. Public", address: "jq@x.test", domain: "x.test")]),
        (
            "\"Doe, John\" <j@x.test>, b@y.test",
            [
                Mailbox(displayName: "Doe, John", address: "j@x.test", domain: "x.test"),
                Mailbox(address: "b@y.test", domain: "y.test"),
            ]
        ),
        ("undisclosed-recipients:;", []),
        (
            "Team: a@x.test, B <b@y.test>;, c@z.test",
            [
                Mailbox(address: "a@x.test", domain: "x.test"),
                Mailbox(displayName: "B", address: "b@y.test", domain: "y.test"),
                Mailbox(address: "c@z.test", domain: "z.test"),
            ]
        ),
        ("a@x.test (Alice Example)", [Mailbox(displayName: "Alice Example", address: "a@x.test", domain: "x.test")]),
        ("Bob (the builder) <bob@x.test>", [Mailbox(displayName: "Bob", address: "bob@x.test", domain: "x.test")]),
        ("<@relay.test,@r2.test:u@x.test>", [Mailbox(address: "u@x.test", domain: "x.test")]),
        ("\"john doe\"@x.test", [Mailbox(address: "\"john doe\"@x.test", domain: "x.test")]),
        ("u@[192.0.2.1]", [Mailbox(address: "u@[192.0.2.1]", domain: "[192.0.2.1]")]),
        (
            "=?utf-8?Q?J=C3=B6rg?= <j@x.test>",
            [Mailbox(displayName: "Jörg", address: "j@x.test", domain: "x.test")]
        ),
        (
            "=?utf-8?Q?J=C3=B6?= =?utf-8?Q?rg?= <j@x.test>",
            [Mailbox(displayName: "Jörg", address: "j@x.test", domain: "x.test")]
        ),
        ("a@x.test,, ,b@y.test", [Mailbox(address: "a@x.test", domain: "x.test"), Mailbox(address: "b@y.test", domain: "y.test")]),
        ("MAILER-DAEMON", [Mailbox(address: "MAILER-DAEMON")]),
        ("Broken <a@x.test", [Mailbox(displayName: "Broken", address: "a@x.test", domain: "x.test")]),
        ("<a@x.test> junk, b@y.test", [Mailbox(address: "a@x.test", domain: "x.test"), Mailbox(address: "b@y.test", domain: "y.test")]),
        ("<>", []),
        ("", []),
        // An unterminated quoted string runs to the end: kept as written, never a failure.
        ("\"unterminated <a@x.test>", [Mailbox(address: "\"unterminated <a@x.test>")]),
    ]

    @Test(arguments: cases)
    func parsesAddressList(input: String, expected: [Mailbox]) {
        #expect(AddressList.parse(input) == expected)
    }

    @Test func mailboxCountIsBounded() {
        let many = (0..<5000).map { "u\($0)@x.test" }.joined(separator: ",")
        #expect(AddressList.parse(many).count == AddressList.maxMailboxes)
    }
}
