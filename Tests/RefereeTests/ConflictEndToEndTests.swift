import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TestSupport
import JSONCore

@Suite(.serialized) struct ConflictEndToEndTests {
    let dir = TemporaryDirectory()

    /// Two daemons on one store race to approve experiments that cannot both hold traffic:
    /// the check and the write share one transaction, so exactly one wins every round.
    @Test func racingApprovalsAdmitExactlyOne() throws {
        let store = dir.path("race.sqlite")
        let a = try PipeClient(store: store, actor: "approver.a")
        let b = try PipeClient(store: store, actor: "approver.b")
        // The registrant may not approve (four eyes): a third principal registers.
        let registrar = try PipeClient(store: store, actor: "pm.registrar")
        for round in 0..<20 {
            // Alternate between a layer-capacity race and a cross-layer parameter race.
            let capacity = round % 2 == 0
            let schedule: JSON = ["start": .string("2027-\(String(format: "%02d", round % 12 + 1))-01T00:00:00Z"),
                                  "end": .string("2027-\(String(format: "%02d", round % 12 + 1))-20T00:00:00Z")]
            let x = exampleExperiment(["key": .string("x\(round)"), "owner": "pm.x", "schedule": schedule, "layer": .string("L\(round)"),
                                       "traffic": capacity ? 0.6 : 0.3, "parameters": [.string(capacity ? "px\(round)" : "shared\(round)")]])
            let y = exampleExperiment(["key": .string("y\(round)"), "owner": "pm.y", "schedule": schedule,
                                       "layer": .string(capacity ? "L\(round)" : "M\(round)"),
                                       "traffic": capacity ? 0.6 : 0.3, "parameters": [.string(capacity ? "py\(round)" : "shared\(round)")]])
            _ = try registrar.result("experiment.register", ["experiment": x])
            _ = try registrar.result("experiment.register", ["experiment": y])
            _ = try a.result("experiment.transition", ["key": .string("x\(round)"), "version": 1, "to": "review"])
            _ = try a.result("experiment.transition", ["key": .string("y\(round)"), "version": 1, "to": "review"])
            let line = { (key: String, id: Int) in
                JSON.object(["jsonrpc": "2.0", "id": JSON(id), "method": "experiment.transition",
                             "params": ["key": .string(key), "version": 2, "to": "approved"]]).serialized()
            }
            a.send(raw: line("x\(round)", 1))
            b.send(raw: line("y\(round)", 2))
            let ra = try a.readJSON(), rb = try b.readJSON()
            let wins = [ra, rb].filter { $0["result"] != nil }.count
            let conflicts = [ra, rb].filter { $0["error"]?["code"] == 1002 }.count
            #expect(wins == 1 && conflicts == 1, "round \(round): \(ra.serialized().prefix(200)) / \(rb.serialized().prefix(200))")
        }
        let scan = try a.result("conflicts.scan")
        // Every pair left has exactly one approved member: nothing is double-held, so the scan reports the pairs as
        // warnings (the member in review meets the error when it is approved), as a check of the approved one does.
        let approved = try a.result("experiment.list", ["state": "approved"])["count"]
        #expect(approved == 20)
        #expect(scan["errors"] == 0)
        #expect((scan["warnings"]?.intValue ?? 0) >= 20)
    }

    func write(_ name: String, _ doc: JSON) throws -> String {
        let path = dir.path(name)
        try doc.serialized().write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func checkCommandForCI() throws {
        let store = dir.path("ci.sqlite")
        let args = ["--store", store]
        // Registered and approved: the layer's running experiment.
        let running = try write("running.json", exampleExperiment())
        #expect(try runReferee(["register", running, "--actor", "pm.alice"] + args).status == 0)
        #expect(try runReferee(["transition", "checkout-green-button", "review", "--actor", "pm.alice"] + args).status == 0)
        #expect(try runReferee(["transition", "checkout-green-button", "approved", "--actor", "bob"] + args).status == 0)

        let clean = try write("clean.json", exampleExperiment(["key": "clean", "layer": "home", "parameters": ["home.banner"], "targeting": ["platform": "android"]]))
        let cleanRun = try runReferee(["check", clean] + args)
        #expect(cleanRun.status == 0)
        #expect(cleanRun.stdout.contains("clean.json: clean — valid, 0 findings"))

        let conflicting = try write("conflicting.json", exampleExperiment(["key": "conflicting", "layer": "home"]))
        let text = try runReferee(["check", conflicting] + args)
        #expect(text.status == 1)
        #expect(text.stdout.contains("error parameter with checkout-green-button"))

        let p1 = try write("p1.json", exampleExperiment(["key": "p1", "layer": "a", "parameters": ["same"], "targeting": ["platform": "web"]]))
        let p2 = try write("p2.json", exampleExperiment(["key": "p2", "layer": "b", "parameters": ["same"], "targeting": ["platform": "web"]]))
        let pair = try runReferee(["check", p1, p2, "--format", "json"] + args)
        // The files are proposals meant to run: a parameter both change from two layers is an error, as at approval.
        #expect(pair.status == 1)
        let report = try JSONParser.parse(pair.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(report["errors"]?.intValue ?? 0 >= 2)
        #expect(report["files"]?.arrayValue?.first?["conflicts"]?.arrayValue?.contains { $0["with"] == "p2" && $0["kind"] == "parameter" && $0["severity"] == "error" } == true)

        let junit = try runReferee(["check", conflicting, clean, "--format", "junit"] + args)
        #expect(junit.status == 1)
        #expect(junit.stdout.hasPrefix("<?xml"))
        #expect(junit.stdout.contains("<failure type=\"finding\" message=\""))
        #expect(junit.stdout.contains("name=\"protocol and conflicts\""))
        // The XML parses.
        let xml = try XMLDocument(data: Data(junit.stdout.utf8))
        #expect(try xml.nodes(forXPath: "//testcase/failure").count >= 1)

        let malformed = dir.path("malformed.json")
        try "{\"key\": ".write(toFile: malformed, atomically: true, encoding: .utf8)
        let bad = try runReferee(["check", malformed, clean] + args)
        #expect(bad.status == 2)
        #expect(bad.stdout.contains("malformed.json: ERROR"))
        let invalid = try write("invalid.json", exampleExperiment(["key": "inv", "layer": "zz", "parameters": ["q"], "design": ["alpha": 0.5]]))
        #expect(try runReferee(["check", invalid] + args).status == 1)
        #expect(try runReferee(["check"] + args).status == 2)
    }
}

/// `assign` answers from memory while nobody commits: another process's transition is seen at once.
@Suite struct AssignmentCacheEndToEndTests {
    let dir = TemporaryDirectory()

    @Test func assignSeesAnotherDaemonsTransition() throws {
        let store = try TestStores.onPostgres ? TestStores.freshDatabase() : dir.path("assign.sqlite")
        let owner = try PipeClient(store: store, actor: "root")
        let approver = try PipeClient(store: store, actor: "approver.bob")
        _ = try owner.result("experiment.register", ["experiment": exampleExperiment()])
        _ = try owner.result("experiment.transition", ["key": "checkout-green-button", "version": 1, "to": "review"])
        _ = try approver.result("experiment.transition", ["key": "checkout-green-button", "version": 2, "to": "approved"])
        func assigned(_ at: String) throws -> Int {
            var count = 0
            for u in 0..<40 where try owner.result("assign", ["unit": .string("u\(u)"), "layer": "checkout", "attributes": ["country": "US", "platform": "ios"], "at": .string(at)])["experiment"] != .null {
                count += 1
            }
            return count
        }
        _ = try owner.result("experiment.transition", ["key": "checkout-green-button", "version": 3, "to": "running"])
        let running = try assigned("2026-12-02T00:00:00Z")
        #expect(running > 0)
        #expect(try assigned("2026-11-02T00:00:00Z") == 0, "before its start")
        #expect(try assigned("2026-12-02T00:00:00Z") == running, "the same answer again, from memory")
        _ = try approver.result("experiment.transition", ["key": "checkout-green-button", "version": 4, "to": "aborted"])
        #expect(try assigned("2026-12-02T00:00:00Z") == 0, "another daemon aborted it")
    }
}
