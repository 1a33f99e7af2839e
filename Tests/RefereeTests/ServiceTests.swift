import Testing
import TestSupport
import JSONCore
@testable import Service

@Suite struct RegistryServiceTests {
    @Test func registerStoresADraftAtVersionOne() throws {
        let client = try TestClient()
        let record = try client.register()
        #expect(record["state"] == "draft")
        #expect(record["version"] == 1)
        #expect(record["owner"] == "pm.alice")
        #expect(record["protocol_hash"]?.stringValue == shippedProtocols.protocols["standard"]!.contentHash)
        #expect(record["plan"]?["per_arm"] == 4438)
        #expect(record["created_at"] == "2026-11-20T10:00:00Z")
        #expect(record["warnings"] == [])
        var stored = record.objectValue!
        stored["warnings"] = nil
        #expect(try client.ok("experiment.get", ["key": "checkout-green-button"]) == .object(stored))
    }

    @Test func violationsRefuseRegistrationAndStoreNothing() throws {
        let client = try TestClient()
        let e = try #require(client.error("experiment.register", ["experiment": exampleExperiment(["design": ["alpha": 0.1], "hypothesis": nil])]))
        #expect(e.code == 1001)
        #expect(e.reason == "protocol_violation")
        #expect(Set(e.rules) == ["alpha_max", "required"])
        #expect(client.error("experiment.get", ["key": "checkout-green-button"])?.code == 1003)
        #expect(try client.ok("audit.log")["entries"]?.arrayValue?.isEmpty == true)
    }

    @Test func duplicateKeyIsRefused() throws {
        let client = try TestClient()
        try client.register()
        let e = client.error("experiment.register", ["experiment": exampleExperiment()])
        #expect(e?.code == 1007)
        #expect(e?.reason == "duplicate_key")
    }

    @Test func invalidParamsNameTheField() throws {
        let client = try TestClient()
        let e = try #require(client.error("experiment.get", ["key": 5]))
        #expect(e.code == -32602)
        #expect(e.json["data"]?["path"] == "key")
        #expect(client.error("experiment.update", ["key": "x", "version": "1", "changes": [:]])?.json["data"]?["path"] == "version")
        #expect(client.error("experiment.list", ["state": "flying"])?.json["data"]?["path"] == "state")
        #expect(client.error("experiment.get", ["key": "x", "extra": 1])?.json["data"]?["path"] == "extra")
    }

    @Test func updateAppliesAMergePatchAndBumpsTheVersion() throws {
        let client = try TestClient()
        try client.register()
        let updated = try client.ok("experiment.update", ["key": "checkout-green-button", "version": 1,
                                                          "changes": ["name": "Greener", "targeting": ["platform": nil]]])
        #expect(updated["version"] == 2)
        #expect(updated["document"]?["name"] == "Greener")
        #expect(updated["document"]?["targeting"] == ["country": ["$in": ["US", "CA"]]])
        // Stale version: refused, nothing applied.
        let stale = client.error("experiment.update", ["key": "checkout-green-button", "version": 1, "changes": ["name": "Lost"]])
        #expect(stale?.code == 1006)
        #expect(stale?.json["data"]?["actual"] == 2)
        #expect(try client.ok("experiment.get", ["key": "checkout-green-button"])["document"]?["name"] == "Greener")
    }

    @Test func updateThatBreaksTheProtocolIsRefused() throws {
        let client = try TestClient()
        try client.register()
        let e = client.error("experiment.update", ["key": "checkout-green-button", "version": 1, "changes": ["design": ["alpha": 0.2]]])
        #expect(e?.code == 1001)
        #expect(try client.ok("experiment.get", ["key": "checkout-green-button"])["version"] == 1)
        #expect(client.error("experiment.update", ["key": "checkout-green-button", "version": 1, "changes": ["key": "other"]])?.code == 1008)
    }

    @Test func fourEyesRuleBlocksSelfApproval() throws {
        let client = try TestClient()
        try client.register()
        try client.advance("checkout-green-button", to: ["review"], as: "pm.alice")
        let e = try #require(client.error("experiment.transition", ["key": "checkout-green-button", "version": 2, "to": "approved"], as: "pm.alice"))
        #expect(e.code == 1004)
        #expect(e.reason == "forbidden")
        #expect(e.message.contains("four-eyes"))
        try client.advance("checkout-green-button", to: ["approved"], as: "approver.bob")
    }

    @Test func fullLifecycleWithDecision() throws {
        let client = try TestClient()
        try client.register()
        try client.advance("checkout-green-button", to: ["review", "approved", "running", "stopped"])
        let e = client.error("experiment.transition", ["key": "checkout-green-button", "version": 5, "to": "concluded"])
        #expect(e?.code == 1001)
        let done = try client.ok("experiment.transition", ["key": "checkout-green-button", "version": 5, "to": "concluded", "decision": "ship"])
        #expect(done["state"] == "concluded")
        #expect(done["decision"] == "ship")
        #expect(done["version"] == 6)
        let back = try #require(client.error("experiment.transition", ["key": "checkout-green-button", "version": 6, "to": "running"]))
        #expect(back.code == 1005)
        #expect(back.json["data"]?["allowed"] == ["archived"])
    }

    @Test func amendRefusesLockedFieldsAndRequiresAReason() throws {
        let client = try TestClient()
        try client.register()
        try client.advance("checkout-green-button", to: ["review", "approved", "running"])
        let locked = try #require(client.error("experiment.amend", ["key": "checkout-green-button", "version": 4, "reason": "more power",
                                                                     "changes": ["design": ["power": 0.9], "unit": "device_id"]]))
        #expect(locked.code == 1008)
        #expect(locked.json["data"]?["paths"] == ["design.power", "unit"])
        #expect(client.error("experiment.amend", ["key": "checkout-green-button", "version": 4, "changes": ["name": "x"]])?.json["data"]?["path"] == "reason")
        let amended = try client.ok("experiment.amend", ["key": "checkout-green-button", "version": 4, "reason": "clearer name",
                                                          "changes": ["name": "Green button v2"]])
        #expect(amended["version"] == 5)
        // update is for drafts only.
        #expect(client.error("experiment.update", ["key": "checkout-green-button", "version": 5, "changes": ["name": "y"]])?.code == 1008)
        // amend is for live experiments only.
        try client.register(["key": "other"])
        #expect(client.error("experiment.amend", ["key": "other", "version": 1, "reason": "r", "changes": ["name": "y"]])?.code == 1008)
    }

    @Test func auditRecordsEveryMutationWithBeforeAndAfter() throws {
        let client = try TestClient()
        try client.register()
        try client.ok("experiment.update", ["key": "checkout-green-button", "version": 1, "changes": ["name": "N"]], as: "pm.carol")
        try client.advance("checkout-green-button", to: ["review"])
        let entries = try #require(try client.ok("audit.log", ["key": "checkout-green-button"])["entries"]?.arrayValue)
        #expect(entries.map { $0["method"]?.stringValue } == ["experiment.register", "experiment.update", "experiment.transition"])
        #expect(entries.map { $0["principal"]?.stringValue } == ["pm.alice", "pm.carol", "approver.bob"])
        #expect(entries[0]["before"] == .null)
        #expect(entries[1]["before"]?["document"]?["name"] == "Green checkout button")
        #expect(entries[1]["after"]?["document"]?["name"] == "N")
        #expect(entries[2]["after"]?["state"] == "review")
        let verified = try client.ok("audit.verify")
        #expect(verified["ok"] == true && verified["entries"] == 3 && verified["first_broken"] == .null && verified["problems"] == [])
        // Refused requests leave no trace.
        _ = client.error("experiment.update", ["key": "checkout-green-button", "version": 1, "changes": ["name": "Z"]])
        #expect(try client.ok("audit.log")["entries"]?.arrayValue?.count == 3)
    }

    @Test func listFilters() throws {
        let client = try TestClient()
        try client.register()
        try client.register(["key": "b", "owner": "pm.bob", "layer": "search"])
        try client.advance("b", to: ["review"])
        #expect(try client.ok("experiment.list")["count"] == 2)
        #expect(try client.ok("experiment.list", ["state": "review"])["experiments"]?.arrayValue?.map { $0["key"]! } == ["b"])
        #expect(try client.ok("experiment.list", ["owner": "pm.alice"])["count"] == 1)
        #expect(try client.ok("experiment.list", ["layer": "search"])["count"] == 1)
    }

    @Test func protocolsAreServed() throws {
        let client = try TestClient()
        let list = try client.ok("protocol.list")
        #expect(list["protocols"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["sequential", "standard"])
        #expect(list["metrics"]?.arrayValue?.count == 8)
        let p90 = list["metrics"]?.arrayValue?.first { $0["name"] == "session_length_p90" }
        #expect(p90?["type"] == "quantile" && p90?["quantile"] == 0.9 && p90?["column"] == "session_length_seconds")
        let standard = try client.ok("protocol.get", ["name": "standard"])
        #expect(standard["rules"]?["alpha"]?["max"] == 0.05)
        #expect(client.error("protocol.get", ["name": "nope"])?.code == 1003)
    }

    @Test func runningRevalidatesAgainstTheCurrentProtocolAndHistoryKeepsTheOld() throws {
        let dir = TemporaryDirectory()
        let path = dir.path("store.sqlite")
        do {
            let client = try TestClient(storePath: path)
            try client.register()
            try client.advance("checkout-green-button", to: ["review", "approved"])
        }
        // The protocol tightens alpha after approval: running re-validates and refuses.
        var strict = shippedProtocols
        var standard = strict.protocols["standard"]!
        standard.alphaMax = 0.01
        standard.contentHash = "stricter"
        strict.protocols["standard"] = standard
        let client = try TestClient(principal: "approver.bob", storePath: path, protocols: strict)
        let e = client.error("experiment.transition", ["key": "checkout-green-button", "version": 3, "to": "running"])
        #expect(e?.rules == ["alpha_max"])
        // The record still names the hash it was validated against.
        #expect(try client.ok("experiment.get", ["key": "checkout-green-button"])["protocol_hash"]?.stringValue == shippedProtocols.protocols["standard"]!.contentHash)
    }

    @Test func builtInProtocolsMatchTheShippedFiles() throws {
        let builtIn = try ProtocolLoader.builtIn()
        #expect(builtIn.protocols.mapValues(\.contentHash) == shippedProtocols.protocols.mapValues(\.contentHash),
                "run Scripts/codegen/embed-protocols after editing Protocols/")
        #expect(builtIn.catalog == shippedProtocols.catalog)
    }
}
