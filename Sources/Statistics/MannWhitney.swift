/// How the Mann–Whitney p-value is computed.
public enum MannWhitneyMethod: String, Sendable, CaseIterable {
    /// Normal approximation with tie correction (scipy `method="asymptotic"`). Default.
    case asymptotic
    /// Exact null distribution of U (scipy `method="exact"`); only without ties and for moderate sizes.
    case exact
}

/// Result of ``MannWhitney/test(control:treatment:alternative:useContinuity:method:)``.
public struct MannWhitneyResult: Sendable, Equatable {
    /// U statistic of the treatment sample (scipy's statistic with x = treatment).
    public var uTreatment: Double
    /// n_c·n_t − U_treatment.
    public var uControl: Double
    public var pValue: Double
}

/// Mann–Whitney U rank test on raw observations (`stats.mann_whitney`).
public enum MannWhitney {
    /// Mann–Whitney U test of treatment against control, as scipy `mannwhitneyu(treatment, control, …)`.
    ///
    /// `greater` means treatment is stochastically greater. Asymptotic p-values use
    /// `z = (U − n_c n_t/2 − ½·continuity) / √(n_c n_t/12 · ((n + 1) − Σ(t³ − t)/(n(n − 1))))`,
    /// with U = max(U_t, U_c) (doubled p) for two-sided, U_t for greater, U_c for less.
    ///
    /// Reference: https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.mannwhitneyu.html
    ///
    /// ```swift
    /// let r = try MannWhitney.test(control: [20, 11, 17, 12], treatment: [19, 22, 16, 29, 24])
    /// // r.uTreatment == 17, r.pValue ≈ 0.11134688653314041
    /// ```
    /// - Throws: ``StatisticsError`` for empty arms (`control`, `treatment`), non-finite values
    ///   (`control[i]`), all-identical values, or an exact request with ties or too many observations (`method`).
    public static func test(
        control: [Double], treatment: [Double], alternative: Alternative = .twoSided,
        useContinuity: Bool = true, method: MannWhitneyMethod = .asymptotic
    ) throws(StatisticsError) -> MannWhitneyResult {
        guard !control.isEmpty else { throw StatisticsError(field: "control", reason: "needs at least one observation") }
        guard !treatment.isEmpty else { throw StatisticsError(field: "treatment", reason: "needs at least one observation") }
        for (i, x) in control.enumerated() { _ = try Check.finite(x, "control[\(i)]") }
        for (i, x) in treatment.enumerated() { _ = try Check.finite(x, "treatment[\(i)]") }
        let n1 = Double(treatment.count), n2 = Double(control.count)
        let n = n1 + n2
        // Average ranks of the pooled sample; tie-group sizes for the correction.
        var pooled = treatment.map { ($0, true) } + control.map { ($0, false) }
        pooled.sort { $0.0 < $1.0 }
        var rankSumTreatment = 0.0, tieTerm = 0.0
        var i = 0
        while i < pooled.count {
            var j = i
            while j + 1 < pooled.count && pooled[j + 1].0 == pooled[i].0 { j += 1 }
            let t = Double(j - i + 1)
            let rank = Double(i + j + 2) / 2
            for k in i...j where pooled[k].1 { rankSumTreatment += rank }
            tieTerm += t * t * t - t
            i = j + 1
        }
        let u1 = rankSumTreatment - n1 * (n1 + 1) / 2
        let u2 = n1 * n2 - u1
        let u: Double, factor: Double
        switch alternative {
        case .greater: (u, factor) = (u1, 1)
        case .less: (u, factor) = (u2, 1)
        case .twoSided: (u, factor) = (max(u1, u2), 2)
        }
        let p: Double
        switch method {
        case .asymptotic:
            let s = (n1 * n2 / 12 * ((n + 1) - tieTerm / (n * (n - 1)))).squareRoot()
            guard s > 0, s.isFinite else {
                throw StatisticsError(field: "treatment", reason: "all observations are identical, so the rank test is undefined; it needs at least two distinct values")
            }
            var numerator = u - n1 * n2 / 2
            if useContinuity { numerator -= 0.5 }
            p = Normal.sf(numerator / s)
        case .exact:
            guard tieTerm == 0 else { throw StatisticsError(field: "method", reason: "the exact distribution assumes no ties; use \"asymptotic\"") }
            guard min(n1, n2) * n1 * n2 <= 5e7 else { throw StatisticsError(field: "method", reason: "samples too large for the exact distribution; use \"asymptotic\"") }
            p = exactSF(Int(u.rounded()), Int(n1), Int(n2))
        }
        return MannWhitneyResult(uTreatment: u1, uControl: u2, pValue: min(max(p * factor, 0), 1))
    }

    /// P(U ≥ u) under H0 without ties, from the counts f(m, n, u) = f(m − 1, n, u − n) + f(m, n − 1, u).
    static func exactSF(_ u: Int, _ n1: Int, _ n2: Int) -> Double {
        let m = min(n1, n2), n = max(n1, n2)
        let maxU = m * n
        if u <= 0 { return 1 }
        if u > maxU { return 0 }
        // counts[j][v]: arrangements of j small-sample and `cols` large-sample items with U = v.
        var counts = [[Double]](repeating: [Double](repeating: 0, count: maxU + 1), count: m + 1)
        for j in 0...m { counts[j][0] = 1 }
        do {
            for cols in 1...n {
                // Adding one large-sample item: f(j, cols, v) = f(j − 1, cols, v − cols) + f(j, cols − 1, v).
                for j in 1...m {
                    for v in stride(from: j * cols, through: cols, by: -1) {
                        counts[j][v] += counts[j - 1][v - cols]
                    }
                }
            }
        }
        let row = counts[m]
        var total = 0.0, upper = 0.0
        for v in 0...maxU {
            total += row[v]
            if v >= u { upper += row[v] }
        }
        return upper / total
    }
}
