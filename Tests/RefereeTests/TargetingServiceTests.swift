import Foundation
import Testing
import TestSupport
import JSONCore
import Registry

/// GrowthBook's condition vectors through the control interface, and saved groups as registry objects.
@Suite struct TargetingServiceTests {
    static let vectors: [JSON] = {
        let url = repositoryRoot.appendingPathComponent("Tests/RegistryTests/Reference/growthbook/eval_condition.json")
        return try! JSONParser.parse(String(contentsOf: url, encoding: .utf8)).arrayValue!
    }()
    static let refused: Set<String> = ["unknown operator - pass", "$regex invalid - pass", "$regex invalid - fail",
                                       "$inGroup fails for unknown group id", "$notInGroup passes for unknown group id"]

    /// The vector's condition with its saved groups renamed for this case (two vectors define `group_id` differently).
    static func renamingGroups(_ j: JSON, _ i: Int) -> JSON {
        switch j {
        case .object(let o):
            return .object(Dictionary(uniqueKeysWithValues: o.map { k, v in
                (k, (k == "$inGroup" || k == "$notInGroup") ? v.stringValue.map { .string("case\(i).\($0)") } ?? v : renamingGroups(v, i))
            }))
        case .array(let a): return .array(a.map { renamingGroups($0, i) })
        default: return j
        }
    }

    @Test func everyVectorAgreesThroughTargetingEvalAndAssign() throws {
        let c = try TestClient(principal: "pm.alice")
        let start = Timestamp(rfc3339: "2027-01-01T00:00:00Z")!
        var assigned = 0
        for (i, v) in Self.vectors.enumerated() {
            let name = v["name"]!.stringValue!
            for (group, values) in v["saved_groups"]?.objectValue ?? [:] {
                try c.ok("groups.put", ["name": .string("case\(i).\(group)"), "values": values, "reason": .string("vector \(i)")])
            }
            let condition = Self.renamingGroups(v["condition"]!, i)
            let expected = v["expected"]!.boolValue!
            let attributes = v["attributes"]!
            if Self.refused.contains(name) {
                let e = c.error("targeting.eval", ["targeting": condition, "attributes": attributes])
                #expect(e?.code == 1001, "\(name)")
                let r = c.error("experiment.register", ["experiment": exampleExperiment(["key": .string("v\(i)")]).replacing("targeting", with: condition)])
                #expect(r?.code == 1001 && r?.message.contains("targeting") == true, "\(name): \(r?.message ?? "")")
                continue
            }
            let eval = try c.ok("targeting.eval", ["targeting": condition, "attributes": attributes])
            #expect(eval["matches"]?.boolValue == expected, "targeting.eval: \(name)")
            // Through assign: a running experiment with this targeting, alone in its layer and its week.
            let key = "vector-\(i)"
            let begins = start.adding(days: Double(i * 8)), ends = begins.adding(days: 7)
            let doc = exampleExperiment(["key": .string(key), "layer": .string("vectors-\(i)"), "traffic": 1, "parameters": [.string("vector.\(i)")],
                                         "schedule": ["start": .string(begins.description), "end": .string(ends.description)]])
                .replacing("targeting", with: condition)
            try c.ok("experiment.register", ["experiment": doc])
            try c.advance(key, to: ["review", "approved", "running"])
            let a = try c.ok("assign", ["unit": "u1", "key": .string(key), "attributes": attributes, "at": .string(begins.adding(days: 1).description)])
            #expect((a["experiment"] == .string(key)) == expected, "assign: \(name) got \(a.serialized())")
            assigned += 1
        }
        #expect(assigned == 243)
    }

    @Test func savedGroupsAreVersionedAuditedAndRechecked() throws {
        let c = try TestClient(principal: "pm.alice")
        // A reference to a group that does not exist is a violation naming the path.
        let unknown = c.error("experiment.register", ["experiment": exampleExperiment(["targeting": ["user_id": ["$inGroup": "beta-testers"]]]).replacing("targeting", with: ["user_id": ["$inGroup": "beta-testers"]])])
        #expect(unknown?.code == 1001 && unknown?.json["data"]?["violations"]?.arrayValue?.first?["path"] == "targeting.user_id.$inGroup", "\(unknown?.json.serialized() ?? "")")
        // Define, use, read.
        let put = try c.ok("groups.put", ["name": "beta-testers", "values": ["u1", "u2"], "reason": "first cohort"])
        #expect(put["group"]?["version"] == 1 && put["previous_version"] == .null)
        let a = exampleExperiment(["key": "beta-a", "layer": "one", "traffic": 1, "parameters": ["checkout.button.color"]]).replacing("targeting", with: ["user_id": ["$inGroup": "beta-testers"]])
        let b = exampleExperiment(["key": "beta-b", "layer": "two", "parameters": ["checkout.button.color"]]).replacing("targeting", with: ["user_id": ["$type": "string", "$in": ["u9"]]])
        try c.ok("experiment.register", ["experiment": a])
        try c.ok("experiment.register", ["experiment": b])
        try c.advance("beta-a", to: ["review", "approved", "running"])
        try c.advance("beta-b", to: ["review", "approved", "running"])
        #expect(try c.ok("targeting.eval", ["key": "beta-a", "attributes": ["user_id": "u2"]])["matches"] == true)
        #expect(try c.ok("assign", ["unit": "u2", "key": "beta-a", "attributes": ["user_id": "u2"], "at": "2026-12-02T00:00:00Z"])["experiment"] == "beta-a")
        let listed = try c.ok("groups.list")["groups"]?.arrayValue?.first
        #expect(listed?["experiments"] == ["beta-a"] && listed?["count"] == 2 && listed?["values"] == nil)
        // (b says its user_id is a string: otherwise a unit whose user_id is the array ["u1", "u9"] would be in both,
        // as GrowthBook's `$in` reads an array attribute by intersection.)
        // Adding u9 makes both running experiments, which change the same parameter in two layers, share a unit:
        // an error-severity conflict refuses the change, and nothing is written.
        let refused = c.error("groups.put", ["name": "beta-testers", "values": ["u1", "u2", "u9"], "reason": "second cohort"])
        #expect(refused?.code == 1002, "\(refused?.json.serialized() ?? "")")
        #expect(refused?.json["data"]?["conflicts"]?.arrayValue?.contains { $0["kind"] == "parameter" && $0["witness"]?["user_id"] == "u9" } == true)
        #expect(try c.ok("groups.get", ["name": "beta-testers"])["version"] == 1)
        #expect(try c.ok("targeting.eval", ["key": "beta-a", "attributes": ["user_id": "u9"]])["matches"] == false)
        #expect(try c.ok("assign", ["unit": "u9", "key": "beta-a", "attributes": ["user_id": "u9"], "at": "2026-12-02T00:00:00Z"])["experiment"] == .null)
        // A harmless change goes through, is versioned and audited, and assignment follows it at once.
        #expect(c.error("groups.put", ["name": "beta-testers", "values": ["u3"], "reason": "stale", "version": 5])?.code == 1006)
        let second = try c.ok("groups.put", ["name": "beta-testers", "values": ["u1", "u3"], "reason": "second cohort", "version": 1])
        #expect(second["group"]?["version"] == 2 && second["previous_version"] == 1 && second["experiments"] == ["beta-a"])
        #expect(try c.ok("assign", ["unit": "u3", "key": "beta-a", "attributes": ["user_id": "u3"], "at": "2026-12-02T00:00:00Z"])["experiment"] == "beta-a")
        #expect(try c.ok("assign", ["unit": "u2", "key": "beta-a", "attributes": ["user_id": "u2"], "at": "2026-12-02T00:00:00Z"])["experiment"] == .null)
        let audit = try c.ok("audit.log", ["limit": 100])["entries"]?.arrayValue ?? []
        let groupEntries = audit.filter { $0["method"] == "groups.put" }
        #expect(groupEntries.count == 2)
        #expect(groupEntries.last?["before"]?["version"] == 1 && groupEntries.last?["after"]?["values"] == ["u1", "u3"] && groupEntries.last?["reason"] == "second cohort")
        #expect(try c.ok("audit.verify")["ok"] == true)
        // Bad input changes nothing and names the field.
        #expect(c.error("groups.put", ["name": "bad name!", "values": [], "reason": "x"])?.json["data"]?["path"] == "name")
        #expect(c.error("groups.put", ["name": "g", "values": [["nested": 1]], "reason": "x"])?.json["data"]?["path"] == "values[0]")
        #expect(c.error("groups.get", ["name": "nope"])?.code == 1003)
    }

    @Test func theTraceExplainsEveryClause() throws {
        let c = try TestClient()
        let r = try c.ok("targeting.eval", ["targeting": ["country": ["$in": ["US", "CA"]], "n": ["$gt": 5], "$or": []] as JSON,
                                            "attributes": ["country": "FR", "n": "8"]])
        #expect(r["matches"] == false)
        let trace = r["trace"]?.arrayValue ?? []
        #expect(trace.contains { $0["clause"] == "targeting.country.$in" && $0["holds"] == false && $0["value"] == "FR" })
        #expect(trace.contains { $0["clause"] == "targeting.n.$gt" && $0["holds"] == true && $0["note"]?.stringValue?.contains("compared as numbers") == true })
        #expect(trace.contains { $0["clause"] == "targeting.$or" && $0["holds"] == true })
        #expect(c.error("targeting.eval", ["targeting": ["a": 1], "key": "x"])?.json["data"]?["path"] == "targeting")
        #expect(c.error("targeting.eval", ["key": "nope"])?.code == 1003)
    }

    @Test func referenceEvalPrintsTheTraceAndCanSetTheExitStatus() throws {
        let dir = TemporaryDirectory()
        let file = dir.path("t.json")
        try #"{"country": {"$in": ["US"]}, "tags": {"$elemMatch": {"$eq": "beta"}}}"#.write(toFile: file, atomically: true, encoding: .utf8)
        // Starts with a read-only command, which a missing SQLite file answers as an empty registry and a database
        // no writing command has migrated refuses (README, "The registry on PostgreSQL").
        let store = ["--store", TestStores.sqliteOnly(dir.path("s.sqlite"))]
        let yes = try runReferee(["eval", file, "--attributes", #"{"country": "US", "tags": ["beta"]}"#] + store)
        #expect(yes.status == 0 && yes.stdout.hasPrefix("MATCHES") && yes.stdout.contains("✓ targeting.tags.$elemMatch"), "\(yes.stdout)\(yes.stderr)")
        let no = try runReferee(["eval", file, "--attributes", #"{"country": "FR"}"#, "--exit-status"] + store)
        #expect(no.status == 1 && no.stdout.contains("✗ targeting.country.$in   country = \"FR\""), "\(no.stdout)")
        let bad = try runReferee(["eval", file, "--attributes", "{nope"] + store)
        #expect(bad.status == 2 && bad.stderr.contains("--attributes"))
    }
}

extension JSON {
    /// The object with one member replaced (a merge patch would merge a condition into the old one, and drop nulls).
    func replacing(_ key: String, with value: JSON) -> JSON {
        guard case .object(var o) = self else { return self }
        o[key] = value
        return .object(o)
    }
}
