/// Releasing a quarantined message: the client side of one SMTP transaction (RFC 5321 §3.3),
/// as a state machine without I/O. Each reply of the server goes in; what to send next comes out.
/// Every recipient must be accepted, or nothing is sent: a release either delivers the message
/// as it was addressed or leaves it in the quarantine.
public struct SMTPDelivery: Sendable {
    public enum Step: Sendable, Equatable {
        /// A command line, without CRLF.
        case send(String)
        /// The message content, dot-stuffed, then the end of data.
        case sendContent
        /// The server took the message (its reply to the end of data); QUIT follows.
        case delivered(reply: String)
        /// A reply that ends the attempt: what was asked and what came back.
        case failed(stage: String, reply: String)
    }

    enum State: Sendable {
        case greeting, ehlo, mail, rcpt(next: Int), data, content, quit, done
    }

    let heloName: String
    let mailFrom: String
    let rcptTo: [String]
    var state = State.greeting

    public init(heloName: String, mailFrom: String, rcptTo: [String]) {
        self.heloName = heloName
        self.mailFrom = mailFrom
        self.rcptTo = rcptTo
    }

    /// One complete reply (its code, and its last line's text).
    public mutating func receive(code: Int, text: String) -> Step {
        let reply = text.isEmpty ? String(code) : "\(code) \(text)"
        func expect(_ wanted: ClosedRange<Int>, stage: String, then next: State, send step: Step) -> Step {
            guard wanted.contains(code) else {
                state = .done
                return .failed(stage: stage, reply: reply)
            }
            state = next
            return step
        }
        switch state {
        case .greeting:
            return expect(220...220, stage: "greeting", then: .ehlo, send: .send("EHLO \(heloName)"))
        case .ehlo:
            return expect(250...250, stage: "EHLO", then: .mail, send: .send("MAIL FROM:<\(mailFrom)>"))
        case .mail:
            guard !rcptTo.isEmpty else {
                state = .done
                return .failed(stage: "RCPT TO", reply: "no recipient in the quarantine record")
            }
            return expect(250...250, stage: "MAIL FROM", then: .rcpt(next: 0), send: .send("RCPT TO:<\(rcptTo[0])>"))
        case .rcpt(let index):
            let next = index + 1
            if next < rcptTo.count {
                return expect(250...251, stage: "RCPT TO:<\(rcptTo[index])>", then: .rcpt(next: next), send: .send("RCPT TO:<\(rcptTo[next])>"))
            }
            return expect(250...251, stage: "RCPT TO:<\(rcptTo[index])>", then: .data, send: .send("DATA"))
        case .data:
            return expect(354...354, stage: "DATA", then: .content, send: .sendContent)
        case .content:
            return expect(250...250, stage: "end of data", then: .quit, send: .delivered(reply: reply))
        case .quit, .done:
            state = .done
            return .failed(stage: "after the transaction", reply: reply)
        }
    }
}

/// Assembles reply lines into replies (RFC 5321 §4.2.1: `250-...` lines continue, `250 ...` ends).
public struct ReplyLines: Sendable {
    public init() {}

    /// The reply ended by this line, as (code, text of its last line); nil while it continues.
    /// A line that is not a reply is answered as code 0, which no step accepts.
    public func complete(_ line: String) -> (code: Int, text: String)? {
        let scalars = Array(line.unicodeScalars)
        guard scalars.count >= 3, let code = Int(String(String.UnicodeScalarView(scalars[0..<3]))) else { return (0, line) }
        if scalars.count > 3 && scalars[3] == "-" { return nil }
        return (code, scalars.count > 4 ? String(String.UnicodeScalarView(scalars[4...])) : "")
    }
}
