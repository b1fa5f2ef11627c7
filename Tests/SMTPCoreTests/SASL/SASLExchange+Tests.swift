import SMTPCore
import Testing

@Suite("SASLExchange")
struct SASLExchangeTests {
    static let password = "hunter2-very-secret"

    private static func response(_ text: String) -> SASLResponse {
        SASLResponse(base64Text: CoreTestSupport.base64(text))
    }

    /// Everything the exchange shows of itself.
    private static func renderings(of exchange: SASLExchange) -> [String] {
        var dumped = ""
        dump(exchange, to: &dumped)
        return [String(describing: exchange), String(reflecting: exchange), dumped] + Mirror(reflecting: exchange).children.map { String(describing: $0.value) }
    }

    private static func expectNoSecret(_ exchange: SASLExchange, _ secrets: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for shown in renderings(of: exchange) {
            for secret in secrets {
                #expect(!shown.contains(secret), "\(shown)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test("PLAIN: the user is authcid, with or without authzid (RFC 4616 §2)", arguments: [
        ("\u{0}someone\u{0}\(password)", "someone"),
        ("admin\u{0}someone\u{0}\(password)", "someone"),
        ("someone@example.com\u{0}someone@example.com\u{0}\(password)", "someone@example.com"),
    ])
    func plain(message: String, user: String) {
        var exchange = SASLExchange(mechanism: "PLAIN")
        exchange.receiveResponse(Self.response(message))
        #expect(exchange.user == user)
        #expect(exchange.mechanism == "PLAIN")
        Self.expectNoSecret(exchange, [Self.password, CoreTestSupport.base64(message)])
    }

    @Test("PLAIN without an initial response: the user comes from the continuation")
    func plainAfterEmptyChallenge() {
        var exchange = SASLExchange(mechanism: "plain")
        exchange.receiveChallenge("")
        exchange.receiveResponse(Self.response("\u{0}someone\u{0}\(Self.password)"))
        #expect(exchange.mechanism == "PLAIN")
        #expect(exchange.user == "someone")
    }

    @Test("PLAIN messages that carry no user", arguments: ["nouser", "\u{0}\u{0}\(password)", "\u{0}bad\u{1}user\u{0}x"])
    func plainWithoutUser(message: String) {
        var exchange = SASLExchange(mechanism: "PLAIN")
        exchange.receiveResponse(Self.response(message))
        #expect(exchange.user == nil)
    }

    @Test("responses that are not base64 reveal nothing", arguments: ["!!!!", "AH=VzZXI", "%%%", "AHVzZXIA====="])
    func invalidBase64(text: String) {
        var exchange = SASLExchange(mechanism: "PLAIN")
        exchange.receiveResponse(SASLResponse(base64Text: text))
        #expect(exchange.user == nil)
    }

    @Test("LOGIN: the answer to \"Username:\" is the user, the password is not kept")
    func login() {
        var exchange = SASLExchange(mechanism: "LOGIN")
        exchange.receiveChallenge(CoreTestSupport.base64("Username:"))
        exchange.receiveResponse(Self.response("someone"))
        #expect(exchange.user == "someone")
        exchange.receiveChallenge(CoreTestSupport.base64("Password:"))
        exchange.receiveResponse(Self.response(Self.password))
        #expect(exchange.user == "someone")
        Self.expectNoSecret(exchange, [Self.password, CoreTestSupport.base64(Self.password)])
    }

    @Test("LOGIN with the user as initial response (RFC 4954 style)")
    func loginInitialResponse() {
        var exchange = SASLExchange(mechanism: "LOGIN")
        exchange.receiveResponse(Self.response("someone"))
        exchange.receiveChallenge(CoreTestSupport.base64("Password:"))
        exchange.receiveResponse(Self.response(Self.password))
        #expect(exchange.user == "someone")
    }

    @Test("LOGIN: an answer to a password challenge is never taken for the user")
    func loginPasswordFirst() {
        var exchange = SASLExchange(mechanism: "LOGIN")
        exchange.receiveChallenge(CoreTestSupport.base64("Password:"))
        exchange.receiveResponse(Self.response(Self.password))
        #expect(exchange.user == nil)
        Self.expectNoSecret(exchange, [Self.password])
    }

    @Test("CRAM-MD5: the user precedes the digest (RFC 2195 §2)")
    func cramMD5() {
        var exchange = SASLExchange(mechanism: "CRAM-MD5")
        exchange.receiveChallenge(CoreTestSupport.base64("<1896.697170952@postoffice.example.net>"))
        exchange.receiveResponse(Self.response("tim b913a602c7eda7a495b4e6e7334d3890"))
        #expect(exchange.user == "tim")
        Self.expectNoSecret(exchange, ["b913a602c7eda7a495b4e6e7334d3890"])
    }

    @Test("XOAUTH2: user= field")
    func xoauth2() {
        var exchange = SASLExchange(mechanism: "XOAUTH2")
        let token = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
        exchange.receiveResponse(Self.response("user=someone@example.com\u{1}auth=Bearer \(token)\u{1}\u{1}"))
        #expect(exchange.user == "someone@example.com")
        Self.expectNoSecret(exchange, [token])
    }

    @Test("OAUTHBEARER: the a= field of the GS2 header (RFC 7628 §3.1)")
    func oauthBearer() {
        var exchange = SASLExchange(mechanism: "OAUTHBEARER")
        let token = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
        exchange.receiveResponse(Self.response("n,a=user@example.com,\u{1}host=server.example.com\u{1}port=587\u{1}auth=Bearer \(token)\u{1}\u{1}"))
        #expect(exchange.user == "user@example.com")
        Self.expectNoSecret(exchange, [token])
    }

    @Test("\"*\" cancels: nothing learnt", arguments: ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"])
    func cancellation(mechanism: String) {
        var exchange = SASLExchange(mechanism: mechanism)
        let cancel = SASLResponse(base64Text: "*")
        #expect(cancel.isCancellation)
        exchange.receiveResponse(cancel)
        #expect(exchange.user == nil)
    }

    @Test("unknown mechanisms reveal nothing", arguments: ["GSSAPI", "SCRAM-SHA-256", "EXTERNAL"])
    func unknownMechanism(mechanism: String) {
        var exchange = SASLExchange(mechanism: mechanism)
        exchange.receiveResponse(Self.response("n,,n=user,r=abc"))
        #expect(exchange.user == nil)
    }

    @Test("the first identity is kept")
    func firstIdentityKept() {
        var exchange = SASLExchange(mechanism: "PLAIN")
        exchange.receiveResponse(Self.response("\u{0}first\u{0}x"))
        exchange.receiveResponse(Self.response("\u{0}second\u{0}x"))
        #expect(exchange.user == "first")
    }

    @Test("an identity over 512 octets or with controls is not reported", arguments: [String(repeating: "u", count: 513), "a\u{7F}b", "a\tb"])
    func unreasonableIdentity(user: String) {
        var exchange = SASLExchange(mechanism: "PLAIN")
        exchange.receiveResponse(Self.response("\u{0}\(user)\u{0}x"))
        #expect(exchange.user == nil)
    }

    @Test("a SASL response never prints its content")
    func responseIsRedacted() {
        let text = CoreTestSupport.base64("\u{0}someone\u{0}\(Self.password)")
        let response = SASLResponse(base64Text: text)
        #expect(response.description == "[redacted]")
        #expect(response.debugDescription == "[redacted]")
        #expect("\(response)" == "[redacted]")
        #expect(String(reflecting: response) == "[redacted]")
        #expect(!String(describing: [response]).contains(text))
        #expect(!String(describing: Optional(response)).contains(text))
        #expect(!response.isCancellation)
    }
}
