import Testing
@testable import Registry

/// The table-driven last step of GrowthBook's hash v2 against the text it stands for, `fnv1a32(String(h1))`: every
/// value below 300,000 (both paths and the edge between them), the largest values, and 2 million spread over the range.
@Suite struct HashFinishTests {
    func reference(_ h1: UInt32) -> Int {
        var h: UInt32 = 2_166_136_261
        for b in String(h1).utf8 { h ^= UInt32(b); h = h &* 16_777_619 }
        return Int(h % 10_000)
    }

    @Test func finishIsTheHashOfTheDecimalText() {
        var mismatches: [UInt32] = []
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        let spread = (0..<2_000_000).map { _ -> UInt32 in x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407; return UInt32(truncatingIfNeeded: x >> 32) }
        let small: [UInt32] = (0..<300_000).map { UInt32($0) }
        for h1 in small + Array(UInt32.max - 300_000...UInt32.max) + spread + [999_999, 1_000_000, 4_294_900_000] {
            if GrowthBookHash.finish(h1) != reference(h1) { mismatches.append(h1); if mismatches.count > 5 { break } }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }
}
