// libFuzzer target: raw link-layer packets (2-octet length + frame) through packet decoding, TCP
// reassembly and the SMTP session layer (FuzzHarness/CaptureHarness.swift). Run through tools/fuzz.
import FuzzHarness

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCapture(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    CaptureHarness.run(Array(UnsafeBufferPointer(start: start, count: count)))
    return 0
}
