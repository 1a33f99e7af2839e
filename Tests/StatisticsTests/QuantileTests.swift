import Foundation
import Statistics
import Testing

/// Quantile comparisons against gbstats 0.8.0 and NumPy (Reference/quantiles.json, Scripts/reference/generate_quantiles.py),
/// and their coverage by simulation.
@Suite struct QuantileTests {
    struct Case: Decodable {
        let distribution: String
        let q: Double
        let difference: String
        let control: [Double]
        let treatment: [Double]
        let expected: Expected
        struct Expected: Decodable {
            let control: ArmValues
            let treatment: ArmValues
            let controlVariance: Double
            let treatmentVariance: Double
            let estimate: Double
            let se: Double
            let ci: [Double]
            let df: Double
            let pValue: Double
        }
        struct ArmValues: Decodable { let n: Double; let quantile: Double; let lower: Double; let upper: Double }
    }

    @Test func agreesWithGbstatsAndNumPy() throws {
        let cases = Reference.load("quantiles", as: Case.self)
        #expect(cases.count >= 40)
        for c in cases {
            let a = try Quantiles.arm(c.control, q: c.q), b = try Quantiles.arm(c.treatment, q: c.q)
            let id = "\(c.distribution) q=\(c.q) n=\(c.control.count) \(c.difference)"
            for (got, want) in [(a, c.expected.control), (b, c.expected.treatment)] {
                #expect(close(got.estimate, want.quantile, rel: 1e-12, abs: 1e-12) && close(got.lower, want.lower, rel: 1e-12, abs: 1e-12)
                        && close(got.upper, want.upper, rel: 1e-12, abs: 1e-12), "\(id): sample quantiles \(got) vs \(want)")
            }
            #expect(close(a.variance, c.expected.controlVariance, rel: 1e-9) && close(b.variance, c.expected.treatmentVariance, rel: 1e-9), "\(id)")
            let r = try Quantiles.compare(control: a, treatment: b, options: CompareOptions(difference: c.difference == "relative" ? .relative : .absolute))
            #expect(close(r.estimate, c.expected.estimate, rel: 1e-9, abs: 1e-12), "\(id): estimate \(r.estimate) vs \(c.expected.estimate)")
            #expect(close(r.se, c.expected.se, rel: 1e-9), "\(id): se")
            #expect(close(r.ci.lower ?? .nan, c.expected.ci[0], rel: 1e-8, abs: 1e-10) && close(r.ci.upper ?? .nan, c.expected.ci[1], rel: 1e-8, abs: 1e-10), "\(id): ci")
            #expect(close(r.df ?? .nan, c.expected.df, rel: 1e-9), "\(id): df")
            if c.expected.pValue > 1e-6 { #expect(close(r.pValue ?? .nan, c.expected.pValue, rel: 1e-7), "\(id): p \(r.pValue ?? .nan) vs \(c.expected.pValue)") }
        }
    }

    @Test func refusesWhatItCannotEstimate() {
        #expect(throws: StatisticsError.self) { try Quantiles.arm([1, 2, 3], q: 1) }
        #expect(throws: StatisticsError.self) { try Quantiles.arm([], q: 0.5) }
        // q = 0.99 needs more than 380 units per arm.
        let few = try! Quantiles.arm((0..<100).map(Double.init), q: 0.99)
        #expect(throws: StatisticsError(field: "control", reason: "has 100 units; the 0.99 quantile's interval needs at least 381")) {
            try Quantiles.compare(control: few, treatment: few)
        }
        let ties = try! Quantiles.arm([Double](repeating: 3, count: 500), q: 0.5)
        #expect(throws: StatisticsError.self) { try Quantiles.compare(control: ties, treatment: ties) }
    }

    /// 2,000 simulated experiments per configuration: the 95% interval of the q-quantile difference covers the true
    /// difference 94–96% of the time (lognormal and Pareto-tailed values; A/A and A/B, the treatment scaled by 5%).
    /// With 2,000 units per arm: at 600 the order-statistic interval is a little conservative at q = 0.9 (96.1–96.5%),
    /// at 1,000 it reads 93.8–96% (within the simulation's own noise of ±1%).
    @Test(arguments: [("lognormal", 0.5), ("lognormal", 0.9), ("pareto", 0.5), ("pareto", 0.9)])
    func intervalsCoverTheTrueDifference(distribution: String, q: Double) throws {
        let rng = GSLRandom(seed: 7)
        let n = 2000
        func draw(_ scale: Double) -> [Double] {
            (0..<n).map { _ in
                distribution == "lognormal" ? exp(3 + rng.normal()) * scale
                    : 10 * pow(1 - rng.uniform(), -1 / 2.5) * scale   // Pareto(x_m = 10, α = 2.5)
            }
        }
        let trueQuantile = distribution == "lognormal" ? exp(3 + Normal.quantile(q)) : 10 * pow(1 - q, -1 / 2.5)
        for effect in [1.0, 1.05] {
            var covered = 0
            let runs = 2000
            for _ in 0..<runs {
                let r = try Quantiles.compare(control: Quantiles.arm(draw(1), q: q), treatment: Quantiles.arm(draw(effect), q: q))
                let truth = trueQuantile * (effect - 1)
                if let lo = r.ci.lower, let hi = r.ci.upper, lo <= truth, truth <= hi { covered += 1 }
            }
            let share = Double(covered) / Double(runs)
            #expect(share >= 0.94 && share <= 0.96, "\(distribution) q=\(q) effect \(effect): \(share)")
        }
    }
}

extension QuantileTests {
    /// The same simulation from sketches small enough to compact at 2,000 units (k = 128): the interval, widened by
    /// the sketch's expected rank error, still covers 94–96% of the time (with the bound's variance instead, 96–97.7%:
    /// too wide).
    @Test(arguments: [("lognormal", 0.5), ("lognormal", 0.9), ("pareto", 0.5), ("pareto", 0.9)])
    func sketchIntervalsCoverTheTrueDifference(distribution: String, q: Double) throws {
        let rng = GSLRandom(seed: 8)
        let n = 2000
        func draw(_ scale: Double) -> QuantileSketch.View {
            var s = QuantileSketch(k: 128, seed: rng.next())
            for _ in 0..<n {
                s.insert(distribution == "lognormal" ? exp(3 + rng.normal()) * scale : 10 * pow(1 - rng.uniform(), -1 / 2.5) * scale)
            }
            return s.view()
        }
        let trueQuantile = distribution == "lognormal" ? exp(3 + Normal.quantile(q)) : 10 * pow(1 - q, -1 / 2.5)
        for effect in [1.0, 1.05] {
            var covered = 0
            let runs = 4000   // twice the 2,000: the share's own noise is then ±0.7% (two standard errors)
            for _ in 0..<runs {
                let c = draw(1), t = draw(effect)
                let r = try Quantiles.compare(control: Quantiles.arm(c, q: q), treatment: Quantiles.arm(t, q: q))
                let truth = trueQuantile * (effect - 1)
                if let lo = r.ci.lower, let hi = r.ci.upper, lo <= truth, truth <= hi { covered += 1 }
            }
            let share = Double(covered) / Double(runs)
            #expect(share >= 0.94 && share <= 0.96, "\(distribution) q=\(q) effect \(effect): \(share)")
        }
    }
}
