import SMTPCore
import Testing

@Suite struct ReplyCodeTests {
    @Test(arguments: [
        (220, "Service ready"),
        (421, "Service not available, closing transmission channel"),
        (535, "Authentication credentials invalid"),
        (552, "Requested mail action aborted: exceeded storage allocation"),
    ])
    func namesStandardCodes(_ code: Int, _ meaning: String) {
        #expect(ReplyCode(code).meaning == meaning)
    }

    @Test(arguments: [0, 199, 222, 599, 600, -1])
    func knowsNothingOfNonStandardCodes(_ code: Int) {
        #expect(ReplyCode(code).meaning == nil)
    }

    @Test func classes() {
        #expect(ReplyCode(250).isPositiveCompletion && !ReplyCode(250).isNegative)
        #expect(ReplyCode(451).isTransientNegative && ReplyCode(451).isNegative)
        #expect(!ReplyCode(550).isTransientNegative && ReplyCode(550).isNegative)
        #expect(!ReplyCode(354).isPositiveCompletion && !ReplyCode(354).isNegative)
    }
}
