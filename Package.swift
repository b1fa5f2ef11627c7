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

let package = Package(
    name: "smtpscope",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "smtpscope", targets: ["smtpscope"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
    ],
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
        .target(
            name: "SMTPProxy",
            dependencies: [
                "SMTPCore",
                "MailMessage",
                "SMTPTranscript",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SMTPReport",
            dependencies: ["SMTPTranscript"],
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
        .executableTarget(
            name: "smtpscope",
            dependencies: [
                "SMTPCapture",
                "SMTPTranscript",
                "SMTPReport",
                "SMTPProxy",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "SMTPCoreFuzzer",
            dependencies: ["SMTPCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "CaptureFuzzer",
            dependencies: ["SMTPCapture", "SMTPTranscript", "TCPReassembly", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "SMTPCoreTests", dependencies: ["SMTPCore"], swiftSettings: strictSettings),
        .testTarget(name: "MailMessageTests", dependencies: ["MailMessage"], resources: [.copy("Fixtures")], swiftSettings: strictSettings),
        .testTarget(name: "SMTPTranscriptTests", dependencies: ["SMTPTranscript"], swiftSettings: strictSettings),
        .testTarget(name: "SMTPReportTests", dependencies: ["SMTPReport", "SMTPTranscript", "SMTPCore"], swiftSettings: strictSettings),
        .testTarget(name: "SMTPProxyTests", dependencies: ["SMTPProxy", "SMTPCore", "SMTPTranscript", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")], swiftSettings: strictSettings),
        .testTarget(name: "TCPReassemblyTests", dependencies: ["TCPReassembly", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: strictSettings),
        .testTarget(
            name: "SMTPCaptureTests",
            dependencies: ["SMTPCapture", "TCPReassembly", "SMTPTranscript", "SMTPCore", .product(name: "NIOCore", package: "swift-nio")],
            resources: [.copy("Fixtures")],
            swiftSettings: strictSettings
        ),
    ]
)
