// libFuzzer entry for the request decoder and the targeting parser (built by Scripts/dev/fuzz, not by SwiftPM).
// Any crash, hang or sanitizer report is a bug: every input must end in a value or a structured error.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let limits = JSONLimits(maxDepth: 64, maxContainerLength: 10_000, maxStringBytes: 1 << 16)
    guard let value = try? JSONParser.parse(bytes, limits: limits) else { return 0 }
    // Round trip: what we print we can read back, identically.
    let text = value.serialized()
    precondition((try? JSONParser.parse(text, limits: JSONLimits(maxDepth: 70, maxContainerLength: 10_000, maxStringBytes: 1 << 17))) == value)
    // The targeting parser, and evaluation of what it accepts.
    if case .success(let condition) = Condition.parse(value) {
        _ = condition.evaluate(["country": .string("US"), "age": .number(30), "app_version": .string("5.1.0"), "beta": .bool(true)])
        _ = Satisfiability.witness([condition])
    }
    // Merge patch against itself never crashes.
    _ = value.merging(patch: value)
    return 0
}
