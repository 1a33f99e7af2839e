import Foundation
import Testing
import TestSupport
import JSONCore
import Registry
import Service
import Reports
import Statistics

/// Quantile metrics end to end: catalog, ingestion into sketches per arm, exposure day and segment, the summary, segments,
/// report and export, checked against `stats.compare_quantiles` on the same units' values.
@Suite struct QuantileMetricTests {
    let dir = TemporaryDirectory()

    struct Unit { var variant: String; var country: String; var rows: [(day: Int, seconds: Double)]; var value: Double { rows.reduce(0) { $0 + $1.seconds } } }

    func ingest(_ c: TestClient, units: Int) throws -> (units: [Unit], report: JSON) {
        var rng = SystemRandomNumberGenerator()
        var text = "unit_id,variant,day,country,session_length_seconds,checkout_conversion\n"
        var out: [Unit] = []
        for u in 0..<units {
            let v = u % 2 == 0 ? "control" : "green"
            let country = ["US", "CA"][u % 3 == 0 ? 1 : 0]
            var rows: [(Int, Double)] = []
            for k in 0..<Int.random(in: 1...3, using: &rng) {
                let seconds = (exp(3 + 1.2 * Double.random(in: -1.5...1.5, using: &rng)) * (v == "green" ? 1.1 : 1) * 10).rounded() / 10
                rows.append((1 + (u + 2 * k) % 9, seconds))
            }
            let unit = Unit(variant: v, country: country, rows: rows.sorted { $0.0 < $1.0 })
            out.append(unit)
            for (d, x) in unit.rows { text += "u\(u),\(v),2026-12-0\(d),\(country),\(x),\(u % 5 == 0 ? 1 : 0)\n" }
        }
        try text.write(toFile: dir.path("q.csv"), atomically: true, encoding: .utf8)
        let report = try c.ok("results.ingest", ["key": "checkout-green-button", "path": .string(dir.path("q.csv"))])
        return (out, report)
    }

    func client() throws -> TestClient {
        let c = try TestClient(principal: "pm.alice", storePath: dir.path("q.sqlite"))
        try c.register(["metrics": ["secondary": ["session_length_median", "session_length_p90"]], "dimensions": ["country"]])
        try c.advance("checkout-green-button", to: ["review", "approved", "running"])
        return c
    }

    @Test func summaryComparesTheArmsQuantilesAsTheExactMethodDoes() throws {
        let c = try client()
        let (units, report) = try ingest(c, units: 1400)
        #expect(report["loaded"] == true)
        // Cohorts: as of a day, the units first exposed before it, each with its value over all its rows.
        for asOf in [4, 31] {
            let summary = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": .string("2026-12-\(asOf < 10 ? "0" : "")\(asOf)")])
            for (metric, q) in [("session_length_median", 0.5), ("session_length_p90", 0.9)] {
                let m = try #require(summary["metrics"]?.arrayValue?.first { $0["metric"] == .string(metric) })
                #expect(m["type"] == "quantile" && m["quantile"] == .number(q))
                let cohort = units.filter { $0.rows[0].day < asOf }
                let control = cohort.filter { $0.variant == "control" }.map(\.value), green = cohort.filter { $0.variant == "green" }.map(\.value)
                let want = try c.ok("stats.compare_quantiles", ["control": JSON(control), "treatment": JSON(green), "q": .number(q)])
                let got = try #require(m["comparisons"]?.arrayValue?.first)
                #expect(got["estimate"] == want["estimate"] && got["ci"] == want["ci"] && got["p_value"] == want["p_value"],
                        "\(metric) as of \(asOf): \(got["estimate"]?.serialized() ?? "") vs \(want["estimate"]?.serialized() ?? "")")
                let arms = m["variants"]?.arrayValue ?? []
                #expect(arms.first { $0["variant"] == "control" }?["mean"] == want["control"]?["quantile"])
                #expect(arms.first { $0["variant"] == "control" }?["n"] == .number(Double(control.count)))
            }
        }
        // Segments: the units of each country, compared the same way.
        let segments = try c.ok("results.segments", ["key": "checkout-green-button", "dimension": "country", "metric": "session_length_p90", "as_of": "2026-12-31"])
        for country in ["US", "CA"] {
            let value = try #require(segments["values"]?.arrayValue?.first { $0["value"] == .string(country) })
            let m = try #require(value["metrics"]?.arrayValue?.first { $0["metric"] == "session_length_p90" })
            let these = units.filter { $0.country == country }
            let want = try c.ok("stats.compare_quantiles", ["control": JSON(these.filter { $0.variant == "control" }.map(\.value)),
                                                            "treatment": JSON(these.filter { $0.variant == "green" }.map(\.value)), "q": 0.9])
            #expect(m["comparisons"]?.arrayValue?.first?["estimate"] == want["estimate"], "\(country)")
        }
        // The report names the quantile; the export carries the type and q, the arms' quantiles in the mean columns.
        let summary = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": "2026-12-31"])
        let md = ReportRenderer.markdown(summary: summary, series: nil)
        #expect(md.contains("`session_length_p90` (90th percentile per arm)") && md.contains("`session_length_median` (median per arm)"))
        let html = ReportRenderer.html(summary: summary, series: nil)
        #expect(html.contains("90th percentile per arm"))
        let export = try c.ok("results.export", ["key": "checkout-green-button", "what": "summary", "format": "jsonl", "as_of": "2026-12-31"])
        let rows = (export["text"]?.stringValue ?? "").split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
        let row = try #require(rows.first { $0["metric"] == "session_length_p90" })
        #expect(row["metric_type"] == "quantile" && row["quantile"] == 0.9)
        let m = summary["metrics"]?.arrayValue?.first { $0["metric"] == "session_length_p90" }
        #expect(row["control_mean"] == m?["variants"]?.arrayValue?.first { $0["variant"] == "control" }?["mean"])
        // The time series: each day's cohort quantile, and the quantile of every unit exposed so far.
        let series = try c.ok("results.timeseries", ["key": "checkout-green-button", "metric": "session_length_p90", "as_of": "2026-12-31"])
        let points = series["points"]?.arrayValue ?? []
        #expect(points.count == 9)
        let day3 = units.filter { $0.rows[0].day == 3 && $0.variant == "green" }.map(\.value).sorted()
        #expect(points.first { $0["day"] == "2026-12-03" }?["daily_mean"] == .number(Quantiles.sample(sorted: day3, 0.9)))
    }

    @Test func stateAndErrorsOfQuantileArms() throws {
        let c = try client()
        // results.record takes a quantile metric's arm as the units' values; the summary compares it.
        let control = (0..<500).map { Double($0 % 97) + 0.5 }, green = (0..<500).map { Double($0 % 89) + 3 }
        try c.ok("results.record", ["key": "checkout-green-button", "metric": "session_length_median", "variant": "control", "stats": ["values": JSON(control)]])
        let recorded = try c.ok("results.record", ["key": "checkout-green-button", "metric": "session_length_median", "variant": "green", "stats": ["values": JSON(green)]])
        #expect(recorded["stats"]?["n"] == 500 && recorded["stats"]?["exact"] == true)
        let summary = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": "2026-12-31"])
        let got = summary["metrics"]?.arrayValue?.first { $0["metric"] == "session_length_median" }?["comparisons"]?.arrayValue?.first
        let want = try c.ok("stats.compare_quantiles", ["control": JSON(control), "treatment": JSON(green), "q": 0.5])
        #expect(got?["estimate"] == want["estimate"] && got?["ci"] == want["ci"])
        // stats.compare with metric quantile: values, or the sketch that results.record answered.
        let byValues = try c.ok("stats.compare", ["metric": "quantile", "q": 0.5, "control": ["values": JSON(control)], "treatment": ["values": JSON(green)]])
        #expect(byValues["estimate"] == want["estimate"] && byValues["p_value"] == want["p_value"])
        let sketch = try #require(recorded["stats"]?["sketch"])
        let bySketch = try c.ok("stats.compare", ["metric": "quantile", "q": 0.5, "control": ["values": JSON(control)], "treatment": ["sketch": sketch]])
        #expect(bySketch["estimate"] == want["estimate"])
        let noQ = try #require(c.error("stats.compare", ["metric": "quantile", "control": ["values": [1, 2]], "treatment": ["values": [1, 2]]]))
        #expect(noQ.json["data"]?["path"] == "q" && noQ.message.contains("is required"))
        let badSketch = try #require(c.error("stats.compare", ["metric": "quantile", "q": 0.5, "control": ["sketch": "nope"], "treatment": ["values": [1, 2]]]))
        #expect(badSketch.json["data"]?["path"] == "control.sketch")
        let stray = try #require(c.error("stats.compare", ["metric": "binomial", "q": 0.5, "control": ["n": 10, "successes": 1], "treatment": ["n": 10, "successes": 2]]))
        #expect(stray.json["data"]?["path"] == "q")
        // The catalog refuses a quantile metric without q, or q outside (0, 1).
        func parse(_ m: JSON) -> String? {
            do { _ = try MetricsCatalog.parse(JSON.object(["metrics": ["m": m]]).serialized()); return nil } catch { return "\(error.path): \(error.message)" }
        }
        #expect(parse(["type": "quantile", "quantile": 0.9]) == nil)
        #expect(parse(["type": "quantile"])?.hasPrefix("metrics.m.quantile: is required for a quantile metric") == true)
        #expect(parse(["type": "quantile", "quantile": 1])?.hasPrefix("metrics.m.quantile: is required") == true)
        #expect(parse(["type": "continuous", "quantile": 0.5])?.hasPrefix("metrics.m.quantile: applies to quantile metrics") == true)
        #expect(parse(["type": "quantile", "quantile": 0.5, "column": "day"])?.hasPrefix("metrics.m.column: must name a value column") == true)
    }
}
