import Foundation
import Statistics
import Testing

/// The KLL sketch: exact up to k values, rank errors within its bound on adversarial orders, merges, storage.
@Suite struct QuantileSketchTests {
    static let levels = (1...99).map { Double($0) / 100 } + [0.001, 0.005, 0.995, 0.999]

    /// The largest rank error (in units) of the sketch's quantiles over the sorted truth, and the sketch's bound.
    static func worstRankError(_ sketch: QuantileSketch, truth sorted: [Double]) -> Double {
        let view = sketch.view()
        var worst = 0.0
        for q in levels {
            let x = view.quantile(q)
            // The true ranks of x: the values below it and those at most it; the target is q·(n − 1) (0-based).
            let below = Double(lowerBound(sorted, x)), atMost = Double(upperBound(sorted, x))
            let target = q * Double(sorted.count - 1)
            let error = target < below ? below - target : (target > atMost - 1 ? target - (atMost - 1) : 0)
            worst = max(worst, error)
        }
        return worst
    }
    static func lowerBound(_ a: [Double], _ x: Double) -> Int { var lo = 0, hi = a.count; while lo < hi { let m = (lo + hi) / 2; if a[m] < x { lo = m + 1 } else { hi = m } }; return lo }
    static func upperBound(_ a: [Double], _ x: Double) -> Int { var lo = 0, hi = a.count; while lo < hi { let m = (lo + hi) / 2; if a[m] <= x { lo = m + 1 } else { hi = m } }; return lo }

    @Test func exactUpToKValues() throws {
        let rng = GSLRandom(seed: 3)
        let values = (0..<1024).map { _ in exp(rng.normal()) }
        var sketch = QuantileSketch()
        for v in values { sketch.insert(v) }
        #expect(sketch.isExact && sketch.rankErrorBound == 0 && sketch.count == 1024)
        let sorted = values.sorted(), view = sketch.view()
        for q in Self.levels { #expect(view.quantile(q) == Quantiles.sample(sorted: sorted, q), "q=\(q)") }
        // The exact sketch gives the exact arm, interval included.
        #expect(try Quantiles.arm(view, q: 0.9) == Quantiles.arm(values, q: 0.9))
        sketch.insert(1)
        #expect(!sketch.isExact && sketch.retained < 1025)
    }

    /// Ten million values in sorted, reversed, shuffled, sawtooth and many-ties orders: every quantile's rank error
    /// within the sketch's bound. The values are 0..<n (or i mod 7), so the true ranks are known without sorting.
    @Test(arguments: ["sorted", "reversed", "shuffled", "sawtooth", "ties"])
    func rankErrorWithinTheBound(order: String) {
        let n = 10_000_000
        var sketch = QuantileSketch()
        for i in 0..<n {
            let v: Int = switch order {
            case "sorted": i
            case "reversed": n - 1 - i
            case "shuffled": Int((UInt64(i) &* 6_700_417) % UInt64(n))        // a permutation: 6700417 is prime, coprime with n
            case "sawtooth": (i % 1000) * (n / 1000) + i / 1000                 // runs rising through the range, 1,000 times
            default: i % 7
            }
            sketch.insert(Double(v))
        }
        // True ranks: the values below x and those at most x.
        func ranks(_ x: Double) -> (Double, Double) {
            if order == "ties" {
                func count(_ v: Int) -> Int { v < 0 ? 0 : (0...min(v, 6)).reduce(0) { $0 + (n - $1 + 6) / 7 } }
                return (Double(count(Int(x.rounded(.up)) - 1)), Double(count(Int(x.rounded(.down)))))
            }
            return (min(max(x.rounded(.up), 0), Double(n)), min(max(x.rounded(.down) + 1, 0), Double(n)))
        }
        let view = sketch.view()
        var worst = 0.0
        for q in Self.levels {
            let (below, atMost) = ranks(view.quantile(q))
            let target = q * Double(n - 1)
            worst = max(worst, target < below ? below - target : (target > atMost - 1 ? target - (atMost - 1) : 0))
        }
        #expect(sketch.count == Double(n))
        #expect(worst <= sketch.rankErrorBound, "\(order): rank error \(worst) > bound \(sketch.rankErrorBound)")
        // The bound is a useful one: under 0.5% of the values at k = 1024, in about 3,000 values kept.
        #expect(sketch.rankErrorBound < 0.005 * Double(n), "\(order): bound \(sketch.rankErrorBound)")
        #expect(sketch.retained < 4 * QuantileSketch.defaultK)
    }

    @Test func mergedSketchesKeepTheBound() {
        let rng = GSLRandom(seed: 5)
        let parts = (0..<40).map { p in (0..<(5_000 + p * 700)).map { _ in exp(2 * rng.normal()) } }
        var merged = QuantileSketch()
        for part in parts {
            var s = QuantileSketch()
            for v in part { s.insert(v) }
            merged.merge(s)
        }
        let all = parts.flatMap { $0 }.sorted()
        #expect(merged.count == Double(all.count))
        #expect(merged.minimum == all.first && merged.maximum == all.last)
        let worst = Self.worstRankError(merged, truth: all)
        #expect(worst <= merged.rankErrorBound, "rank error \(worst) > bound \(merged.rankErrorBound)")
    }

    @Test func storageRoundTrips() throws {
        var s = QuantileSketch(k: 64)
        for i in 0..<10_000 { s.insert(Double((i * 37) % 1001) / 7) }
        let text = s.storageText
        let back = try #require(QuantileSketch(storage: Substring(text)))
        #expect(back.view() == s.view() && back.count == s.count && back.rankVariance == s.rankVariance && back.storageText == text)
        #expect(QuantileSketch(storage: "64,3,0,1,0,1;AAAA") == nil)      // a level that is not whole doubles
        #expect(QuantileSketch(storage: "64,5,0,1,0,1;") == nil)          // the count disagrees with the levels
        var empty = QuantileSketch()
        empty.merge(QuantileSketch())
        #expect(QuantileSketch(storage: Substring(empty.storageText))?.count == 0)
    }
}
