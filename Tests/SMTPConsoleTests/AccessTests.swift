import SMTPConsole
import Testing

/// The token, the login sessions, the CSRF tokens, and which requests may change state.
@Suite struct AccessTests {
    @Test func theGeneratedTokenIsRandomHex() {
        let first = ConsoleToken.generate()
        let second = ConsoleToken.generate()
        #expect(first.value.count == 64)
        #expect(first.value.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(first.value != second.value)
    }

    @Test func aTokenMatchesOnlyItself() throws {
        let token = try #require(ConsoleToken("correct-horse-battery"))
        #expect(token.matches("correct-horse-battery"))
        #expect(!token.matches("correct-horse-batterx"))
        #expect(!token.matches("correct-horse-battery "))
        #expect(!token.matches(""))
    }

    @Test func aTokenFileIsTrimmedAndMustBeLongEnough() throws {
        #expect(ConsoleToken(fileContents: "  0123456789abcdef\n")?.value == "0123456789abcdef")
        #expect(ConsoleToken(fileContents: "short\n") == nil)
        #expect(ConsoleToken(fileContents: "has a space in it ok") == nil)
        #expect(ConsoleToken(fileContents: "\n") == nil)
    }

    @Test func sessionsOpenAndEndAndTheOldestAreForgotten() {
        let sessions = ConsoleSessions(capacity: 2)
        let first = sessions.start()
        #expect(first.count == 64 && sessions.isOpen(first))
        // One character changed (never to itself: an id starting with "0" made this fail 1 time in 16).
        #expect(!sessions.isOpen((first.hasPrefix("0") ? "1" : "0") + first.dropFirst()))
        let second = sessions.start()
        sessions.end(second)
        #expect(!sessions.isOpen(second) && sessions.isOpen(first))
        _ = sessions.start()
        _ = sessions.start()
        #expect(!sessions.isOpen(first))
    }

    @Test func theCSRFTokenBelongsToItsSessionAndItsServer() {
        let sessions = ConsoleSessions()
        let id = sessions.start()
        let other = sessions.start()
        let csrf = sessions.csrfToken(for: id)
        #expect(sessions.isValidCSRF(csrf, for: id))
        #expect(!sessions.isValidCSRF(csrf, for: other))
        #expect(!sessions.isValidCSRF(nil, for: id))
        #expect(!sessions.isValidCSRF("", for: id))
        // Another console (another key) does not accept it.
        #expect(ConsoleSessions().csrfToken(for: id) != csrf)
    }

    @Test func theCookieIsHttpOnlyAndStrict() {
        #expect(ConsoleSessions.setCookie("abc") == "smtpscope_console=abc; HttpOnly; SameSite=Strict; Path=/")
        #expect(ConsoleSessions.clearCookie.contains("Max-Age=0"))
    }

    @Test func aRequestsCredentialIsTheBearerTokenOrAnOpenSession() throws {
        let token = try #require(ConsoleToken("0123456789abcdef0123"))
        let sessions = ConsoleSessions()
        let id = sessions.start()
        func credential(cookie: String? = nil, authorization: String? = nil) -> ConsoleCredential? {
            ConsoleCredential.of(cookieHeader: cookie, authorization: authorization, token: token, sessions: sessions)
        }
        #expect(credential() == nil)
        #expect(credential(authorization: "Bearer 0123456789abcdef0123") == .bearer)
        #expect(credential(authorization: "bearer 0123456789abcdef0123") == .bearer)
        #expect(credential(authorization: "Bearer wrong-token-000000") == nil)
        #expect(credential(authorization: "Basic MDEyMzQ1Njc4OWFiY2RlZjAxMjM=") == nil)
        // A wrong bearer token is not rescued by a good cookie.
        #expect(credential(cookie: "smtpscope_console=\(id)", authorization: "Bearer nope-nope-nope-nope") == nil)
        #expect(credential(cookie: "a=b; smtpscope_console=\(id); c=d") == .session(id: id))
        #expect(credential(cookie: "smtpscope_console=0123") == nil)
        sessions.end(id)
        #expect(credential(cookie: "smtpscope_console=\(id)") == nil)
    }

    @Test func onlyABearerOrASessionWithItsCSRFTokenMayChangeState() {
        let sessions = ConsoleSessions()
        let id = sessions.start()
        #expect(ConsoleCredential.bearer.mayChangeState(csrf: nil, sessions: sessions))
        #expect(!ConsoleCredential.session(id: id).mayChangeState(csrf: nil, sessions: sessions))
        #expect(!ConsoleCredential.session(id: id).mayChangeState(csrf: "00", sessions: sessions))
        #expect(ConsoleCredential.session(id: id).mayChangeState(csrf: sessions.csrfToken(for: id), sessions: sessions))
    }

    @Test func onlyLoopbackIsLoopback() {
        #expect(ConsoleAddress(parsing: "127.0.0.1:8025")?.isLoopback == true)
        #expect(ConsoleAddress(parsing: "127.1.2.3:0")?.isLoopback == true)
        #expect(ConsoleAddress(parsing: "[::1]:8025")?.isLoopback == true)
        #expect(ConsoleAddress(parsing: "localhost:8025")?.isLoopback == true)
        #expect(ConsoleAddress(parsing: "0.0.0.0:8025")?.isLoopback == false)
        #expect(ConsoleAddress(parsing: "[::]:8025")?.isLoopback == false)
        #expect(ConsoleAddress(parsing: "192.0.2.1:8025")?.isLoopback == false)
        #expect(ConsoleAddress(parsing: "127.0.0.1") == nil)
        #expect(ConsoleAddress(parsing: ":8025") == nil)
        #expect(ConsoleAddress(parsing: "127.0.0.1:70000") == nil)
    }
}
