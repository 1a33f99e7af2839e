/// Whether an effect differs across segments: Cochran's Q on per-segment estimates.
public struct HeterogeneityResult: Sendable, Equatable {
    /// Q = Σ wᵢ (dᵢ − d̄)², wᵢ = 1 / seᵢ², d̄ the inverse-variance weighted mean.
    public var q: Double
    public var df: Double
    public var pValue: Double
    /// The weighted mean effect d̄ (the fixed-effect pooled estimate).
    public var pooled: Double
    /// I² = max(0, (Q − df) / Q): the share of the variation across segments beyond chance.
    public var iSquared: Double
}

public enum Heterogeneity {
    /// Cochran's Q test across k ≥ 2 segments, as statsmodels `combine_effects(...).q` (its `het_test`
    /// p-value is the χ² upper tail with k − 1 degrees of freedom).
    ///
    /// - Throws: ``StatisticsError`` naming `estimates`, `standard_errors[i]` for fewer than two segments, a
    ///   count mismatch, or a standard error that is not positive and finite.
    public static func cochranQ(estimates: [Double], standardErrors: [Double]) throws(StatisticsError) -> HeterogeneityResult {
        guard estimates.count >= 2 else { throw StatisticsError(field: "estimates", reason: "needs at least two segments, got \(estimates.count)") }
        guard standardErrors.count == estimates.count else {
            throw StatisticsError(field: "standard_errors", reason: "must have one standard error per estimate (\(estimates.count)), got \(standardErrors.count)")
        }
        var weights: [Double] = []
        for (i, (d, se)) in zip(estimates, standardErrors).enumerated() {
            guard d.isFinite else { throw StatisticsError(field: "estimates[\(i)]", reason: "must be finite, got \(d)") }
            guard se.isFinite, se > 0 else { throw StatisticsError(field: "standard_errors[\(i)]", reason: "must be positive and finite, got \(se)") }
            weights.append(1 / (se * se))
        }
        let total = weights.reduce(0, +)
        let pooled = zip(weights, estimates).reduce(0) { $0 + $1.0 * $1.1 } / total
        let q = zip(weights, estimates).reduce(0) { $0 + $1.0 * ($1.1 - pooled) * ($1.1 - pooled) }
        let df = Double(estimates.count - 1)
        return HeterogeneityResult(q: q, df: df, pValue: ChiSquared.sf(q, df: df), pooled: pooled, iSquared: q > 0 ? max(0, (q - df) / q) : 0)
    }
}
