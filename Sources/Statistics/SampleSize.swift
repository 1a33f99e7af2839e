/// Minimum detectable effect, on the absolute or relative scale.
public enum Effect: Sendable, Equatable {
    case absolute(Double)
    case relative(Double)

    func absolute(baseline: Double) -> Double {
        switch self {
        case .absolute(let d): d
        case .relative(let r): r * baseline
        }
    }

    var field: String {
        switch self {
        case .absolute: "mde.absolute"
        case .relative: "mde.relative"
        }
    }
}

/// Sidedness for power and sample-size calculations; one-sided counts the tail in the effect's direction.
public enum PowerAlternative: String, Sendable, CaseIterable {
    case twoSided = "two-sided"
    case oneSided = "one-sided"
}

/// Formula for binomial power and sample size.
public enum ProportionFormula: String, Sendable, CaseIterable {
    /// R `power.prop.test`: pooled variance under H0, unpooled under H1, one rejection tail (default).
    case classic
    /// Unpooled variance under both hypotheses, one rejection tail.
    case unpooled
    /// Cohen's h (arcsine) effect size with statsmodels `NormalIndPower` (both tails when two-sided).
    case cohenH = "cohen_h"
}

/// Formula for continuous power and sample size.
public enum MeanFormula: String, Sendable, CaseIterable {
    /// statsmodels `NormalIndPower` with effect size d/sd; both tails when two-sided (default).
    case normal
    /// R `power.t.test`: noncentral t with df = n_c + n_t − 2, one rejection tail (`strict = FALSE`).
    case t
}

/// Sample sizes per arm, fractional as solved and rounded up.
public struct SampleSize: Sendable, Equatable {
    public var control: Double
    public var treatment: Double
    public var total: Double { control + treatment }
    public var controlCeil: Int { Int(control.rounded(.up)) }
    public var treatmentCeil: Int { Int(treatment.rounded(.up)) }
    public var totalCeil: Int { controlCeil + treatmentCeil }
}

/// Minimum detectable effect (upward: treatment above the baseline).
public struct DetectableEffect: Sendable, Equatable {
    public var absolute: Double
    /// absolute / baseline; nil when the baseline mean is zero.
    public var relative: Double?
}

/// Power, sample size and minimum detectable effect for two-arm tests (`stats.sample_size`, `stats.power`, `stats.mde`).
///
/// References:
/// - R `power.prop.test`: https://stat.ethz.ch/R-manual/R-devel/library/stats/html/power.prop.test.html
/// - R `power.t.test`: https://stat.ethz.ch/R-manual/R-devel/library/stats/html/power.t.test.html
/// - statsmodels `NormalIndPower`: https://www.statsmodels.org/stable/generated/statsmodels.stats.power.NormalIndPower.html
/// - statsmodels `proportion_effectsize`: https://www.statsmodels.org/stable/generated/statsmodels.stats.proportion.proportion_effectsize.html
///
/// `ratio` k = n_treatment / n_control throughout.
public enum PowerAnalysis {
    // MARK: Sample size

    /// Sample size for comparing two proportions.
    ///
    /// `classic` with k = 1 is R's `power.prop.test` in closed form:
    /// `n = (z_a·√(2p̄q̄) + z_b·√(p1q1 + p2q2))² / (p1 − p2)²`; in general
    /// `n_c = (z_a·√(p̄q̄(1 + 1/k)) + z_b·√(p1q1 + p2q2/k))² / d²`, p̄ = (p1 + k·p2)/(1 + k).
    ///
    /// ```swift
    /// let s = try PowerAnalysis.proportions(baseline: 0.5, mde: .absolute(0.25), alpha: 0.05, power: 0.9)
    /// // s.control ≈ 76.70693, s.controlCeil == 77
    /// ```
    /// - Throws: ``StatisticsError`` for `baseline.rate`, `mde.*`, `alpha`, `power`, `ratio` out of range.
    public static func proportions(
        baseline p1: Double, mde: Effect, alpha: Double, power: Double,
        alternative: PowerAlternative = .twoSided, ratio k: Double = 1, formula: ProportionFormula = .classic
    ) throws(StatisticsError) -> SampleSize {
        try validate(alpha: alpha, power: power, ratio: k)
        let p2 = try proportionPair(p1, mde)
        let d = abs(p2 - p1)
        let zb = Normal.quantile(power)
        let nc: Double
        switch formula {
        case .classic:
            let za = zAlphaOneTail(alpha, alternative)
            let pbar = (p1 + k * p2) / (1 + k)
            let root = za * (pbar * (1 - pbar) * (1 + 1 / k)).squareRoot() + zb * (p1 * (1 - p1) + p2 * (1 - p2) / k).squareRoot()
            nc = root * root / (d * d)
        case .unpooled:
            let z = zAlphaOneTail(alpha, alternative) + zb
            nc = z * z * (p1 * (1 - p1) + p2 * (1 - p2) / k) / (d * d)
        case .cohenH:
            nc = try normalIndSampleSize(effect: cohenH(p1, p2), alpha: alpha, power: power, alternative: alternative, ratio: k)
        }
        return try sized(nc, k)
    }

    /// Sample size for comparing two means with a common standard deviation.
    ///
    /// `normal` (default) solves statsmodels `NormalIndPower` exactly (both tails for two-sided, by Brent root
    /// finding); `t` solves R's `power.t.test` (noncentral t).
    /// - Throws: ``StatisticsError`` for `baseline.mean`, `baseline.sd`, `mde.*`, `alpha`, `power`, `ratio`.
    public static func means(
        mean: Double, sd: Double, mde: Effect, alpha: Double, power: Double,
        alternative: PowerAlternative = .twoSided, ratio k: Double = 1, formula: MeanFormula = .normal
    ) throws(StatisticsError) -> SampleSize {
        try validate(alpha: alpha, power: power, ratio: k)
        let d = try meanEffect(mean: mean, sd: sd, mde)
        let effect = abs(d) / sd
        switch formula {
        case .normal:
            return try sized(try normalIndSampleSize(effect: effect, alpha: alpha, power: power, alternative: alternative, ratio: k), k)
        case .t:
            // Start from the normal-approximation size and expand until the power target is met.
            let z = zAlphaOneTail(alpha, alternative) + Normal.quantile(power)
            var hi = 2 * z * z * (1 + 1 / k) / (effect * effect) + 10
            let lo = 3 / (1 + k)
            let f = { (nc: Double) -> Double in ((try? tPower(effect: effect, nc: nc, alpha: alpha, alternative: alternative, ratio: k)) ?? .nan) - power }
            var tries = 0
            while f(hi) < 0 && tries < 60 { hi *= 2; tries += 1 }
            return try sized(try GSL.brent(field: "power", lo: lo, hi: hi, f), k)
        }
    }

    // MARK: Power

    /// Power of the two-proportion test with `nControl` units in control and `ratio × nControl` in treatment.
    ///
    /// `classic`: R `power.prop.test` power,
    /// `Φ((|d|√n_c − z_a√(p̄q̄(1 + 1/k))) / √(p1q1 + p2q2/k))`.
    /// - Throws: ``StatisticsError`` for invalid inputs (`n_control`, `baseline.rate`, `mde.*`, …).
    public static func proportionsPower(
        baseline p1: Double, mde: Effect, nControl: Double, alpha: Double,
        alternative: PowerAlternative = .twoSided, ratio k: Double = 1, formula: ProportionFormula = .classic
    ) throws(StatisticsError) -> Double {
        try validate(alpha: alpha, power: 0.5, ratio: k)
        let n = try Check.positive(nControl, "n_control")
        let p2 = try proportionPair(p1, mde)
        return proportionPower(p1: p1, p2: p2, n: n, alpha: alpha, alternative: alternative, k: k, formula: formula)
    }

    /// Power of the two-sample comparison of means (`normal`: statsmodels `NormalIndPower.power`; `t`: R `power.t.test`).
    public static func meansPower(
        mean: Double, sd: Double, mde: Effect, nControl: Double, alpha: Double,
        alternative: PowerAlternative = .twoSided, ratio k: Double = 1, formula: MeanFormula = .normal
    ) throws(StatisticsError) -> Double {
        try validate(alpha: alpha, power: 0.5, ratio: k)
        let n = try Check.positive(nControl, "n_control")
        let d = try meanEffect(mean: mean, sd: sd, mde)
        switch formula {
        case .normal:
            return normalIndPower(effect: abs(d) / sd, nc: n, alpha: alpha, alternative: alternative, ratio: k)
        case .t:
            guard n * (1 + k) > 2 else { throw StatisticsError(field: "n_control", reason: "the t formula needs n_control × (1 + ratio) > 2, got \(n)") }
            return try tPower(effect: abs(d) / sd, nc: n, alpha: alpha, alternative: alternative, ratio: k)
        }
    }

    // MARK: Minimum detectable effect

    /// Smallest upward effect on a proportion detectable with the given power (R `power.prop.test` solving p2).
    ///
    /// ```swift
    /// let e = try PowerAnalysis.proportionsMDE(baseline: 0.5, nControl: 50, alpha: 0.05, power: 0.9)
    /// // 0.5 + e.absolute ≈ 0.8026141
    /// ```
    /// - Throws: ``StatisticsError`` (`n_control`) when no effect up to a rate of 1 reaches the power.
    public static func proportionsMDE(
        baseline p1: Double, nControl: Double, alpha: Double, power: Double,
        alternative: PowerAlternative = .twoSided, ratio k: Double = 1, formula: ProportionFormula = .classic
    ) throws(StatisticsError) -> DetectableEffect {
        try validate(alpha: alpha, power: power, ratio: k)
        let n = try Check.positive(nControl, "n_control")
        try baselineRate(p1)
        let p2: Double
        switch formula {
        case .classic, .unpooled:
            let hi = 1 - 1e-12
            guard proportionPower(p1: p1, p2: hi, n: n, alpha: alpha, alternative: alternative, k: k, formula: formula) >= power else {
                throw StatisticsError(field: "n_control", reason: "too small to reach power \(power) even for a rate of 1; increase n_control")
            }
            p2 = try GSL.brent(field: "n_control", lo: p1, hi: hi) { p2 in
                proportionPower(p1: p1, p2: p2, n: n, alpha: alpha, alternative: alternative, k: k, formula: formula) - power
            }
        case .cohenH:
            let h = try normalIndEffect(nc: n, alpha: alpha, power: power, alternative: alternative, ratio: k)
            let angle = Special.asin(p1.squareRoot()) + h / 2
            guard angle < Double.pi / 2 else {
                throw StatisticsError(field: "n_control", reason: "too small to reach power \(power) even for a rate of 1; increase n_control")
            }
            let s = Special.sin(angle)
            p2 = s * s
        }
        return DetectableEffect(absolute: p2 - p1, relative: (p2 - p1) / p1)
    }

    /// Smallest detectable difference in means (absolute = effect size × sd).
    public static func meansMDE(
        mean: Double, sd: Double, nControl: Double, alpha: Double, power: Double,
        alternative: PowerAlternative = .twoSided, ratio k: Double = 1, formula: MeanFormula = .normal
    ) throws(StatisticsError) -> DetectableEffect {
        try validate(alpha: alpha, power: power, ratio: k)
        let n = try Check.positive(nControl, "n_control")
        let mean = try Check.finite(mean, "baseline.mean")
        let sd = try Check.positive(sd, "baseline.sd")
        let effect: Double
        switch formula {
        case .normal:
            effect = try normalIndEffect(nc: n, alpha: alpha, power: power, alternative: alternative, ratio: k)
        case .t:
            guard n * (1 + k) > 2 else { throw StatisticsError(field: "n_control", reason: "the t formula needs n_control × (1 + ratio) > 2, got \(n)") }
            let z = zAlphaOneTail(alpha, alternative) + Normal.quantile(power)
            var hi = 2 * z * ((1 + 1 / k) / n).squareRoot() + 1
            let f = { (e: Double) -> Double in ((try? tPower(effect: e, nc: n, alpha: alpha, alternative: alternative, ratio: k)) ?? .nan) - power }
            var tries = 0
            while f(hi) < 0 && tries < 60 { hi *= 2; tries += 1 }
            effect = try GSL.brent(field: "n_control", lo: 0, hi: hi, f)
        }
        let d = effect * sd
        return DetectableEffect(absolute: d, relative: mean == 0 ? nil : d / abs(mean))
    }

    // MARK: Internals

    static func proportionPower(p1: Double, p2: Double, n: Double, alpha: Double, alternative: PowerAlternative, k: Double, formula: ProportionFormula) -> Double {
        let d = abs(p2 - p1)
        switch formula {
        case .classic:
            let za = zAlphaOneTail(alpha, alternative)
            let pbar = (p1 + k * p2) / (1 + k)
            return Normal.cdf((d * n.squareRoot() - za * (pbar * (1 - pbar) * (1 + 1 / k)).squareRoot()) / (p1 * (1 - p1) + p2 * (1 - p2) / k).squareRoot())
        case .unpooled:
            return Normal.cdf(d * n.squareRoot() / (p1 * (1 - p1) + p2 * (1 - p2) / k).squareRoot() - zAlphaOneTail(alpha, alternative))
        case .cohenH:
            return normalIndPower(effect: cohenH(p1, p2), nc: n, alpha: alpha, alternative: alternative, ratio: k)
        }
    }

    /// |h| = |2 asin √p2 − 2 asin √p1| (statsmodels `proportion_effectsize`).
    static func cohenH(_ p1: Double, _ p2: Double) -> Double {
        abs(2 * Special.asin(p2.squareRoot()) - 2 * Special.asin(p1.squareRoot()))
    }

    /// statsmodels `NormalIndPower.power` (ddof 0): nobs = 1/(1/n_c + 1/n_t); two-sided adds both tails.
    static func normalIndPower(effect: Double, nc: Double, alpha: Double, alternative: PowerAlternative, ratio k: Double) -> Double {
        let nobs = 1 / (1 / nc + 1 / (nc * k))
        let shift = effect * nobs.squareRoot()
        switch alternative {
        case .twoSided:
            return Normal.sf(Normal.upperQuantile(alpha / 2) - shift) + Normal.cdf(Normal.quantile(alpha / 2) - shift)
        case .oneSided:
            return Normal.sf(Normal.upperQuantile(alpha) - shift)
        }
    }

    /// n_c solving `NormalIndPower` for the target power (closed form one-sided, Brent two-sided).
    static func normalIndSampleSize(effect: Double, alpha: Double, power: Double, alternative: PowerAlternative, ratio k: Double) throws(StatisticsError) -> Double {
        let zb = Normal.quantile(power)
        switch alternative {
        case .oneSided:
            let z = Normal.upperQuantile(alpha) + zb
            return z * z * (1 + 1 / k) / (effect * effect)
        case .twoSided:
            guard power > alpha else { throw StatisticsError(field: "power", reason: "must exceed alpha for a two-sided test, got \(power)") }
            // One tail alone at alpha/2 needs at least as many units: an upper bracket.
            let z = Normal.upperQuantile(alpha / 2) + zb
            let hi = z * z * (1 + 1 / k) / (effect * effect)
            return try GSL.brent(field: "power", lo: hi * 1e-9, hi: hi) { nc in
                normalIndPower(effect: effect, nc: nc, alpha: alpha, alternative: .twoSided, ratio: k) - power
            }
        }
    }

    /// Effect size solving `NormalIndPower` for the target power at a given n_c.
    static func normalIndEffect(nc: Double, alpha: Double, power: Double, alternative: PowerAlternative, ratio k: Double) throws(StatisticsError) -> Double {
        let nobs = 1 / (1 / nc + 1 / (nc * k))
        let zb = Normal.quantile(power)
        switch alternative {
        case .oneSided:
            return (Normal.upperQuantile(alpha) + zb) / nobs.squareRoot()
        case .twoSided:
            guard power > alpha else { throw StatisticsError(field: "power", reason: "must exceed alpha for a two-sided test, got \(power)") }
            let hi = (Normal.upperQuantile(alpha / 2) + zb) / nobs.squareRoot()
            return try GSL.brent(field: "power", lo: 0, hi: hi) { e in
                normalIndPower(effect: e, nc: nc, alpha: alpha, alternative: .twoSided, ratio: k) - power
            }
        }
    }

    /// R `power.t.test` power (strict = FALSE): P(T' > t_{1−α/tside, ν}), ν = n_c + n_t − 2,
    /// noncentrality effect / √(1/n_c + 1/n_t).
    static func tPower(effect: Double, nc: Double, alpha: Double, alternative: PowerAlternative, ratio k: Double) throws(StatisticsError) -> Double {
        let nt = nc * k
        let nu = nc + nt - 2
        let q = alternative == .twoSided ? alpha / 2 : alpha
        let crit = StudentT.upperQuantile(q, df: nu)
        let ncp = effect / (1 / nc + 1 / nt).squareRoot()
        return try StudentT.noncentralSF(crit, df: nu, noncentrality: ncp)
    }

    static func sized(_ nc: Double, _ k: Double) throws(StatisticsError) -> SampleSize {
        guard nc.isFinite, nc > 0, (nc * k).isFinite else {
            throw StatisticsError(field: "mde", reason: "the required sample size is not finite; use a larger effect")
        }
        // Sizes are reported as whole numbers of units; beyond 10^15 per arm no experiment can run anyway.
        guard nc.rounded(.up) <= PowerAnalysis.maxUnitsPerArm, (nc * k).rounded(.up) <= PowerAnalysis.maxUnitsPerArm else {
            throw StatisticsError(field: "mde", reason: "needs \(Self.scientific(max(nc, nc * k))) units in one arm, more than the limit of 1e15; use a larger effect or a ratio closer to 1")
        }
        return SampleSize(control: nc, treatment: nc * k)
    }

    /// The largest sample size per arm reported (10^15: exact as a double and as an `Int`).
    public static let maxUnitsPerArm = 1e15

    static func scientific(_ x: Double) -> String {
        var e = 0, m = x
        while m >= 10 { m /= 10; e += 1 }
        return "\((m * 10).rounded() / 10)e\(e)"
    }

    static func baselineRate(_ p1: Double) throws(StatisticsError) {
        guard p1.isFinite, p1 > 0, p1 < 1 else {
            throw StatisticsError(field: "baseline.rate", reason: "must be strictly between 0 and 1, got \(p1)")
        }
    }

    static func proportionPair(_ p1: Double, _ mde: Effect) throws(StatisticsError) -> Double {
        try baselineRate(p1)
        let d = mde.absolute(baseline: p1)
        guard d.isFinite, d != 0 else { throw StatisticsError(field: mde.field, reason: "must be a non-zero finite effect") }
        let p2 = p1 + d
        guard p2 > 0, p2 < 1 else {
            throw StatisticsError(field: mde.field, reason: "baseline \(p1) plus effect \(d) leaves the (0, 1) range; use a smaller effect")
        }
        return p2
    }

    static func meanEffect(mean: Double, sd: Double, _ mde: Effect) throws(StatisticsError) -> Double {
        guard sd.isFinite, sd > 0 else { throw StatisticsError(field: "baseline.sd", reason: "must be a positive number, got \(sd)") }
        guard mean.isFinite else { throw StatisticsError(field: "baseline.mean", reason: "must be finite") }
        let d = mde.absolute(baseline: mean)
        guard d.isFinite, d != 0 else {
            let hint = mean == 0 && { if case .relative = mde { return true } else { return false } }() ? "; a relative effect on a zero mean is zero, use mde.absolute" : ""
            throw StatisticsError(field: mde.field, reason: "must be a non-zero finite effect\(hint)")
        }
        return d
    }

    /// Critical value for the rejection tail in the direction of the effect.
    static func zAlphaOneTail(_ alpha: Double, _ alternative: PowerAlternative) -> Double {
        switch alternative {
        case .twoSided: Normal.upperQuantile(alpha / 2)
        case .oneSided: Normal.upperQuantile(alpha)
        }
    }

    static func validate(alpha: Double, power: Double, ratio: Double) throws(StatisticsError) {
        guard alpha.isFinite, alpha > 0, alpha < 1 else { throw StatisticsError(field: "alpha", reason: "must be between 0 and 1 exclusive, got \(alpha)") }
        guard power.isFinite, power > 0, power < 1 else { throw StatisticsError(field: "power", reason: "must be between 0 and 1 exclusive, got \(power)") }
        guard ratio.isFinite, ratio > 0 else { throw StatisticsError(field: "ratio", reason: "must be a positive number, got \(ratio)") }
    }
}
