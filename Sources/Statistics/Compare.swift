/// Two-arm comparisons on sufficient statistics (`stats.compare`).
public enum ABTest {}

/// Per-unit statistic of one arm, in gbstats' vocabulary: the mean the test compares, the mean without
/// regression adjustment (the relative-lift denominator), and the per-unit variance.
struct UnitStatistic {
    var n: Double
    var mean: Double
    var unadjustedMean: Double
    var variance: Double
    /// The arm's wire prefix ("control", "treatment", or "" for a bare arm) and the fields blamed when the mean
    /// makes a relative difference undefined or the variance is degenerate. Kept apart and joined only when an
    /// error is reported, so a successful comparison builds no strings.
    var side: String
    var meanKey: String
    var varianceKey: String

    var meanField: String { side.isEmpty ? meanKey : "\(side).\(meanKey)" }
    var varianceField: String { side.isEmpty ? varianceKey : "\(side).\(varianceKey)" }
}

extension ABTest {
    /// Compares treatment with control: difference, standard error, interval, test statistic, p-value,
    /// and for Bayesian analysis the chance to win and risk.
    ///
    /// Methods (difference = treatment − control; relative = (treatment − control)/control):
    /// - binomial, `z`, absolute: two-proportion z-test with the pooled (statsmodels `proportions_ztest`,
    ///   https://www.statsmodels.org/stable/generated/statsmodels.stats.proportion.proportions_ztest.html)
    ///   or unpooled variance (statsmodels `test_proportions_2indep(method="wald")`,
    ///   https://www.statsmodels.org/stable/generated/statsmodels.stats.proportion.test_proportions_2indep.html);
    ///   the interval is always the unpooled Wald interval.
    /// - continuous, `welch` / `student`: scipy `ttest_ind_from_stats`
    ///   (https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.ttest_ind_from_stats.html).
    /// - relative differences, binomial `welch`, ratio and CUPED metrics: gbstats 0.8.0 `TwoSidedTTest`
    ///   (https://github.com/growthbook/growthbook/blob/main/packages/stats/gbstats/frequentist/tests.py):
    ///   per-unit variance p(1 − p) for proportions, delta method for ratios
    ///   (https://github.com/growthbook/growthbook/blob/main/packages/stats/gbstats/models/statistics.py),
    ///   regression adjustment with θ pooled over both arms for CUPED, Welch df;
    ///   relative variance `v_t/(m_c² n_t) + v_c m_t²/(m_c⁴ n_c)`. With `test: z` the same variance is
    ///   referred to the normal distribution.
    /// - NPS: score = share of promoters − share of detractors, per-arm variance
    ///   `(pP + pD − (pP − pD)²)/n`, normal test.
    /// - `.sequential`: gbstats `SequentialTwoSidedTTest` (Waudby-Smith et al. 2023, https://arxiv.org/abs/2103.06476).
    /// - `.bayesian`: gbstats `EffectBayesianABTest`
    ///   (https://github.com/growthbook/growthbook/blob/main/packages/stats/gbstats/bayesian/tests.py).
    ///
    /// Unlike gbstats, degenerate input is an error, never a placeholder result.
    ///
    /// ```swift
    /// let r = try ABTest.compare(.binomial(control: .init(n: 99, successes: 12),
    ///                                      treatment: .init(n: 83, successes: 5)))
    /// // r.statistic ≈ -1.40783, r.pValue ≈ 0.1591813
    /// ```
    /// - Parameters:
    ///   - arms: the metric and both arms' sufficient statistics.
    ///   - options: difference kind, test, variance, alpha, alternative, analysis.
    /// - Throws: ``StatisticsError`` naming the wire field (`control.n`, `treatment.successes`,
    ///   `control.variance`, `alpha`, `test`, …) for invalid or degenerate input.
    public static func compare(_ arms: ComparisonArms, options: CompareOptions = CompareOptions()) throws(StatisticsError) -> ComparisonResult {
        GSL.ensureInitialized()
        let alpha = try Check.alpha(options.alpha)
        let relative = options.difference == .relative
        let test = options.test ?? defaultTest(arms, options.difference)
        switch options.analysis {
        case .frequentist: break
        case .sequential, .bayesian:
            guard options.alternative == .twoSided else {
                throw StatisticsError(field: "alternative", reason: "sequential and Bayesian analyses are two-sided only; use \"two-sided\"")
            }
            guard test != .student else {
                throw StatisticsError(field: "test", reason: "\"student\" applies to frequentist analysis only; omit test")
            }
        }
        // Requirements on test/metric combinations.
        switch (arms, test) {
        case (.continuous, .student):
            guard !relative else { throw StatisticsError(field: "test", reason: "\"student\" supports absolute differences only; use \"welch\" for relative differences") }
        case (_, .student):
            throw StatisticsError(field: "test", reason: "\"student\" applies to continuous metrics only; use \"welch\"")
        case (.nps, .welch):
            throw StatisticsError(field: "test", reason: "NPS uses the normal test; use \"z\" or omit test")
        default: break
        }

        // Build the per-unit statistics.
        let isFrequentist = options.analysis == .frequentist
        let c: UnitStatistic, t: UnitStatistic
        switch arms {
        case .binomial(let ca, let ta):
            // The Welch df divides by n − 1.
            let minN: Double = (isFrequentist && test == .welch) ? 2 : 1
            c = try binomial(ca, "control", minN: minN)
            t = try binomial(ta, "treatment", minN: minN)
            if isFrequentist && test == .z && !relative {
                return try binomialZ(c, t, ca, ta, variance: options.variance, alpha: alpha, alternative: options.alternative)
            }
        case .continuous(let ca, let ta):
            c = try continuous(ca, "control")
            t = try continuous(ta, "treatment")
            if isFrequentist && test == .student {
                return try student(c, t, alpha: alpha, alternative: options.alternative)
            }
        case .cuped(let ca, let ta):
            (c, t) = try cuped(ca, ta)
        case .ratio(let ca, let ta):
            c = try ratio(ca, "control")
            t = try ratio(ta, "treatment")
        case .nps(let ca, let ta):
            c = try nps(ca, "control")
            t = try nps(ta, "treatment")
        }

        let (estimate, variance) = try deltaDifference(c, t, relative: relative)
        let se = variance.squareRoot()
        switch options.analysis {
        case .frequentist:
            let df: Double? = test == .welch ? try welchDF(c, t) : nil
            return try finish(c, t, options.difference, estimate: estimate, se: se, df: df, alpha: alpha, alternative: options.alternative)
        case .sequential(let tuning):
            return try sequential(c, t, options.difference, estimate: estimate, variance: variance, alpha: alpha, tuning: tuning)
        case .bayesian(let prior):
            return try bayesian(c, t, options.difference, estimate: estimate, variance: variance, alpha: alpha, prior: prior)
        }
    }

    static func defaultTest(_ arms: ComparisonArms, _ difference: DifferenceKind) -> TestKind {
        switch arms {
        case .binomial: difference == .absolute ? .z : .welch
        case .nps: .z
        default: .welch
        }
    }

    // MARK: Arms

    static func binomial(_ a: BinomialArm, _ prefix: String, minN: Double) throws(StatisticsError) -> UnitStatistic {
        let p = prefix.isEmpty ? "" : prefix + "."
        let n = try Check.n(a.n, "\(p)n", atLeast: minN)
        let x = try Check.count(a.successes, "\(p)successes")
        guard x <= n else { throw StatisticsError(field: "\(p)successes", reason: "cannot exceed n (\(x) > \(n)); pass the number of converting units") }
        let m = x / n
        return UnitStatistic(n: n, mean: m, unadjustedMean: m, variance: m * (1 - m), side: prefix, meanKey: "successes", varianceKey: "successes")
    }

    /// Sample variance from sums, as gbstats `SampleMeanStatistic`: (Σx² − (Σx)²/n)/(n − 1).
    static func sampleVariance(n: Double, sum: Double, sumSquares: Double, field: String) throws(StatisticsError) -> Double {
        let v = (sumSquares - sum * sum / n) / (n - 1)
        guard v.isFinite else { throw StatisticsError(field: field, reason: "the variance overflows; rescale the metric") }
        if v < 0 {
            // Tolerate round-off; reject inconsistent sums.
            guard -v <= 1e-12 * abs(sumSquares) / (n - 1) else {
                throw StatisticsError(field: field, reason: "sum_squares is smaller than sum²/n, so the sums are inconsistent; recompute them from the same units")
            }
            return 0
        }
        return v
    }

    static func continuous(_ a: ContinuousArm, _ p: String) throws(StatisticsError) -> UnitStatistic {
        switch a {
        case .moments(let n, let mean, let variance):
            let n = try Check.n(n, "\(p).n", atLeast: 2)
            let m = try Check.finite(mean, "\(p).mean")
            guard variance.isFinite, variance >= 0 else {
                throw StatisticsError(field: "\(p).variance", reason: "must be a non-negative finite sample variance, got \(variance)")
            }
            return UnitStatistic(n: n, mean: m, unadjustedMean: m, variance: variance, side: p, meanKey: "mean", varianceKey: "variance")
        case .sums(let n, let sum, let sumSquares):
            let n = try Check.n(n, "\(p).n", atLeast: 2)
            let s = try Check.finite(sum, "\(p).sum")
            let ss = try Check.finite(sumSquares, "\(p).sum_squares")
            let v = try sampleVariance(n: n, sum: s, sumSquares: ss, field: "\(p).sum_squares")
            return UnitStatistic(n: n, mean: s / n, unadjustedMean: s / n, variance: v, side: p, meanKey: "sum", varianceKey: "sum_squares")
        }
    }

    static func validate(_ m: Moments, _ p: String) throws(StatisticsError) {
        _ = try Check.finite(m.sum, "\(p).sum")
        _ = try Check.finite(m.sumSquares, "\(p).sum_squares")
    }

    /// θ of CUPED over both arms (gbstats `compute_theta`): the pooled covariance of post and pre over the pooled
    /// variance of pre; 0 when either has no variance.
    public static func cupedTheta(_ ca: CupedArm, _ ta: CupedArm) throws(StatisticsError) -> Double {
        let n = ca.n + ta.n
        let jointPostVar = try sampleVariance(n: n, sum: ca.post.sum + ta.post.sum, sumSquares: ca.post.sumSquares + ta.post.sumSquares, field: "treatment.post.sum_squares")
        let jointPreVar = try sampleVariance(n: n, sum: ca.pre.sum + ta.pre.sum, sumSquares: ca.pre.sumSquares + ta.pre.sumSquares, field: "treatment.pre.sum_squares")
        guard jointPreVar != 0 && jointPostVar != 0 else { return 0 }
        let cov = ((ca.postPreSumOfProducts + ta.postPreSumOfProducts) - (ca.post.sum + ta.post.sum) * (ca.pre.sum + ta.pre.sum) / n) / (n - 1)
        return cov / jointPreVar
    }

    /// CUPED, as gbstats `RegressionAdjustedStatistic` with θ from `compute_theta` over both arms.
    static func cuped(_ ca: CupedArm, _ ta: CupedArm) throws(StatisticsError) -> (UnitStatistic, UnitStatistic) {
        for (a, p) in [(ca, "control"), (ta, "treatment")] {
            _ = try Check.n(a.n, "\(p).n", atLeast: 2)
            try validate(a.post, "\(p).post")
            try validate(a.pre, "\(p).pre")
            _ = try Check.finite(a.postPreSumOfProducts, "\(p).post_pre_sum_of_products")
        }
        let theta = try cupedTheta(ca, ta)
        func arm(_ a: CupedArm, _ p: String) throws(StatisticsError) -> UnitStatistic {
            let postVar = try sampleVariance(n: a.n, sum: a.post.sum, sumSquares: a.post.sumSquares, field: "\(p).post.sum_squares")
            let preVar = try sampleVariance(n: a.n, sum: a.pre.sum, sumSquares: a.pre.sumSquares, field: "\(p).pre.sum_squares")
            let cov = (a.postPreSumOfProducts - a.post.sum * a.pre.sum / a.n) / (a.n - 1)
            let postMean = a.post.sum / a.n, preMean = a.pre.sum / a.n
            var v = postVar + theta * theta * preVar - 2 * theta * cov
            if v < 0 {
                guard -v <= 1e-12 * (postVar + theta * theta * preVar) else {
                    throw StatisticsError(field: "\(p).post_pre_sum_of_products", reason: "implies a correlation above 1; recompute the sums from the same units")
                }
                v = 0
            }
            return UnitStatistic(n: a.n, mean: postMean - theta * preMean, unadjustedMean: postMean, variance: v,
                                 side: p, meanKey: "post.sum", varianceKey: "post.sum_squares")
        }
        return (try arm(ca, "control"), try arm(ta, "treatment"))
    }

    /// Ratio metric by the delta method, as gbstats `RatioStatistic`.
    static func ratio(_ a: RatioArm, _ p: String) throws(StatisticsError) -> UnitStatistic {
        let n = try Check.n(a.n, "\(p).n", atLeast: 2)
        try validate(a.numerator, "\(p).numerator")
        try validate(a.denominator, "\(p).denominator")
        let sp = try Check.finite(a.numeratorDenominatorSumOfProducts, "\(p).numerator_denominator_sum_of_products")
        guard a.denominator.sum != 0 else {
            throw StatisticsError(field: "\(p).denominator.sum", reason: "is zero, so the ratio is undefined; the arm needs a non-zero denominator")
        }
        let vm = try sampleVariance(n: n, sum: a.numerator.sum, sumSquares: a.numerator.sumSquares, field: "\(p).numerator.sum_squares")
        let vd = try sampleVariance(n: n, sum: a.denominator.sum, sumSquares: a.denominator.sumSquares, field: "\(p).denominator.sum_squares")
        let mm = a.numerator.sum / n, md = a.denominator.sum / n
        let cov = (sp - a.numerator.sum * a.denominator.sum / n) / (n - 1)
        var v = vm / (md * md) - 2 * cov * mm / (md * md * md) + (mm * mm) * vd / (md * md * md * md)
        if v < 0 {
            guard -v <= 1e-12 * (vm / (md * md) + (mm * mm) * vd / (md * md * md * md)) else {
                throw StatisticsError(field: "\(p).numerator_denominator_sum_of_products", reason: "implies a correlation above 1; recompute the sums from the same units")
            }
            v = 0
        }
        let mean = a.numerator.sum / a.denominator.sum
        return UnitStatistic(n: n, mean: mean, unadjustedMean: mean, variance: try Check.result(v, "\(p).numerator.sum_squares", "delta-method variance"),
                             side: p, meanKey: "numerator.sum", varianceKey: "numerator.sum_squares")
    }

    static func nps(_ a: NPSArm, _ p: String) throws(StatisticsError) -> UnitStatistic {
        let pr = try Check.count(a.promoters, "\(p).promoters")
        let pa = try Check.count(a.passives, "\(p).passives")
        let de = try Check.count(a.detractors, "\(p).detractors")
        let n = pr + pa + de
        guard n >= 1 else { throw StatisticsError(field: "\(p).promoters", reason: "the arm has no respondents; at least one response is needed") }
        let pP = pr / n, pD = de / n
        let score = pP - pD
        return UnitStatistic(n: n, mean: score, unadjustedMean: score, variance: pP + pD - score * score,
                             side: p, meanKey: "promoters", varianceKey: "promoters")
    }

    // MARK: Tests

    /// Difference and its variance, gbstats `frequentist_diff` / `frequentist_variance`.
    static func deltaDifference(_ c: UnitStatistic, _ t: UnitStatistic, relative: Bool) throws(StatisticsError) -> (Double, Double) {
        let estimate: Double, variance: Double
        if relative {
            let mc = c.unadjustedMean
            guard mc != 0 else {
                throw StatisticsError(field: c.meanField, reason: "the control mean is zero, so the relative difference is undefined; use difference \"absolute\"")
            }
            estimate = (t.mean - c.mean) / mc
            variance = t.variance / (mc * mc * t.n) + c.variance * (t.unadjustedMean * t.unadjustedMean) / ((mc * mc) * (mc * mc) * c.n)
        } else {
            estimate = t.mean - c.mean
            variance = t.variance / t.n + c.variance / c.n
        }
        guard estimate.isFinite, variance.isFinite else {
            throw StatisticsError(field: c.meanField, reason: "the difference or its variance overflows; rescale the metric")
        }
        guard variance > 0 else {
            throw StatisticsError(field: c.varianceField, reason: "both arms have zero variance, so no test is possible; collect more varied data")
        }
        return (estimate, variance)
    }

    /// Welch–Satterthwaite degrees of freedom (gbstats `TTest.dof`).
    static func welchDF(_ c: UnitStatistic, _ t: UnitStatistic) throws(StatisticsError) -> Double {
        let a = t.variance / t.n + c.variance / c.n
        let df = (a * a) / ((t.variance * t.variance) / ((t.n * t.n) * (t.n - 1)) + (c.variance * c.variance) / ((c.n * c.n) * (c.n - 1)))
        return try Check.result(df, c.varianceField, "Welch degrees of freedom")
    }

    static func binomialZ(
        _ c: UnitStatistic, _ t: UnitStatistic, _ ca: BinomialArm, _ ta: BinomialArm,
        variance: ProportionVariance, alpha: Double, alternative: Alternative
    ) throws(StatisticsError) -> ComparisonResult {
        let d = t.mean - c.mean
        let waldVar = t.mean * (1 - t.mean) / t.n + c.mean * (1 - c.mean) / c.n
        let testVar: Double
        switch variance {
        case .pooled:
            let p = (ta.successes + ca.successes) / (ta.n + ca.n)
            testVar = p * (1 - p) * (1 / t.n + 1 / c.n)
        case .unpooled:
            testVar = waldVar
        }
        guard testVar > 0, testVar.isFinite else {
            throw StatisticsError(field: "control.successes", reason: "both arms are all successes or all failures, so the variance is zero and no test is possible; collect more data")
        }
        let se = testVar.squareRoot()
        let z = d / se
        let (p, _) = pValue(z, df: nil, alternative)
        // The interval is the unpooled Wald interval, whatever the test variance.
        let ci = interval(d, se: waldVar.squareRoot(), df: nil, alpha: alpha, alternative)
        return ComparisonResult(
            control: ArmSummary(n: c.n, mean: c.mean), treatment: ArmSummary(n: t.n, mean: t.mean),
            difference: .absolute, estimate: d, se: se, ci: ci, statistic: z, df: nil, pValue: p,
            significant: p < alpha, chanceToWin: nil, risk: nil)
    }

    static func student(_ c: UnitStatistic, _ t: UnitStatistic, alpha: Double, alternative: Alternative) throws(StatisticsError) -> ComparisonResult {
        let df = c.n + t.n - 2
        let pooled = ((c.n - 1) * c.variance + (t.n - 1) * t.variance) / df
        let v = pooled * (1 / c.n + 1 / t.n)
        guard v > 0, v.isFinite else {
            throw StatisticsError(field: c.varianceField, reason: "both arms have zero variance, so no test is possible; collect more varied data")
        }
        return try finish(c, t, .absolute, estimate: t.mean - c.mean, se: v.squareRoot(), df: df, alpha: alpha, alternative: alternative)
    }

    /// p-value of a z (df nil) or t statistic.
    static func pValue(_ s: Double, df: Double?, _ alternative: Alternative) -> (Double, Void) {
        let upper: (Double) -> Double = { x in df.map { StudentT.sf(x, df: $0) } ?? Normal.sf(x) }
        let p: Double
        switch alternative {
        case .twoSided: p = min(1, 2 * upper(abs(s)))
        case .greater: p = upper(s)
        case .less: p = upper(-s)
        }
        return (p, ())
    }

    static func criticalValue(_ q: Double, df: Double?) -> Double {
        df.map { StudentT.upperQuantile(q, df: $0) } ?? Normal.upperQuantile(q)
    }

    static func interval(_ est: Double, se: Double, df: Double?, alpha: Double, _ alternative: Alternative) -> Interval {
        switch alternative {
        case .twoSided:
            let w = criticalValue(alpha / 2, df: df) * se
            return Interval(lower: est - w, upper: est + w)
        case .greater:
            return Interval(lower: est - criticalValue(alpha, df: df) * se, upper: nil)
        case .less:
            return Interval(lower: nil, upper: est + criticalValue(alpha, df: df) * se)
        }
    }

    static func finish(
        _ c: UnitStatistic, _ t: UnitStatistic, _ kind: DifferenceKind, estimate: Double, se: Double, df: Double?,
        alpha: Double, alternative: Alternative
    ) throws(StatisticsError) -> ComparisonResult {
        let s = estimate / se
        let (p, _) = pValue(s, df: df, alternative)
        let ci = interval(estimate, se: se, df: df, alpha: alpha, alternative)
        let r = ComparisonResult(
            control: ArmSummary(n: c.n, mean: c.mean), treatment: ArmSummary(n: t.n, mean: t.mean),
            difference: kind, estimate: estimate, se: se, ci: ci, statistic: s, df: df, pValue: p,
            significant: p < alpha, chanceToWin: nil, risk: nil)
        return try checked(r, c)
    }

    /// Refuses to return a non-finite number.
    static func checked(_ r: ComparisonResult, _ c: UnitStatistic) throws(StatisticsError) -> ComparisonResult {
        let values: [Double?] = [r.estimate, r.se, r.statistic, r.df, r.pValue, r.ci.lower, r.ci.upper, r.chanceToWin, r.risk?.control, r.risk?.treatment]
        for case let v? in values where !v.isFinite {
            throw StatisticsError(field: c.varianceField, reason: "the result is not finite for these inputs (overflow or degenerate data); check the magnitudes")
        }
        return r
    }

    /// gbstats `SequentialTwoSidedTTest`: eq. 9 (interval), 155 (p-value) and 161 (ρ) of Waudby-Smith et al.
    static func sequential(
        _ c: UnitStatistic, _ t: UnitStatistic, _ kind: DifferenceKind, estimate: Double, variance: Double,
        alpha: Double, tuning: Double
    ) throws(StatisticsError) -> ComparisonResult {
        let tuning = try Check.positive(tuning, "sequential_tuning")
        let n = c.n + t.n
        let logAlpha = Special.log(alpha)
        let rho = ((-2 * logAlpha + Special.log(-2 * logAlpha + 1)) / tuning).squareRoot()
        let nr2p1 = n * rho * rho + 1
        let s2 = variance * n
        let width = s2.squareRoot() * ((2 * nr2p1) * Special.log(nr2p1.squareRoot() / alpha) / ((n * rho) * (n * rho))).squareRoot()
        let st2 = estimate * estimate * n / variance
        // p = min(1, 1/e) with e = exp(ρ² st²/(2(Nρ² + 1))) / √(Nρ² + 1), in log space to avoid overflow.
        let logP = -(rho * rho * st2 / (2 * nr2p1)) + 0.5 * Special.log(nr2p1)
        let p = logP >= 0 ? 1 : Special.exp(logP)
        let se = variance.squareRoot()
        let r = ComparisonResult(
            control: ArmSummary(n: c.n, mean: c.mean), treatment: ArmSummary(n: t.n, mean: t.mean),
            difference: kind, estimate: estimate, se: se, ci: Interval(lower: estimate - width, upper: estimate + width),
            statistic: estimate / se, df: nil, pValue: p, significant: p < alpha, chanceToWin: nil, risk: nil)
        return try checked(r, c)
    }

    /// gbstats `EffectBayesianABTest` with a Gaussian prior on the relative lift (rescaled by |control mean|
    /// for absolute differences), normal posterior, chance to win, credible interval and risk.
    static func bayesian(
        _ c: UnitStatistic, _ t: UnitStatistic, _ kind: DifferenceKind, estimate: Double, variance: Double,
        alpha: Double, prior: GaussianPrior
    ) throws(StatisticsError) -> ComparisonResult {
        var postPrecision = 1 / variance
        var mean = estimate
        if prior.proper {
            var pm = try Check.finite(prior.mean, "prior.mean")
            var pv = try Check.positive(prior.stddev, "prior.stddev")
            pv *= pv
            if kind == .absolute {
                let mc = c.unadjustedMean
                guard mc != 0 else {
                    throw StatisticsError(field: c.meanField, reason: "the prior is on the relative scale and the control mean is zero, so it cannot be rescaled to an absolute difference; use an improper prior or difference \"relative\"")
                }
                pm *= abs(mc)
                pv *= mc * mc
            }
            postPrecision += 1 / pv
            mean = (estimate / variance + pm / pv) / postPrecision
        }
        let sd = (1 / postPrecision).squareRoot()
        let z = mean / sd
        let chance = Normal.cdf(z)
        let lo = mean + sd * Normal.quantile(alpha / 2)
        let hi = mean + sd * Normal.quantile(1 - alpha / 2)
        // Closed forms of gbstats' truncated-normal risk: E[max(δ,0)] and E[max(−δ,0)].
        let phi = Normal.pdf(z)
        let riskControl = mean * Normal.cdf(z) + sd * phi
        let riskTreatment = sd * phi - mean * Normal.sf(z)
        let r = ComparisonResult(
            control: ArmSummary(n: c.n, mean: c.mean), treatment: ArmSummary(n: t.n, mean: t.mean),
            difference: kind, estimate: mean, se: sd, ci: Interval(lower: lo, upper: hi),
            statistic: z, df: nil, pValue: nil, significant: lo > 0 || hi < 0,
            chanceToWin: chance, risk: Risk(control: max(0, riskControl), treatment: max(0, riskTreatment)))
        return try checked(r, c)
    }
}

/// Result of a one-sample proportion z-test.
public struct OneSampleResult: Sendable, Equatable {
    public var estimate: Double
    public var se: Double
    public var statistic: Double
    public var pValue: Double
}

extension ABTest {
    /// One-sample proportion z-test against `value`, with the variance of the observed proportion,
    /// as statsmodels `proportions_ztest(count, nobs, value)`.
    ///
    /// Reference: https://www.statsmodels.org/stable/generated/statsmodels.stats.proportion.proportions_ztest.html
    ///
    /// ```swift
    /// let r = try ABTest.oneSampleProportion(.init(n: 83, successes: 5), value: 0.05) // p ≈ 0.695
    /// ```
    /// - Throws: ``StatisticsError`` for `n`, `successes`, `value`, or a proportion of 0 or 1 (zero variance).
    public static func oneSampleProportion(_ arm: BinomialArm, value: Double, alternative: Alternative = .twoSided) throws(StatisticsError) -> OneSampleResult {
        let s = try binomial(arm, "", minN: 1)
        let p0 = try Check.probability(value, "value")
        guard s.variance > 0 else {
            throw StatisticsError(field: "successes", reason: "the observed proportion is 0 or 1, so its variance is zero; collect more data")
        }
        let se = (s.variance / s.n).squareRoot()
        let z = (s.mean - p0) / se
        return OneSampleResult(estimate: s.mean, se: se, statistic: z, pValue: pValue(z, df: nil, alternative).0)
    }
}
