import Foundation
import Testing
import TestSupport
import JSONCore
import Statistics
import Registry
@testable import Service

/// Issue 17: holdouts (registered, governed, honoured by assignment, conflicts and results) and interactions
/// between overlapping experiments measured from data.
@Suite struct PortfolioTests {
    static let example = "checkout-green-button"

    func holdout(_ changes: JSON = [:]) -> JSON {
        let base: JSON = ["key": "growth-holdout", "name": "Growth 2027 H1 holdout", "owner": "pm.alice", "protocol": "standard",
                          "unit": "user_id", "share": 0.05, "seed": "growth-2027h1",
                          "scope": ["layers": ["checkout"]],
                          "schedule": ["start": "2026-11-01T00:00:00Z", "end": "2027-06-01T00:00:00Z"]]
        return base.merging(patch: changes)
    }

    @discardableResult
    func start(_ c: TestClient, holdout changes: JSON = [:]) throws -> JSON {
        let doc = holdout(changes)
        let key = doc["key"]!
        var record = try c.ok("holdout.register", ["holdout": doc])
        for state in ["review", "approved", "running"] {
            record = try c.ok("holdout.transition", ["key": key, "version": record["version"]!, "to": .string(state)], as: "approver.bob")
        }
        return record
    }

    /// Assignments of `units` in `layer` (chunks of 100,000, as a client would send them).
    func assignments(_ c: TestClient, layer: String, units: [String], attributes: JSON = ["country": "US", "platform": "ios"]) throws -> [JSON] {
        var out: [JSON] = []
        for chunk in stride(from: 0, to: units.count, by: 100_000) {
            let part = Array(units[chunk..<min(units.count, chunk + 100_000)])
            let r = try c.ok("assign.bulk", ["layer": .string(layer), "units": JSON(part), "attributes": attributes, "at": "2026-12-05T00:00:00Z"])
            out += r["assignments"]?.arrayValue ?? []
        }
        return out
    }

    // MARK: holdouts

    @Test func lifecycleFourEyesAndLockedFields() throws {
        let c = try TestClient()
        var h = try c.ok("holdout.register", ["holdout": holdout()])
        #expect(h["state"] == "draft" && h["version"] == 1)
        h = try c.ok("holdout.update", ["key": "growth-holdout", "version": 1, "changes": ["share": 0.04]])
        #expect(h["document"]?["share"] == 0.04)
        h = try c.ok("holdout.transition", ["key": "growth-holdout", "version": h["version"]!, "to": "review"])
        // Its author may not approve it.
        let own = c.error("holdout.transition", ["key": "growth-holdout", "version": h["version"]!, "to": "approved"])
        #expect(own?.reason == "forbidden")
        // Nor skip a state.
        #expect(c.error("holdout.transition", ["key": "growth-holdout", "version": h["version"]!, "to": "running"], as: "approver.bob")?.reason == "invalid_transition")
        h = try c.ok("holdout.transition", ["key": "growth-holdout", "version": h["version"]!, "to": "approved"], as: "approver.bob")
        h = try c.ok("holdout.transition", ["key": "growth-holdout", "version": h["version"]!, "to": "running"], as: "approver.bob")
        // Share, scope, seed and unit are locked while it runs; a stale version is refused.
        for changes: JSON in [["share": 0.06], ["scope": ["layers": "all"]], ["seed": "other"], ["unit": "device_id"]] {
            let e = c.error("holdout.update", ["key": "growth-holdout", "version": h["version"]!, "changes": changes, "reason": "try"])
            #expect(e?.reason == "locked_field", "\(changes.serialized())")
        }
        #expect(c.error("holdout.update", ["key": "growth-holdout", "version": 1, "changes": ["name": "x"], "reason": "r"])?.code == 1006)
        h = try c.ok("holdout.update", ["key": "growth-holdout", "version": h["version"]!, "changes": ["name": "Growth H1"], "reason": "clearer name"])
        #expect(h["document"]?["name"] == "Growth H1")
        h = try c.ok("holdout.transition", ["key": "growth-holdout", "version": h["version"]!, "to": "concluded"], as: "approver.bob")
        #expect(h["state"] == "concluded")
        // Audited, listed, and the key is taken for experiments too.
        let log = try c.ok("audit.log", ["key": "growth-holdout"])["entries"]?.arrayValue?.compactMap { $0["method"]?.stringValue } ?? []
        #expect(log == ["holdout.register", "holdout.update", "holdout.transition", "holdout.transition", "holdout.transition", "holdout.update", "holdout.transition"])
        #expect(try c.ok("holdout.list", ["state": "concluded"])["count"] == 1)
        #expect(c.error("experiment.register", ["experiment": exampleExperiment(["key": "growth-holdout"])])?.reason == "duplicate_key")
        // Bad documents name the field.
        let bad = c.error("holdout.register", ["holdout": holdout(["key": "h2", "share": 0.5])])
        #expect(bad?.violations.contains { $0["path"] == "share" && $0["rule"] == "holdout_share_max" } == true)
        #expect(c.error("holdout.register", ["holdout": holdout(["key": "h3", "scope": ["layers": []]])])?.paths.contains("scope.layers") == true)
    }

    @Test func heldOutUnitsAreNeverAssignedOverAMillionUnits() throws {
        let c = try TestClient()
        try c.register(["traffic": 1.0])
        try c.advance(Self.example, to: ["review", "approved", "running"])
        try start(c)
        try start(c, holdout: ["key": "ads-holdout", "seed": "ads-2027", "share": 0.03, "scope": ["layers": "all"]])
        let units = (0..<1_000_000).map { "u\($0)" }
        let answers = try assignments(c, layer: "checkout", units: units)
        #expect(answers.count == units.count)
        var held = ["growth-holdout": 0, "ads-holdout": 0], assigned = 0
        for (unit, a) in zip(units, answers) {
            // The rule, computed here independently: hash_v2(seed, unit) < share, the first holdout by key first.
            let ads = Double(GrowthBookHash.bucket(seed: "ads-2027", value: unit)) / 10_000 < 0.03
            let growth = Double(GrowthBookHash.bucket(seed: "growth-2027h1", value: unit)) / 10_000 < 0.05
            let expected: JSON = ads ? "ads-holdout" : growth ? "growth-holdout" : .null
            guard a["holdout"] == expected else { Issue.record("\(unit): holdout \(a["holdout"]!), expected \(expected)"); return }
            if let key = a["holdout"]?.stringValue {
                held[key]! += 1
                guard a["experiment"] == .null, a["variant"] == .null else { Issue.record("held-out \(unit) assigned: \(a.serialized())"); return }
            } else if a["experiment"] != .null { assigned += 1 }
        }
        // Shares within five standard deviations of their binomial expectation.
        let n = Double(units.count)
        for (share, count) in [(0.03, held["ads-holdout"]!), (0.97 * 0.05, held["growth-holdout"]!)] {
            #expect(abs(Double(count) - n * share) < 5 * (n * share * (1 - share)).squareRoot(), "\(share): \(count)")
        }
        #expect(assigned > 0 && assigned + held.values.reduce(0, +) == units.count)
    }

    @Test func combinedSharesAndPlansAreFindings() throws {
        let c = try TestClient()
        // 700 units a day at half traffic for 28 days: 9,800 units for a plan of 2 × 4,438; a 10% holdout leaves 8,820.
        try c.register(["design": ["expected_daily_units": 700]])
        try c.advance(Self.example, to: ["review", "approved", "running"])
        try start(c, holdout: ["share": 0.02])
        let e = c.error("holdout.register", ["holdout": holdout(["key": "big-holdout", "seed": "big", "share": 0.09])])
        let kinds = (e?.json["data"]?["conflicts"]?.arrayValue ?? []).compactMap { $0["kind"]?.stringValue }
        #expect(kinds.contains("holdout_share"), "\(e?.json.serialized() ?? "")")
        // Alone within the ceiling, but the running experiment's plan would no longer fit: refused, naming both.
        let c2 = try TestClient()
        try c2.register(["design": ["expected_daily_units": 700]])
        try c2.advance(Self.example, to: ["review", "approved", "running"])
        let refused = c2.error("holdout.register", ["holdout": holdout(["share": 0.1])])
        let finding = refused?.json["data"]?["conflicts"]?.arrayValue?.first { $0["kind"] == "underpowered" }
        #expect(finding?["with"] == .string(Self.example))
        #expect(finding?["message"]?.stringValue?.contains("growth-holdout") == true, "\(refused?.json.serialized() ?? "")")
        // A holdout that fits is accepted, and the experiment's capacity counts what it removes: a second one that
        // does not fit is refused when it would start.
        try start(c2, holdout: ["share": 0.01])
        let scan = try c2.ok("conflicts.scan")
        #expect(scan["errors"] == 0, "\(scan.serialized())")
    }

    @Test func aHoldoutsResultsFindTheCumulativeEffect() throws {
        let c = try TestClient()
        try start(c, holdout: ["metrics": ["primary": "checkout_conversion", "secondary": ["revenue_per_user"]]])
        let dir = TemporaryDirectory()
        let rng = GSLRandom(seed: 17)
        var csv = "unit_id,variant,checkout_conversion,revenue_per_user\n"
        for i in 0..<40_000 {
            let exposed = i % 2 == 0
            let converted = rng.uniform() < (exposed ? 0.13 : 0.11)
            csv += "u\(i),\(exposed ? "exposed" : "holdout"),\(converted ? 1 : 0),\(rng.normal(mean: exposed ? 10.5 : 10, sd: 4))\n"
        }
        try csv.write(toFile: dir.path("h.csv"), atomically: true, encoding: .utf8)
        try c.ok("results.ingest", ["key": "growth-holdout", "path": .string(dir.path("h.csv"))])
        let s = try c.ok("results.summary", ["key": "growth-holdout", "as_of": "2027-06-02T00:00:00Z"])
        #expect(s["kind"] == "holdout")
        #expect(s["srm"]?["checked"] == false || s["srm"]?["reason"] != nil)
        for (metric, effect) in [("checkout_conversion", 0.02), ("revenue_per_user", 0.5)] {
            let cmp = s["metrics"]?.arrayValue?.first { $0["metric"]?.stringValue == metric }?["comparisons"]?.arrayValue?.first
            let ci = cmp?["ci"]?.arrayValue?.compactMap(\.doubleValue) ?? []
            #expect(ci.count == 2 && ci[0] < effect && effect < ci[1], "\(metric): \(cmp?.serialized() ?? "none")")
        }
        #expect(s["decision"]?["reasons"]?.arrayValue?.first?.stringValue?.hasPrefix("holdout") == true)
    }

    // MARK: interactions

    /// A (checkout, targets US/CA iOS) and B (search, targets iOS only, all traffic) running at once.
    func twoExperiments(_ c: TestClient) throws {
        try c.register(["traffic": 1.0])
        try c.advance(Self.example, to: ["review", "approved", "running"])
        try c.ok("experiment.register", ["experiment": exampleExperiment([
            "key": "search-ranking", "layer": "search", "parameters": ["search.ranker"], "traffic": 1.0, "seed": "search-ranking-v2",
            "variants": [["key": "control", "weight": 0.5, "control": true], ["key": "learned", "weight": 0.5]],
            "targeting": ["country": .null, "platform": "ios"],
            "metrics": ["primary": "revenue_per_user", "secondary": [], "guardrails": ["crash_rate"]],
            "design": ["mde": ["absolute": .null, "relative": 0.05], "baseline": ["rate": .null, "mean": 10, "sd": 4]]])])
        try c.advance("search-ranking", to: ["review", "approved", "running"])
    }

    /// One row per unit: A's arm from `assign`, conversion with A's effect 2 points and, where B's arm is `learned` and
    /// `interaction` is not zero, that much more; revenue = the unit's number (to tie cells to units exactly).
    func unitFile(_ c: TestClient, _ dir: TemporaryDirectory, units: Int, interaction: Double) throws -> (path: String, armOfB: [String: String], armOfA: [String: String]) {
        let ids = (0..<units).map { "u\($0)" }
        let platforms = ids.indices.map { $0 % 4 == 3 ? "android" : "ios" }
        let a = try assignments(c, layer: "checkout", units: ids)
        var armOfB: [String: String] = [:], armOfA: [String: String] = [:]
        // B's arm for each unit as assign answers it, with each unit's own platform.
        for platform in ["ios", "android"] {
            let mine = ids.indices.filter { platforms[$0] == platform }.map { ids[$0] }
            for (unit, answer) in zip(mine, try assignments(c, layer: "search", units: mine, attributes: ["platform": .string(platform)])) {
                armOfB[unit] = answer["variant"]?.stringValue ?? "(not assigned)"
            }
        }
        let rng = GSLRandom(seed: 1717)
        var csv = "unit_id,variant,platform,checkout_conversion,revenue_per_user\n"
        for (i, unit) in ids.enumerated() {
            guard let variant = a[i]["variant"]?.stringValue else { continue }
            armOfA[unit] = variant
            let green = variant == "green", learned = armOfB[unit] == "learned"
            let p = 0.12 + (green ? 0.02 : 0) + (green && learned ? interaction : 0)
            csv += "\(unit),\(variant),\(platforms[i]),\(rng.uniform() < p ? 1 : 0),\(i)\n"
        }
        let path = dir.path("a-\(interaction).csv")
        try csv.write(toFile: path, atomically: true, encoding: .utf8)
        return (path, armOfB, armOfA)
    }

    @Test func armsComputedAtIngestionAreTheArmsAssignGivesAndCellsAddUp() throws {
        let c = try TestClient()
        try twoExperiments(c)
        let dir = TemporaryDirectory()
        let (path, armOfB, armOfA) = try unitFile(c, dir, units: 40_000, interaction: 0)
        let report = try c.ok("results.ingest", ["key": .string(Self.example), "path": .string(path)])
        #expect(report["interactions"]?["search-ranking"]?["source"] == "computed", "\(report.serialized())")
        #expect(report["interactions"]?["search-ranking"]?["attributes"] == ["platform"])
        #expect(report["problems"]?.arrayValue?.isEmpty == true, "the platform column is B's attribute, not an unknown metric")
        let r = try c.ok("results.interactions", ["key": .string(Self.example), "metric": "revenue_per_user", "as_of": "2026-12-30T00:00:00Z"])
        let pair = r["pairs"]?.arrayValue?.first { $0["with"] == "search-ranking" }
        let cells = pair?["cells"]?.arrayValue?.first?["cells"]?.arrayValue ?? []
        // Each cell's n and mean (of the unit numbers) are exactly those of the units assign puts in it.
        var expected: [String: (n: Double, sum: Double)] = [:]
        for (i, unit) in (0..<40_000).map({ "u\($0)" }).enumerated() {
            guard let va = armOfA[unit] else { continue }
            let k = "\(armOfB[unit]!)|\(va)"
            expected[k, default: (0, 0)].n += 1
            expected[k, default: (0, 0)].sum += Double(i)
        }
        #expect(cells.count == 6)
        for cell in cells {
            let k = "\(cell["arm"]!.stringValue!)|\(cell["variant"]!.stringValue!)"
            let e = expected[k] ?? (0, 0)
            #expect(cell["n"]?.doubleValue == e.n, "\(k)")
            if e.n > 0 { #expect(abs((cell["mean"]?.doubleValue ?? 0) - e.sum / e.n) < 1e-6, "\(k)") }
        }
        // The cells add up to A's totals.
        let s = try c.ok("results.summary", ["key": .string(Self.example), "as_of": "2026-12-30T00:00:00Z"])
        let totals = s["metrics"]?.arrayValue?.first { $0["metric"] == "revenue_per_user" }?["variants"]?.arrayValue ?? []
        for v in totals {
            let sum = cells.filter { $0["variant"] == v["variant"] }.reduce(0.0) { $0 + ($1["n"]?.doubleValue ?? 0) }
            #expect(sum == v["n"]?.doubleValue)
        }
        // The same rows as JSON lines give the same cells (the header is read from the first row there).
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst().map { line -> String in
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            return JSON.object(["unit_id": .string(f[0]), "variant": .string(f[1]), "platform": .string(f[2]),
                                "checkout_conversion": .number(Double(f[3])!), "revenue_per_user": .number(Double(f[4])!)]).serialized()
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir.path("a.jsonl"), atomically: true, encoding: .utf8)
        let jsonl = try c.ok("results.ingest", ["key": .string(Self.example), "path": .string(dir.path("a.jsonl"))])
        #expect(jsonl["interactions"]?["search-ranking"]?["source"] == "computed")
        let again = try c.ok("results.interactions", ["key": .string(Self.example), "metric": "revenue_per_user", "as_of": "2026-12-30T00:00:00Z"])
        #expect(again["pairs"]?.arrayValue?.first?["cells"] == pair?["cells"])
        // No planted interaction: nothing flagged, and the summary says so.
        let all = try c.ok("results.interactions", ["key": .string(Self.example), "as_of": "2026-12-30T00:00:00Z"])
        #expect(all["flagged"]?.arrayValue?.isEmpty == true, "\(all["flagged"]!.serialized())")
        #expect(all["metrics"] == ["checkout_conversion", "crash_rate"])
        #expect(s["interactions"]?["pairs"] == 1 && s["interactions"]?["flagged"]?.arrayValue?.isEmpty == true)
    }

    @Test func aPlantedInteractionIsFoundNamedInTheSummaryAndTheScan() throws {
        let c = try TestClient()
        try twoExperiments(c)
        let dir = TemporaryDirectory()
        let (path, _, _) = try unitFile(c, dir, units: 120_000, interaction: 0.04)
        try c.ok("results.ingest", ["key": .string(Self.example), "path": .string(path)])
        let r = try c.ok("results.interactions", ["key": .string(Self.example), "as_of": "2026-12-30T00:00:00Z"])
        let hit = r["flagged"]?.arrayValue?.first
        #expect(hit?["with"] == "search-ranking" && hit?["metric"] == "checkout_conversion" && hit?["arm"] == "learned", "\(r.serialized().prefix(2000))")
        let ci = hit?["interaction"]?["ci"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        #expect(ci.count == 2 && ci[0] < 0.04 && 0.04 < ci[1])
        #expect(hit?["verdict"]?.stringValue?.contains("with search-ranking's arm in mind") == true)
        let s = try c.ok("results.summary", ["key": .string(Self.example), "as_of": "2026-12-30T00:00:00Z"])
        #expect(s["interactions"]?["flagged"]?.arrayValue?.count == 1)
        #expect(s["decision"]?["reasons"]?.arrayValue?.contains { $0.stringValue?.hasPrefix("interaction with search-ranking") == true } == true)
        let scan = try c.ok("conflicts.scan", ["with_interactions": true])
        #expect(scan["findings"]?.arrayValue?.contains { $0["kind"] == "interaction" } == true, "\(scan.serialized().prefix(2000))")
        #expect(scan["interactions"]?["flagged"] == 1)
        // A holdout is not crossed, and a metric A does not have is refused by name.
        #expect(c.error("results.interactions", ["key": .string(Self.example), "metric": "nope"])?.json["data"]?["path"] == "metric")
    }

    /// A warehouse that computes the sums itself pushes the cells with results.record, as segments arm:B=ARM.
    @Test func cellsRecordedByAWarehouseAreRead() throws {
        let c = try TestClient()
        try twoExperiments(c)
        for (arm, effect) in [("control", 0.0), ("learned", 0.05)] {
            for (variant, base) in [("control", 0.12), ("green", 0.14)] {
                let successes = (20_000 * (base + (variant == "green" ? effect : 0))).rounded()
                try c.ok("results.record", ["key": .string(Self.example), "metric": "checkout_conversion", "variant": .string(variant),
                                            "segment": ["dimension": "arm:search-ranking", "value": .string(arm)],
                                            "stats": ["n": 20_000, "successes": .number(successes)]])
            }
        }
        let r = try c.ok("results.interactions", ["key": .string(Self.example), "metric": "checkout_conversion"])
        let test = r["pairs"]?.arrayValue?.first?["tests"]?.arrayValue?.first
        #expect(test?["arm"] == "learned" && test?["flagged"] == true, "\(r.serialized().prefix(1500))")
        #expect(abs((test?["interaction"]?["estimate"]?.doubleValue ?? 0) - 0.05) < 1e-9)
    }

    @Test func aColumnNamesTheArmWhenTheAttributesAreMissing() throws {
        let c = try TestClient()
        try twoExperiments(c)
        let dir = TemporaryDirectory()
        // Without the platform column, B's arms cannot be computed: skipped, and results.interactions says why.
        try "unit_id,variant,checkout_conversion\nu1,control,1\nu2,green,0\n".write(toFile: dir.path("a.csv"), atomically: true, encoding: .utf8)
        let skipped = try c.ok("results.ingest", ["key": .string(Self.example), "path": .string(dir.path("a.csv"))])
        #expect(skipped["interactions"]?["search-ranking"]?["source"] == "skipped")
        #expect(skipped["interactions"]?["search-ranking"]?["reason"]?.stringValue?.contains("platform") == true)
        let none = try c.ok("results.interactions", ["key": .string(Self.example)])
        #expect(none["not_crossed"]?.arrayValue?.first?["with"] == "search-ranking", "\(none.serialized())")
        // With a column arm:search-ranking the file names each unit's arm.
        try "unit_id,variant,arm:search-ranking,checkout_conversion\nu1,control,learned,1\nu2,green,control,0\n".write(toFile: dir.path("b.csv"), atomically: true, encoding: .utf8)
        let named = try c.ok("results.ingest", ["key": .string(Self.example), "path": .string(dir.path("b.csv"))])
        #expect(named["interactions"]?["search-ranking"]?["source"] == "column")
        let cells = try c.ok("results.interactions", ["key": .string(Self.example)])["pairs"]?.arrayValue?.first?["cells"]?.arrayValue?.first?["cells"]?.arrayValue ?? []
        #expect(cells.first { $0["arm"] == "learned" && $0["variant"] == "control" }?["n"] == 1)
    }
}
