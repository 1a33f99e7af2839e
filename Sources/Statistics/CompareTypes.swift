/// Direction of the alternative hypothesis; differences are always treatment − control.
public enum Alternative: String, Sendable, CaseIterable {
    /// H1: treatment ≠ control (default).
    case twoSided = "two-sided"
    /// H1: treatment > control.
    case greater
    /// H1: treatment < control.
    case less
}

/// Scale of the reported difference.
public enum DifferenceKind: String, Sendable, CaseIterable {
    /// treatment − control.
    case absolute
    /// (treatment − control) / control.
    case relative
}

/// Frequentist test family.
public enum TestKind: String, Sendable, CaseIterable {
    /// Normal (z) test. Default for binomial absolute differences and NPS.
    case z
    /// Welch's unequal-variance t-test with Welch–Satterthwaite df. Default elsewhere.
    case welch
    /// Student's pooled-variance t-test (continuous absolute differences only).
    case student
}

/// Variance used by the binomial z statistic (the interval is always the unpooled Wald interval).
public enum ProportionVariance: String, Sendable, CaseIterable {
    /// Pooled proportion under H0, as statsmodels `proportions_ztest`.
    case pooled
    /// Each arm's own proportion, as statsmodels `test_proportions_2indep(method="wald")`.
    case unpooled
}

/// Sum and sum of squares of one per-unit quantity.
public struct Moments: Sendable, Equatable {
    public var sum: Double
    public var sumSquares: Double
    public init(sum: Double, sumSquares: Double) {
        self.sum = sum
        self.sumSquares = sumSquares
    }
}

/// One arm of a binomial (conversion) metric.
public struct BinomialArm: Sendable, Equatable {
    public var n: Double
    public var successes: Double
    public init(n: Double, successes: Double) {
        self.n = n
        self.successes = successes
    }
}

/// One arm of a continuous metric, as summary moments or as raw sums.
public enum ContinuousArm: Sendable, Equatable {
    /// `{n, mean, variance}` with the sample variance (n − 1 denominator).
    case moments(n: Double, mean: Double, variance: Double)
    /// `{n, sum, sum_squares}`.
    case sums(n: Double, sum: Double, sumSquares: Double)
}

/// One arm of a continuous metric with a pre-period covariate, for CUPED.
public struct CupedArm: Sendable, Equatable {
    public var n: Double
    public var post: Moments
    public var pre: Moments
    public var postPreSumOfProducts: Double
    public init(n: Double, post: Moments, pre: Moments, postPreSumOfProducts: Double) {
        self.n = n
        self.post = post
        self.pre = pre
        self.postPreSumOfProducts = postPreSumOfProducts
    }
}

/// One arm of a ratio metric (e.g. revenue per session, with users as the unit).
public struct RatioArm: Sendable, Equatable {
    public var n: Double
    public var numerator: Moments
    public var denominator: Moments
    public var numeratorDenominatorSumOfProducts: Double
    public init(n: Double, numerator: Moments, denominator: Moments, numeratorDenominatorSumOfProducts: Double) {
        self.n = n
        self.numerator = numerator
        self.denominator = denominator
        self.numeratorDenominatorSumOfProducts = numeratorDenominatorSumOfProducts
    }
}

/// One arm of a Net Promoter Score metric.
public struct NPSArm: Sendable, Equatable {
    public var promoters: Double
    public var passives: Double
    public var detractors: Double
    public init(promoters: Double, passives: Double, detractors: Double) {
        self.promoters = promoters
        self.passives = passives
        self.detractors = detractors
    }
}

/// The two arms of a comparison; the case is the wire's `metric` (CUPED is `continuous` with `pre`).
public enum ComparisonArms: Sendable, Equatable {
    case binomial(control: BinomialArm, treatment: BinomialArm)
    case continuous(control: ContinuousArm, treatment: ContinuousArm)
    case cuped(control: CupedArm, treatment: CupedArm)
    case ratio(control: RatioArm, treatment: RatioArm)
    case nps(control: NPSArm, treatment: NPSArm)
}

/// Gaussian prior on the effect, on the relative-lift scale (gbstats `GaussianPrior`).
public struct GaussianPrior: Sendable, Equatable {
    public var mean: Double
    public var stddev: Double
    /// When false the prior is flat (gbstats default) and `mean`/`stddev` are ignored.
    public var proper: Bool
    public init(mean: Double = 0, stddev: Double = 1, proper: Bool = false) {
        self.mean = mean
        self.stddev = stddev
        self.proper = proper
    }
}

/// Inference framework.
public enum Analysis: Sendable, Equatable {
    /// Fixed-horizon frequentist test (default).
    case frequentist
    /// Always-valid confidence sequence (gbstats `SequentialTwoSidedTTest`); `tuning` is gbstats'
    /// `sequential_tuning_parameter` (wire `sequential_tuning`, default 5000).
    case sequential(tuning: Double = 5000)
    /// gbstats Gaussian effect model (`EffectBayesianABTest`).
    case bayesian(prior: GaussianPrior = GaussianPrior())
}

/// Options of `stats.compare` other than the arms.
public struct CompareOptions: Sendable, Equatable {
    public var difference: DifferenceKind
    /// nil picks the default: `z` for binomial absolute differences and NPS, `welch` otherwise.
    public var test: TestKind?
    public var variance: ProportionVariance
    public var alpha: Double
    public var alternative: Alternative
    public var analysis: Analysis
    public init(
        difference: DifferenceKind = .absolute, test: TestKind? = nil, variance: ProportionVariance = .pooled,
        alpha: Double = 0.05, alternative: Alternative = .twoSided, analysis: Analysis = .frequentist
    ) {
        self.difference = difference
        self.test = test
        self.variance = variance
        self.alpha = alpha
        self.alternative = alternative
        self.analysis = analysis
    }
}

/// Size and (for CUPED: regression-adjusted) mean of one arm as the test saw it.
public struct ArmSummary: Sendable, Equatable {
    public var n: Double
    public var mean: Double
}

/// Interval for the difference; a one-sided test leaves the open end `nil` (JSON null), never infinite.
public struct Interval: Sendable, Equatable {
    public var lower: Double?
    public var upper: Double?
}

/// Bayesian expected loss of shipping each arm (gbstats `risk`).
public struct Risk: Sendable, Equatable {
    /// Expected loss from choosing control: E[max(δ, 0)].
    public var control: Double
    /// Expected loss from choosing treatment: E[max(−δ, 0)].
    public var treatment: Double
}

/// Result of ``ABTest/compare(_:options:)`` (wire result of `stats.compare`).
public struct ComparisonResult: Sendable, Equatable {
    public var control: ArmSummary
    public var treatment: ArmSummary
    /// Echo of the difference kind (wire `difference`).
    public var difference: DifferenceKind
    /// Point estimate of the difference (Bayesian: posterior mean).
    public var estimate: Double
    /// Standard error used by the test statistic (Bayesian: posterior standard deviation).
    public var se: Double
    /// Confidence interval (sequential: confidence sequence; Bayesian: credible interval).
    public var ci: Interval
    /// z or t statistic (Bayesian: posterior mean / posterior sd).
    public var statistic: Double
    /// Degrees of freedom; nil for normal-based tests.
    public var df: Double?
    /// p-value; nil for Bayesian analysis.
    public var pValue: Double?
    /// Frequentist: p < alpha. Bayesian: the 1 − alpha credible interval excludes 0.
    public var significant: Bool
    /// Bayesian only: P(treatment better than control).
    public var chanceToWin: Double?
    /// Bayesian only.
    public var risk: Risk?
}
