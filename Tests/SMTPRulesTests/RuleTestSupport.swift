@testable import SMTPRules

/// Compiles one in-memory rules file named "t.rules", with optional list files.
func compile(_ text: String, lists: [String: String] = [:], path: String = "t.rules") -> RuleCheckResult {
    RuleSet.compile([RuleSource(path: path, text: text)]) { name in
        guard let text = lists[name] else { throw MissingListFile(name: name) }
        return text
    }
}

struct MissingListFile: Error, CustomStringConvertible {
    var name: String
    var description: String { "no such file" }
}

/// Compiles `text` and returns the set, or nil after printing the diagnostics.
func ruleSet(_ text: String, lists: [String: String] = [:]) -> RuleSet? {
    let result = compile(text, lists: lists)
    if result.ruleSet == nil {
        print(result.diagnostics.map(\.description).joined(separator: "\n"))
    }
    return result.ruleSet
}

/// Facts for a session that has reached `stage`, with something in every field.
func sampleFacts(at stage: RuleStage) -> RuleFacts {
    var facts = RuleFacts(
        clientIP: "192.0.2.10", clientPort: 40000, serverIP: "2001:db8::25", serverPort: 25,
        helo: "Mail.Example.COM", tls: true, tlsVersion: "TLSv1.3",
        authUser: "alice", authMechanism: "PLAIN",
        mailFrom: "Alice@Example.com", mailParameters: ["SIZE": "12345", "BODY": "8BITMIME", "SMTPUTF8": String?.none]
    )
    if stage == .rcpt {
        facts.recipient = "Dave@Partner.test"
        facts.rcptCount = 2
    }
    if stage >= .data {
        facts.recipients = ["bob@example.com", "carol@partner.test"]
        facts.rcptCount = 2
    }
    if stage == .message {
        facts.message = RuleMessageFacts(
            headers: [
                (name: "Subject", value: "Quarterly CONFIDENTIAL report"), (name: "From", value: "Alice <alice@example.com>"),
                (name: "X-Spam", value: "yes"), (name: "Received", value: "a"), (name: "Received", value: "b"),
            ],
            subject: "Quarterly CONFIDENTIAL report", from: ["alice@example.com"], messageID: "<1@example.com>",
            size: 30 << 20, body: "hello\nPassword: hunter2\n",
            attachments: [
                RuleAttachment(filename: "invoice.pdf", contentType: "application/pdf", size: 1000),
                RuleAttachment(filename: "setup.EXE", contentType: "application/x-msdownload", size: 5000),
            ]
        )
    }
    return facts
}
