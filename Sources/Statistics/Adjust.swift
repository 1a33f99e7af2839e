/// Multiple-testing correction methods, named as on the wire.
public enum AdjustmentMethod: String, Sendable, CaseIterable {
    case bonferroni
    case holm
    case hochberg
    case sidak
    case holmSidak = "holm-sidak"
    /// Benjamini–Hochberg (statsmodels `fdr_bh`).
    case bh
    /// Benjamini–Yekutieli (statsmodels `fdr_by`).
    case by
}

/// Adjusted p-values and rejection decisions, in input order.
public struct AdjustmentResult: Sendable, Equatable {
    public var adjusted: [Double]
    public var reject: [Bool]
}

/// Multiple-testing corrections (`stats.adjust`).
public enum MultipleTesting {
    /// Adjusts p-values with statsmodels `multipletests` semantics, including its rejection rules
    /// (step-down for Holm and Holm–Šidák, step-up for Hochberg, BH and BY) and clipping at 1.
    ///
    /// Reference: https://www.statsmodels.org/stable/generated/statsmodels.stats.multitest.multipletests.html
    ///
    /// ```swift
    /// let r = try MultipleTesting.adjust(pValues: [0.01, 0.04, 0.03], method: .holm)
    /// // r.adjusted == [0.03, 0.06, 0.06]
    /// ```
    /// - Throws: ``StatisticsError`` for `p_values` (empty), `p_values[i]` (outside [0, 1]) or `alpha`.
    public static func adjust(pValues: [Double], method: AdjustmentMethod, alpha: Double = 0.05) throws(StatisticsError) -> AdjustmentResult {
        let alpha = try Check.alpha(alpha)
        guard !pValues.isEmpty else { throw StatisticsError(field: "p_values", reason: "needs at least one p-value") }
        for (i, p) in pValues.enumerated() { _ = try Check.probability(p, "p_values[\(i)]") }
        let m = pValues.count
        let mD = Double(m)
        let order = pValues.indices.sorted { (pValues[$0], $0) < (pValues[$1], $1) }
        let p = order.map { pValues[$0] }
        var corrected = [Double](repeating: 0, count: m)
        var reject = [Bool](repeating: false, count: m)

        /// Step-down: reject until the first non-rejection.
        func stepDown(_ thresholds: (Int) -> Double) {
            var i = 0
            while i < m && p[i] <= thresholds(i) { reject[i] = true; i += 1 }
        }
        /// Step-up: reject everything up to the last index meeting its threshold.
        func stepUp(_ thresholds: (Int) -> Double) {
            if let last = (0..<m).last(where: { p[$0] <= thresholds($0) }) {
                for i in 0...last { reject[i] = true }
            }
        }
        func cumulativeMax() { for i in 1..<max(m, 1) { corrected[i] = max(corrected[i], corrected[i - 1]) } }
        func reverseCumulativeMin() { if m > 1 { for i in stride(from: m - 2, through: 0, by: -1) { corrected[i] = min(corrected[i], corrected[i + 1]) } } }

        switch method {
        case .bonferroni:
            for i in 0..<m { reject[i] = p[i] <= alpha / mD; corrected[i] = p[i] * mD }
        case .sidak:
            let threshold = 1 - Special.pow(1 - alpha, 1 / mD)
            for i in 0..<m { reject[i] = p[i] <= threshold; corrected[i] = p[i] >= 1 ? 1 : -Special.expm1(mD * Special.log1p(-p[i])) }
        case .holmSidak:
            stepDown { i in 1 - Special.pow(1 - alpha, 1 / Double(m - i)) }
            for i in 0..<m { corrected[i] = p[i] >= 1 ? 1 : -Special.expm1(Double(m - i) * Special.log1p(-p[i])) }
            cumulativeMax()
        case .holm:
            stepDown { i in alpha / Double(m - i) }
            for i in 0..<m { corrected[i] = p[i] * Double(m - i) }
            cumulativeMax()
        case .hochberg:
            stepUp { i in alpha / Double(m - i) }
            for i in 0..<m { corrected[i] = Double(m - i) * p[i] }
            reverseCumulativeMin()
        case .bh, .by:
            var cm = 1.0
            if method == .by {
                cm = 0
                for i in 1...m { cm += 1 / Double(i) }
            }
            let factor = { (i: Int) -> Double in method == .by ? (Double(i + 1) / mD) / cm : Double(i + 1) / mD }
            stepUp { i in factor(i) * alpha }
            for i in 0..<m { corrected[i] = p[i] / factor(i) }
            reverseCumulativeMin()
        }
        var adjusted = [Double](repeating: 0, count: m)
        var rejected = [Bool](repeating: false, count: m)
        for (sortedIndex, original) in order.enumerated() {
            adjusted[original] = min(corrected[sortedIndex], 1)
            rejected[original] = reject[sortedIndex]
        }
        return AdjustmentResult(adjusted: adjusted, reject: rejected)
    }
}
