/// GrowthBook-compatible hashing, so assignments can be reproduced by GrowthBook SDKs.
///
/// See https://docs.growthbook.io/lib/build-your-own#hashing: version 2 is
/// `h1 = fnv1a32(seed + value)`, `h2 = fnv1a32(String(h1))`, over UTF-16 code units.
public enum GrowthBookHash {
    public static let buckets = 10_000

    /// FNV-1a, 32 bits, over UTF-16 code units (offset basis 2166136261, prime 16777619).
    @inline(__always)
    public static func fnv1a32<S: Sequence>(_ units: S) -> UInt32 where S.Element == UInt16 {
        var h: UInt32 = 2_166_136_261
        for u in units {
            h ^= UInt32(u)
            h = h &* 16_777_619
        }
        return h
    }

    /// `h2 mod 10000` for hash version 2: a unit's bucket in a layer, or its position within an experiment.
    @inline(__always)
    public static func bucket(seed: String, value: String) -> Int {
        var h1: UInt32 = 2_166_136_261
        for u in seed.utf16 { h1 ^= UInt32(u); h1 = h1 &* 16_777_619 }
        for u in value.utf16 { h1 ^= UInt32(u); h1 = h1 &* 16_777_619 }
        // The decimal digits of h1 are ASCII, so their UTF-16 units are the digit bytes.
        var h2: UInt32 = 2_166_136_261
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var x = h1
        withUnsafeMutableBytes(of: &digits) { buf in
            repeat {
                buf[count] = UInt8(x % 10) + 0x30
                x /= 10
                count += 1
            } while x > 0
            for i in stride(from: count - 1, through: 0, by: -1) {
                h2 ^= UInt32(buf[i])
                h2 = h2 &* 16_777_619
            }
        }
        return Int(h2 % 10_000)
    }

    /// GrowthBook's `hash(seed, value, 2)`: a number in [0, 1).
    public static func hashV2(seed: String, value: String) -> Double {
        Double(bucket(seed: seed, value: value)) / 10_000
    }

    /// GrowthBook's `getBucketRanges(n, coverage: 1, weights)`: cumulative `[start, start + w)` ranges,
    /// summed in the same floating-point order as the SDKs.
    public static func ranges(weights: [Double]) -> [(Double, Double)] {
        var cumulative = 0.0
        return weights.map { w in
            let start = cumulative
            cumulative += w
            return (start, start + w)
        }
    }

    /// GrowthBook's `chooseVariation(n, ranges)`: the index whose range holds `n`, or nil.
    public static func chooseVariation(_ n: Double, _ ranges: [(Double, Double)]) -> Int? {
        ranges.firstIndex { n >= $0.0 && n < $0.1 }
    }
}
