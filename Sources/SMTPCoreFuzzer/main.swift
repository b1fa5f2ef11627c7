// libFuzzer target: SMTPCore, both directions, chunked on a 4-byte marker, and the canonical DATA
// content round trip (FuzzHarness/SMTPCoreHarness.swift). Run through tools/fuzz.
import FuzzHarness

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMTPCore(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    do {
        try SMTPCoreHarness.run(Array(UnsafeBufferPointer(start: start, count: count)))
    } catch {
        fatalError("SMTPCore invariant: \(error)")
    }
    return 0
}
