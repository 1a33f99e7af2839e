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
        var h1 = state(seed)
        fold(value, &h1)
        return finish(h1)
    }

    /// The FNV-1a state after `seed`: hashing many units with one seed folds the seed once.
    @inline(__always)
    public static func state(_ seed: String) -> UInt32 {
        var h: UInt32 = 2_166_136_261
        fold(seed, &h)
        return h
    }

    /// ``bucket(seed:value:)`` from the seed's ``state(_:)`` and the value's UTF-8 bytes; nil when they are not all
    /// ASCII (their UTF-16 code units then differ from the bytes: hash the decoded string instead).
    @inlinable @inline(__always)
    public static func bucket(state: UInt32, bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var h = state
        for b in bytes {
            guard b < 0x80 else { return nil }
            h ^= UInt32(b)
            h = h &* 16_777_619
        }
        return finish(h)
    }

    /// ``bucket(state:bytes:)`` for two seeds at once: the two hash chains are independent, so folding them in one
    /// pass over the bytes lets the processor run both multiplications at the same time (a unit's layer bucket and its
    /// position in the experiment, on every row of an ingestion).
    @inlinable @inline(__always)
    public static func buckets(_ a: UInt32, _ b: UInt32, bytes: UnsafeBufferPointer<UInt8>) -> (Int, Int)? {
        var x = a, y = b
        for byte in bytes {
            guard byte < 0x80 else { return nil }
            x ^= UInt32(byte); x = x &* 16_777_619
            y ^= UInt32(byte); y = y &* 16_777_619
        }
        return (finish(x), finish(y))
    }

    /// `fnv1a32(String(h1)) mod 10000`. The decimal digits of h1 are ASCII, so their UTF-16 units are the digit bytes.
    /// Above 99,999 the text is the digits of h1 / 100,000 followed by the five digits of h1 % 100,000: the state after
    /// the first part comes from a table (43,000 values, 172 KB), and the five digits are found independently of one
    /// another, so the processor computes them at once instead of one division after the other.
    @inlinable @inline(__always)
    static func finish(_ h1: UInt32) -> Int {
        guard h1 >= 100_000 else { return finishDigitByDigit(h1) }
        let q = h1 / 100_000, r = h1 &- q &* 100_000
        let d0 = r / 10_000, d1 = r / 1_000 % 10, d2 = r / 100 % 10, d3 = r / 10 % 10, d4 = r % 10
        var h = prefixStates[Int(q)]
        h = (h ^ (d0 &+ 0x30)) &* 16_777_619
        h = (h ^ (d1 &+ 0x30)) &* 16_777_619
        h = (h ^ (d2 &+ 0x30)) &* 16_777_619
        h = (h ^ (d3 &+ 0x30)) &* 16_777_619
        h = (h ^ (d4 &+ 0x30)) &* 16_777_619
        return Int(h % 10_000)
    }

    /// FNV-1a states after the decimal digits of 0 … 42,949 (h1 / 100,000 for every 32-bit h1).
    @usableFromInline nonisolated(unsafe) static let prefixStates: UnsafeMutablePointer<UInt32> = {
        let table = UnsafeMutablePointer<UInt32>.allocate(capacity: 42_950)
        for q in 0..<42_950 {
            var h: UInt32 = 2_166_136_261
            for b in String(q).utf8 { h ^= UInt32(b); h = h &* 16_777_619 }
            table[q] = h
        }
        return table
    }()

    /// ``finish(_:)`` one digit at a time, from the least significant.
    @usableFromInline
    static func finishDigitByDigit(_ h1: UInt32) -> Int {
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

    /// Folds a string's UTF-16 code units into an FNV-1a state. ASCII text (the common case for ids) is hashed
    /// straight from its UTF-8 bytes, which are then the same values as its UTF-16 code units.
    @inline(__always)
    static func fold(_ s: String, _ h: inout UInt32) {
        let done: Bool? = s.utf8.withContiguousStorageIfAvailable { bytes in
            var x = h
            for b in bytes {
                guard b < 0x80 else { return false }
                x ^= UInt32(b)
                x = x &* 16_777_619
            }
            h = x
            return true
        }
        if done == true { return }
        for u in s.utf16 { h ^= UInt32(u); h = h &* 16_777_619 }
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
