import Foundation
import Testing
import JSONCore
import TestSupport
import Statistics
@testable import Registry

/// The summary and its decision rules as a pure function of stored sums: no store, no clock.
@Suite struct AnalysisTests {
    func context(state: ExperimentState = .running) throws -> ResultsContext {
        let doc = try #require(ExperimentDocument.read(exampleExperiment()).0)
        let proto = try #require(shippedProtocols.protocols[doc.protocolName])
        let control = try #require(doc.variants.first { $0.isControl })
        return ResultsContext(state: state, plan: ["per_arm": 1000, "total_units": 2000], doc: doc, proto: proto, catalog: shippedProtocols.catalog,
                              control: control, treatments: doc.variants.filter { !$0.isControl })
    }

    func totals(_ c: ResultsContext, control: (Double, Double), treatment: (Double, Double)) -> [String: [String: Aggregate]] {
        let metric = c.doc.primaryMetric!
        return [metric: [c.control.key: .binomial(n: control.0, successes: control.1), c.treatments[0].key: .binomial(n: treatment.0, successes: treatment.1)]]
    }

    @Test func noDataKeepsRunningAndASampleRatioMismatchIsInvalid() throws {
        let c = try context()
        let end = c.doc.end!
        let empty = try Analysis.summarize(c, totals: [:], asOf: end)
        #expect(empty["decision"]?["recommendation"] == "keep_running")
        let skewed = try Analysis.summarize(c, totals: totals(c, control: (5000, 500), treatment: (4000, 600)), asOf: end)
        #expect(skewed["srm"]?["mismatch"] == true)
        #expect(skewed["decision"]?["recommendation"] == "invalid")
    }

    @Test func aClearWinAtTheEndShipsAndNamesTheVariant() throws {
        let c = try context()
        let s = try Analysis.summarize(c, totals: totals(c, control: (5000, 500), treatment: (5000, 700)), asOf: c.doc.end!)
        #expect(s["decision"]?["recommendation"] == "ship")
        #expect(s["decision"]?["reasons"]?.arrayValue?.first?.stringValue?.contains(c.treatments[0].key) == true)
        // The same sums read before the planned sample and the end: a fixed-horizon design keeps running.
        let early = try Analysis.summarize(c, totals: totals(c, control: (400, 40), treatment: (400, 80)), asOf: c.doc.start!.adding(days: 1))
        #expect(early["decision"]?["recommendation"] == "keep_running")
    }

    func comparisons(_ s: JSON, _ metric: String) -> [JSON] {
        s["metrics"]?.arrayValue?.first { $0["metric"]?.stringValue == metric }?["comparisons"]?.arrayValue ?? []
    }

    @Test func aFailedSampleRatioCheckMakesEveryLiftUnreadable() throws {
        let c = try context()
        var t = totals(c, control: (5000, 500), treatment: (4000, 700))
        t["crash_rate"] = ["control": .binomial(n: 5000, successes: 50), "green": .binomial(n: 4000, successes: 90)]
        let s = try Analysis.summarize(c, totals: t, asOf: c.doc.end!)
        let all = comparisons(s, "checkout_conversion") + comparisons(s, "crash_rate")
        #expect(all.count == 2 && all.allSatisfy { $0["readable"] == false && $0["not_readable_because"] == "sample ratio mismatch" })
        #expect(s["decision"]?["variant"] == .null)
    }

    @Test func guardrailsAreReadByTheirOwnTest() throws {
        let c = try context()
        func verdict(control: Double, treatment: Double, n: Double) throws -> JSON {
            var t = totals(c, control: (n, n / 10), treatment: (n, n / 10))
            t["crash_rate"] = ["control": .binomial(n: n, successes: control * n), "green": .binomial(n: n, successes: treatment * n)]
            return try #require(comparisons(try Analysis.summarize(c, totals: t, asOf: c.doc.end!), "crash_rate").first?["guardrail"])
        }
        // Two-sided significant (1.0% → 1.3%) yet within the 0.001 margin's test? No: 0.3 points is beyond it: harm.
        #expect(try verdict(control: 0.010, treatment: 0.013, n: 200_000)["verdict"] == "harm")
        // Significant two-sided (1.00% → 1.08%) but not beyond the margin: the label follows the guardrail test.
        let near = try verdict(control: 0.0100, treatment: 0.0108, n: 400_000)
        #expect(near["verdict"] == "inconclusive" || near["verdict"] == "no_harm")
        #expect(near["verdict"] != "harm" && (near["harm_p_value"]?.doubleValue ?? 0) > 0.05)
        // No change with many units: harm beyond the margin is ruled out.
        #expect(try verdict(control: 0.010, treatment: 0.010, n: 400_000)["verdict"] == "no_harm")
        #expect(try verdict(control: 0.010, treatment: 0.010, n: 400_000)["margin"] == 0.001)
    }

    @Test func cupedSaysThatItAdjustedAndByHowMuch() throws {
        let c = try context()
        var t = totals(c, control: (5000, 500), treatment: (5000, 520))
        // post = pre + noise: a strong covariate.
        t["revenue_per_user"] = [
            "control": .cuped(n: 1000, post: Moments(sum: 36_100, sumSquares: 1_400_000), pre: Moments(sum: 35_000, sumSquares: 1_330_000), postPre: 1_360_000),
            "green": .cuped(n: 1000, post: Moments(sum: 36_974, sumSquares: 1_460_000), pre: Moments(sum: 35_500, sumSquares: 1_370_000), postPre: 1_410_000),
        ]
        let r = try #require(comparisons(try Analysis.summarize(c, totals: t, asOf: c.doc.end!), "revenue_per_user").first)
        #expect(r["adjustment"]?["method"] == "cuped" && r["adjustment"]?["covariate"] == "revenue_per_user.pre")
        let reduction = try #require(r["adjustment"]?["variance_reduction"]?.doubleValue)
        #expect(reduction > 0 && reduction <= 1)
        #expect(abs((r["unadjusted_estimate"]?.doubleValue ?? 0) - 0.874) < 1e-9)
        #expect(r["estimate"] != r["unadjusted_estimate"])
        #expect(comparisons(try Analysis.summarize(c, totals: totals(c, control: (5000, 500), treatment: (5000, 520)), asOf: c.doc.end!), "checkout_conversion").first?["adjustment"] == .null)
    }

    @Test func severalArmsAreCorrectedAndTheDecisionNamesTheArm() throws {
        let three = exampleExperiment(["variants": [["key": "control", "weight": 0.34, "control": true], ["key": "green", "weight": 0.33], ["key": "blue", "weight": 0.33]]])
        let doc = try #require(ExperimentDocument.read(three).0)
        let base = try context()
        let c = ResultsContext(state: .running, plan: base.plan, doc: doc, proto: base.proto, catalog: base.catalog,
                               control: doc.variants[0], treatments: Array(doc.variants.dropFirst()))
        let t: [String: [String: Aggregate]] = ["checkout_conversion": ["control": .binomial(n: 6800, successes: 680),
                                                                        "green": .binomial(n: 6600, successes: 860), "blue": .binomial(n: 6600, successes: 760)]]
        let s = try Analysis.summarize(c, totals: t, asOf: doc.end!)
        #expect(s["decision"]?["recommendation"] == "ship")
        #expect(s["decision"]?["variant"] == "green")
        let reasons = s["decision"]?["reasons"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(reasons.first?.hasPrefix("ship green") == true)
        #expect(reasons.contains { $0.contains("holm") })
        let primary = comparisons(s, "checkout_conversion")
        #expect(primary.count == 2 && primary.allSatisfy { ($0["adjusted_p_value"]?.doubleValue ?? 0) >= ($0["p_value"]?.doubleValue ?? 1) })
    }

    @Test func storedRowsAreSummedPerMetricAndVariant() {
        let rows: [(metric: String, variant: String, stats: String)] = [
            ("m", "a", Aggregate.binomial(n: 10, successes: 1).storageText), ("m", "a", Aggregate.binomial(n: 5, successes: 2).storageText),
            ("m", "b", Aggregate.binomial(n: 7, successes: 7).storageText),
        ]
        let t = Analysis.totals(rows)
        #expect(t["m"]?["a"] == .binomial(n: 15, successes: 3))
        #expect(t["m"]?["b"] == .binomial(n: 7, successes: 7))
    }

    @Test func numbersInReasonsReadAsCsPrintf() {
        for x in [0.0123456, -0.5, 1.0, 12.3456, 999.6, 123456.7, 0.000123, -0.0000456, 0.00099999, 2.5e-9, 0.001, 7.77e-5] {
            let expected = abs(x) < 0.001 ? String(format: "%.1e", x) : String(format: "%.\(max(0, 2 - Int(log10(abs(x)).rounded(.down))))f", x)
            #expect(Analysis.short(x) == expected, "\(x)")
        }
    }
}
