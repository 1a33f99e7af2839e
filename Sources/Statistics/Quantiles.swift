/// Comparisons of quantiles (the median, the 90th percentile) between two arms, by the method GrowthBook documents for
/// its quantile metrics and implements in gbstats (`QuantileStatistic`): the sample quantile's variance is read off
/// the binomial order-statistic interval (the sample quantiles at levels q ∓ z·√(q(1 − q)/n), with z the 97.5%
/// normal quantile), and the two arms are then compared as means with that variance (Welch's test; the relative
/// difference by the delta method), so every option of `stats.compare` applies.
public enum Quantiles {
    /// One arm of a quantile comparison: the sample quantile and the order-statistic interval that sizes its variance.
    public struct Arm: Sendable, Equatable {
        public var n: Double
        public var q: Double
        public var estimate: Double
        public var lower: Double
        public var upper: Double

        public init(n: Double, q: Double, estimate: Double, lower: Double, upper: Double) {
            self.n = n; self.q = q; self.estimate = estimate; self.lower = lower; self.upper = upper
        }

        /// gbstats' `variance_init` for unit quantiles (`n_star = n`): n · (n − 1)/n · ((upper − lower)/(2z))².
        public var varianceInit: Double {
            guard n > 1 else { return 0 }
            let width = (upper - lower) / (2 * Quantiles.z)
            return (n - 1) * width * width
        }

        /// The variance the test uses: ``varianceInit``, floored at 1e-5 from 100 units on, as gbstats does.
        public var variance: Double { n < 100 ? varianceInit : max(varianceInit, 1e-5) }

        /// Whether the interval needs ranks outside the sample (gbstats `_has_zero_variance`): too few units for q.
        public var tooFewUnits: Bool {
            n <= Quantiles.z * Quantiles.z * q / (1 - q) || n <= Quantiles.z * Quantiles.z * (1 - q) / q
        }

        /// No spread around the quantile (ties) in a sample too small to trust it (gbstats' other zero-variance case).
        public var noSpread: Bool { varianceInit <= 0 && n < 1000 }
    }

    /// The 97.5% quantile of the standard normal distribution (gbstats uses it whatever the test's alpha).
    public static let z = 1.959963984540054

    /// The sample quantile of sorted values, linear between order statistics (Hyndman and Fan's type 7, NumPy's and
    /// R's default): position (n − 1)·q.
    public static func sample(sorted x: [Double], _ q: Double) -> Double {
        precondition(!x.isEmpty)
        let h = Double(x.count - 1) * min(max(q, 0), 1)
        let lo = Int(h.rounded(.down))
        let hi = min(lo + 1, x.count - 1)
        return x[lo] + (h - Double(lo)) * (x[hi] - x[lo])
    }

    /// The arm of unit values for quantile `q` (0 < q < 1), exactly (the values are sorted).
    public static func arm(_ values: [Double], q: Double) throws(StatisticsError) -> Arm {
        guard q > 0, q < 1 else { throw StatisticsError(field: "q", reason: "must be between 0 and 1 (exclusive), got \(q)") }
        guard !values.isEmpty else { throw StatisticsError(field: "values", reason: "needs at least one value") }
        for v in values where !v.isFinite { throw StatisticsError(field: "values", reason: "must be finite numbers") }
        let sorted = values.sorted()
        let n = Double(sorted.count)
        let half = z * (q * (1 - q) / n).squareRoot()
        return Arm(n: n, q: q, estimate: sample(sorted: sorted, q), lower: sample(sorted: sorted, q - half), upper: sample(sorted: sorted, q + half))
    }

    /// Compares the q-quantiles of two arms (absolute or relative difference, frequentist, sequential or Bayesian as
    /// `options` says).
    public static func compare(control: Arm, treatment: Arm, options: CompareOptions = CompareOptions()) throws(StatisticsError) -> ComparisonResult {
        for (name, arm) in [("control", control), ("treatment", treatment)] where arm.tooFewUnits {
            let needed = Int((z * z * max(arm.q / (1 - arm.q), (1 - arm.q) / arm.q)).rounded(.down)) + 1
            throw StatisticsError(field: name, reason: "has \(Int(arm.n)) units; the \(arm.q) quantile's interval needs at least \(needed)")
        }
        for (name, arm) in [("control", control), ("treatment", treatment)] where arm.noSpread {
            throw StatisticsError(field: name, reason: "has the same value all around its \(arm.q) quantile (ties) and fewer than 1,000 units: its variance cannot be estimated; use more units or a mean metric")
        }
        return try ABTest.compare(.continuous(control: .moments(n: control.n, mean: control.estimate, variance: control.variance),
                                              treatment: .moments(n: treatment.n, mean: treatment.estimate, variance: treatment.variance)),
                                  options: options)
    }
}

extension Quantiles {
    /// The arm of a sketch for quantile `q`: the same method, with the sketch's own rank error added to the rank
    /// variance of the order-statistic interval (levels q ∓ z·√(q(1 − q)/n + v/n²)), so an interval from a compacted
    /// sketch is as wide as its uncertainty. `v` is the expected squared rank error, half of `rankVariance`: a
    /// compaction moves a point's rank only when an odd number of the compacted values lie below it, which for a
    /// point placed at random among them is half the time. While the sketch is exact this is ``arm(_:q:)`` of the
    /// same values.
    public static func arm(_ view: QuantileSketch.View, q: Double) throws(StatisticsError) -> Arm {
        guard q > 0, q < 1 else { throw StatisticsError(field: "q", reason: "must be between 0 and 1 (exclusive), got \(q)") }
        guard view.count > 0 else { throw StatisticsError(field: "values", reason: "needs at least one value") }
        let n = view.count
        let half = z * (q * (1 - q) / n + view.rankVariance / 2 / (n * n)).squareRoot()
        return Arm(n: n, q: q, estimate: view.quantile(q), lower: view.quantile(q - half), upper: view.quantile(q + half))
    }
}
