import SMTPCore
import Testing

@Suite struct PendingRepliesTests {
    private static let mail = AwaitedReply.command(id: 1, .mail(from: SMTPPath(address: ""), parameters: []))
    private static let data = AwaitedReply.command(id: 3, .data)
    private static let quit = AwaitedReply.command(id: 4, .quit)

    @Test func repliesAnswerTheOldestFirst() {
        var pending = PendingReplies<String>()
        pending.append(Self.mail, "mail")
        pending.append(Self.data, "data")
        #expect(pending.take()?.context == "mail")
        #expect(pending.take()?.context == "data")
        #expect(pending.take() == nil)
    }

    @Test func aBoundForgetsTheOldest() {
        var pending = PendingReplies<Int>(capacity: 2)
        #expect(pending.append(Self.mail, 1) == nil)
        #expect(pending.append(Self.data, 2) == nil)
        #expect(pending.append(Self.quit, 3)?.context == 1)
        #expect(pending.count == 2)
        #expect(pending.first?.context == 2)
    }

    @Test func realignsPastRepliesALostStretchTookAway() {
        // The capture lost the 250 to MAIL and the 354 to DATA: a 221 belongs to QUIT.
        var pending = PendingReplies<Int>()
        pending.append(Self.mail, 1)
        pending.append(Self.data, 3)
        pending.append(Self.quit, 4)
        #expect(pending.realign(toReplyCode: 221) == 2)
        #expect(pending.take()?.context == 4)
    }

    @Test func aFailureNeverRealigns() {
        var pending = PendingReplies<Int>()
        pending.append(Self.mail, 1)
        pending.append(Self.quit, 4)
        #expect(pending.realign(toReplyCode: 421) == 0)
        #expect(pending.realign(toReplyCode: 250) == 0)
        #expect(pending.first?.context == 1)
    }
}

@Suite struct ConversationTurnTests {
    @Test func theProtocolsTurns() {
        let ehlo = AwaitedReply.command(id: 1, .ehlo(domain: "c"))
        let data = AwaitedReply.command(id: 2, .data)
        let auth = AwaitedReply.command(id: 3, .auth(mechanism: "LOGIN", initialResponse: nil))
        let starttls = AwaitedReply.command(id: 4, .starttls)
        #expect(ConversationTurn(code: 250, extensions: ServiceExtensions(ehloLines: ["PIPELINING", "SIZE 10"]), answering: ehlo) == .greeted(ServiceExtensions(ehloLines: ["pipelining", "SIZE 10"])))
        #expect(ConversationTurn(code: 354, answering: data) == .messageContent)
        #expect(ConversationTurn(code: 554, answering: data) == .dataRefused)
        #expect(ConversationTurn(code: 421, answering: data) == .closing)
        #expect(ConversationTurn(code: 334, firstLine: "VXNlcm5hbWU6", answering: auth) == .saslChallenge("VXNlcm5hbWU6"))
        #expect(ConversationTurn(code: 235, answering: .saslResponse(id: 3)) == .saslEnded(succeeded: true))
        #expect(ConversationTurn(code: 535, answering: .saslResponse(id: 3)) == .saslEnded(succeeded: false))
        #expect(ConversationTurn(code: 220, answering: starttls) == .tlsHandshake)
        #expect(ConversationTurn(code: 454, answering: starttls) == .tlsRefused)
        #expect(ConversationTurn(code: 552, answering: .bdatChunk(id: 5, last: true)) == .messageFailed)
        // RFC 3030 §2: a 4xx to a chunk fails the transaction as a 5xx does; a 2xx does not.
        #expect(ConversationTurn(code: 452, answering: .bdatChunk(id: 5, last: false)) == .messageFailed)
        #expect(ConversationTurn(code: 451, answering: .command(id: 5, .bdat(size: 10, last: false))) == .messageFailed)
        #expect(ConversationTurn(code: 250, answering: .bdatChunk(id: 5, last: false)) == ConversationTurn.none)
        #expect(ConversationTurn(code: 221, answering: .command(id: 6, .quit)) == .closing)
        #expect(ConversationTurn(code: 250, answering: .endOfData(id: 2)) == ConversationTurn.none)
        #expect(ServiceExtensions(ehloLines: ["pipelining", "SIZE 10"]).offers(.pipelining))
        #expect(!ServiceExtensions(ehloLines: ["SIZES"]).offers(.size))
    }

    @Test func accepts() {
        #expect(AwaitedReply.greeting.accepts(220) && !AwaitedReply.greeting.accepts(250))
        #expect(AwaitedReply.command(id: 1, .rcpt(to: SMTPPath(address: "a@b"), parameters: [])).accepts(251))
        #expect(AwaitedReply.command(id: 1, .data).accepts(550))
        #expect(!AwaitedReply.endOfData(id: 1).accepts(354))
    }
}
