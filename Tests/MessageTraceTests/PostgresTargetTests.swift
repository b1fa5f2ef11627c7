import MessageTrace
import Testing

/// The PostgreSQL URL, with libpq's `sslmode` and `sslrootcert`.
struct PostgresTargetTests {
    @Test func theDefaultIsTLSWhenTheServerOffersIt() throws {
        let target = try #require(PostgresTarget(url: "postgres://trace:secret@[::1]:5433/trace"))
        #expect(target.host == "::1" && target.port == 5433 && target.user == "trace" && target.password == "secret")
        #expect(target.tls == .prefer)
        #expect(target.description == "postgres://trace@[::1]:5433/trace")
    }

    @Test(arguments: [
        ("?sslmode=disable", PostgresTarget.TLS.disable),
        ("?sslmode=require", .require),
        ("?sslmode=require&sslrootcert=/etc/ca.pem", .verifyCA(rootCertificate: "/etc/ca.pem")),
        ("?sslmode=verify-ca", .verifyCA(rootCertificate: nil)),
        ("?sslrootcert=/etc/ca.pem&sslmode=verify-full", .verifyFull(rootCertificate: "/etc/ca.pem")),
    ])
    func sslModes(query: String, tls: PostgresTarget.TLS) throws {
        let target = try #require(PostgresTarget(url: "postgres://trace@127.0.0.1/trace" + query))
        #expect(target.tls == tls)
        #expect(target.database == "trace")
        // The description says the mode, so a log shows what the proxy asked for.
        #expect(PostgresTarget(url: target.description)?.tls == tls)
    }

    @Test(arguments: [
        "postgres://trace@127.0.0.1/trace?sslmode=allow-ish",
        "postgres://trace@127.0.0.1/trace?sslmode=prefer&sslrootcert=/etc/ca.pem",
        "postgres://trace@127.0.0.1/trace?sslmode=verify-full&sslrootcert=",
        "postgres://trace@127.0.0.1/trace?application_name=x",
        "postgres://trace@127.0.0.1/trace?sslmode=require&sslmode=disable",
        "postgres://trace@127.0.0.1/trace?sslmode",
    ])
    func mistakesAreRefusedNotIgnored(url: String) {
        #expect(PostgresTarget(url: url) == nil)
    }
}
