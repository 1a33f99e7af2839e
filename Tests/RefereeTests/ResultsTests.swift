import Foundation
import Testing
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
@Suite struct IngestSplitTests {
    @Test func workersAgreeWithOneReaderOnTotalsProblemsAndLineNumbers() throws {
        let dir = TemporaryDirectory()
        let client = try TestClient()
        try client.register()
        try client.advance("checkout-green-button", to: ["review", "approved", "running"])
        let context = try client.service.resultsContext("checkout-green-button")
        var rng = SystemRandomNumberGenerator()
        var text = "unit_id,variant,day,checkout_conversion,revenue_per_user,revenue_per_user.pre,crash_rate\n"
        var badLines: [Int] = []
        for i in 0..<20_000 {
            let line = i + 2
            switch Int.random(in: 0..<400, using: &rng) {
            case 0: text += "x\(i),blue,2026-12-01,1,1,1,0\n"; badLines.append(line)
            case 1: text += "x\(i),green,2026-02-30,1,1,1,0\n"; badLines.append(line)
            case 2: text += "x\(i),green,2026-12-01,1\n"; badLines.append(line)
            case 3: text += "\"u\(i % 5000)\",\"green\",2026-12-03,1,\"2.5\",1,0\n"  // quoted fields are fine
            default:
                // Units repeat (i % 5000), some in both variants; days run backwards so the first day is not the first row's.
                let variant = Int.random(in: 0..<20, using: &rng) == 0 ? "control" : (i % 5000 < 2500 ? "green" : "control")
                text += "u\(i % 5000),\(variant),2026-12-\(String(format: "%02d", 28 - i % 28)),\(Int.random(in: 0...1, using: &rng)),"
                text += "\(Double(Int.random(in: 0...10_000, using: &rng)) / 100),\(Int.random(in: 0...50, using: &rng)),\(i % 97 == 0 ? 1 : 0)\n"
            }
        }
        let path = dir.path("units.csv")
        try text.write(toFile: path, atomically: true, encoding: .utf8)

        func ingest(workers: Int, partitionBytes: Int? = nil) throws -> (Ingestor.Totals, Ingestor) {
            let ingestor = Ingestor(context: context, allowPartial: true)
            ingestor.maxWorkers = workers
            ingestor.bytesPerWorker = workers == 1 ? 1 << 30 : 4096
            if let partitionBytes { ingestor.maxPartitionBytes = partitionBytes }
            return (try ingestor.run(path: path, format: "csv"), ingestor)
        }
        let (one, single) = try ingest(workers: 1)
        let (many, split) = try ingest(workers: 4)
        // Partitions over the memory budget are split again by further fingerprint bits before they are folded.
        let (resplit, small) = try ingest(workers: 2, partitionBytes: 1024)
        #expect(small.unitsLoaded == single.unitsLoaded && small.unitsExcluded == single.unitsExcluded)
        #expect(Set(resplit.keys) == Set(one.keys))
        for (metric, perVariant) in one {
            for (variant, perDay) in perVariant {
                for (day, a) in perDay {
                    let b = try #require(resplit[metric]?[variant]?[day])
                    #expect(a.n == b.n && abs(a.mean - b.mean) <= 1e-12 * max(1, abs(a.mean)), "\(metric) \(variant) \(day)")
                }
            }
        }
        #expect(single.problems.map(\.line) == Array(badLines.prefix(100)))
        #expect(split.problems.map(\.line) == single.problems.map(\.line))
        #expect(split.problems.map(\.message) == single.problems.map(\.message))
        #expect(split.problemCounts == single.problemCounts)
        #expect(split.rowsRead == 20_000 && split.rowsRejected == badLines.count)
        #expect(split.unitsLoaded == single.unitsLoaded && split.unitsExcluded == single.unitsExcluded)
        #expect(single.unitsExcluded > 0 && single.unitsLoaded + single.unitsExcluded == 5000)
        #expect(Set(one.keys) == Set(many.keys))
        for (metric, perVariant) in one {
            for (variant, perDay) in perVariant {
                for (day, a) in perDay {
                    let b = try #require(many[metric]?[variant]?[day])
                    #expect(abs(a.n - b.n) == 0 && abs(a.mean - b.mean) <= 1e-12 * max(1, abs(a.mean)), "\(metric) \(variant) \(day)")
                }
            }
        }
        // Every unit's exposure day is its earliest day, whatever the row order.
        #expect(one["__exposures"]?.values.flatMap(\.keys).allSatisfy { $0 >= "2026-12-01" && $0 <= "2026-12-28" } == true)
    }

    @Test func jsonLinesGiveTheSameTotalsAsCSV() throws {
        let dir = TemporaryDirectory()
        let client = try TestClient()
        try client.register()
        try client.advance("checkout-green-button", to: ["review", "approved", "running"])
        let context = try client.service.resultsContext("checkout-green-button")
        var csv = "unit_id,variant,day,checkout_conversion,revenue_per_user\n", jsonl = ""
        for i in 0..<3000 {
            let variant = (i % 1000) % 3 == 0 ? "green" : "control", converted = i % 7 == 0 ? 1 : 0, revenue = Double(i % 50) / 4
            csv += "u\(i % 1000),\(variant),2026-12-0\(1 + i % 9),\(converted),\(revenue)\n"
            jsonl += #"{"unit_id":"u\#(i % 1000)","variant":"\#(variant)","day":"2026-12-0\#(1 + i % 9)","checkout_conversion":\#(converted),"revenue_per_user":\#(revenue)}"# + "\n"
        }
        jsonl += "not json\n" + #"{"unit_id":"z","variant":"green","day":"2026-12-01","checkout_conversion":1,"revenue_per_user":1,"extra":2}"# + "\n"
        try csv.write(toFile: dir.path("u.csv"), atomically: true, encoding: .utf8)
        try jsonl.write(toFile: dir.path("u.jsonl"), atomically: true, encoding: .utf8)
        let fromCSV = try Ingestor(context: context, allowPartial: false).run(path: dir.path("u.csv"), format: "csv")
        let lines = Ingestor(context: context, allowPartial: true)
        let fromJSONL = try lines.run(path: dir.path("u.jsonl"), format: "jsonl")
        #expect(lines.problems.map(\.line) == [3001, 3002])
        #expect(lines.problems.first?.message == "line 3001 is not a JSON object")
        #expect(fromCSV.count == 3 && fromCSV == fromJSONL)
    }

    @Test func pipesLongRowsManyDaysAndSparseSums() throws {
        let dir = TemporaryDirectory()
        let client = try TestClient()
        try client.register()
        try client.advance("checkout-green-button", to: ["review", "approved", "running"])
        let context = try client.service.resultsContext("checkout-green-button")
        var csv = "unit_id,variant,day,checkout_conversion,revenue_per_user\n"
        for i in 0..<4000 {
            csv += "u\(i % 1500),\((i % 1500) % 2 == 0 ? "green" : "control"),2026-\(String(format: "%02d-%02d", 1 + i % 12, 1 + i % 28)),\(i % 3 == 0 ? 1 : 0),\(Double(i % 40) / 8)\n"
        }
        let long = "u1,green,2026-01-01,1," + String(repeating: "9", count: 1_100_000) + "\n"
        try (csv + long + "u2,green,2026-01-01,1,2\n").write(toFile: dir.path("long.csv"), atomically: true, encoding: .utf8)
        try csv.write(toFile: dir.path("u.csv"), atomically: true, encoding: .utf8)
        let file = try Ingestor(context: context, allowPartial: false).run(path: dir.path("u.csv"), format: "csv")

        // Only the cells that occur, instead of every metric x variant x day.
        let sparse = Ingestor(context: context, allowPartial: false)
        sparse.maxDenseSums = 0
        #expect(try sparse.run(path: dir.path("u.csv"), format: "csv") == file)

        // A pipe is streamed by one reader.
        let fifo = dir.path("u.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let text = csv
        let writer = Thread { try? text.write(toFile: fifo, atomically: false, encoding: .utf8) }
        writer.start()
        #expect(try Ingestor(context: context, allowPartial: false).run(path: fifo, format: "csv") == file)

        // A row longer than 1 MiB is one problem with its line number; the rows after it still load.
        let longRows = Ingestor(context: context, allowPartial: true)
        let withLong = try longRows.run(path: dir.path("long.csv"), format: "csv")
        #expect(longRows.problems.map(\.line) == [4002])
        #expect(longRows.problems.first?.message == "line 4002 is longer than 1 MiB")
        #expect(longRows.rowsRead == 4002 && longRows.rowsRejected == 1)
        #expect(withLong["checkout_conversion"]?["green"]?["2026-01-01"]?.n == (file["checkout_conversion"]?["green"]?["2026-01-01"]?.n ?? 0) + 1)

        // More distinct days than supported is one clear error, not a memory blow-up.
        var days = "unit_id,variant,day,checkout_conversion\n"
        for d in 0..<65_001 { days += "u\(d),green,\(Timestamp(seconds: Double(d) * 86_400 - 3e9).day),1\n" }
        try days.write(toFile: dir.path("days.csv"), atomically: true, encoding: .utf8)
        #expect {
            try Ingestor(context: context, allowPartial: false).run(path: dir.path("days.csv"), format: "csv")
        } throws: { error in
            (error as? RPCError)?.message.contains("has rows on 65001 distinct days; at most 65000") == true
        }
    }

    @Test func spilledRecordsKeepEveryValueExactly() {
        let values: [Double] = [.nan, 0, 1, 253, 254, -1, -0.0, 0.5, 1e300, -2.75, 12.34, 0.1 + 0.2, Double.leastNonzeroMagnitude]
        let slots = Array(values.indices)
        let input = UnsafeMutablePointer<Double>.allocate(capacity: values.count)
        defer { input.deallocate() }
        input.initialize(from: values, count: values.count)
        var bytes = [UInt8](repeating: 0, count: SpillRecord.maxSize(slots.count) + 5)
        let length = bytes.withUnsafeMutableBytes { SpillRecord.write(fp: 0xDEAD_BEEF_0123_4567, variant: 3, day: 738_000, values: input, slots: slots, to: $0.baseAddress!) }
        #expect(length < SpillRecord.maxSize(slots.count))
        bytes.withUnsafeBytes { raw in
            #expect(SpillRecord.length(raw, at: 0, slots: slots.count) == length)
            #expect(SpillRecord.length(UnsafeRawBufferPointer(rebasing: raw[0..<(length - 1)]), at: 0, slots: slots.count) == nil)
            var at = SpillRecord.header
            for v in values {
                let (x, next) = SpillRecord.value(raw, at: at)
                #expect(x.bitPattern == v.bitPattern || (x.isNaN && v.isNaN), "\(v)")
                at = next
            }
            #expect(at == length)
        }
    }
}
