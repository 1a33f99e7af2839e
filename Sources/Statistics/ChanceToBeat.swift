internal import CGSL

/// Beta prior shared by both arms of ``BayesianBinomial/chanceToBeat(control:treatment:prior:)``.
public struct BetaPrior: Sendable, Equatable {
    public var alpha: Double
    public var beta: Double
    public init(alpha: Double = 1, beta: Double = 1) {
        self.alpha = alpha
        self.beta = beta
    }
}

/// Exact Bayesian comparison of two conversion rates (`stats.chance_to_beat`).
public enum BayesianBinomial {
    /// The largest arm `chanceToBeat` computes exactly (documented in the README).
    public static let maxUnitsPerArm = 1e12

    /// P(p_treatment > p_control) under independent Beta(α + successes, β + failures) posteriors.
    ///
    /// Evan Miller's closed form (https://www.evanmiller.org/bayesian-ab-testing.html#binary_ab_derivation):
    /// `P = Σ_{i=0}^{α_t−1} B(α_c + i, β_c + β_t) / ((β_t + i) B(1 + i, β_t) B(α_c, β_c))`,
    /// evaluated in log space with GSL's `gsl_sf_lnbeta`. The sum runs over whichever of the four posterior
    /// parameters is an integer with the fewest terms (the other three forms follow by symmetry:
    /// p ↔ 1 − p and swapping arms). When no parameter is an integer, or every form would need more than
    /// 10⁶ terms, the probability is the integral ∫ f_c(x) (1 − F_t(x)) dx by GSL adaptive quadrature
    /// (relative accuracy about 1e-9, also with billions of units per arm; see ``integral(aC:bC:aT:bT:)``).
    ///
    /// ```swift
    /// let p = try BayesianBinomial.chanceToBeat(control: .init(n: 1000, successes: 100),
    ///                                           treatment: .init(n: 1000, successes: 120))
    /// ```
    /// - Throws: ``StatisticsError`` for `control.n`, `treatment.successes`, `prior.alpha`, `prior.beta`.
    public static func chanceToBeat(control: BinomialArm, treatment: BinomialArm, prior: BetaPrior = BetaPrior()) throws(StatisticsError) -> Double {
        GSL.ensureInitialized()
        let c = try ABTest.binomial(control, "control", minN: 0)
        let t = try ABTest.binomial(treatment, "treatment", minN: 0)
        _ = (c, t)
        // The exact integral's cost grows with the posteriors' concentration; past this size it would run for
        // minutes, so the limit is stated rather than the CPU spent.
        for (arm, field) in [(control, "control.n"), (treatment, "treatment.n")] where arm.n > maxUnitsPerArm {
            throw StatisticsError(field: field, reason: "\(arm.n) units exceed the limit of 1e12 per arm for the exact chance to beat; at that size use stats.compare (the normal approximation is exact to many digits)")
        }
        let a0 = try Check.positive(prior.alpha, "prior.alpha")
        let b0 = try Check.positive(prior.beta, "prior.beta")
        let aC = control.successes + a0, bC = control.n - control.successes + b0
        let aT = treatment.successes + a0, bT = treatment.n - treatment.successes + b0
        for (v, f) in [(aC, "control.successes"), (bC, "control.n"), (aT, "treatment.successes"), (bT, "treatment.n")] {
            guard v < 2 * maxUnitsPerArm else { throw StatisticsError(field: f, reason: "the posterior parameter \(v) exceeds 2e12; use a smaller prior") }
            _ = try Check.result(v, f, "posterior parameter")
        }
        /// Σ_{i=0}^{a1−1} B(a2 + i, b2 + b1) / ((b1 + i) B(1 + i, b1) B(a2, b2)) = P(X > Y), X ~ Beta(a1, b1), Y ~ Beta(a2, b2).
        func miller(_ a1: Double, _ b1: Double, _ a2: Double, _ b2: Double) -> Double {
            let base = Special.lnBeta(a2, b2)
            var sum = 0.0
            var i = 0.0
            while i < a1 {
                sum += Special.exp(Special.lnBeta(a2 + i, b2 + b1) - Special.log(b1 + i) - Special.lnBeta(1 + i, b1) - base)
                i += 1
            }
            return sum
        }
        let limit = 1e6
        func usable(_ x: Double) -> Bool { x == x.rounded() && x <= limit }
        // Candidate forms: (terms, evaluation). P(t > c) = P(1 − p_c > 1 − p_t).
        var forms: [(Double, () -> Double)] = []
        if usable(aT) { forms.append((aT, { miller(aT, bT, aC, bC) })) }
        if usable(bC) { forms.append((bC, { miller(bC, aC, bT, aT) })) }
        if usable(aC) { forms.append((aC, { 1 - miller(aC, bC, aT, bT) })) }
        if usable(bT) { forms.append((bT, { 1 - miller(bT, aT, bC, aC) })) }
        let p: Double
        if let best = forms.min(by: { $0.0 < $1.0 }) {
            p = best.1()
        } else {
            p = try integral(aC: aC, bC: bC, aT: aT, bT: bT)
        }
        let clipped = min(max(p, 0), 1)
        return try Check.result(clipped, "control.n", "chance to beat control")
    }

    /// ∫ f_c(x) · P(p_t > x) dx over the bulk of the control posterior.
    ///
    /// Both posteriors are used as densities relative to their means (see ``ConcentratedBeta``), so no
    /// log-gamma of huge arguments is needed. P(p_t > x) comes from GSL's Beta distribution while it is
    /// accurate (α + β up to 10⁷); beyond, GSL's incomplete beta stops converging, and it is the treatment
    /// density's own upper-tail integral, computed directly so a tiny tail keeps its relative accuracy.
    static func integral(aC: Double, bC: Double, aT: Double, bT: Double) throws(StatisticsError) -> Double {
        // Doubles are dense near 0 and sparse near 1: a posterior crowded against 1 is integrated mirrored,
        // P(p_t > p_c) = P(1 − p_c > 1 − p_t), with 1 − p ~ Beta(b, a).
        if aC / (aC + bC) > 0.5 {
            return try probabilityGreater(outer: (bT, aT, "treatment.n"), inner: (bC, aC, "control.n"))
        }
        return try probabilityGreater(outer: (aC, bC, "control.n"), inner: (aT, bT, "treatment.n"))
    }

    /// P(inner > outer) = ∫ f_outer(x) · P(inner > x) dx over the bulk of the outer posterior.
    private static func probabilityGreater(outer: (a: Double, b: Double, field: String),
                                           inner: (a: Double, b: Double, field: String)) throws(StatisticsError) -> Double {
        let density = try ConcentratedBeta(a: outer.a, b: outer.b, field: outer.field)
        let failure = FailureBox()
        let survival: (Double) -> Double
        if inner.a + inner.b <= 1e7 {
            survival = { x in gsl_cdf_beta_Q(x, inner.a, inner.b) }
        } else {
            let tail = try ConcentratedBeta(a: inner.a, b: inner.b, field: inner.field)
            survival = { x in
                do throws(StatisticsError) { return try tail.upperTail(x) } catch { failure.error = failure.error ?? error; return 0 }
            }
        }
        var total = 0.0
        for (a, b) in zip(density.cuts, density.cuts.dropFirst()) where b > a {
            let singular = (a == 0 && outer.a < 1) || (b == 1 && outer.b < 1)
            total += try GSL.integrate(field: outer.field, from: a, to: b, relativeTolerance: 1e-12, absoluteTolerance: 1e-300,
                                       acceptableRelativeError: 1e-9, singular: singular) { x in
                density.density(x) * survival(x)
            }
        }
        if let error = failure.error { throw error }
        return total / density.mass
    }

    /// The first failure inside an integrand (which cannot throw), reported under the right field.
    private final class FailureBox: @unchecked Sendable { var error: StatisticsError? }
}

/// A Beta(a, b) posterior with large parameters, as a density relative to its mean,
/// `exp((a−1)·log1p(δ/m) + (b−1)·log1p(−δ/(1−m)))` with δ = x − m, normalised by its integral over the
/// bulk (mean ± 40 sd, clipped to [0, 1], in pieces at ±5 sd); outside the bulk the density is below e⁻⁷⁰⁰.
struct ConcentratedBeta {
    let a: Double, b: Double, mean: Double
    let cuts: [Double]
    /// ∫ of ``density(_:)`` over the bulk.
    private(set) var mass = 0.0
    let field: String

    init(a: Double, b: Double, field: String) throws(StatisticsError) {
        self.a = a; self.b = b; self.field = field
        mean = a / (a + b)
        let sd = (a * b / ((a + b) * (a + b) * (a + b + 1))).squareRoot()
        cuts = [max(0, mean - 40 * sd), max(0, mean - 5 * sd), mean, min(1, mean + 5 * sd), min(1, mean + 40 * sd)]
        for (lo, hi) in zip(cuts, cuts.dropFirst()) where hi > lo {
            mass += try piece(lo, hi)
        }
    }

    func density(_ x: Double) -> Double {
        let d = x - mean
        let logRatio = (a - 1) * Special.log1p(d / mean) + (b - 1) * Special.log1p(-d / (1 - mean))
        return logRatio.isFinite ? Special.exp(logRatio) : 0
    }

    /// P(p > x).
    func upperTail(_ x: Double) throws(StatisticsError) -> Double {
        guard x > cuts.first! else { return 1 }
        guard x < cuts.last! else { return 0 }
        var tail = 0.0
        for (lo, hi) in zip(cuts, cuts.dropFirst()) where hi > x {
            tail += try piece(max(lo, x), hi)
        }
        return min(1, tail / mass)
    }

    private func piece(_ lo: Double, _ hi: Double) throws(StatisticsError) -> Double {
        guard hi > lo else { return 0 }
        let f = self
        // A parameter below 1 makes the density unbounded at 0 or 1.
        let singular = (lo == 0 && a < 1) || (hi == 1 && b < 1)
        return try GSL.integrate(field: field, from: lo, to: hi, relativeTolerance: 1e-12, absoluteTolerance: 1e-300,
                                 acceptableRelativeError: 1e-9, singular: singular) { x in f.density(x) }
    }
}
