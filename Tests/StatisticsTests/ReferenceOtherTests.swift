import Foundation
import Statistics
import Testing

// MARK: stats.chance_to_beat

enum ChanceToBeatReference {
    struct Arm: Decodable, Sendable { let n: Double; let successes: Double }
    struct Prior: Decodable, Sendable { let alpha: Double; let beta: Double }
    struct Input: Decodable, Sendable {
        let control: Arm; let treatment: Arm; let prior: Prior

        func run() throws(StatisticsError) -> Double {
            try BayesianBinomial.chanceToBeat(
                control: BinomialArm(n: control.n, successes: control.successes),
                treatment: BinomialArm(n: treatment.n, successes: treatment.successes),
                prior: BetaPrior(alpha: prior.alpha, beta: prior.beta))
        }
    }
    struct Expected: Decodable, Sendable { let chanceToBeatControl: Double }
}
typealias ChanceToBeatCase = ReferenceCase<ChanceToBeatReference.Input, ChanceToBeatReference.Expected>

@Suite("Reference: stats.chance_to_beat")
struct ReferenceChanceToBeatTests {
    static let cases: [ChanceToBeatCase] = Reference.load("chance_to_beat")

    @Test(arguments: cases)
    func matchesReference(_ c: ChanceToBeatCase) throws {
        if let e = c.error { expectError(e.field, c.id) { () throws(StatisticsError) in try c.input.run() }; return }
        let x = try #require(c.expected)
        expectAgree("chance_to_beat_control", try c.input.run(), x.chanceToBeatControl, try #require(c.tol), c.id)
    }
}

// MARK: stats.srm

enum SRMReference {
    struct Input: Decodable, Sendable { let observed: [Double]; let weights: [Double]; let threshold: Double? }
    struct Expected: Decodable, Sendable { let chi2: Double; let df: Double; let pValue: Double; let mismatch: Bool }
}
typealias SRMCase = ReferenceCase<SRMReference.Input, SRMReference.Expected>

@Suite("Reference: stats.srm")
struct ReferenceSRMTests {
    static let cases: [SRMCase] = Reference.load("srm")

    @Test(arguments: cases)
    func matchesReference(_ c: SRMCase) throws {
        let run = { () throws(StatisticsError) in try SRM.check(observed: c.input.observed, weights: c.input.weights, threshold: c.input.threshold ?? 0.001) }
        if let e = c.error { expectError(e.field, c.id, run); return }
        let x = try #require(c.expected), tol = try #require(c.tol)
        let r = try run()
        expectAgree("chi2", r.chi2, x.chi2, tol, c.id)
        expectAgree("p_value", r.pValue, x.pValue, tol, c.id)
        #expect(r.df == x.df)
        #expect(r.mismatch == x.mismatch)
    }
}

// MARK: stats.adjust

enum AdjustReference {
    struct Input: Decodable, Sendable { let pValues: [Double]; let method: String; let alpha: Double? }
    struct Expected: Decodable, Sendable { let adjusted: [Double]; let reject: [Bool] }
}
typealias AdjustCase = ReferenceCase<AdjustReference.Input, AdjustReference.Expected>

@Suite("Reference: stats.adjust")
struct ReferenceAdjustTests {
    static let cases: [AdjustCase] = Reference.load("adjust")

    @Test(arguments: cases)
    func matchesReference(_ c: AdjustCase) throws {
        let method = try #require(AdjustmentMethod(rawValue: c.input.method))
        let run = { () throws(StatisticsError) in try MultipleTesting.adjust(pValues: c.input.pValues, method: method, alpha: c.input.alpha ?? 0.05) }
        if let e = c.error { expectError(e.field, c.id, run); return }
        let x = try #require(c.expected), tol = try #require(c.tol)
        let r = try run()
        #expect(r.adjusted.count == x.adjusted.count)
        for (i, (a, e)) in zip(r.adjusted, x.adjusted).enumerated() { expectAgree("adjusted[\(i)]", a, e, tol, c.id) }
        #expect(r.reject == x.reject, "\(c.id) reject")
    }
}

// MARK: stats.sample_size, stats.power, stats.mde

struct PowerCase: Decodable, Sendable, CustomTestStringConvertible {
    struct Baseline: Decodable, Sendable { let rate: Double?; let mean: Double?; let sd: Double? }
    struct MDE: Decodable, Sendable { let absolute: Double?; let relative: Double? }
    struct Input: Decodable, Sendable {
        let metric: String
        let baseline: Baseline
        let mde: MDE?
        let alpha: Double
        let power: Double?
        let nControl: Double?
        let alternative: String
        let ratio: Double?
        let formula: String?
    }
    struct Expected: Decodable, Sendable {
        let control: Double?
        let treatment: Double?
        let total: Double?
        let controlCeil: Int?
        let treatmentCeil: Int?
        let power: Double?
        let absolute: Double?
        let relative: Double?
    }
    let id: String
    let kind: String
    let tol: Tolerance?
    let input: Input
    let expected: Expected?
    let error: ExpectedError?
    var testDescription: String { id }

    var effect: Effect { input.mde?.absolute.map(Effect.absolute) ?? .relative(input.mde?.relative ?? .nan) }
    var alternative: PowerAlternative { PowerAlternative(rawValue: input.alternative)! }

    func sampleSize() throws(StatisticsError) -> SampleSize {
        let i = input
        if i.metric == "binomial" {
            return try PowerAnalysis.proportions(baseline: i.baseline.rate!, mde: effect, alpha: i.alpha, power: i.power!, alternative: alternative,
                                                 ratio: i.ratio ?? 1, formula: ProportionFormula(rawValue: i.formula ?? "classic")!)
        }
        return try PowerAnalysis.means(mean: i.baseline.mean!, sd: i.baseline.sd!, mde: effect, alpha: i.alpha, power: i.power!, alternative: alternative,
                                       ratio: i.ratio ?? 1, formula: MeanFormula(rawValue: i.formula ?? "normal")!)
    }

    func power() throws(StatisticsError) -> Double {
        let i = input
        if i.metric == "binomial" {
            return try PowerAnalysis.proportionsPower(baseline: i.baseline.rate!, mde: effect, nControl: i.nControl!, alpha: i.alpha, alternative: alternative,
                                                      ratio: i.ratio ?? 1, formula: ProportionFormula(rawValue: i.formula ?? "classic")!)
        }
        return try PowerAnalysis.meansPower(mean: i.baseline.mean!, sd: i.baseline.sd!, mde: effect, nControl: i.nControl!, alpha: i.alpha,
                                            alternative: alternative, ratio: i.ratio ?? 1, formula: MeanFormula(rawValue: i.formula ?? "normal")!)
    }

    func mde() throws(StatisticsError) -> DetectableEffect {
        let i = input
        if i.metric == "binomial" {
            return try PowerAnalysis.proportionsMDE(baseline: i.baseline.rate!, nControl: i.nControl!, alpha: i.alpha, power: i.power!, alternative: alternative,
                                                    ratio: i.ratio ?? 1, formula: ProportionFormula(rawValue: i.formula ?? "classic")!)
        }
        return try PowerAnalysis.meansMDE(mean: i.baseline.mean!, sd: i.baseline.sd!, nControl: i.nControl!, alpha: i.alpha, power: i.power!,
                                          alternative: alternative, ratio: i.ratio ?? 1, formula: MeanFormula(rawValue: i.formula ?? "normal")!)
    }
}

@Suite("Reference: stats.sample_size / stats.power / stats.mde")
struct ReferencePowerTests {
    static let cases: [PowerCase] = Reference.load("power")

    @Test(arguments: cases)
    func matchesReference(_ c: PowerCase) throws {
        switch c.kind {
        case "sample_size":
            if let e = c.error { expectError(e.field, c.id) { () throws(StatisticsError) in try c.sampleSize() }; return }
            let x = try #require(c.expected), tol = try #require(c.tol)
            let s = try c.sampleSize()
            expectAgree("control", s.control, x.control, tol, c.id)
            expectAgree("treatment", s.treatment, x.treatment, tol, c.id)
            expectAgree("total", s.total, x.total, tol, c.id)
            // Rounding up happens only at the end; allow the reference's own ceil to differ only at an exact boundary.
            if let cc = x.controlCeil, abs(s.control - s.control.rounded()) > 1e-6 { #expect(s.controlCeil == cc, "\(c.id) control_ceil") }
            if let tc = x.treatmentCeil, abs(s.treatment - s.treatment.rounded()) > 1e-6 { #expect(s.treatmentCeil == tc, "\(c.id) treatment_ceil") }
        case "power":
            let x = try #require(c.expected)
            expectAgree("power", try c.power(), x.power, try #require(c.tol), c.id)
        default:
            if let e = c.error { expectError(e.field, c.id) { () throws(StatisticsError) in try c.mde() }; return }
            let x = try #require(c.expected), tol = try #require(c.tol)
            let m = try c.mde()
            expectAgree("absolute", m.absolute, x.absolute, tol, c.id)
            expectAgree("relative", m.relative, x.relative, tol, c.id)
        }
    }
}

// MARK: stats.mann_whitney

enum MannWhitneyReference {
    struct Input: Decodable, Sendable {
        let control: [Double]
        let treatment: [Double]
        let alternative: String?
        let useContinuity: Bool?
        let method: String?

        func run() throws(StatisticsError) -> MannWhitneyResult {
            try MannWhitney.test(control: control, treatment: treatment,
                                 alternative: Alternative(rawValue: alternative ?? "two-sided")!,
                                 useContinuity: useContinuity ?? true,
                                 method: MannWhitneyMethod(rawValue: method ?? "asymptotic")!)
        }
    }
    struct Expected: Decodable, Sendable { let uTreatment: Double; let uControl: Double; let pValue: Double }
}
typealias MannWhitneyCase = ReferenceCase<MannWhitneyReference.Input, MannWhitneyReference.Expected>

@Suite("Reference: stats.mann_whitney")
struct ReferenceMannWhitneyTests {
    static let cases: [MannWhitneyCase] = Reference.load("mann_whitney")

    @Test(arguments: cases)
    func matchesReference(_ c: MannWhitneyCase) throws {
        if let e = c.error { expectError(e.field, c.id) { () throws(StatisticsError) in try c.input.run() }; return }
        let x = try #require(c.expected), tol = try #require(c.tol)
        let r = try c.input.run()
        #expect(r.uTreatment == x.uTreatment && r.uControl == x.uControl, "\(c.id) U")
        expectAgree("p_value", r.pValue, x.pValue, tol, c.id)
    }
}

/// P(p_t > p_c) equals, with successes and failures exchanged (and the prior's α and β), P(p_c' > p_t'):
/// posteriors crowded against 1 must give what their mirror images near 0 give, where doubles are dense.
@Suite("stats.chance_to_beat near a rate of 1")
struct ChanceToBeatMirrorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let nC: Double, sC: Double, nT: Double, sT: Double, alpha: Double, beta: Double
        var testDescription: String { "control \(sC)/\(nC), treatment \(sT)/\(nT), prior \(alpha)/\(beta)" }
    }
    static let cases: [Case] = [
        Case(nC: 1e9, sC: 1e9, nT: 1e9, sT: 1e9 - 3, alpha: 0.5, beta: 0.5),
        Case(nC: 1e9, sC: 1e9 - 20, nT: 2e9, sT: 2e9 - 30, alpha: 0.5, beta: 0.5),
        Case(nC: 5e8, sC: 5e8 - 1000, nT: 5e8, sT: 5e8 - 1100, alpha: 1.5, beta: 0.7),
        Case(nC: 3e7, sC: 3e7 - 400, nT: 3e7, sT: 3e7 - 330, alpha: 0.5, beta: 2.5),
    ]

    @Test(arguments: cases)
    func mirroredInputsAgree(_ c: Case) throws {
        let (nC, sC, nT, sT, alpha, beta) = (c.nC, c.sC, c.nT, c.sT, c.alpha, c.beta)
        let nearOne = try BayesianBinomial.chanceToBeat(control: BinomialArm(n: nC, successes: sC), treatment: BinomialArm(n: nT, successes: sT),
                                                        prior: BetaPrior(alpha: alpha, beta: beta))
        // Failures become successes; the arms swap because the order of the rates flips.
        let nearZero = try BayesianBinomial.chanceToBeat(control: BinomialArm(n: nT, successes: nT - sT), treatment: BinomialArm(n: nC, successes: nC - sC),
                                                         prior: BetaPrior(alpha: beta, beta: alpha))
        #expect(abs(nearOne - nearZero) <= 1e-9 * max(nearZero, 1e-300), "\(nearOne) vs \(nearZero)")
        #expect(nearZero > 0 && nearZero < 1)
    }
}

// MARK: heterogeneity across segments (results.segments)

enum HeterogeneityReference {
    struct Input: Decodable, Sendable { let estimates: [Double]; let standardErrors: [Double]; let pValues: [Double] }
    struct Expected: Decodable, Sendable { let q: Double; let df: Double; let pValue: Double; let pooled: Double; let bhAdjusted: [Double]; let bhReject: [Bool] }
}
typealias HeterogeneityCase = ReferenceCase<HeterogeneityReference.Input, HeterogeneityReference.Expected>

@Suite("Reference: Cochran's Q and Benjamini-Hochberg across segments")
struct ReferenceHeterogeneityTests {
    static let cases: [HeterogeneityCase] = Reference.load("heterogeneity")

    @Test(arguments: cases)
    func matchesReference(_ c: HeterogeneityCase) throws {
        let run = { () throws(StatisticsError) in try Heterogeneity.cochranQ(estimates: c.input.estimates, standardErrors: c.input.standardErrors) }
        if let e = c.error { expectError(e.field, c.id, run); return }
        let x = try #require(c.expected), tol = try #require(c.tol)
        let r = try run()
        expectAgree("q", r.q, x.q, tol, c.id)
        expectAgree("p_value", r.pValue, x.pValue, tol, c.id)
        expectAgree("pooled", r.pooled, x.pooled, tol, c.id)
        #expect(r.df == x.df)
        let bh = try MultipleTesting.adjust(pValues: c.input.pValues, method: .bh, alpha: 0.05)
        for (a, b) in zip(bh.adjusted, x.bhAdjusted) { expectAgree("bh", a, b, tol, c.id) }
        #expect(bh.reject == x.bhReject, "\(c.id)")
    }
}
