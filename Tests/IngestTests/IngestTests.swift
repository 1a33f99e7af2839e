import Foundation
import Testing
import JSONCore
import Registry
import TestSupport
@testable import Ingest

/// An ingestor for the example experiment, as `results.ingest` builds one (without a store).
func exampleIngestor(allowPartial: Bool) -> Ingestor {
    let doc = ExperimentDocument.read(exampleExperiment(), limits: DocumentLimits()).0!
    let metrics = [doc.primaryMetric].compactMap { $0 } + doc.secondaryMetrics + doc.guardrails
    return Ingestor(experiment: doc, metrics: metrics, catalog: shippedProtocols.catalog, allowPartial: allowPartial)
}

@Suite struct IngestSplitTests {
    @Test func workersAgreeWithOneReaderOnTotalsProblemsAndLineNumbers() throws {
        let dir = TemporaryDirectory()
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
            let ingestor = exampleIngestor(allowPartial: true)
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
        var csv = "unit_id,variant,day,checkout_conversion,revenue_per_user\n", jsonl = ""
        for i in 0..<3000 {
            let variant = (i % 1000) % 3 == 0 ? "green" : "control", converted = i % 7 == 0 ? 1 : 0, revenue = Double(i % 50) / 4
            csv += "u\(i % 1000),\(variant),2026-12-0\(1 + i % 9),\(converted),\(revenue)\n"
            jsonl += #"{"unit_id":"u\#(i % 1000)","variant":"\#(variant)","day":"2026-12-0\#(1 + i % 9)","checkout_conversion":\#(converted),"revenue_per_user":\#(revenue)}"# + "\n"
        }
        jsonl += "not json\n" + #"{"unit_id":"z","variant":"green","day":"2026-12-01","checkout_conversion":1,"revenue_per_user":1,"extra":2}"# + "\n"
        try csv.write(toFile: dir.path("u.csv"), atomically: true, encoding: .utf8)
        try jsonl.write(toFile: dir.path("u.jsonl"), atomically: true, encoding: .utf8)
        let fromCSV = try exampleIngestor(allowPartial: false).run(path: dir.path("u.csv"), format: "csv")
        let lines = exampleIngestor(allowPartial: true)
        let fromJSONL = try lines.run(path: dir.path("u.jsonl"), format: "jsonl")
        #expect(lines.problems.map(\.line) == [3001, 3002])
        #expect(lines.problems.first?.message == "line 3001 is not a JSON object")
        #expect(fromCSV.count == 3 && fromCSV == fromJSONL)
    }

    @Test func pipesLongRowsManyDaysAndSparseSums() throws {
        let dir = TemporaryDirectory()
        var csv = "unit_id,variant,day,checkout_conversion,revenue_per_user\n"
        for i in 0..<4000 {
            csv += "u\(i % 1500),\((i % 1500) % 2 == 0 ? "green" : "control"),2026-\(String(format: "%02d-%02d", 1 + i % 12, 1 + i % 28)),\(i % 3 == 0 ? 1 : 0),\(Double(i % 40) / 8)\n"
        }
        let long = "u1,green,2026-01-01,1," + String(repeating: "9", count: 1_100_000) + "\n"
        try (csv + long + "u2,green,2026-01-01,1,2\n").write(toFile: dir.path("long.csv"), atomically: true, encoding: .utf8)
        try csv.write(toFile: dir.path("u.csv"), atomically: true, encoding: .utf8)
        let file = try exampleIngestor(allowPartial: false).run(path: dir.path("u.csv"), format: "csv")

        // Only the cells that occur, instead of every metric x variant x day.
        let sparse = exampleIngestor(allowPartial: false)
        sparse.maxDenseSums = 0
        #expect(try sparse.run(path: dir.path("u.csv"), format: "csv") == file)

        // A pipe is streamed by one reader.
        let fifo = dir.path("u.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let text = csv
        let writer = Thread { try? text.write(toFile: fifo, atomically: false, encoding: .utf8) }
        writer.start()
        #expect(try exampleIngestor(allowPartial: false).run(path: fifo, format: "csv") == file)

        // A row longer than 1 MiB is one problem with its line number; the rows after it still load.
        let longRows = exampleIngestor(allowPartial: true)
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
            try exampleIngestor(allowPartial: false).run(path: dir.path("days.csv"), format: "csv")
        } throws: { error in
            (error as? IngestError)?.message.contains("has rows on 65001 distinct days; at most 65000") == true
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

/// Percentile caps from the first sweep: read whole, read from a sample of the partitions, and with partitions split
/// again (the sweep keeps the files for the fold).
@Suite struct PercentileCapTests {
    @Test func theCapIsTheUnitsQuantileWithinTheBoundReported() throws {
        let dir = TemporaryDirectory()
        var rng = SystemRandomNumberGenerator()
        var text = "unit_id,variant,day,checkout_conversion,revenue_per_user,crash_rate\n"
        var values: [Double] = []
        for u in 0..<120_000 {
            // Pareto-tailed revenue; a tenth of the units have a second row on a later day.
            let rows = u % 10 == 0 ? 2 : 1
            var total = 0.0
            for k in 0..<rows {
                let x = (10 * pow(1 - Double.random(in: 0..<1, using: &rng), -1 / 1.5) * 100).rounded() / 100
                total += x
                text += "u\(u),\(u % 2 == 0 ? "control" : "green"),2026-12-0\(1 + (u + k) % 9),\(u % 3 == 0 ? 1 : 0),\(x),0\n"
            }
            values.append(total)
        }
        let path = dir.path("units.csv")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        values.sort()
        var catalog = shippedProtocols.catalog
        catalog.metrics["revenue_per_user"]!.capping = .percentile(0.99)
        let doc = ExperimentDocument.read(exampleExperiment(), limits: DocumentLimits()).0!
        func ingest(sample: Bool, partitionBytes: Int? = nil) throws -> (Ingestor.Totals, JSON) {
            let ingestor = Ingestor(experiment: doc, metrics: ["checkout_conversion", "revenue_per_user", "crash_rate"], catalog: catalog, allowPartial: false)
            if sample { ingestor.sampleFromRows = 0 }
            if let partitionBytes { ingestor.maxPartitionBytes = partitionBytes }
            let totals = try ingestor.run(path: path, format: "csv")
            return (totals, ingestor.capping["revenue_per_user"] ?? .null)
        }
        let target = 0.99 * Double(values.count - 1)
        for (sample, bytes) in [(false, nil), (true, nil), (false, 4096)] as [(Bool, Int?)] {
            let (totals, entry) = try ingest(sample: sample, partitionBytes: bytes)
            let cap = try #require(entry["cap"]?.doubleValue), bound = try #require(entry["rank_error_bound"]?.doubleValue)
            let below = Double(values.filter { $0 < cap }.count), atMost = Double(values.filter { $0 <= cap }.count)
            #expect(below - 1 <= target + bound && atMost >= target - bound, "sample \(sample): cap \(cap) ranks \(below)…\(atMost), target \(target) ± \(bound)")
            #expect(entry["units"] == .number(Double(values.count)))
            let inSketch = try #require(entry["units_in_sketch"]?.doubleValue)
            if sample { #expect(inSketch > 4_000 && inSketch < 11_000, "\(inSketch)") } else { #expect(inSketch == Double(values.count)) }
            #expect(entry["units_capped"] == .number(Double(values.filter { $0 > cap }.count)))
            // The sums of the last day cover every unit: each capped at the cap used.
            let all = (totals["revenue_per_user"] ?? [:]).values.flatMap { $0.values }.reduce(Aggregate.continuous(n: 0, sum: 0, sumSquares: 0)) { ($0 + $1) ?? $0 }
            let want = values.reduce(0) { $0 + min($1, cap) }
            #expect(abs(all.mean * all.n - want) <= 1e-6 * want && all.n == Double(values.count), "sample \(sample), bytes \(bytes ?? 0)")
        }
    }
}
