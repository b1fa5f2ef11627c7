import MailMessage
import NIOCore
import SMTPCore
import SMTPProxy
import SMTPTranscript
import Testing

/// Messages the `message` stage must see whole: spooled by the proxy, then refused, settled or sent
/// upstream with their edits (rules/README.md, "How the proxy carries them out").
@Suite struct RelaySpoolTests {
    typealias H = RelayHarness

    /// A policy that answers `message` with a fixed decision, and `mail`, `rcpt`, `data` with others.
    struct Scripted: SessionPolicy {
        var atMail = PolicyDecision.continue
        var atData = PolicyDecision.continue
        var atMessage = PolicyDecision.continue
        var evaluatesMessages: Bool { true }

        func decide(at stage: PolicyStage, facts: PolicyFacts) -> PolicyDecision {
            switch stage {
            case .mail: atMail
            case .data: atData
            case .message: atMessage
            case .connect, .helo, .auth, .rcpt: .continue
            }
        }
    }

    static let content = "Subject: hello\r\n\r\n..dot\r\nbody\r\n.\r\n"

    /// Greeted, EHLO done, MAIL and RCPT accepted upstream, DATA answered 354 by the proxy.
    static func spooling(_ policy: Scripted) -> H {
        var h = H.greeted(policy: policy, upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        h.client("DATA\r\n")
        h.drops = 0
        return h
    }

    @Test func theProxyAnswersDATAAndNothingGoesUpstreamBeforeTheEnd() {
        var h = Self.spooling(Scripted())
        #expect(h.takeClient() == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
        _ = h.takeUpstream()
        h.client("Subject: hello\r\n\r\n..dot\r\nbody\r\n")
        #expect(h.takeUpstream() == "")
        #expect(h.spooled == "Subject: hello\r\n\r\n.dot\r\nbody\r\n")
        h.client(".\r\n")
        #expect(h.takeUpstream() == "DATA\r\n")
        #expect(h.released.isEmpty)
        h.upstream("354 go ahead\r\n")
        #expect(h.released.count == 1)
        h.upstream("250 2.0.0 queued\r\n")
        #expect(h.takeClient() == "250 2.0.0 queued\r\n")
    }

    @Test func aSpoolThatCannotBeWrittenIsRefusedAtItsEndAndTheSessionGoesOn() {
        var h = Self.spooling(Scripted())
        _ = h.takeClient()
        _ = h.takeUpstream()
        h.client("Subject: hello\r\n\r\n")
        h.apply(h.machine.receiveSpoolFailed("write to spool file: No space left on device"))
        #expect(h.drops == 1)
        h.client("body\r\n.\r\n")
        // Nothing of the message went upstream; its transaction there is reset.
        #expect(h.released.isEmpty)
        #expect(h.takeUpstream() == "RSET\r\n")
        h.upstream("250 2.0.0 Ok\r\n")
        #expect(h.takeClient() == "451 4.3.0 Error: message not stored, try again later\r\n")
        h.client("MAIL FROM:<a@example.com>\r\n")
        h.upstream("250 2.1.0 Ok\r\n")
        #expect(h.takeClient() == "250 2.1.0 Ok\r\n")
    }

    @Test func contentPipelinedWithDATAIsASynchronizationError() {
        var h = H.greeted(policy: Scripted(), upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        _ = h.takeClient()
        h.client("DATA\r\n" + Self.content)
        #expect(h.takeClient() == "554 5.5.0 Error: SMTP protocol synchronization\r\n")
        #expect(h.clientClosed)
    }

    @Test func theSameContentDrippedSpoolsTheSame() {
        var h = Self.spooling(Scripted())
        h.clientDripped(Self.content)
        #expect(h.spooled == "Subject: hello\r\n\r\n.dot\r\nbody\r\n")
    }

    @Test func headerEditsGoWithTheRelease() {
        let edits: [HeaderEdit] = [.add(name: "X-Policy", value: "confidential"), .prefixSubject("[S] ")]
        var h = Self.spooling(Scripted(atMessage: PolicyDecision(headerEdits: edits)))
        h.client(Self.content)
        h.upstream("354 go ahead\r\n")
        #expect(h.released == [edits])
    }

    @Test func aRefusalAtMessageIsTheProxysAndTheUpstreamIsReset() {
        let refusal = PolicyReply(code: 554, enhanced: .init(statusClass: 5, subject: 7, detail: 1), text: "No executables")
        var h = Self.spooling(Scripted(atMessage: PolicyDecision(action: .reject(refusal))))
        _ = h.takeClient()
        _ = h.takeUpstream()
        h.client(Self.content)
        #expect(h.takeClient() == "554 5.7.1 No executables\r\n")
        #expect(h.takeUpstream() == "RSET\r\n")
        #expect(h.drops == 1)
        h.upstream("250 2.0.0 Ok\r\n")
        // The session goes on.
        h.client("MAIL FROM:<c@example.com>\r\n")
        #expect(h.takeUpstream() == "MAIL FROM:<c@example.com>\r\n")
    }

    @Test func discardAnswers250AndSendsNothing() {
        var h = Self.spooling(Scripted(atMessage: PolicyDecision(action: .discard)))
        _ = h.takeClient()
        _ = h.takeUpstream()
        h.client(Self.content)
        #expect(h.takeClient() == "250 2.0.0 Ok\r\n")
        #expect(h.takeUpstream() == "RSET\r\n")
        #expect(h.drops == 1)
        #expect(h.events.contains { if case .transactionSettled(.discarded, _) = $0 { true } else { false } })
    }

    @Test func quarantineIsAnsweredOnlyOnceStored() throws {
        var h = Self.spooling(Scripted(atMessage: PolicyDecision(action: .quarantine(reason: "oversize"))))
        _ = h.takeClient()
        h.client(Self.content)
        #expect(h.takeClient() == "")
        let request = try #require(h.quarantines.first)
        #expect(request.reason == "oversize")
        #expect(request.recipients.map(\.address) == ["b@example.org"])
        h.apply(h.machine.receiveQuarantineStored(request, failure: nil))
        #expect(h.takeClient() == "250 2.0.0 Ok\r\n")
    }

    @Test func aQuarantineThatCannotStoreAnswers451() throws {
        var h = Self.spooling(Scripted(atMessage: PolicyDecision(action: .quarantine(reason: "x"))))
        _ = h.takeClient()
        h.client(Self.content)
        let request = try #require(h.quarantines.first)
        h.apply(h.machine.receiveQuarantineStored(request, failure: "disk full"))
        #expect(h.takeClient() == "451 4.3.0 Error: message not stored, try again later\r\n")
        #expect(h.anomalies.contains("quarantine_failed"))
    }

    @Test func bccRecipientsPrecedeDATAUpstream() {
        let archive = SMTPPath(address: "archive@example.com")
        var h = Self.spooling(Scripted(atMessage: PolicyDecision(addRecipients: [archive])))
        _ = h.takeUpstream()
        h.client(Self.content)
        #expect(h.takeUpstream() == "RCPT TO:<archive@example.com>\r\nDATA\r\n")
    }

    @Test func aRedirectStartsAFreshUpstreamTransaction() {
        let review = SMTPPath(address: "review@example.com")
        var h = Self.spooling(Scripted(atMessage: PolicyDecision(redirect: review)))
        _ = h.takeUpstream()
        h.client(Self.content)
        #expect(h.takeUpstream() == "RSET\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<review@example.com>\r\nDATA\r\n")
    }

    @Test func aCommandPipelinedAfterTheEndWaitsForTheRelease() {
        var h = Self.spooling(Scripted())
        _ = h.takeUpstream()
        h.client(Self.content + "MAIL FROM:<next@example.com>\r\n")
        #expect(h.takeUpstream() == "DATA\r\n")
        h.upstream("354 go ahead\r\n")
        #expect(h.released.count == 1)
        #expect(h.takeUpstream() == "MAIL FROM:<next@example.com>\r\n")
    }

    @Test func aDiscardAtMailKeepsTheWholeTransactionFromTheUpstream() {
        var h = H.greeted(policy: Scripted(atMail: PolicyDecision(action: .discard)), upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        #expect(h.takeClient() == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
        h.client(Self.content)
        #expect(h.takeClient() == "250 2.0.0 Ok\r\n")
        #expect(h.takeUpstream() == "")
    }

    @Test func bareLFInSpooledContentIsRefusedAfterTheEnd() {
        var h = Self.spooling(Scripted())
        _ = h.takeClient()
        _ = h.takeUpstream()
        h.client("Subject: x\n\r\nbody\r\n.\r\n")
        #expect(h.takeClient() == "550 5.5.2 Error: bare <LF> received\r\n")
        #expect(h.takeUpstream() == "RSET\r\n")
    }

    @Test func theMessageStageSeesTheParsedMessage() {
        struct Capture: SessionPolicy {
            var evaluatesMessages: Bool { true }
            func decide(at stage: PolicyStage, facts: PolicyFacts) -> PolicyDecision {
                guard stage == .message else { return .continue }
                let ok = facts.message?.subject == "hello" && facts.message?.size == 30
                return ok ? .continue : PolicyDecision(action: .reject(PolicyReply(code: 550, enhanced: nil, text: "facts missing")))
            }
        }
        var h = H.greeted(policy: Capture(), upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        h.client("DATA\r\n")
        _ = h.takeUpstream()
        h.client(Self.content)
        #expect(h.takeUpstream() == "DATA\r\n")
    }

    @Test(arguments: [true, false])
    func bodyTextIsReadOnlyForAPolicyThatReadsIt(reads: Bool) {
        struct BodyReader: SessionPolicy {
            var readsMessageBody: Bool
            var evaluatesMessages: Bool { true }
            func decide(at stage: PolicyStage, facts: PolicyFacts) -> PolicyDecision {
                guard stage == .message else { return .continue }
                let text = facts.message?.body.contains("body") == true ? "read" : "not read"
                return PolicyDecision(action: .reject(PolicyReply(code: 550, enhanced: nil, text: "body \(text)")))
            }
        }
        var h = H.greeted(policy: BodyReader(readsMessageBody: reads), upstreamEHLO: H.plainEHLO)
        h.client("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
        h.upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        h.client("DATA\r\n")
        _ = h.takeClient()
        h.client(Self.content)
        #expect(h.takeClient() == (reads ? "550 body read\r\n" : "550 body not read\r\n"))
    }
}
