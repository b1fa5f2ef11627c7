// libFuzzer target: the relay state machine with the client and upstream legs fuzzed in alternating
// chunks; checks the serialised upstream stream (RelayFuzzHarness/RelayHarness.swift). Run through tools/fuzz.
import FuzzHarness
import RelayFuzzHarness

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRelay(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    do {
        try RelayHarness.run(Array(UnsafeBufferPointer(start: start, count: count)))
    } catch {
        fatalError("relay invariant: \(error)")
    }
    return 0
}
