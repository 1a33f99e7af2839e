import Foundation
import Testing
import TestSupport
import JSONCore
import Registry
import Service
import Reports
import Statistics

/// Winsorisation of a continuous metric at an absolute cap (`capping` in the metrics catalog).
@Suite struct CappingTests {
    let dir = TemporaryDirectory()

    /// The shipped protocols with `revenue_per_user` capped at `cap`.
    func protocols(cap: Double) throws -> ProtocolSet {
        try protocols(capping: ["type": "absolute", "value": .number(cap)])
    }

    func protocols(capping: JSON) throws -> ProtocolSet {
        let target = dir.path("protocols")
        try? FileManager.default.removeItem(atPath: target)
        try FileManager.default.copyItem(atPath: repositoryRoot.appendingPathComponent("Protocols").path, toPath: target)
        let path = target + "/metrics.json"
        var catalog = try JSONParser.parse(String(contentsOfFile: path, encoding: .utf8))
        catalog = catalog.merging(patch: ["metrics": ["revenue_per_user": ["capping": capping]]])
        try catalog.serialized().write(toFile: path, atomically: true, encoding: .utf8)
        return try ProtocolLoader.load(directory: target)
    }

    @Test func unitValuesAreCappedBeforeSummingOnEveryDay() throws {
        let cap = 100.0
        let c = try TestClient(principal: "pm.alice", storePath: dir.path("c.sqlite"), protocols: try protocols(cap: cap))
        try c.register()
        try c.advance("checkout-green-button", to: ["review", "approved", "running"])
        var rng = SystemRandomNumberGenerator()
        var text = "unit_id,variant,day,revenue_per_user\n"
        // Each unit: 1 to 3 rows on different days; its value is the sum of its rows, and heavy tails cross the cap.
        var perUnit: [(variant: String, days: [(Int, Double)])] = []
        for u in 0..<3000 {
            let v = u % 2 == 0 ? "control" : "green"
            var rows: [(Int, Double)] = []
            for k in 0..<Int.random(in: 1...3, using: &rng) {
                let x = Double(Int.random(in: 0...1000, using: &rng)) / 10 * (Double.random(in: 0..<1, using: &rng) < 0.1 ? 5 : 1)
                rows.append((1 + (u + 3 * k) % 10, x))
            }
            perUnit.append((v, rows))
            for (d, x) in rows { text += "u\(u),\(v),2026-12-\(d < 10 ? "0" : "")\(d),\(x)\n" }
        }
        try text.write(toFile: dir.path("u.csv"), atomically: true, encoding: .utf8)
        let report = try c.ok("results.ingest", ["key": "checkout-green-button", "path": .string(dir.path("u.csv"))])
        // By hand: the cap applies to each unit's value as of the day (its rows dated before it).
        func expected(before day: Int) -> (mean: [String: Double], capped: Int) {
            var sums: [String: (Double, Double)] = [:]
            var capped = 0
            for unit in perUnit {
                let rows = unit.days.filter { $0.0 < day }
                guard !rows.isEmpty else { continue }
                let value = rows.reduce(0) { $0 + $1.1 }
                if value > cap { capped += 1 }
                let s = sums[unit.variant] ?? (0, 0)
                sums[unit.variant] = (s.0 + min(value, cap), s.1 + 1)
            }
            return (sums.mapValues { $0.0 / $0.1 }, capped)
        }
        let all = expected(before: 99)
        #expect(report["capping"]?["revenue_per_user"]?["units_capped"]?.intValue == all.capped && all.capped > 100,
                "\(report["capping"]?.serialized() ?? "")")
        #expect(report["capping"]?["revenue_per_user"]?["value"] == .number(cap))
        for asOf in [4, 8, 31] {
            let summary = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": .string("2026-12-\(asOf < 10 ? "0" : "")\(asOf)")])
            let metric = summary["metrics"]?.arrayValue?.first { $0["metric"] == "revenue_per_user" }
            #expect(metric?["capping"]?["type"] == "absolute" && metric?["capping"]?["value"] == .number(cap) && metric?["capping"]?["cap"] == .number(cap))
            let want = expected(before: asOf).mean
            for v in ["control", "green"] {
                let got = metric?["variants"]?.arrayValue?.first { $0["variant"] == .string(v) }?["mean"]?.doubleValue ?? .nan
                #expect(abs(got - (want[v] ?? .nan)) < 1e-9, "as of day \(asOf), \(v): \(got) vs \(want[v] ?? .nan)")
            }
        }
        // The report says the metric was capped and at what.
        let md = ReportRenderer.markdown(summary: try c.ok("results.summary", ["key": "checkout-green-button", "as_of": "2026-12-31"]), series: nil)
        #expect(md.contains("`revenue_per_user` (capped at 100)"))
    }

    /// Percentile capping: the cap is the 0.99 quantile of every unit's value (all arms), from the first sweep's sketch;
    /// the sums equal capping the values by hand at the cap reported, and the cap is NumPy's percentile within the
    /// sketch's rank bound (exact below 1,024 units, compacted here at 6,000).
    @Test(arguments: [600, 6000]) func percentileCapsComeFromTheData(units: Int) throws {
        let c = try TestClient(principal: "pm.alice", storePath: dir.path("p\(units).sqlite"),
                               protocols: try protocols(capping: ["type": "percentile", "value": 0.99]))
        try c.register()
        try c.advance("checkout-green-button", to: ["review", "approved", "running"])
        var rng = SystemRandomNumberGenerator()
        var text = "unit_id,variant,day,revenue_per_user\n"
        var perUnit: [(variant: String, days: [(Int, Double)])] = []
        for u in 0..<units {
            let v = u % 2 == 0 ? "control" : "green"
            var rows: [(Int, Double)] = []
            for k in 0..<Int.random(in: 1...3, using: &rng) {
                // Pareto-tailed: a few units dominate.
                let x = (10 * pow(1 - Double.random(in: 0..<1, using: &rng), -1 / 1.5) * 100).rounded() / 100
                rows.append((1 + (u + 3 * k) % 10, x))
            }
            perUnit.append((v, rows))
            for (d, x) in rows { text += "u\(u),\(v),2026-12-\(d < 10 ? "0" : "")\(d),\(x)\n" }
        }
        try text.write(toFile: dir.path("p.csv"), atomically: true, encoding: .utf8)
        let report = try c.ok("results.ingest", ["key": "checkout-green-button", "path": .string(dir.path("p.csv"))])
        let entry = try #require(report["capping"]?["revenue_per_user"])
        let cap = try #require(entry["cap"]?.doubleValue)
        #expect(entry["type"] == "percentile" && entry["value"] == 0.99 && entry["units"] == .number(Double(units)))
        // NumPy's percentile (linear, type 7) of the units' values, and the cap's rank among them.
        let values = perUnit.map { $0.days.reduce(0) { $0 + $1.1 } }.sorted()
        let numpy = Quantiles.sample(sorted: values, 0.99)
        let bound = try #require(entry["rank_error_bound"]?.doubleValue)
        if units <= 1024 {
            #expect(cap == numpy && bound == 0 && entry["exact"] == true)
        } else {
            let below = Double(values.filter { $0 < cap }.count), atMost = Double(values.filter { $0 <= cap }.count)
            let target = 0.99 * Double(units - 1)
            #expect(below - 1 <= target + bound && atMost >= target - bound, "cap \(cap) ranks \(below)…\(atMost), target \(target) ± \(bound)")
        }
        let capped = perUnit.filter { $0.days.reduce(0) { $0 + $1.1 } > cap }.count
        #expect(entry["units_capped"] == .number(Double(capped)) && capped > 0)
        // By hand: each unit's value as of the day, capped at the reported cap.
        for asOf in [5, 31] {
            var sums: [String: (Double, Double)] = [:]
            for unit in perUnit {
                let rows = unit.days.filter { $0.0 < asOf }
                guard !rows.isEmpty else { continue }
                let s = sums[unit.variant] ?? (0, 0)
                sums[unit.variant] = (s.0 + min(rows.reduce(0) { $0 + $1.1 }, cap), s.1 + 1)
            }
            let summary = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": .string("2026-12-\(asOf < 10 ? "0" : "")\(asOf)")])
            let metric = summary["metrics"]?.arrayValue?.first { $0["metric"] == "revenue_per_user" }
            #expect(metric?["capping"]?["cap"] == .number(cap) && metric?["capping"]?["type"] == "percentile")
            for v in ["control", "green"] {
                let got = metric?["variants"]?.arrayValue?.first { $0["variant"] == .string(v) }?["mean"]?.doubleValue ?? .nan
                let want = sums[v].map { $0.0 / $0.1 } ?? .nan
                #expect(abs(got - want) <= 1e-9 * max(1, abs(want)), "as of day \(asOf), \(v): \(got) vs \(want)")
            }
        }
        let summary = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": "2026-12-31"])
        let md = ReportRenderer.markdown(summary: summary, series: nil)
        #expect(md.contains("`revenue_per_user` (capped at ") && md.contains(" (99th percentile))"), "\(md)")
        let export = try c.ok("results.export", ["key": "checkout-green-button", "what": "summary", "format": "jsonl", "as_of": "2026-12-31"])
        let rows = (export["text"]?.stringValue ?? "").split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
        let row = rows.first { $0["metric"] == "revenue_per_user" }
        #expect(row?["capping"] == "percentile" && row?["cap"] == .number(cap) && row?["units_capped"] == .number(Double(capped)), "\(rows.first?.serialized() ?? "")")
    }

    @Test func theCatalogRefusesCapsItCannotApply() throws {
        func parse(_ capping: JSON, type: String = "continuous") -> String? {
            let text = JSON.object(["metrics": ["m": ["type": .string(type), "capping": capping]]]).serialized()
            do { _ = try MetricsCatalog.parse(text); return nil } catch { return "\(error.path): \(error.message)" }
        }
        #expect(parse(["type": "absolute", "value": 10]) == nil)
        #expect(parse(["type": "absolute", "value": 10], type: "binomial")?.contains("applies to continuous metrics") == true)
        #expect(parse(["type": "percentile", "value": 0.99]) == nil)
        #expect(parse(["type": "percentile", "value": 99])?.hasPrefix("metrics.m.capping.value: is required: the percentile as a fraction between 0 and 1") == true)
        #expect(parse(["type": "percentile", "value": 0.99], type: "quantile")?.contains("applies to continuous metrics") == true)
        #expect(parse(["type": "absolute"])?.contains("capping.value: is required") == true)
        #expect(parse(["type": "absolute", "value": 1, "extra": 2]) != nil)
    }
}
