// libFuzzer target: header parsing, RFC 2047, MIME parts and the header rewriter
// (FuzzHarness/MailMessageHarness.swift). Run through tools/fuzz.
import FuzzHarness

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMailMessage(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    do {
        try MailMessageHarness.run(Array(UnsafeBufferPointer(start: start, count: count)))
    } catch {
        fatalError("MailMessage invariant: \(error)")
    }
    return 0
}
