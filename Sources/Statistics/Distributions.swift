internal import CGSL

/// Standard normal distribution, from GSL (`gsl_cdf_ugaussian_*`).
///
/// See https://www.gnu.org/software/gsl/doc/html/randist.html#the-gaussian-distribution
public enum Normal {
    /// Standard normal CDF Φ(x).
    public static func cdf(_ x: Double) -> Double { GSL.ensureInitialized(); return gsl_cdf_ugaussian_P(x) }
    /// Upper tail 1 − Φ(x), accurate in the tail.
    public static func sf(_ x: Double) -> Double { GSL.ensureInitialized(); return gsl_cdf_ugaussian_Q(x) }
    /// Quantile Φ⁻¹(p).
    public static func quantile(_ p: Double) -> Double { GSL.ensureInitialized(); return gsl_cdf_ugaussian_Pinv(p) }
    /// Upper quantile: x with 1 − Φ(x) = q, accurate for small q.
    public static func upperQuantile(_ q: Double) -> Double { GSL.ensureInitialized(); return gsl_cdf_ugaussian_Qinv(q) }
    /// Density φ(x).
    public static func pdf(_ x: Double) -> Double { GSL.ensureInitialized(); return gsl_ran_ugaussian_pdf(x) }
}

/// Student's t distribution, from GSL (`gsl_cdf_tdist_*`).
///
/// See https://www.gnu.org/software/gsl/doc/html/randist.html#the-t-distribution
public enum StudentT {
    public static func cdf(_ t: Double, df: Double) -> Double { GSL.ensureInitialized(); return gsl_cdf_tdist_P(t, df) }
    public static func sf(_ t: Double, df: Double) -> Double { GSL.ensureInitialized(); return gsl_cdf_tdist_Q(t, df) }
    public static func quantile(_ p: Double, df: Double) -> Double { GSL.ensureInitialized(); return gsl_cdf_tdist_Pinv(p, df) }
    /// Upper quantile: t with P(T > t) = q.
    public static func upperQuantile(_ q: Double, df: Double) -> Double { GSL.ensureInitialized(); return gsl_cdf_tdist_Qinv(q, df) }

    /// Upper tail of the noncentral t distribution, P(T > t) for T = (Z + δ)/√(V/ν).
    ///
    /// GSL has no noncentral t, so this integrates the normal tail against the density of S = √(V/ν),
    /// V ~ χ²(ν), with GSL's adaptive Gauss–Kronrod quadrature:
    /// `P(T > t) = ∫ Q(t·s − δ) f_S(s) ds`, `f_S(s) = 2νs · f_χ²(νs²; ν)`.
    /// Reference: https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.nct.html
    static func noncentralSF(_ t: Double, df nu: Double, noncentrality delta: Double) throws(StatisticsError) -> Double {
        GSL.ensureInitialized()
        let spread = (2 * nu).squareRoot()
        let lo = (max(0, nu - 60 * spread) / nu).squareRoot()
        let hi = ((nu + 60 * spread + 200) / nu).squareRoot()
        return try GSL.integrate(field: "power", from: lo, to: hi) { s in
            gsl_cdf_ugaussian_Q(t * s - delta) * 2 * nu * s * gsl_ran_chisq_pdf(nu * s * s, nu)
        }
    }
}

/// Chi-squared distribution, from GSL (`gsl_cdf_chisq_Q`).
public enum ChiSquared {
    public static func sf(_ x: Double, df: Double) -> Double { GSL.ensureInitialized(); return gsl_cdf_chisq_Q(x, df) }
}

/// Special functions from GSL used by the closed-form Bayesian computations.
enum Special {
    /// log B(a, b) (`gsl_sf_lnbeta`).
    static func lnBeta(_ a: Double, _ b: Double) -> Double { GSL.ensureInitialized(); return gsl_sf_lnbeta(a, b) }
    /// log Γ(x) (`gsl_sf_lngamma`).
    static func lnGamma(_ x: Double) -> Double { GSL.ensureInitialized(); return gsl_sf_lngamma(x) }
    static func log(_ x: Double) -> Double { gsl_sf_log(x) }
    static func exp(_ x: Double) -> Double { gsl_sf_exp(x) }
    static func log1p(_ x: Double) -> Double { gsl_log1p(x) }
    static func expm1(_ x: Double) -> Double { gsl_expm1(x) }
    static func asin(_ x: Double) -> Double { CGSL.asin(x) }
    static func sin(_ x: Double) -> Double { CGSL.sin(x) }
    static func pow(_ x: Double, _ y: Double) -> Double { CGSL.pow(x, y) }
}
