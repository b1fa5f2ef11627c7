// swift-tools-version: 6.1
//
// smtpscope: an SMTP proxy and traffic inspector.
// Layering (dependencies point downwards only; see README "Architecture"):
//   smtpscope (CLI) -> SMTPCapture -> TCPReassembly, SMTPTranscript -> SMTPCore, MailMessage
// Pure modules import NIOCore for ByteBuffer only; CPcap is imported by exactly one file.
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

// The message trace's database stack (GRDB.swift with the SQLite it links, postgres-nio) is left out of the
// package when SMTPSCOPE_WITHOUT_INDEX is set: tools/test sets it for the sanitizer builds, which
// test the proxy and the parsers and would otherwise compile the database libraries twice more.
// The targets left out are MessageTrace, its tests, the web console (SMTPConsole, on Hummingbird)
// and its tests, and the smtpscope executable that wires them.
let withIndex = Context.environment["SMTPSCOPE_WITHOUT_INDEX"] == nil

let package = Package(
    name: "smtpscope",
    platforms: [.macOS(.v15)],
    products: withIndex ? [.executable(name: "smtpscope", targets: ["smtpscope"])] : [],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ] + (withIndex ? [
        // Used only by the smtpscope executable and the console, which go with the index.
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // The web console's HTTP server. Its default traits pull in swift-configuration, which the
        // console does not use: off, for a shorter build.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
    ] : []),
    targets: [
        .systemLibrary(
            name: "CPcap",
            pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev", "zlib1g-dev"])]
        ),
        .target(
            name: "SMTPCore",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "MailMessage",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SMTPTranscript",
            dependencies: [
                "SMTPCore",
                "MailMessage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.copy("session.v1.schema.json")],
            swiftSettings: strictSettings
        ),
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        .target(name: "SMTPRules", dependencies: ["SMTPCore", "MailMessage", "CPCRE2"], swiftSettings: strictSettings),
        // Sender limits: sliding-window counters and what connects them to the rules (no NIO).
        .target(name: "SenderLimits", dependencies: ["SMTPRules"], swiftSettings: strictSettings),
        // `smtpscope policy`: Postfix's policy delegation protocol on the rules and limits.
        .target(
            name: "PostfixPolicy",
            dependencies: [
                "SMTPCore", "SMTPRules", "SenderLimits", "SMTPTranscript",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "RuleSimulation",
            dependencies: ["SMTPCore", "SMTPRules", "SenderLimits", "SMTPTranscript", "MailMessage", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SMTPProxy",
            dependencies: [
                "SMTPCore",
                "MailMessage",
                "SMTPTranscript",
                "SMTPRules",
                "SenderLimits",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SMTPReport",
            dependencies: ["SMTPCore", "SMTPTranscript", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "TCPReassembly",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SMTPCapture",
            dependencies: [
                "CPcap",
                "TCPReassembly",
                "SMTPCore",
                "MailMessage",
                "SMTPTranscript",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // The bare-NIO relay `tools/bench/proxy` measures beside HAProxy (not shipped).
        .executableTarget(
            name: "nio-relay",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "tools/bench/nio-relay",
            swiftSettings: strictSettings
        ),
        .executableTarget(name: "RulesRegexBench", dependencies: ["CPCRE2"], swiftSettings: strictSettings),
        // Fuzzing (README, "Fuzzing and sanitizers"; tools/fuzz): each harness is a function in
        // FuzzHarness, so the unit tests replay the seeds and kept crashes through the very code the
        // fuzzers run.
        .target(
            name: "FuzzHarness",
            dependencies: [
                "SMTPCore", "MailMessage", "SMTPRules", "SMTPCapture", "SMTPTranscript", "TCPReassembly",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // The relay's harness needs the whole proxy (NIOSSL, certificates) under the sanitizers: a
        // module of its own keeps that build out of the other fuzzers' (and CI's).
        .target(
            name: "RelayFuzzHarness",
            dependencies: [
                "FuzzHarness", "SMTPCore", "SMTPProxy", "MailMessage", "SMTPRules", "SMTPTranscript",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(name: "SMTPCoreFuzzer", dependencies: ["FuzzHarness"], swiftSettings: strictSettings),
        .executableTarget(name: "RelayFuzzer", dependencies: ["FuzzHarness", "RelayFuzzHarness"], swiftSettings: strictSettings),
        .executableTarget(name: "MailMessageFuzzer", dependencies: ["FuzzHarness"], swiftSettings: strictSettings),
        .executableTarget(name: "RulesFuzzer", dependencies: ["FuzzHarness"], swiftSettings: strictSettings),
        .executableTarget(name: "CaptureFuzzer", dependencies: ["FuzzHarness"], swiftSettings: strictSettings),
        .testTarget(name: "FuzzHarnessTests", dependencies: ["FuzzHarness", "RelayFuzzHarness"], swiftSettings: strictSettings),
        .testTarget(name: "SMTPCoreTests", dependencies: ["SMTPCore"], swiftSettings: strictSettings),
        .testTarget(name: "MailMessageTests", dependencies: ["MailMessage"], resources: [.copy("Fixtures")], swiftSettings: strictSettings),
        .testTarget(name: "SMTPRulesTests", dependencies: ["SMTPRules", "SMTPCore"], swiftSettings: strictSettings),
        .testTarget(name: "SenderLimitsTests", dependencies: ["SenderLimits", "SMTPRules"], swiftSettings: strictSettings),
        .testTarget(name: "PostfixPolicyTests", dependencies: ["PostfixPolicy", "SenderLimits", "SMTPRules"], swiftSettings: strictSettings),
        .testTarget(name: "RuleSimulationTests", dependencies: ["RuleSimulation", "SMTPRules", "SenderLimits", "SMTPTranscript", "MailMessage"], swiftSettings: strictSettings),
        .testTarget(
            name: "SMTPTranscriptTests",
            dependencies: ["SMTPTranscript", "MailMessage", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "SMTPReportTests", dependencies: ["SMTPReport", "SMTPTranscript", "SMTPCore"], swiftSettings: strictSettings),
        .testTarget(
            name: "SMTPProxyTests",
            dependencies: [
                "SMTPProxy", "SMTPCore", "SMTPTranscript", "SMTPRules", "SenderLimits", "MailMessage",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "TCPReassemblyTests", dependencies: ["TCPReassembly", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: strictSettings),
        .testTarget(
            name: "SMTPCaptureTests",
            dependencies: ["SMTPCapture", "TCPReassembly", "SMTPTranscript", "SMTPCore", .product(name: "NIOCore", package: "swift-nio")],
            resources: [.copy("Fixtures")],
            swiftSettings: strictSettings
        ),
    ] + (withIndex ? indexTargets : [])
)

// Built only without SMTPSCOPE_WITHOUT_INDEX (see `withIndex`).
var indexTargets: [Target] {
    [
        // The message trace: the index of session records, its schema and searches, and the
        // batching writer the proxy feeds (SQLite through GRDB, PostgreSQL through postgres-nio).
        .target(
            name: "MessageTrace",
            dependencies: [
                "SMTPTranscript",
                "SMTPCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The web console (`smtpscope console`, `proxy --console`): pages, the ladder SVG and the
        // JSON API over the message trace's index, on Hummingbird. Its rendering, escaping and
        // access checks are plain Swift, tested without a server.
        .target(
            name: "SMTPConsole",
            dependencies: [
                "MessageTrace",
                "SMTPTranscript",
                "SMTPCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SMTPConsoleTests",
            dependencies: ["SMTPConsole", "MessageTrace", "SMTPTranscript", "SMTPCore"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MessageTraceTests",
            dependencies: ["MessageTrace", "SMTPTranscript", "SMTPCore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "smtpscope",
            dependencies: [
                "SMTPCapture",
                "SMTPTranscript",
                "SMTPReport",
                "SMTPProxy",
                "SMTPRules",
                "SenderLimits",
                "PostfixPolicy",
                "RuleSimulation",
                "MessageTrace",
                "SMTPConsole",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
    ]
}
