import Foundation
import FuzzHarness
import RelayFuzzHarness
import Testing

/// The relay harness on the smuggling cases (README, Security, cases 1–5): the seeds must drive the
/// relay where the fuzzer is meant to start from, and the upstream must get a message exactly when it
/// should.
@Suite struct RelayHarnessTests {
    static func log(_ seed: String) throws -> [String] {
        let url = FuzzCorpusReplayTests.corpus.appendingPathComponent("RelayFuzzer").appendingPathComponent(seed)
        return try RelayHarness.upstreamLog(Array(try Data(contentsOf: url)))
    }

    @Test(arguments: ["security-plain", "security-06-dot-stuffed"])
    func cleanMessageIsDelivered(seed: String) throws {
        let log = try Self.log(seed)
        #expect(log.contains("DATA"))
        #expect(log.filter { $0 == "end of data" }.count == 1, "\(log)")
        #expect(!log.contains("close") || log.firstIndex(of: "close")! > log.firstIndex(of: "end of data")!, "\(log)")
    }

    @Test(arguments: ["security-plain-spooled", "security-06-dot-stuffed-spooled"])
    func cleanSpooledMessageIsReleased(seed: String) throws {
        let log = try Self.log(seed)
        #expect(log.contains { $0.hasPrefix("spool ") }, "\(log)")
    }

    /// Rows 1-4: the transaction is aborted upstream (the leg closed before any terminating dot) and
    /// nothing of P is sent as commands.
    @Test(arguments: ["01-lf-dot-lf", "02-lf-dot-crlf", "02-crlf-dot-lf", "03-cr-dot-cr", "03-cr-dot-lf", "03-lf-dot-cr",
                      "03-cr-dot-crlf", "04-nul-before-dot", "04-nul-after-dot"])
    func smugglingIsAborted(name: String) throws {
        let streamed = try Self.log("security-\(name)")
        #expect(streamed.contains("DATA"))
        #expect(!streamed.contains("end of data"), "\(streamed)")
        #expect(streamed.contains("close"), "\(streamed)")
        #expect(!streamed.contains { $0.hasPrefix("MAIL FROM:<s@x>") }, "\(streamed)")

        let spooled = try Self.log("security-\(name)-spooled")
        #expect(!spooled.contains("DATA"), "\(spooled)")
        #expect(!spooled.contains { $0.hasPrefix("spool ") || $0 == "end of data" }, "\(spooled)")
        #expect(!spooled.contains { $0.hasPrefix("MAIL FROM:<s@x>") }, "\(spooled)")
    }
}
