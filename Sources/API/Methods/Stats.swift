public import JSONCore
public import Statistics

extension Alternative: Decodable, ParamChoice {}
extension DifferenceKind: Decodable, ParamChoice {}
extension TestKind: Decodable, ParamChoice {}
extension ProportionVariance: Decodable, ParamChoice {}
extension PowerAlternative: Decodable, ParamChoice {}
extension AdjustmentMethod: Decodable, ParamChoice {}

public enum CompareMetric: String, ParamChoice { case binomial, continuous, ratio, nps, quantile }
public enum AnalysisKind: String, ParamChoice { case fixed, sequential, bayesian }
public enum PowerMetric: String, ParamChoice { case binomial, continuous }

let statsErrors: [ErrorCode] = [.invalidInput, .forbidden]

/// The params of one comparison: `stats.compare`, and each element of `stats.compare_batch`.
public struct CompareParams: MethodParams, Equatable {
    public let metric: CompareMetric
    public let control: JSON
    public let treatment: JSON
    public let difference: DifferenceKind?
    public let test: TestKind?
    public let variance: ProportionVariance?
    public let alpha: Double?
    public let alternative: Alternative?
    public let analysis: AnalysisKind?
    public let prior: GaussianPriorParams?
    public let sequential_tuning: Double?
    public let q: Double?
    public static let docs: [String: FieldDoc] = [
        "q": "metric quantile: the quantile compared, 0 < q < 1 (0.5: the median)",
        "metric": "the metric type", "control": FieldDoc("the control arm", schema: Schema.arm), "treatment": FieldDoc("the treatment arm", schema: Schema.arm),
        "difference": "absolute (default) or relative difference", "test": "the test (defaults by metric)", "variance": "binomial variance (pooled)",
        "alpha": "significance level (0.05)", "alternative": "sidedness (two-sided)", "analysis": "fixed-horizon (default), sequential or Bayesian",
        "prior": "Bayesian prior {mean, stddev, proper}", "sequential_tuning": "sequential tuning parameter (5000)",
    ]
    public struct GaussianPriorParams: Decodable, Sendable, Equatable {
        public let mean: Double?
        public let stddev: Double?
        public let proper: Bool?
        enum CodingKeys: String, CodingKey, CaseIterable { case mean, stddev, proper }
    }

    /// `stats.compare_batch` decodes thousands of these per request: well-formed ones without `Decodable`.
    public static func decodeFast(_ m: [String: JSON]) -> CompareParams? {
        func choice<C: ParamChoice>(_ key: String, _ type: C.Type) -> C?? {
            guard let v = m[key], !v.isNull else { return .some(nil) }
            guard let s = v.stringValue, let c = C(rawValue: s) else { return nil }
            return .some(c)
        }
        func number(_ key: String) -> Double?? {
            guard let v = m[key], !v.isNull else { return .some(nil) }
            guard let d = v.doubleValue else { return nil }
            return .some(d)
        }
        guard let metric = choice("metric", CompareMetric.self) ?? nil, let control = m["control"], !control.isNull,
              let treatment = m["treatment"], !treatment.isNull, m["prior"] == nil || m["prior"] == .null,
              let difference = choice("difference", DifferenceKind.self), let test = choice("test", TestKind.self),
              let variance = choice("variance", ProportionVariance.self), let alpha = number("alpha"),
              let alternative = choice("alternative", Alternative.self), let analysis = choice("analysis", AnalysisKind.self),
              let tuning = number("sequential_tuning"), let q = number("q") else { return nil }
        return CompareParams(metric: metric, control: control, treatment: treatment, difference: difference, test: test, variance: variance,
                             alpha: alpha, alternative: alternative, analysis: analysis, prior: nil, sequential_tuning: tuning, q: q)
    }
}

/// `stats.compare {metric, control, treatment, …}`: two arms from sufficient statistics. Binomial arms are
/// `{n, successes}`; continuous `{n, sum, sum_squares}` or `{n, mean, variance}`, with `pre` for CUPED; ratio
/// `{n, numerator, denominator, numerator_denominator_sum_of_products}`; NPS `{promoters, passives, detractors}`;
/// quantile (with `q`) `{values: [...]}` or `{sketch}` as `results.record` answers it.
/// Errors: 1009 for degenerate input (no variance, n below 2), naming the field.
public enum StatsCompare: MethodSpec {
    public static let name = "stats.compare"
    public static let summary = "Compares two arms from sufficient statistics."
    public static let permission = Permission.stats
    public static let result = Schema.object(["estimate": Schema.number, "se": Schema.number, "ci": Schema.object, "p_value": Schema.nullable("number"),
                                              "significant": Schema.boolean], additional: true)
    public static let errors = statsErrors
    public typealias Params = CompareParams
}

/// `stats.compare_batch {comparisons}`: many comparisons at once on every core; an element that fails answers
/// `{error}` in its place (its path starts `comparisons[i]`).
public enum StatsCompareBatch: MethodSpec {
    public static let name = "stats.compare_batch"
    public static let summary = "Many comparisons at once, on every core."
    public static let permission = Permission.stats
    public static let result = Schema.object(["results": Schema.array(Schema.object)])
    public static let errors = statsErrors
    public struct Params: MethodParams {
        public let comparisons: [JSON]
        public static let docs: [String: FieldDoc] = ["comparisons": FieldDoc("params of stats.compare, each", schema: Schema.array(Schema.object))]
    }
}

/// `stats.chance_to_beat {control, treatment, prior?}`: exact P(treatment > control) under Beta posteriors.
public enum StatsChanceToBeat: MethodSpec {
    public static let name = "stats.chance_to_beat"
    public static let summary = "Exact Bayesian P(treatment > control) under Beta posteriors (up to 1e12 units per arm)."
    public static let permission = Permission.stats
    public static let result = Schema.object(["chance_to_beat_control": Schema.number])
    public static let errors = statsErrors
    public struct Params: MethodParams {
        public let control: JSON
        public let treatment: JSON
        public let prior: BetaPriorParams?
        public static let docs: [String: FieldDoc] = [
            "control": FieldDoc("{n, successes}", schema: Schema.object), "treatment": FieldDoc("{n, successes}", schema: Schema.object),
            "prior": "{alpha, beta} (1, 1)",
        ]
    }
    public struct BetaPriorParams: Decodable, Sendable {
        public let alpha: Double?
        public let beta: Double?
        enum CodingKeys: String, CodingKey, CaseIterable { case alpha, beta }
    }
}

/// `stats.srm {observed, weights, threshold?}`: the sample-ratio check (chi-squared goodness of fit).
public enum StatsSRM: MethodSpec {
    public static let name = "stats.srm"
    public static let summary = "The sample-ratio check (chi-squared)."
    public static let permission = Permission.stats
    public static let result = Schema.object(["chi2": Schema.number, "df": Schema.number, "p_value": Schema.number, "mismatch": Schema.boolean])
    public static let errors = statsErrors
    public struct Params: MethodParams {
        public let observed: [Double]
        public let weights: [Double]
        public let threshold: Double?
        public static let docs: [String: FieldDoc] = ["observed": "units per arm", "weights": "planned weights", "threshold": "p-value below which it fails (0.001)"]
    }
}

let powerDocs: [String: FieldDoc] = [
    "metric": "the metric type", "baseline": FieldDoc("{rate} for binomial, {mean, sd} for continuous", schema: Schema.object),
    "alpha": "significance level (0.05)", "alternative": "sidedness (two-sided)", "ratio": "n_treatment / n_control (1)",
    "formula": FieldDoc("classic, unpooled, cohen_h (binomial); normal, t (continuous)",
                        schema: Schema.oneOf(ProportionFormula.allCases.map(\.rawValue) + MeanFormula.allCases.map(\.rawValue))),
    "mde": FieldDoc("{absolute} or {relative}", schema: Schema.object), "power": "target power (0.8)", "n_control": "units in control",
]

/// What the three power methods share.
public protocol PowerParams {
    var metric: PowerMetric { get }
    var baseline: JSON { get }
    var alpha: Double? { get }
    var alternative: PowerAlternative? { get }
    var ratio: Double? { get }
    var formula: String? { get }
}

/// `stats.sample_size {metric, baseline, mde, power?, …}`: units per arm to detect `mde` (up to 1e15).
public enum StatsSampleSize: MethodSpec {
    public static let name = "stats.sample_size"
    public static let summary = "Units per arm for a minimum detectable effect (up to 1e15)."
    public static let permission = Permission.stats
    public static let result = Schema.object(["control": Schema.number, "treatment": Schema.number], additional: true)
    public static let errors = statsErrors
    public struct Params: MethodParams, PowerParams {
        public let metric: PowerMetric
        public let baseline: JSON
        public let alpha: Double?
        public let alternative: PowerAlternative?
        public let ratio: Double?
        public let formula: String?
        public let mde: JSON
        public let power: Double?
        public static let docs = powerDocs.filter { $0.key != "n_control" }
    }
}

/// `stats.power {metric, baseline, mde, n_control, …}`: the power at a sample size.
public enum StatsPower: MethodSpec {
    public static let name = "stats.power"
    public static let summary = "Power at a sample size."
    public static let permission = Permission.stats
    public static let result = Schema.object(["power": Schema.number])
    public static let errors = statsErrors
    public struct Params: MethodParams, PowerParams {
        public let metric: PowerMetric
        public let baseline: JSON
        public let alpha: Double?
        public let alternative: PowerAlternative?
        public let ratio: Double?
        public let formula: String?
        public let mde: JSON
        public let n_control: Double
        public static let docs = powerDocs.filter { $0.key != "power" }
    }
}

/// `stats.mde {metric, baseline, n_control, power?, …}`: the minimum detectable effect at a sample size.
public enum StatsMDE: MethodSpec {
    public static let name = "stats.mde"
    public static let summary = "The minimum detectable effect at a sample size."
    public static let permission = Permission.stats
    public static let result = Schema.object(["absolute": Schema.number, "relative": Schema.nullable("number")])
    public static let errors = statsErrors
    public struct Params: MethodParams, PowerParams {
        public let metric: PowerMetric
        public let baseline: JSON
        public let alpha: Double?
        public let alternative: PowerAlternative?
        public let ratio: Double?
        public let formula: String?
        public let power: Double?
        public let n_control: Double
        public static let docs = powerDocs.filter { $0.key != "mde" }
    }
}

/// `stats.adjust {p_values, method, alpha?}`: multiple-testing correction, as statsmodels' `multipletests`.
public enum StatsAdjust: MethodSpec {
    public static let name = "stats.adjust"
    public static let summary = "Multiple-testing correction (statsmodels multipletests)."
    public static let permission = Permission.stats
    public static let result = Schema.object(["adjusted": Schema.array(Schema.number), "reject": Schema.array(Schema.boolean)])
    public static let errors = statsErrors
    public struct Params: MethodParams {
        public let p_values: [Double]
        public let method: AdjustmentMethod
        public let alpha: Double?
        public static let docs: [String: FieldDoc] = ["p_values": "the p-values", "method": "the correction", "alpha": "family-wise level (0.05)"]
    }
}

/// `stats.mann_whitney {control, treatment, alternative?, use_continuity?}`: the Mann-Whitney U test, as SciPy's.
public enum StatsMannWhitney: MethodSpec {
    public static let name = "stats.mann_whitney"
    public static let summary = "The Mann-Whitney U test."
    public static let permission = Permission.stats
    public static let result = Schema.object(["u_treatment": Schema.number, "u_control": Schema.number, "p_value": Schema.number])
    public static let errors = statsErrors
    public struct Params: MethodParams {
        public let control: [Double]
        public let treatment: [Double]
        public let alternative: Alternative?
        public let use_continuity: Bool?
        public static let docs: [String: FieldDoc] = [
            "control": "values", "treatment": "values", "alternative": "sidedness (two-sided)", "use_continuity": "continuity correction (true)",
        ]
    }
}

/// `stats.compare_quantiles {control, treatment, q, difference?, alpha?, alternative?}`: the difference of the
/// q-quantiles of two arms' unit values, with its interval and p-value, by GrowthBook's method for quantile metrics
/// (gbstats `QuantileStatistic`: the sample quantile's variance from the binomial order-statistic interval, then
/// Welch's test, the relative difference by the delta method). The values are used exactly (sorted); sample quantiles
/// are linear between order statistics (NumPy's default). Errors: 1009 naming the arm with too few units for q.
public enum StatsCompareQuantiles: MethodSpec {
    public static let name = "stats.compare_quantiles"
    public static let summary = "Compares the q-quantiles of two arms' unit values (GrowthBook's quantile method)."
    public static let permission = Permission.stats
    public static let result = Schema.object(["quantile": Schema.number, "estimate": Schema.number, "se": Schema.number, "ci": Schema.object,
                                              "p_value": Schema.nullable("number"), "significant": Schema.boolean, "method": Schema.string], additional: true)
    public static let errors = statsErrors
    public struct Params: MethodParams {
        public let control: [Double]
        public let treatment: [Double]
        public let q: Double
        public let difference: DifferenceKind?
        public let alpha: Double?
        public let alternative: Alternative?
        public static let docs: [String: FieldDoc] = [
            "control": "the control arm's unit values", "treatment": "the treatment arm's unit values", "q": "the quantile, 0 < q < 1 (0.5: the median)",
            "difference": "absolute (default) or relative difference", "alpha": "significance level (0.05)", "alternative": "sidedness (two-sided)",
        ]
    }
}
