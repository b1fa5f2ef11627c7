// libFuzzer target: the rule language's lexer, parser, checker and compiler over arbitrary text, and
// evaluation of what compiles (FuzzHarness/RulesHarness.swift). Run through tools/fuzz.
import FuzzHarness

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRules(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    do {
        try RulesHarness.run(Array(UnsafeBufferPointer(start: start, count: count)))
    } catch {
        fatalError("rules invariant: \(error)")
    }
    return 0
}
