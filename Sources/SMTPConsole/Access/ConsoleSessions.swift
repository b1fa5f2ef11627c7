import Crypto
import Synchronization

/// Who is logged in to the console, and each login's CSRF token.
///
/// A login (the token given to `/login`) opens a session: a random id in an `HttpOnly;
/// SameSite=Strict` cookie. Its CSRF token is an HMAC of the id under a key made at start-up, put
/// in every form of the pages; a POST from a session must carry it (`csrf` form field or
/// `X-CSRF-Token` header). Another site can neither read the pages (no CORS) nor send the cookie
/// (SameSite=Strict), so it cannot make that POST. Sessions live in memory: a restart logs
/// everyone out, and logging out ends the session on the server too. The oldest logins are
/// forgotten beyond `capacity`.
public final class ConsoleSessions: Sendable {
    public static let cookieName = "smtpscope_console"
    public static let csrfField = "csrf"
    public static let csrfHeader = "X-CSRF-Token"

    /// The HMAC key's octets (`SymmetricKey` itself is not `Sendable`).
    private let key: [UInt8]
    private let open: Mutex<[String]>
    private let capacity: Int

    public init(capacity: Int = 1000) {
        key = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        open = Mutex([])
        self.capacity = capacity
    }

    /// A new session id (32 random octets, hex).
    public func start() -> String {
        let id = Hex.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        open.withLock { ids in
            ids.append(id)
            if ids.count > capacity { ids.removeFirst(ids.count - capacity) }
        }
        return id
    }

    public func isOpen(_ id: String) -> Bool {
        open.withLock { ids in ids.contains { ConstantTime.equal(Array($0.utf8), Array(id.utf8)) } }
    }

    public func end(_ id: String) {
        open.withLock { ids in ids.removeAll { $0 == id } }
    }

    public func csrfToken(for id: String) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(("csrf:" + id).utf8), using: SymmetricKey(data: key)))
    }

    public func isValidCSRF(_ token: String?, for id: String) -> Bool {
        guard let token else { return false }
        return ConstantTime.equal(Array(csrfToken(for: id).utf8), Array(token.utf8))
    }

    /// `Set-Cookie` for a new session. No `Secure`: the console speaks plain HTTP (on loopback by
    /// default), and a `Secure` cookie would never be sent back.
    public static func setCookie(_ id: String) -> String {
        "\(cookieName)=\(id); HttpOnly; SameSite=Strict; Path=/"
    }

    public static let clearCookie = "\(cookieName)=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
}
