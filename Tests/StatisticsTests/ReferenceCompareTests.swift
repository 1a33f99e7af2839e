import Foundation
import Statistics
import Testing

enum CompareReference {
    struct MomentsJSON: Decodable, Sendable {
        let sum: Double
        let sumSquares: Double
        var moments: Moments { Moments(sum: sum, sumSquares: sumSquares) }
    }
    struct Arm: Decodable, Sendable {
        let n: Double?
        let successes: Double?
        let mean: Double?
        let variance: Double?
        let sum: Double?
        let sumSquares: Double?
        let post: MomentsJSON?
        let pre: MomentsJSON?
        let postPreSumOfProducts: Double?
        let numerator: MomentsJSON?
        let denominator: MomentsJSON?
        let numeratorDenominatorSumOfProducts: Double?
        let promoters: Double?
        let passives: Double?
        let detractors: Double?
    }
    struct Prior: Decodable, Sendable {
        let mean: Double
        let stddev: Double
        let proper: Bool
    }
    struct Input: Decodable, Sendable {
        let metric: String
        let control: Arm
        let treatment: Arm
        let difference: String?
        let test: String?
        let variance: String?
        let alpha: Double?
        let alternative: String?
        let analysis: String?
        let prior: Prior?
        let sequentialTuning: Double?
    }
    struct Expected: Decodable, Sendable {
        let estimate: Double
        let se: Double
        let statistic: Double
        let df: Double?
        let pValue: Double?
        let ci: [Double?]
        let chanceToWin: Double?
        let risk: [Double]?
        let controlMean: Double
        let treatmentMean: Double
    }
}

extension CompareReference.Input {
    typealias Arm = CompareReference.Arm

    /// The mapping a JSON-RPC handler performs from wire params to the Swift API.
    func arms() -> ComparisonArms {
        let c = control, t = treatment
        switch metric {
        case "binomial":
            return .binomial(control: BinomialArm(n: c.n!, successes: c.successes!), treatment: BinomialArm(n: t.n!, successes: t.successes!))
        case "continuous":
            func arm(_ a: Arm) -> ContinuousArm {
                a.mean != nil ? .moments(n: a.n!, mean: a.mean!, variance: a.variance!) : .sums(n: a.n!, sum: a.sum!, sumSquares: a.sumSquares!)
            }
            return .continuous(control: arm(c), treatment: arm(t))
        case "cuped":
            func arm(_ a: Arm) -> CupedArm { CupedArm(n: a.n!, post: a.post!.moments, pre: a.pre!.moments, postPreSumOfProducts: a.postPreSumOfProducts!) }
            return .cuped(control: arm(c), treatment: arm(t))
        case "ratio":
            func arm(_ a: Arm) -> RatioArm {
                RatioArm(n: a.n!, numerator: a.numerator!.moments, denominator: a.denominator!.moments,
                         numeratorDenominatorSumOfProducts: a.numeratorDenominatorSumOfProducts!)
            }
            return .ratio(control: arm(c), treatment: arm(t))
        default:
            func arm(_ a: Arm) -> NPSArm { NPSArm(promoters: a.promoters!, passives: a.passives!, detractors: a.detractors!) }
            return .nps(control: arm(c), treatment: arm(t))
        }
    }

    func options() -> CompareOptions {
        var o = CompareOptions()
        if let d = difference { o.difference = DifferenceKind(rawValue: d)! }
        if let t = test { o.test = TestKind(rawValue: t)! }
        if let v = variance { o.variance = ProportionVariance(rawValue: v)! }
        if let a = alpha { o.alpha = a }
        if let a = alternative { o.alternative = Alternative(rawValue: a)! }
        switch analysis {
        case "sequential": o.analysis = .sequential(tuning: sequentialTuning ?? 5000)
        case "bayesian":
            let p = prior.map { GaussianPrior(mean: $0.mean, stddev: $0.stddev, proper: $0.proper) } ?? GaussianPrior()
            o.analysis = .bayesian(prior: p)
        default: break
        }
        return o
    }
}
typealias CompareCase = ReferenceCase<CompareReference.Input, CompareReference.Expected>

@Suite("Reference: stats.compare")
struct ReferenceCompareTests {
    static let cases: [CompareCase] = Reference.load("compare")

    @Test("enough reference cases per method")
    func coverage() {
        for prefix in ["binomial-z", "welch", "student", "sums-welch", "binomial-gbstats", "ratio", "cuped", "nps", "sequential", "bayesian"] {
            #expect(Self.cases.filter { $0.id.hasPrefix(prefix + "-") && $0.expected != nil }.count >= 100, "\(prefix)")
        }
    }

    @Test(arguments: cases)
    func matchesReference(_ c: CompareCase) throws {
        if let e = c.error {
            expectError(e.field, c.id) { () throws(StatisticsError) in try ABTest.compare(c.input.arms(), options: c.input.options()) }
            return
        }
        let x = try #require(c.expected), tol = try #require(c.tol)
        let r = try ABTest.compare(c.input.arms(), options: c.input.options())
        expectAgree("estimate", r.estimate, x.estimate, tol, c.id)
        expectAgree("se", r.se, x.se, tol, c.id)
        expectAgree("statistic", r.statistic, x.statistic, tol, c.id)
        expectAgree("df", r.df, x.df, tol, c.id)
        expectAgree("p_value", r.pValue, x.pValue, tol, c.id)
        expectAgree("ci.lower", r.ci.lower, x.ci[0], tol, c.id)
        expectAgree("ci.upper", r.ci.upper, x.ci[1], tol, c.id)
        expectAgree("chance_to_win", r.chanceToWin, x.chanceToWin, tol, c.id)
        expectAgree("risk.control", r.risk?.control, x.risk?[0], tol, c.id)
        expectAgree("risk.treatment", r.risk?.treatment, x.risk?[1], tol, c.id)
        expectAgree("control.mean", r.control.mean, x.controlMean, tol, c.id)
        expectAgree("treatment.mean", r.treatment.mean, x.treatmentMean, tol, c.id)
        if let p = r.pValue { #expect(r.significant == (p < (c.input.alpha ?? 0.05))) }
        #expect(r.difference.rawValue == (c.input.difference ?? "absolute"))
    }
}

/// A third implementation: Spotify's confidence library (`Scripts/reference/generate_spotify_confidence.py`),
/// for the settings whose definitions coincide (unpooled two-proportion z, Welch from sums; two-sided, absolute).
struct SpotifyExpected: Decodable, Sendable {
    let estimate: Double
    let ci: [Double]
    let pValue: Double
}
typealias SpotifyCase = ReferenceCase<CompareReference.Input, SpotifyExpected>

@Suite("Reference: stats.compare against spotify-confidence")
struct ReferenceSpotifyTests {
    static let cases: [SpotifyCase] = Reference.load("compare_spotify")

    @Test func coverage() {
        #expect(Self.cases.filter { $0.id.hasPrefix("spotify-ztest-") }.count >= 100)
        #expect(Self.cases.filter { $0.id.hasPrefix("spotify-welch-") }.count >= 100)
    }

    @Test(arguments: cases)
    func matchesReference(_ c: SpotifyCase) throws {
        let x = try #require(c.expected), tol = try #require(c.tol)
        let r = try ABTest.compare(c.input.arms(), options: c.input.options())
        expectAgree("estimate", r.estimate, x.estimate, tol, c.id)
        expectAgree("ci.lower", r.ci.lower, x.ci[0], tol, c.id)
        expectAgree("ci.upper", r.ci.upper, x.ci[1], tol, c.id)
        expectAgree("p_value", r.pValue, x.pValue, tol, c.id)
    }
}
