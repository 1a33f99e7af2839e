/// Whether one experiment's effect differs between the arms of another that overlaps it (an interaction), from the
/// sufficient statistics of the cells (arm of A × arm of B): A's effect within each arm of B, and the difference of
/// those effects (a difference of differences) with its interval and p-value.
///
/// The difference of differences is the interaction coefficient of the saturated regression y ~ A·B, so it is
/// checked against statsmodels' OLS on the same units: `unpooled` (each cell's own variance, a z test) is the OLS
/// coefficient with the HC2 robust covariance; `pooled` (one residual variance, a t test on N − cells degrees of
/// freedom) is plain OLS. A binomial metric is the same with 0/1 values.
public enum Interaction {
    public enum Variance: String, Sendable, CaseIterable { case unpooled, pooled }

    /// One cell's sums of its units' values.
    public struct Cell: Sendable, Equatable {
        public var n: Double
        public var sum: Double
        public var sumSquares: Double
        public init(n: Double, sum: Double, sumSquares: Double) { self.n = n; self.sum = sum; self.sumSquares = sumSquares }
        var mean: Double { sum / n }
        /// The sum of squared deviations from the cell's mean.
        var deviations: Double { max(0, sumSquares - sum * sum / n) }
    }

    /// One cell's estimate of its mean and the variance of that estimate: what the unpooled test needs, and what a
    /// ratio metric gives (its delta-method variance) where sums of one value per unit do not exist.
    public struct Estimate: Sendable, Equatable {
        public var mean: Double
        public var variance: Double
        public init(mean: Double, variance: Double) { self.mean = mean; self.variance = variance }
    }

    public struct Result: Sendable, Equatable {
        /// A's effect (treatment − control) within the arm of B compared, and within B's control arm.
        public var effect: Double
        public var baselineEffect: Double
        /// effect − baselineEffect.
        public var estimate: Double
        public var se: Double
        public var ci: (lower: Double, upper: Double)
        public var statistic: Double
        public var df: Double?
        public var pValue: Double
        public static func == (a: Result, b: Result) -> Bool {
            a.effect == b.effect && a.baselineEffect == b.baselineEffect && a.estimate == b.estimate && a.se == b.se
                && a.ci.lower == b.ci.lower && a.ci.upper == b.ci.upper && a.statistic == b.statistic && a.df == b.df && a.pValue == b.pValue
        }
    }

    /// The interaction between B's arm `b` and B's control arm (index 0): `cells[arm of B][arm of A]`, A's control at
    /// index 0 and its treatment at 1.
    public static func test(_ cells: [[Cell]], arm b: Int, variance: Variance = .unpooled, alpha: Double = 0.05) throws(StatisticsError) -> Result {
        guard cells.count >= 2, b > 0, b < cells.count, cells.allSatisfy({ $0.count == 2 }) else {
            throw StatisticsError(field: "cells", reason: "needs B's control arm and arm \(b), each with A's control and treatment")
        }
        guard alpha > 0, alpha < 1 else { throw StatisticsError(field: "alpha", reason: "must be between 0 and 1, got \(alpha)") }
        for (i, row) in cells.enumerated() { for (j, c) in row.enumerated() where !(c.n >= 2) || !c.sum.isFinite || !c.sumSquares.isFinite {
            throw StatisticsError(field: "cells[\(i)][\(j)]", reason: "needs at least 2 units and finite sums, got n \(c.n)")
        } }
        if variance == .unpooled {
            return try test(estimates: cells.map { $0.map { Estimate(mean: $0.mean, variance: $0.deviations / ($0.n - 1) / $0.n) } }, arm: b, alpha: alpha)
        }
        // Pooled: one residual variance over every cell of the model (all of B's arms), as OLS on all the units.
        let used = [cells[0][0], cells[0][1], cells[b][0], cells[b][1]]
        let all = cells.flatMap { $0 }
        let df = all.reduce(0) { $0 + $1.n } - Double(all.count)
        let residual = all.reduce(0) { $0 + $1.deviations } / df
        return try result(effect: cells[b][1].mean - cells[b][0].mean, baseline: cells[0][1].mean - cells[0][0].mean,
                          variance: residual * used.reduce(0) { $0 + 1 / $1.n }, df: df, alpha: alpha)
    }

    /// The unpooled test (a z test on the difference of differences) from each cell's estimate and its variance.
    public static func test(estimates cells: [[Estimate]], arm b: Int, alpha: Double = 0.05) throws(StatisticsError) -> Result {
        guard cells.count >= 2, b > 0, b < cells.count, cells.allSatisfy({ $0.count == 2 }) else {
            throw StatisticsError(field: "cells", reason: "needs B's control arm and arm \(b), each with A's control and treatment")
        }
        guard alpha > 0, alpha < 1 else { throw StatisticsError(field: "alpha", reason: "must be between 0 and 1, got \(alpha)") }
        for (i, row) in cells.enumerated() { for (j, c) in row.enumerated() where !c.mean.isFinite || !(c.variance >= 0) || !c.variance.isFinite {
            throw StatisticsError(field: "cells[\(i)][\(j)]", reason: "needs a finite mean and variance, got \(c.mean) and \(c.variance)")
        } }
        let used = [cells[0][0], cells[0][1], cells[b][0], cells[b][1]]
        return try result(effect: cells[b][1].mean - cells[b][0].mean, baseline: cells[0][1].mean - cells[0][0].mean,
                          variance: used.reduce(0) { $0 + $1.variance }, df: nil, alpha: alpha)
    }

    /// The z test on the difference of two independent estimates of A's effect, each with its standard error: within
    /// one arm of B and within B's control arm. The arms of B hold disjoint units, so the variances add. This is how
    /// every metric type is tested from its own comparison (Welch for continuous, the delta method for ratios, CUPED,
    /// NPS): the unpooled cell test above is this with each effect's se from its two cells.
    public static func test(effect: (estimate: Double, se: Double), baseline: (estimate: Double, se: Double), alpha: Double = 0.05) throws(StatisticsError) -> Result {
        guard alpha > 0, alpha < 1 else { throw StatisticsError(field: "alpha", reason: "must be between 0 and 1, got \(alpha)") }
        for (name, e) in [("effect", effect), ("baseline", baseline)] where !e.estimate.isFinite || !e.se.isFinite || !(e.se >= 0) {
            throw StatisticsError(field: name, reason: "needs a finite estimate and standard error, got \(e.estimate) and \(e.se)")
        }
        return try result(effect: effect.estimate, baseline: baseline.estimate, variance: effect.se * effect.se + baseline.se * baseline.se, df: nil, alpha: alpha)
    }

    static func result(effect: Double, baseline: Double, variance: Double, df: Double?, alpha: Double) throws(StatisticsError) -> Result {
        let estimate = effect - baseline
        let se = variance.squareRoot()
        guard se > 0 else { throw StatisticsError(field: "cells", reason: "the cells have no variance: the interaction cannot be tested") }
        let statistic = estimate / se
        let critical: Double, p: Double
        if let df {
            critical = StudentT.quantile(1 - alpha / 2, df: df)
            p = 2 * StudentT.sf(abs(statistic), df: df)
        } else {
            critical = Normal.quantile(1 - alpha / 2)
            p = 2 * Normal.sf(abs(statistic))
        }
        return Result(effect: effect, baselineEffect: baseline, estimate: estimate, se: se,
                      ci: (estimate - critical * se, estimate + critical * se), statistic: statistic, df: df, pValue: min(1, p))
    }
}
