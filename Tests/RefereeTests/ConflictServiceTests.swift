import Foundation
import Testing
import TestSupport
import JSONCore
import Statistics

/// Conflict detection, allocation and assignment through the service.
@Suite struct ConflictServiceTests {
    /// Registers and approves an experiment (owner pm.alice, approver bob).
    func live(_ client: TestClient, _ changes: JSON, to state: String = "approved") throws -> JSON {
        let record = try client.register(changes)
        let key = record["key"]!.stringValue!
        try client.advance(key, to: state == "running" ? ["review", "approved", "running"] : ["review", "approved"])
        return try client.ok("experiment.get", ["key": .string(key)])
    }

    @Test func approvalAllocatesBucketsAndAssignIsDeterministic() throws {
        let client = try TestClient()
        let a = try live(client, ["traffic": 0.3])
        #expect(a["buckets"] == [[0, 3000]])
        let b = try live(client, ["key": "second", "traffic": 0.5, "parameters": ["checkout.other"]])
        #expect(b["buckets"] == [[3000, 8000]])
        let at = "2026-12-10T00:00:00Z"
        let r = try client.ok("assign", ["unit": "user-42", "layer": "checkout", "at": .string(at), "attributes": ["country": "US", "platform": "ios"]])
        let bucket = r["bucket"]!.intValue!
        #expect(bucket == 4046 || bucket < 10_000)
        #expect(r["layer"] == "checkout")
        let expected: JSON = bucket < 3000 ? "checkout-green-button" : bucket < 8000 ? "second" : .null
        #expect(r["experiment"] == expected)
        // Targeting: a French unit is in no experiment, but still gets its bucket.
        let fr = try client.ok("assign", ["unit": "user-42", "layer": "checkout", "at": .string(at), "attributes": ["country": "FR", "platform": "ios"]])
        #expect(fr["bucket"]!.intValue! == bucket)
        #expect(fr["experiment"] == .null && fr["variant"] == .null)
        // Outside the schedule nothing is held.
        let early = try client.ok("assign", ["unit": "user-42", "layer": "checkout", "at": "2026-11-01T00:00:00Z", "attributes": ["country": "US", "platform": "ios"]])
        #expect(early["experiment"] == .null)
        #expect(client.error("assign", ["unit": "u", "layer": "checkout", "key": "second"])?.code == -32602)
    }

    @Test func layerCapacityIsAnErrorThatSaysWhatIsFree() throws {
        let client = try TestClient()
        _ = try live(client, ["traffic": 0.7])
        let e = try #require(client.error("experiment.register", ["experiment": exampleExperiment(["key": "big", "traffic": 0.5, "parameters": ["p2"]])]))
        #expect(e.code == 1002)
        let conflicts = try #require(e.json["data"]?["conflicts"]?.arrayValue)
        #expect(conflicts.first?["kind"] == "layer_capacity")
        #expect(conflicts.first?["message"]?.stringValue?.contains("has 3000 of 10000 buckets (30%) free") == true)
        // Nothing was stored.
        #expect(client.error("experiment.get", ["key": "big"])?.code == 1003)
        // A later schedule fits.
        try client.register(["key": "later", "traffic": 0.5, "parameters": ["p2"], "schedule": ["start": "2027-01-01T00:00:00Z", "end": "2027-01-20T00:00:00Z"]])
    }

    @Test func parameterConflictAcrossLayersBlocksOnlyAgainstHeldExperiments() throws {
        let client = try TestClient()
        try client.register(["key": "draft-a"])
        // Same parameter in another layer against a draft: warning.
        let warned = try client.register(["key": "draft-b", "layer": "search"])
        let kinds = warned["warnings"]?.arrayValue?.compactMap { $0["kind"]?.stringValue } ?? []
        #expect(kinds.contains("parameter") && kinds.contains("metric_interaction"))
        #expect(warned["warnings"]?.arrayValue?.allSatisfy { $0["severity"] == "warning" } == true)
        // Approve draft-a; draft-b can no longer be approved: 1002 with the parameter finding.
        try client.advance("draft-a", to: ["review", "approved"])
        try client.advance("draft-b", to: ["review"])
        let e = try #require(client.error("experiment.transition", ["key": "draft-b", "version": 2, "to": "approved"], as: "bob"))
        #expect(e.code == 1002)
        let finding = try #require(e.json["data"]?["conflicts"]?.arrayValue?.first { $0["kind"] == "parameter" })
        #expect(finding["severity"] == "error")
        #expect(finding["with"] == "draft-a")
        #expect(finding["overlap_share"] == 0.25)
        #expect(finding["window"] == ["start": "2026-12-01T00:00:00Z", "end": "2026-12-29T00:00:00Z"])
        let witness = try #require(finding["witness"])
        #expect(witness["country"] == "US" || witness["country"] == "CA")
        #expect(finding["message"]?.stringValue?.contains("checkout.button.color") == true)
        // Registering a third with the same parameter in another layer is refused outright.
        #expect(client.error("experiment.register", ["experiment": exampleExperiment(["key": "third", "layer": "home"])])?.code == 1002)
        // Disjoint audiences: no finding at all.
        let disjoint = try client.register(["key": "android", "layer": "home", "targeting": ["platform": "android"]])
        #expect(disjoint["warnings"] == [])
    }

    @Test func unitMismatchAndSeedReuse() throws {
        let client = try TestClient()
        _ = try live(client, ["traffic": 0.2, "seed": "s1"])
        let e = client.error("experiment.register", ["experiment": exampleExperiment(["key": "dev", "unit": "device_id", "traffic": 0.2, "parameters": ["p"]])])
        #expect(e?.json["data"]?["conflicts"]?.arrayValue?.first?["kind"] == "unit_mismatch")
        let seeded = try client.register(["key": "other-layer", "layer": "home", "seed": "s1", "parameters": ["p"], "metrics": ["primary": "revenue_per_user"],
                                          "design": ["baseline": ["rate": nil, "mean": 10, "sd": 20], "mde": ["absolute": nil, "relative": 0.05]]])
        #expect(seeded["warnings"]?.arrayValue?.map { $0["kind"]! } == ["seed_reuse"])
    }

    @Test func checkIsADryRunReport() throws {
        let client = try TestClient()
        _ = try live(client, [:])
        let report = try client.ok("experiment.check", ["experiment": exampleExperiment(["key": "x", "layer": "home", "design": ["alpha": 0.2]])])
        #expect(report["valid"] == false)
        #expect(report["violations"]?.arrayValue?.first?["rule"] == "alpha_max")
        #expect(report["errors"] == 1)
        #expect(report["conflicts"]?.arrayValue?.first?["kind"] == "parameter")
        #expect(client.error("experiment.get", ["key": "x"])?.code == 1003)
        // With other proposals.
        let pair = try client.ok("experiment.check", ["experiment": exampleExperiment(["key": "p1", "layer": "l1", "parameters": ["z"]]),
                                                      "with": [exampleExperiment(["key": "p2", "layer": "l2", "parameters": ["z"]])]])
        #expect(pair["conflicts"]?.arrayValue?.contains { $0["with"] == "p2" && $0["kind"] == "parameter" } == true)
    }

    @Test func scanListsFindingsAndNarrowsByTime() throws {
        let client = try TestClient()
        try client.register(["key": "b", "layer": "search"])
        _ = try live(client, [:])
        let all = try client.ok("conflicts.scan")
        let findings = try #require(all["findings"]?.arrayValue)
        // One severity rule for a pair: b is a draft, so the scan, which admits nothing, reports a warning;
        // b's approval meets the same pair as an error.
        #expect(findings.contains { $0["experiments"] == ["b", "checkout-green-button"] && $0["kind"] == "parameter" && $0["severity"] == "warning" })
        #expect(try client.ok("conflicts.scan", ["at": "2026-12-05T00:00:00Z"])["findings"]?.arrayValue?.isEmpty == false)
        #expect(try client.ok("conflicts.scan", ["at": "2027-02-01T00:00:00Z"])["findings"] == [])
        #expect(try client.ok("conflicts.scan", ["window": ["start": "2026-12-28T00:00:00Z", "end": "2027-01-05T00:00:00Z"]])["findings"]?.arrayValue?.isEmpty == false)
        #expect(client.error("conflicts.scan", ["window": ["start": "2027-01-05T00:00:00Z", "end": "2026-12-28T00:00:00Z"]])?.code == -32602)
    }

    /// Experiments of one layer never share a unit, and each gets its traffic share.
    @Test func sameLayerExperimentsNeverShareAUnit() throws {
        let client = try TestClient()
        let traffic = [0.1, 0.25, 0.3, 0.2]
        for (i, t) in traffic.enumerated() {
            _ = try live(client, ["key": .string("e\(i)"), "traffic": .number(t), "parameters": [.string("p\(i)")], "targeting": nil])
        }
        let units = (0..<1_000_000).map { "u\($0)" }
        var perExperiment: [String: Int] = [:]
        var chunk = 0
        while chunk < units.count {
            let slice = Array(units[chunk..<min(chunk + 100_000, units.count)])
            let result = try client.ok("assign.bulk", ["units": JSON(slice), "layer": "checkout", "at": "2026-12-10T00:00:00Z"])
            let assignments = try #require(result["assignments"]?.arrayValue)
            #expect(assignments.count == slice.count)
            for a in assignments { if let e = a["experiment"]?.stringValue { perExperiment[e, default: 0] += 1 } }
            chunk += 100_000
        }
        // Each unit has exactly one bucket, each bucket at most one holder: shares follow traffic.
        for (i, t) in traffic.enumerated() {
            let share = Double(perExperiment["e\(i)"] ?? 0) / 1_000_000
            #expect(abs(share - t) < 0.005, "e\(i): \(share) vs \(t)")
        }
        let records = try (0..<traffic.count).map { try client.ok("experiment.get", ["key": .string("e\($0)")])["buckets"]!.arrayValue! }
        var owner = [Int](repeating: -1, count: 10_000)
        for (i, ranges) in records.enumerated() {
            for r in ranges {
                for b in r.arrayValue![0].intValue!..<r.arrayValue![1].intValue! {
                    #expect(owner[b] == -1, "bucket \(b) held twice")
                    owner[b] = i
                }
            }
        }
    }

    @Test func variantSharesMatchWeights() throws {
        let client = try TestClient()
        _ = try live(client, ["traffic": 1.0, "targeting": nil,
                              "variants": [["key": "control", "weight": 0.2, "control": true], ["key": "b", "weight": 0.3], ["key": "c", "weight": 0.5]]])
        var counts: [String: Double] = [:]
        // assign.bulk takes at most 100,000 units a call.
        for part in 0..<3 {
            let units = (part * 100_000..<(part + 1) * 100_000).map { "user-\($0)" }
            let result = try client.ok("assign.bulk", ["units": JSON(units), "key": "checkout-green-button", "at": "2026-12-10T00:00:00Z"])
            for a in result["assignments"]!.arrayValue! { counts[a["variant"]!.stringValue!, default: 0] += 1 }
        }
        let observed = ["control", "b", "c"].map { counts[$0] ?? 0 }
        let expected = [0.2, 0.3, 0.5].map { $0 * 300_000 }
        let chi2 = zip(observed, expected).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) / $1.1 }
        let p = ChiSquared.sf(chi2, df: 2)
        #expect(p > 0.001, "chi2 \(chi2), p \(p), counts \(counts)")
    }
}
