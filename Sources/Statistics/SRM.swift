/// Result of a sample-ratio-mismatch check (`stats.srm`).
public struct SRMResult: Sendable, Equatable {
    public var chi2: Double
    public var df: Double
    public var pValue: Double
    /// p-value below the threshold.
    public var mismatch: Bool
}

/// Sample-ratio-mismatch check: Pearson chi-square goodness of fit of observed arm sizes to traffic weights.
public enum SRM {
    /// Pearson χ² goodness of fit with expected = weight / Σweights × total, df = arms − 1.
    ///
    /// Same statistic as scipy `chisquare` (https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.chisquare.html)
    /// and R `chisq.test(x, p = w, rescale.p = TRUE)`.
    ///
    /// ```swift
    /// let r = try SRM.check(observed: [89, 37, 30, 28, 2], weights: [40, 20, 20, 15, 5])
    /// // r.chi2 ≈ 9.9901, r.pValue ≈ 0.04059
    /// ```
    /// - Parameters:
    ///   - observed: units per arm (non-negative counts, at least two arms).
    ///   - weights: intended traffic weights (positive, any scale).
    ///   - threshold: p-value below which `mismatch` is true (default 0.001).
    /// - Throws: ``StatisticsError`` for `observed`, `observed[i]`, `weights`, `weights[i]`, `threshold`.
    public static func check(observed: [Double], weights: [Double], threshold: Double = 0.001) throws(StatisticsError) -> SRMResult {
        let threshold = try Check.alpha(threshold, "threshold")
        guard observed.count >= 2 else { throw StatisticsError(field: "observed", reason: "needs at least two arms, got \(observed.count)") }
        guard weights.count == observed.count else {
            throw StatisticsError(field: "weights", reason: "must have one weight per observed arm (\(observed.count)), got \(weights.count)")
        }
        var total = 0.0, weightSum = 0.0
        for (i, o) in observed.enumerated() { total += try Check.count(o, "observed[\(i)]") }
        for (i, w) in weights.enumerated() { weightSum += try Check.positive(w, "weights[\(i)]") }
        guard total > 0 else { throw StatisticsError(field: "observed", reason: "all counts are zero; there is nothing to check yet") }
        guard weightSum.isFinite else { throw StatisticsError(field: "weights", reason: "the sum of weights overflows; rescale them") }
        var chi2 = 0.0
        for (o, w) in zip(observed, weights) {
            let e = w / weightSum * total
            chi2 += (o - e) * (o - e) / e
        }
        _ = try Check.result(chi2, "observed", "chi-square statistic")
        let df = Double(observed.count - 1)
        let p = ChiSquared.sf(chi2, df: df)
        return SRMResult(chi2: chi2, df: df, pValue: p, mismatch: p < threshold)
    }
}
