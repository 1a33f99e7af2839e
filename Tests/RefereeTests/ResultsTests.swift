import Foundation
import Testing
import TestSupport
import JSONCore
import Statistics
import Registry
import RPC
@testable import Service

/// Results: recording, ingestion, the pre-registered summary and its decision.
@Suite struct ResultsServiceTests {
    /// A running experiment with the example's design (fixed horizon, 28 days from 2026-12-01).
    func running(_ client: TestClient, _ changes: JSON = [:]) throws {
        try client.register(changes)
        try client.advance("checkout-green-button", to: ["review", "approved", "running"])
    }

    func record(_ c: TestClient, _ metric: String, _ variant: String, _ stats: JSON, day: String? = nil) throws {
        var p: [String: JSON] = ["key": "checkout-green-button", "metric": .string(metric), "variant": .string(variant), "stats": stats]
        if let day { p["day"] = .string(day) }
        try c.ok("results.record", .object(p))
    }

    @Test func recordIsAnIdempotentUpsert() throws {
        let c = try TestClient()
        try running(c)
        try record(c, "checkout_conversion", "control", ["n": 100, "successes": 10], day: "2026-12-01")
        try record(c, "checkout_conversion", "control", ["n": 100, "successes": 10], day: "2026-12-01")
        try record(c, "checkout_conversion", "control", ["n": 50, "successes": 5], day: "2026-12-02")
        let s = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": "2026-12-10T00:00:00Z"])
        #expect(s["metrics"]?.arrayValue?.first?["variants"]?.arrayValue?.first?["n"] == 150)
        #expect(c.error("results.record", ["key": "checkout-green-button", "metric": "nope", "variant": "control", "stats": ["n": 1, "successes": 0]])?.json["data"]?["path"] == "metric")
        #expect(c.error("results.record", ["key": "checkout-green-button", "metric": "checkout_conversion", "variant": "blue", "stats": ["n": 1, "successes": 0]])?.json["data"]?["path"] == "variant")
        #expect(c.error("results.record", ["key": "checkout-green-button", "metric": "checkout_conversion", "variant": "control", "stats": ["n": 1, "successes": 2]])?.json["data"]?["path"] == "stats.successes")
        #expect(c.error("results.record", ["key": "checkout-green-button", "metric": "checkout_conversion", "variant": "control", "day": "Dec 1", "stats": ["n": 1, "successes": 0]])?.json["data"]?["path"] == "day")
    }

    @Test func fixedHorizonKeepsRunningUntilThePlanWhateverThePValue() throws {
        let c = try TestClient()
        try running(c)
        // A huge early effect on day 2 of 28, with fewer units than planned (4438 per arm).
        try record(c, "checkout_conversion", "control", ["n": 2000, "successes": 200])
        try record(c, "checkout_conversion", "green", ["n": 2000, "successes": 400])
        let early = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": "2026-12-03T00:00:00Z"])
        #expect(early["decision"]?["recommendation"] == "keep_running")
        #expect(early["metrics"]?.arrayValue?.first?["comparisons"]?.arrayValue?.first?["significant"] == true)
        // After the scheduled end the same data ships.
        let late = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": "2026-12-30T00:00:00Z"])
        #expect(late["decision"]?["recommendation"] == "ship")
        let reason = late["decision"]?["reasons"]?.arrayValue?.first?.stringValue ?? ""
        #expect(reason.contains("checkout_conversion green: +10.0 points (95% CI"))
        #expect(late["progress"]?["reached_end"] == true)
    }

    @Test func sampleRatioMismatchInvalidatesBeforeAnyLift() throws {
        let c = try TestClient()
        try running(c)
        try record(c, "checkout_conversion", "control", ["n": 10000, "successes": 1200])
        try record(c, "checkout_conversion", "green", ["n": 11000, "successes": 1700])
        let s = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": "2026-12-30T00:00:00Z"])
        #expect(s["srm"]?["mismatch"] == true)
        #expect(s["decision"]?["recommendation"] == "invalid")
        #expect(s["decision"]?["reasons"]?.arrayValue?.first?.stringValue?.hasPrefix("sample-ratio mismatch") == true)
    }

    @Test func harmedGuardrailSaysRollback() throws {
        let c = try TestClient()
        try running(c)
        try record(c, "checkout_conversion", "control", ["n": 20000, "successes": 2400])
        try record(c, "checkout_conversion", "green", ["n": 20000, "successes": 3000])
        try record(c, "crash_rate", "control", ["n": 20000, "successes": 100])
        try record(c, "crash_rate", "green", ["n": 20000, "successes": 300])
        let s = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": "2026-12-30T00:00:00Z"])
        #expect(s["decision"]?["recommendation"] == "rollback")
        let guardrail = s["metrics"]?.arrayValue?.first { $0["role"] == "guardrail" }
        #expect(guardrail?["comparisons"]?.arrayValue?.first?["harm_detected"] == true)
    }

    @Test func secondaryMetricsAreHolmAdjusted() throws {
        let c = try TestClient()
        try running(c, ["metrics": ["secondary": ["revenue_per_user", "session_length_seconds"]]])
        try record(c, "checkout_conversion", "control", ["n": 20000, "successes": 2400])
        try record(c, "checkout_conversion", "green", ["n": 20000, "successes": 2400])
        try record(c, "revenue_per_user", "control", ["n": 20000, "mean": 10, "variance": 100])
        try record(c, "revenue_per_user", "green", ["n": 20000, "mean": 10.2, "variance": 100])
        try record(c, "session_length_seconds", "control", ["n": 20000, "mean": 60, "variance": 900])
        try record(c, "session_length_seconds", "green", ["n": 20000, "mean": 60.5, "variance": 900])
        let s = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": "2026-12-30T00:00:00Z"])
        let secondary = s["metrics"]!.arrayValue!.filter { $0["role"] == "secondary" }.map { $0["comparisons"]!.arrayValue![0] }
        let raw = secondary.map { $0["p_value"]!.doubleValue! }
        let adjusted = secondary.map { $0["adjusted_p_value"]!.doubleValue! }
        let holm = try MultipleTesting.adjust(pValues: raw, method: .holm)
        #expect(adjusted == holm.adjusted)
        #expect(s["decision"]?["recommendation"] == "inconclusive")
    }

    /// A/A experiments (no true effect) ship or roll back at about the nominal rate alpha = 0.05.
    @Test func aaFalsePositiveRateIsNominal() throws {
        let rng = GSLRandom(seed: 7)
        var positives = 0
        let runs = 300
        for _ in 0..<runs {
            let c = try TestClient()
            try running(c)
            for v in ["control", "green"] {
                var s = 0.0
                for _ in 0..<6000 where rng.uniform() < 0.12 { s += 1 }
                try record(c, "checkout_conversion", v, ["n": 6000, "successes": .number(s)])
            }
            let d = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": "2026-12-30T00:00:00Z"])["decision"]!["recommendation"]!
            if d == "ship" || d == "rollback" { positives += 1 }
        }
        // Binomial(300, 0.05): mean 15; [5, 28] holds with probability > 0.999.
        #expect((5...28).contains(positives), "\(positives) of \(runs) A/A runs were called significant")
    }

    @Test func timeseriesIsCumulative() throws {
        let c = try TestClient()
        try running(c)
        for (day, n) in [("2026-12-01", 1000.0), ("2026-12-02", 1000.0), ("2026-12-03", 1000.0)] {
            try record(c, "checkout_conversion", "control", ["n": .number(n), "successes": .number(n * 0.1)], day: day)
            try record(c, "checkout_conversion", "green", ["n": .number(n), "successes": .number(n * 0.12)], day: day)
        }
        let t = try c.ok("results.timeseries", ["key": "checkout-green-button", "metric": "checkout_conversion"])
        let points = try #require(t["points"]?.arrayValue)
        #expect(points.map { $0["n"] } == [1000, 2000, 3000])
        #expect(points.map { $0["day"] } == ["2026-12-01", "2026-12-02", "2026-12-03"])
        #expect(abs((points.last?["relative"]?.doubleValue ?? 0) - 0.2) < 1e-9)
        // Daily: the day's successes over the units exposed by the end of that day.
        let daily: [Double] = points.map { $0["daily_mean"]?.doubleValue ?? -1 }
        let controlDaily: [Double] = points.map { $0["control_daily_mean"]?.doubleValue ?? -1 }
        let expected: [Double] = [0.12, 0.06, 0.04, 0.1, 0.05, 0.1 / 3]
        for (got, want) in zip(daily + controlDaily, expected) {
            #expect(abs(got - want) < 1e-12, "\(daily) \(controlDaily)")
        }
    }
}

/// Ingestion through the real binary.
@Suite(.serialized) struct IngestEndToEndTests {
    let dir = TemporaryDirectory()

    func setUp() throws -> [String] {
        let store = ["--store", dir.path("r.sqlite"), "--protocols", repositoryRoot.appendingPathComponent("Protocols").path]
        let file = dir.path("e.json")
        try exampleExperiment().serialized().write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try runReferee(["register", file, "--actor", "pm.alice"] + store).status == 0)
        try makeRunning(store)
        return store
    }

    /// Writes a CSV: conversion 12% vs `lift` more for green, revenue with a pre-period covariate, crashes 1%.
    func generate(_ name: String, units: Int, lift: Double, greenShare: Double = 0.5, seed: UInt = 1, extra: String = "") throws -> String {
        let rng = GSLRandom(seed: seed)
        var text = "unit_id,variant,day,checkout_conversion,revenue_per_user,revenue_per_user.pre,crash_rate\n"
        for i in 0..<units {
            let green = rng.uniform() < greenShare
            let pre = rng.normal(mean: 10, sd: 3)
            let converted = rng.uniform() < 0.12 + (green ? lift : 0)
            text += "u\(i),\(green ? "green" : "control"),2026-12-\(String(format: "%02d", 1 + i * 28 / units)),\(converted ? 1 : 0),"
            text += String(format: "%.3f,%.3f,", 0.8 * pre + rng.normal(mean: 2, sd: 1), pre) + "\(rng.uniform() < 0.01 ? 1 : 0)\n"
        }
        text += extra
        let path = dir.path(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func summary(_ store: [String]) throws -> JSON {
        let r = try runReferee(["call", "results.summary", #"{"key":"checkout-green-button","as_of":"2026-12-30T00:00:00Z"}"#, "--json"] + store)
        return try JSONParser.parse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func knownEffectIsFoundAndDuplicatesAreExcluded() throws {
        let store = try setUp()
        let file = try generate("effect.csv", units: 30_000, lift: 0.03, extra: "u5,green,2026-12-01,1,1,1,0\nu5,control,2026-12-01,1,1,1,0\n")
        let run = try runReferee(["ingest", "checkout-green-button", file, "--json"] + store)
        #expect(run.status == 0)
        let report = try JSONParser.parse(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(report["units_in_several_variants"] == 1)
        #expect(report["units_loaded"] == 29_999)
        let s = try summary(store)
        #expect(s["decision"]?["recommendation"] == "ship")
        let primary = s["metrics"]?.arrayValue?.first { $0["role"] == "primary" }?["comparisons"]?.arrayValue?.first
        let ci = primary?["ci"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        #expect(ci.count == 2 && ci[0] < 0.03 && 0.03 < ci[1], "the interval covers the true lift: \(ci)")
        // Re-ingesting the same file replaces, it does not double.
        #expect(try runReferee(["ingest", "checkout-green-button", file] + store).status == 0)
        #expect(try summary(store)["progress"]?["units"] == 29_999)
    }

    @Test func skewedSplitIsASampleRatioMismatch() throws {
        let store = try setUp()
        let file = try generate("skew.csv", units: 20_000, lift: 0, greenShare: 0.53)
        #expect(try runReferee(["ingest", "checkout-green-button", file] + store).status == 0)
        let s = try summary(store)
        #expect(s["srm"]?["mismatch"] == true)
        #expect(s["decision"]?["recommendation"] == "invalid")
    }

    @Test func badRowsRejectTheWholeFileUnlessPartialIsAllowed() throws {
        let store = try setUp()
        let file = try generate("bad.csv", units: 2000, lift: 0, extra: "x1,blue,2026-12-01,1,1,1,0\nx2,green,2026-12-01,7,1,1,0\nx3,green,2026-12-01,1\n")
        let rejected = try runReferee(["ingest", "checkout-green-button", file, "--json"] + store)
        #expect(rejected.status == 1)
        let error = try JSONParser.parse(rejected.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        let lines = error["data"]?["problems"]?.arrayValue?.compactMap { $0["line"]?.intValue }
        #expect(lines == [2002, 2003, 2004])
        #expect(try summary(store)["progress"]?["units"] == 0)
        let partial = try runReferee(["ingest", "checkout-green-button", file, "--allow-partial", "--json"] + store)
        #expect(partial.status == 0)
        #expect(try summary(store)["progress"]?["units"] == 2000)
        #expect(try runReferee(["ingest", "checkout-green-button", dir.path("missing.csv")] + store).status == 2)
        #expect(try runReferee(["ingest", "nope", file] + store).status == 1)
    }

    @Test func reportsRenderAsMarkdownAndInARealBrowser() throws {
        let store = try setUp()
        let file = try generate("report.csv", units: 20_000, lift: 0.03, seed: 9)
        #expect(try runReferee(["ingest", "checkout-green-button", file] + store).status == 0)
        let md = try runReferee(["summary", "checkout-green-button", "--as-of", "2026-12-30", "--format", "markdown"] + store)
        #expect(md.status == 0)
        #expect(md.stdout.contains("**Decision: SHIP**"))
        #expect(md.stdout.contains("checkout_conversion"))
        let html = dir.path("report.html"), png = dir.path("report.png")
        #expect(try runReferee(["summary", "checkout-green-button", "--as-of", "2026-12-30", "--format", "html", "-o", html] + store).status == 0)
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.hasPrefix("<!doctype html>") || page.hasPrefix("<!DOCTYPE html>"))
        #expect(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"))
        #expect(page.contains("data-band"), "the cumulative lift chart has its interval band")
        // A real headless Chromium renders it to a non-trivial PNG (Scripts/dev/setup installs chromium).
        let render = Process()
        render.executableURL = URL(fileURLWithPath: "/bin/bash")
        render.arguments = [repositoryRoot.appendingPathComponent("Scripts/dev/render-check").path, html, png]
        render.standardOutput = FileHandle.nullDevice
        try render.run()
        render.waitUntilExit()
        #expect(render.terminationStatus == 0, "Scripts/dev/render-check failed")
        #expect(((try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0) > 10_240)
        #expect(try runReferee(["summary", "nope"] + store).status == 1)
    }

    @Test func aaFileFindsNothing() throws {
        let store = try setUp()
        let file = try generate("aa.csv", units: 20_000, lift: 0, seed: 5)
        #expect(try runReferee(["ingest", "checkout-green-button", file] + store).status == 0)
        #expect(try summary(store)["decision"]?["recommendation"] == "inconclusive")
    }
}

/// Ingestion splits a file between workers: the split must change nothing a caller can see.

/// As of D, a unit counts with its rows dated before D only: the summary of a file as of D is the summary of the
/// same file cut to the days before D.
@Suite struct AsOfTests {
    let dir = TemporaryDirectory()

    func client(_ name: String) throws -> TestClient {
        let c = try TestClient(principal: "root", storePath: dir.path(name))
        try c.register()
        try c.advance("checkout-green-button", to: ["review", "approved", "running"])
        return c
    }

    @Test func theSummaryAsOfADayIsTheSummaryOfTheRowsBeforeIt() throws {
        var rng = SystemRandomNumberGenerator()
        var rows: [(day: Int, line: String)] = []
        for u in 0..<4000 {
            let variant = u % 2 == 0 ? "control" : "green"
            let pre = Double(Int.random(in: 0...3000, using: &rng)) / 100
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let day = Int.random(in: 1...10, using: &rng)
                let converted = Double.random(in: 0..<1, using: &rng) < (variant == "green" ? 0.15 : 0.1) ? 1 : 0
                let revenue = Double(Int.random(in: 0...5000, using: &rng)) / 100
                rows.append((day, "u\(u),\(variant),2026-12-\(String(format: "%02d", day)),\(converted),\(revenue),\(pre),\(Int.random(in: 0..<100, using: &rng) == 0 ? 1 : 0)"))
            }
        }
        rows.shuffle(using: &rng)
        let header = "unit_id,variant,day,checkout_conversion,revenue_per_user,revenue_per_user.pre,crash_rate\n"
        func write(_ name: String, _ keep: (Int) -> Bool) throws -> String {
            let path = dir.path(name)
            try (header + rows.filter { keep($0.day) }.map(\.line).joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let whole = try client("whole.sqlite")
        try whole.ok("results.ingest", ["key": "checkout-green-button", "path": .string(try write("all.csv") { _ in true })])
        for cut in [2, 5, 9, 11] {
            let asOf = "2026-12-\(String(format: "%02d", cut))"
            let a = try whole.ok("results.summary", ["key": "checkout-green-button", "as_of": .string(asOf)])
            let partial = try client("cut\(cut).sqlite")
            if cut > 1 {
                try partial.ok("results.ingest", ["key": "checkout-green-button", "path": .string(try write("cut\(cut).csv") { $0 < cut })])
            }
            let b = try partial.ok("results.summary", ["key": "checkout-green-button", "as_of": .string(asOf)])
            #expect(a["srm"] == b["srm"], "as of \(asOf)")
            #expect(a["metrics"] == b["metrics"] || close(a["metrics"], b["metrics"]), "as of \(asOf): \(a["metrics"]!.serialized().prefix(400)) vs \(b["metrics"]!.serialized().prefix(400))")
            #expect(a["progress"]?["units"] == b["progress"]?["units"])
            let series = try whole.ok("results.timeseries", ["key": "checkout-green-button", "as_of": .string(asOf)])
            #expect(series["points"]?.arrayValue?.allSatisfy { ($0["day"]?.stringValue ?? "") < asOf } == true)
        }
    }

    /// Equal up to floating-point summation order (increments are added day by day).
    func close(_ a: JSON?, _ b: JSON?) -> Bool {
        switch (a, b) {
        case (.number(let x)?, .number(let y)?): return abs(x - y) <= 1e-9 * max(1, abs(x), abs(y))
        case (.array(let x)?, .array(let y)?): return x.count == y.count && zip(x, y).allSatisfy { close($0, $1) }
        case (.object(let x)?, .object(let y)?): return x.keys == y.keys && x.keys.allSatisfy { close(x[$0], y[$0]) }
        default: return a == b
        }
    }
}

/// Results leave Referee as tables: read back, they are the summary.
@Suite struct ExportTests {
    /// RFC 4180 fields of one CSV text (quoted fields may hold commas, quotes and line breaks).
    static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
        var chars = Array(text)[...]
        while let ch = chars.popFirst() {
            if quoted {
                if ch == "\"" { if chars.first == "\"" { field.append("\""); chars.removeFirst() } else { quoted = false } } else { field.append(ch) }
            } else if ch == "\"" { quoted = true }
            else if ch == "," { row.append(field); field = "" }
            else if ch == "\r\n" || ch == "\n" { row.append(field); rows.append(row); row = []; field = "" }
            else { field.append(ch) }
        }
        return rows
    }

    @Test func theCSVReadBackIsTheSummary() throws {
        let c = try TestClient(principal: "root")
        try c.register()
        try c.advance("checkout-green-button", to: ["review", "approved", "running"])
        for (variant, n, s) in [("control", 5000.0, 500.0), ("green", 5000.0, 620.0)] {
            try c.ok("results.record", ["key": "checkout-green-button", "metric": "checkout_conversion", "variant": .string(variant), "day": "2026-12-01",
                                        "stats": ["n": .number(n), "successes": .number(s)]])
            try c.ok("results.record", ["key": "checkout-green-button", "metric": "crash_rate", "variant": .string(variant), "day": "2026-12-01",
                                        "stats": ["n": .number(n), "successes": 40]])
        }
        let params: JSON = ["key": "checkout-green-button", "as_of": "2026-12-30", "what": "summary"]
        let summary = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": "2026-12-30"])
        let csv = try c.ok("results.export", params)
        let table = Self.parseCSV(try #require(csv["text"]?.stringValue))
        let header = try #require(table.first)
        #expect(header == csv["columns"]?.arrayValue?.compactMap(\.stringValue))
        let rows = table.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
        let comparisons = (summary["metrics"]?.arrayValue ?? []).flatMap { m in (m["comparisons"]?.arrayValue ?? []).map { (m, $0) } }
        #expect(rows.count == comparisons.count && rows.count == 2)
        for (row, (m, cmp)) in zip(rows, comparisons) {
            #expect(row["metric"] == m["metric"]?.stringValue && row["variant"] == cmp["variant"]?.stringValue)
            for (column, value) in [("estimate", cmp["estimate"]), ("p_value", cmp["p_value"]), ("ci_lower", cmp["ci"]?.arrayValue?[0]),
                                    ("relative_ci_upper", cmp["relative_ci"]?.arrayValue?[1])] {
                #expect(row[column].flatMap(Double.init) == value?.doubleValue, "\(column)")
            }
            #expect(row["decision"] == summary["decision"]?["recommendation"]?.stringValue)
            #expect(row["guardrail_verdict"] == (cmp["guardrail"]?["verdict"]?.stringValue ?? ""))
        }
        // JSON lines: one object a row, the same values.
        let lines = try #require(try c.ok("results.export", ["key": "checkout-green-button", "as_of": "2026-12-30", "what": "summary", "format": "jsonl"])["text"]?.stringValue)
        let objects = try lines.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        #expect(objects.count == 2 && objects[0]["estimate"] == comparisons[0].1["estimate"])
        // The time series: a row per metric, arm and day.
        let series = try c.ok("results.export", ["key": "checkout-green-button", "as_of": "2026-12-30", "what": "timeseries"])
        #expect(series["rows"] == 2)
    }
}

/// Segments: declared dimensions, stored per value by ingestion, broken down with corrections and a heterogeneity test.
@Suite struct SegmentTests {
    let dir = TemporaryDirectory()

    func client() throws -> TestClient {
        let c = try TestClient(principal: "root", storePath: dir.path("s.sqlite"))
        try c.register(["dimensions": ["country", "platform"]])
        try c.advance("checkout-green-button", to: ["review", "approved", "running"])
        return c
    }

    /// 60 countries (the largest first), two platforms; green lifts conversion on ios only.
    func file() throws -> String {
        var rng = SystemRandomNumberGenerator()
        var text = "unit_id,variant,day,country,platform,checkout_conversion,revenue_per_user,crash_rate\n"
        for u in 0..<24_000 {
            let green = u % 2 == 1
            let country = "C\(Int(Double.random(in: 0..<1, using: &rng) * Double.random(in: 0..<1, using: &rng) * 60))"
            let platform = u % 3 == 0 ? "ios" : "android"
            let p = 0.10 + (green && platform == "ios" ? 0.08 : 0)
            for day in 1...Int.random(in: 1...2, using: &rng) {
                // A few units change platform on a later row: they stay under their first.
                let shown = day == 2 && u % 97 == 0 ? (platform == "ios" ? "android" : "ios") : platform
                text += "u\(u),\(green ? "green" : "control"),2026-12-0\(day),\(country),\(shown),\(Double.random(in: 0..<1, using: &rng) < p ? 1 : 0),"
                text += "\(Int.random(in: 0...100, using: &rng)),\(Int.random(in: 0..<200, using: &rng) == 0 ? 1 : 0)\n"
            }
        }
        let path = dir.path("units.csv")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func segmentsAddUpAndAHeterogeneousEffectIsFlagged() throws {
        let c = try client()
        let report = try c.ok("results.ingest", ["key": "checkout-green-button", "path": .string(try file())])
        #expect(report["dimensions"]?["country"]?["segments_kept"] == 50)
        #expect((report["dimensions"]?["country"]?["values_in_other"]?.intValue ?? 0) > 0)
        #expect((report["dimensions"]?["platform"]?["units_whose_value_changed"]?.intValue ?? 0) > 0)
        let asOf: JSON = "2026-12-30"
        let overall = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": asOf])
        let platform = try c.ok("results.segments", ["key": "checkout-green-button", "dimension": "platform", "as_of": asOf])
        let values = try #require(platform["values"]?.arrayValue)
        #expect(Set(values.compactMap { $0["value"]?.stringValue }) == ["ios", "android"])
        #expect(platform["flagged"] == true)
        let het = try #require(platform["heterogeneity"]?.arrayValue?.first { $0["metric"] == "checkout_conversion" })
        #expect(het["differs"] == true && (het["p_value"]?.doubleValue ?? 1) < 0.001)
        // Each value's arms add up to the overall arms, for every metric.
        for dimension in ["platform", "country"] {
            let s = try c.ok("results.segments", ["key": "checkout-green-button", "dimension": .string(dimension), "as_of": asOf])
            let vs = try #require(s["values"]?.arrayValue)
            if dimension == "country" { #expect(vs.count == 51 && vs.last?["value"] == "(other)" && s["other"] == true) }
            for m in overall["metrics"]?.arrayValue ?? [] {
                for arm in m["variants"]?.arrayValue ?? [] {
                    let total = vs.reduce(0.0) { sum, v in
                        let mm = v["metrics"]?.arrayValue?.first { $0["metric"] == m["metric"] }
                        return sum + (mm?["variants"]?.arrayValue?.first { $0["variant"] == arm["variant"] }?["n"]?.doubleValue ?? 0)
                    }
                    #expect(total == arm["n"]?.doubleValue, "\(dimension) \(m["metric"]!) \(arm["variant"]!)")
                }
            }
            for v in vs {
                for m in v["metrics"]?.arrayValue ?? [] {
                    for cmp in m["comparisons"]?.arrayValue ?? [] {
                        #expect((cmp["adjusted_p_value"]?.doubleValue ?? 0) >= (cmp["p_value"]?.doubleValue ?? 1) - 1e-15)
                    }
                }
            }
        }
        // One slice as a whole summary; the string form still names a recorded segment.
        let ios = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": asOf, "segment": ["dimension": "platform", "value": "ios"]])
        #expect(ios["progress"]?["units"] == values.first { $0["value"] == "ios" }?["units"])
        // What does not exist is refused, naming what does.
        let unknown = c.error("results.segments", ["key": "checkout-green-button", "dimension": "city"])
        #expect(unknown?.code == 1003 && unknown?.json["data"]?["dimensions"] == ["country", "platform"])
        // Segments leave as a table too: a row per value, metric and arm, summing to the overall units.
        let export = try c.ok("results.export", ["key": "checkout-green-button", "as_of": asOf, "what": "segments", "dimension": "platform", "format": "jsonl"])
        let exported = try (export["text"]?.stringValue ?? "").split(separator: "\n").map { try JSONParser.parse(String($0)) }
        let primaryRows = exported.filter { $0["metric"] == "checkout_conversion" }
        #expect(primaryRows.count == 2 && primaryRows.allSatisfy { $0["effect_differs"] == true })
        #expect(primaryRows.reduce(0.0) { $0 + ($1["variant_n"]?.doubleValue ?? 0) } == overall["metrics"]?.arrayValue?.first?["variants"]?.arrayValue?.first { $0["variant"] == "green" }?["n"]?.doubleValue)
        let missing = c.error("results.summary", ["key": "checkout-green-button", "segment": "US"])
        #expect(missing?.code == 1003 && missing?.message.contains("platform=ios") == true)
        // The report has a section per dimension and names the one whose effect differs at the top.
        let store = ["--store", dir.path("s.sqlite"), "--protocols", repositoryRoot.appendingPathComponent("Protocols").path]
        let md = try runReferee(["summary", "checkout-green-button", "--as-of", "2026-12-30", "--actor", "root"] + store)
        #expect(md.status == 0, "\(md.stderr)")
        #expect(md.stdout.contains("⚠️ **The effect differs by platform**") && md.stdout.contains("### Segments by platform"))
        #expect(md.stdout.contains("The effect of green differs across platform values (Cochran's Q = "))
        #expect(md.stdout.contains("schedule Dec 1 – Dec 29 · data Dec 1 – Dec 2"))
        let html = try runReferee(["summary", "checkout-green-button", "--as-of", "2026-12-30", "--format", "html", "--actor", "root"] + store)
        #expect(html.stdout.contains("<section id=\"segments\">") && html.stdout.contains("The effect differs by platform"))
    }
}

/// The report on screen at 1280 px and on A4: nothing overflows its box, no label is cut (measured in headless
/// Chromium by Scripts/dev/overflow-check), and it prints to PDF.
@Suite struct ReportLayoutTests {
    let dir = TemporaryDirectory()

    @Test func threeArmsLongNamesAndSegmentsFitAt1280AndOnA4() throws {
        let c = try TestClient(principal: "root", storePath: dir.path("r.sqlite"))
        try c.register(["dimensions": ["country"], "variants": [["key": "control", "weight": 0.34, "control": true], ["key": "green", "weight": 0.33],
                                                                ["key": "blue-with-a-rather-long-name", "weight": 0.33]]])
        try c.advance("checkout-green-button", to: ["review", "approved", "running"])
        var rng = SystemRandomNumberGenerator()
        var text = "unit_id,variant,day,country,checkout_conversion,revenue_per_user,revenue_per_user.pre,crash_rate\n"
        for u in 0..<30_000 {
            let v = ["control", "green", "blue-with-a-rather-long-name"][u % 3]
            let pre = Double(Int.random(in: 0...6000, using: &rng)) / 100
            let crash = Double.random(in: 0..<1, using: &rng) < (v.hasPrefix("blue") ? 0.0226 : 0.01)
            text += "u\(u),\(v),2026-12-\(String(format: "%02d", 1 + u % 21)),C\(Int.random(in: 0..<25, using: &rng)),"
            text += "\(Double.random(in: 0..<1, using: &rng) < (v == "green" ? 0.14 : 0.12) ? 1 : 0),\(pre + Double.random(in: -3...5, using: &rng)),\(pre),\(crash ? 1 : 0)\n"
        }
        try text.write(toFile: dir.path("u.csv"), atomically: true, encoding: .utf8)
        try c.ok("results.ingest", ["key": "checkout-green-button", "path": .string(dir.path("u.csv"))])
        let html = dir.path("report.html")
        let store = ["--store", dir.path("r.sqlite"), "--protocols", repositoryRoot.appendingPathComponent("Protocols").path, "--actor", "root"]
        #expect(try runReferee(["summary", "checkout-green-button", "--as-of", "2026-12-30", "--format", "html", "-o", html] + store).status == 0)
        // Every metric has its daily and cumulative panels, in the order of the tables.
        let page = try String(contentsOfFile: html, encoding: .utf8)
        let summary = try c.ok("results.summary", ["key": "checkout-green-button", "as_of": "2026-12-30"])
        let metrics = summary["metrics"]?.arrayValue?.compactMap { $0["metric"]?.stringValue } ?? []
        #expect(metrics.count >= 3)
        #expect(page.components(separatedBy: "<figure class=\"multiple\">").count - 1 == metrics.count)
        #expect(page.components(separatedBy: "data-chart=\"daily\"").count - 1 == metrics.count)
        #expect(page.components(separatedBy: "data-chart=\"cumulative\"").count - 1 == metrics.count)
        // 1280 px is a laptop screen; 794 px is an A4 page's width, laid out with the print rules.
        for width in ["1280", "794"] {
            let check = Process()
            check.executableURL = URL(fileURLWithPath: "/bin/bash")
            check.arguments = [repositoryRoot.appendingPathComponent("Scripts/dev/overflow-check").path, html, width]
            let out = Pipe()
            check.standardOutput = out
            check.standardError = FileHandle.nullDevice
            try check.run()
            let found = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            check.waitUntilExit()
            #expect(check.terminationStatus == 0 && found.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "at \(width) px: \(found.prefix(600))")
        }
        // And to PDF, as a product review prints it.
        let pdf = dir.path("report.pdf")
        let print = Process()
        print.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        print.arguments = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(dir.path("profile"))", "--print-to-pdf=\(pdf)", "--no-pdf-header-footer", "file://\(html)"]
        print.standardOutput = FileHandle.nullDevice
        print.standardError = FileHandle.nullDevice
        try print.run()
        print.waitUntilExit()
        #expect(((try? FileManager.default.attributesOfItem(atPath: pdf)[.size] as? Int) ?? 0) > 10_240)
    }
}
