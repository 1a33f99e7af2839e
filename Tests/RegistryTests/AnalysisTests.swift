import Foundation
import Testing
import JSONCore
import TestSupport
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
