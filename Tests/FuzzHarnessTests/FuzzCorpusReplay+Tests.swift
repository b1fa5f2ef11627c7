import Foundation
import FuzzHarness
import RelayFuzzHarness
import Testing

/// Every seed and every kept crash in Tests/FuzzCorpus/TARGET replayed through the harness that
/// target's fuzzer runs, so a fixed crash stays fixed without a fuzzing build.
@Suite struct FuzzCorpusReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus")

    /// The files of one target's corpus, its regressions included.
    static func inputs(_ target: String) throws -> [(name: String, octets: [UInt8])] {
        let directory = corpus.appendingPathComponent(target)
        var files: [URL] = []
        for folder in [directory, directory.appendingPathComponent("regressions")] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            files += names.sorted().filter { !$0.hasPrefix(".") }.map { folder.appendingPathComponent($0) }
                .filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
        }
        return try files.map { ($0.lastPathComponent, Array(try Data(contentsOf: $0))) }
    }

    static func replay(_ target: String, _ harness: ([UInt8]) throws(FuzzInvariantViolation) -> Void) throws {
        let inputs = try inputs(target)
        #expect(!inputs.isEmpty, "no seeds for \(target)")
        for input in inputs {
            do {
                try harness(input.octets)
            } catch {
                Issue.record("\(target)/\(input.name): \(error)")
            }
        }
    }

    @Test func smtpCore() throws {
        try Self.replay("SMTPCoreFuzzer", SMTPCoreHarness.run)
    }

    @Test func relay() throws {
        try Self.replay("RelayFuzzer", RelayHarness.run)
    }

    @Test func mailMessage() throws {
        try Self.replay("MailMessageFuzzer", MailMessageHarness.run)
    }

    @Test func rules() throws {
        try Self.replay("RulesFuzzer", RulesHarness.run)
    }

    @Test func capture() throws {
        try Self.replay("CaptureFuzzer") { input throws(FuzzInvariantViolation) in CaptureHarness.run(input) }
    }
}
