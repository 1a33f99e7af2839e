import Testing
import Statistics

/// Every worked example of `shared/reference/STATISTICS.md` (R, SciPy and statsmodels documentation).
/// Treatment/control follow our convention (difference = treatment − control); see each test.
@Suite("Published examples (STATISTICS.md)")
struct PublicExamplesTests {
    // MARK: Power and sample size

    @Test("#1 power.prop.test(n = 50, p1 = .50, p2 = .75) power = 0.7401659")
    func example1() throws {
        let power = try PowerAnalysis.proportionsPower(baseline: 0.5, mde: .absolute(0.25), nControl: 50, alpha: 0.05)
        #expect(matchesPrinted(power, 0.7401659, decimals: 7))
    }

    @Test("#2 power.prop.test(p1 = .50, p2 = .75, power = .90) n = 76.70693")
    func example2() throws {
        let s = try PowerAnalysis.proportions(baseline: 0.5, mde: .absolute(0.25), alpha: 0.05, power: 0.9)
        #expect(matchesPrinted(s.control, 76.70693, decimals: 5))
        #expect(close(s.control, 76.706928, rel: 1e-6))
        #expect(s.controlCeil == 77 && s.treatmentCeil == 77 && s.totalCeil == 154)
        // The Cohen's h alternative documented beside it.
        let h = try PowerAnalysis.proportions(baseline: 0.5, mde: .absolute(0.25), alpha: 0.05, power: 0.9, formula: .cohenH)
        #expect(matchesPrinted(h.control, 76.65294, decimals: 5))
    }

    @Test("#3 power.prop.test(n = 50, p1 = .5, power = .90) p2 = 0.8026141")
    func example3() throws {
        let e = try PowerAnalysis.proportionsMDE(baseline: 0.5, nControl: 50, alpha: 0.05, power: 0.9)
        // R solves with uniroot(tol = eps^0.25), so its printed root is only good to about 1e-5.
        #expect(abs(0.5 + e.absolute - 0.8026141) < 2e-5)
        #expect(close(e.relative ?? .nan, e.absolute / 0.5, rel: 1e-12))
        // Our root is exact: plugging it back gives the requested power.
        let back = try PowerAnalysis.proportionsPower(baseline: 0.5, mde: .absolute(e.absolute), nControl: 50, alpha: 0.05)
        #expect(close(back, 0.9, rel: 1e-10))
    }

    @Test("#4 power.t.test(n = 20, delta = 1) power = 0.8689528")
    func example4() throws {
        let p = try PowerAnalysis.meansPower(mean: 0, sd: 1, mde: .absolute(1), nControl: 20, alpha: 0.05, formula: .t)
        #expect(matchesPrinted(p, 0.8689528, decimals: 7))
    }

    @Test("#5 power.t.test(power = .90, delta = 1) n = 22.02110")
    func example5() throws {
        let s = try PowerAnalysis.means(mean: 0, sd: 1, mde: .absolute(1), alpha: 0.05, power: 0.9, formula: .t)
        #expect(abs(s.control - 22.02110) < 1e-4) // R's uniroot tolerance
        #expect(s.controlCeil == 23)
    }

    @Test("#6 power.t.test(power = .90, delta = 1, alternative = one.sided) n = 17.84713")
    func example6() throws {
        let s = try PowerAnalysis.means(mean: 0, sd: 1, mde: .absolute(1), alpha: 0.05, power: 0.9, alternative: .oneSided, formula: .t)
        #expect(abs(s.control - 17.84713) < 1e-4)
        #expect(s.controlCeil == 18)
    }

    // MARK: Two-sample tests

    @Test("#7 Welch t-test on R's sleep data")
    func example7() throws {
        // Treatment = group 1, control = group 2, so treatment − control = mean1 − mean2 as in R.
        let r = try ABTest.compare(.continuous(control: .moments(n: 10, mean: 2.33, variance: 4.009),
                                               treatment: .moments(n: 10, mean: 0.75, variance: 3.200556)))
        #expect(matchesPrinted(r.statistic, -1.8608, decimals: 4))
        #expect(matchesPrinted(r.df ?? .nan, 17.776, decimals: 3))
        #expect(matchesPrinted(r.pValue ?? .nan, 0.07939, decimals: 5))
        #expect(matchesPrinted(r.ci.lower ?? .nan, -3.3654832, decimals: 6)) // variances are rounded in the table
        #expect(matchesPrinted(r.ci.upper ?? .nan, 0.2054832, decimals: 6))
        #expect(r.df != nil && !r.significant && r.difference == .absolute)
    }

    @Test("#7 Welch t-test from the raw sleep data via sums")
    func example7Raw() throws {
        let g1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
        let g2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
        func arm(_ x: [Double]) -> ContinuousArm { .sums(n: Double(x.count), sum: x.reduce(0, +), sumSquares: x.reduce(0) { $0 + $1 * $1 }) }
        let r = try ABTest.compare(.continuous(control: arm(g2), treatment: arm(g1)))
        #expect(matchesPrinted(r.ci.lower ?? .nan, -3.3654832, decimals: 7))
        #expect(matchesPrinted(r.ci.upper ?? .nan, 0.2054832, decimals: 7))
        #expect(matchesPrinted(r.pValue ?? .nan, 0.07939, decimals: 5))
    }

    @Test("#8 Student t from summary statistics")
    func example8() throws {
        let r = try ABTest.compare(.continuous(control: .moments(n: 11, mean: 12.0, variance: 39.0),
                                               treatment: .moments(n: 13, mean: 15.0, variance: 87.5)),
                                   options: CompareOptions(test: .student))
        #expect(close(r.statistic, 0.9051358093310269, rel: 1e-9))
        #expect(close(r.pValue ?? .nan, 0.3751996797581487, rel: 1e-9))
        #expect(r.df == 22)
    }

    @Test("#9 Student t on binary data")
    func example9() throws {
        let r = try ABTest.compare(.continuous(control: .moments(n: 200, mean: 0.225, variance: 0.175251),
                                               treatment: .moments(n: 150, mean: 0.2, variance: 0.161073)),
                                   options: CompareOptions(test: .student))
        #expect(close(r.statistic, -0.5627187905196761, rel: 1e-9))
        #expect(close(r.pValue ?? .nan, 0.5739887114209541, rel: 1e-9))
    }

    @Test("#10 two-proportion z-test, pooled: 5/83 vs 12/99")
    func example10() throws {
        let r = try ABTest.compare(.binomial(control: BinomialArm(n: 99, successes: 12), treatment: BinomialArm(n: 83, successes: 5)))
        #expect(matchesPrinted(r.statistic, -1.40783, decimals: 5))
        #expect(matchesPrinted(r.pValue ?? .nan, 0.1591813, decimals: 7))
        #expect(matchesPrinted(r.pValue ?? .nan, 0.159, decimals: 3))
        #expect(r.df == nil)
    }

    @Test("#11 one-sample proportion z-test: 5/83 against 0.05")
    func example11() throws {
        let r = try ABTest.oneSampleProportion(BinomialArm(n: 83, successes: 5), value: 0.05)
        #expect(matchesPrinted(r.pValue, 0.695, decimals: 3))
    }

    // MARK: Rank test

    @Test("#12 mannwhitneyu x = 19,22,16,29,24 vs y = 20,11,17,12")
    func example12() throws {
        let x: [Double] = [19, 22, 16, 29, 24], y: [Double] = [20, 11, 17, 12]
        let cc = try MannWhitney.test(control: y, treatment: x)
        #expect(cc.uTreatment == 17 && cc.uControl == 3)
        #expect(close(cc.pValue, 0.11134688653314041, rel: 1e-9))
        let plain = try MannWhitney.test(control: y, treatment: x, useContinuity: false)
        #expect(close(plain.pValue, 0.0864107329737, rel: 1e-9))
        let exact = try MannWhitney.test(control: y, treatment: x, method: .exact)
        #expect(close(exact.pValue, 0.1111111111111111, rel: 1e-12))
    }

    @Test("#13 wilcox.test(x, y, alternative = greater): W = 35, exact p = 0.1272")
    func example13() throws {
        let x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
        let y = [1.15, 0.88, 0.90, 0.74, 1.21]
        let r = try MannWhitney.test(control: y, treatment: x, alternative: .greater, method: .exact)
        #expect(r.uTreatment == 35)
        #expect(matchesPrinted(r.pValue, 0.1272, decimals: 4))
    }

    // MARK: Sample-ratio checks

    @Test("#14 chisq.test(c(20, 15, 25))")
    func example14() throws {
        let r = try SRM.check(observed: [20, 15, 25], weights: [1, 1, 1])
        #expect(close(r.chi2, 2.5, rel: 1e-12))
        #expect(r.df == 2)
        #expect(matchesPrinted(r.pValue, 0.2865, decimals: 4))
        #expect(!r.mismatch)
    }

    @Test("#15 chisq.test(c(89, 37, 30, 28, 2), p = c(40, 20, 20, 15, 5), rescale.p = TRUE)")
    func example15() throws {
        let r = try SRM.check(observed: [89, 37, 30, 28, 2], weights: [40, 20, 20, 15, 5])
        #expect(matchesPrinted(r.chi2, 9.9901, decimals: 4))
        #expect(r.df == 4)
        #expect(matchesPrinted(r.pValue, 0.04059, decimals: 5))
        #expect(!r.mismatch) // default threshold 0.001
        #expect(try SRM.check(observed: [89, 37, 30, 28, 2], weights: [40, 20, 20, 15, 5], threshold: 0.05).mismatch)
    }

    @Test("#16 chisquare([16, 18, 16, 14, 12, 12])")
    func example16() throws {
        let r = try SRM.check(observed: [16, 18, 16, 14, 12, 12], weights: [1, 1, 1, 1, 1, 1])
        #expect(close(r.chi2, 2.0, rel: 1e-12))
        #expect(close(r.pValue, 0.84914503608460956, rel: 1e-9))
    }

    @Test("#17 chisquare([16, 18, 16, 14, 12, 12], f_exp = [16, 16, 16, 16, 16, 8])")
    func example17() throws {
        let r = try SRM.check(observed: [16, 18, 16, 14, 12, 12], weights: [16, 16, 16, 16, 16, 8])
        #expect(close(r.chi2, 3.5, rel: 1e-12))
        #expect(close(r.pValue, 0.62338762774958223, rel: 1e-9))
    }
}
