import Foundation
import Testing
import JSONCore
import Registry
import TestSupport
import Store

/// The store on its own: records, versions, the audit chain, read-only opening and durability across reopening.
@Suite struct StoreTests {
    let dir = TemporaryDirectory()

    func record(_ key: String, version: Int = 1, owner: String = "pm.alice") -> ExperimentRecord {
        ExperimentRecord(key: key, state: .draft, version: version, owner: owner, layer: "checkout", protocolName: "standard",
                         protocolHash: String(repeating: "a", count: 64), document: ["key": .string(key), "note": "ünïcode \u{1F600}"],
                         plan: .null, decision: nil, createdAt: "2026-11-20T10:00:00Z", updatedAt: "2026-11-20T10:00:00Z",
                         createdBy: owner, updatedBy: owner)
    }

    @Test func recordsSurviveReopeningAndComeBackAsWritten() throws {
        let path = dir.path("s.sqlite")
        do {
            let store = try Store(path: path)
            try store.write { tx in try tx.insert(record("a")); try tx.insert(record("b")) }
        }
        let store = try Store(path: path)
        #expect(try store.read { tx in try tx.experiment("a") } == record("a"))
        let wire = try #require(try store.experimentWire("b"))
        #expect(try JSONParser.parse(wire.serialized()) == record("b").json)
        #expect(try store.read { tx in try tx.experiments().map(\.key) } == ["a", "b"])
    }

    @Test func aStaleVersionChangesNothing() throws {
        let store = try Store(path: dir.path("v.sqlite"))
        try store.write { tx in try tx.insert(record("a")) }
        var next = record("a", version: 2)
        next.owner = "pm.bob"
        #expect(try store.write { tx in try tx.update(next, expectedVersion: 7) } == false)
        #expect(try store.read { tx in try tx.experiment("a") }?.owner == "pm.alice")
        #expect(try store.write { tx in try tx.update(next, expectedVersion: 1) } == true)
        #expect(try store.read { tx in try tx.experiment("a") }?.version == 2)
    }

    @Test func aFailedTransactionWritesNothing() throws {
        struct Refused: Error {}
        let store = try Store(path: dir.path("t.sqlite"))
        #expect(throws: Refused.self) {
            try store.write { tx in
                try tx.insert(record("a"))
                try tx.appendAudit(at: "2026-11-20T10:00:00Z", principal: "pm.alice", onBehalfOf: nil, method: "experiment.register", key: "a",
                                   before: .null, after: record("a").json, reason: nil)
                throw Refused()
            }
        }
        #expect(try store.read { tx in try tx.experiment("a") } == nil)
        #expect(try store.read { tx in try tx.auditHead() }.entries == 0)
    }

    @Test func theAuditChainLinksEveryEntry() throws {
        let store = try Store(path: dir.path("a.sqlite"))
        for i in 1...3 {
            _ = try store.write { tx in
                try tx.appendAudit(at: "2026-11-20T10:00:0\(i)Z", principal: "pm.alice", onBehalfOf: nil, method: "experiment.update", key: "a",
                                   before: .null, after: ["i": JSON(i)], reason: nil)
            }
        }
        let chain = try store.read { tx in try tx.verifyAudit() }
        #expect(chain.entries == 3 && chain.firstBroken == nil)
        let entries = try store.read { tx in try tx.auditEntries() }
        #expect(entries.map(\.seq) == [1, 2, 3])
        #expect(try store.read { tx in try tx.auditHead() }.hash == entries.last?.hash)
    }

    @Test func aReadOnlyStoreNeverCreatesOrWrites() throws {
        #expect(throws: (any Error).self) { _ = try Store(path: dir.path("missing.sqlite"), readOnly: true) }
        #expect(!FileManager.default.fileExists(atPath: dir.path("missing.sqlite")))
        let path = dir.path("r.sqlite")
        try Store(path: path).write { tx in try tx.insert(record("a")) }
        let readOnly = try Store(path: path, readOnly: true)
        #expect(throws: (any Error).self) { try readOnly.write { tx in try tx.insert(record("b")) } }
        #expect(try readOnly.read { tx in try tx.experiment("a") } != nil)
    }

    @Test func aDimensionsSegmentsAreReadByTheirPrefixOnly() throws {
        let store = try Store(path: dir.path("seg.sqlite"))
        try store.write { tx in
            for segment in ["", "platform=android", "platform=ios", "platform_x=1", "platformz", "country=US"] {
                for metric in ["m", "__exposures", "other"] {
                    for day in ["2026-12-01", "2026-12-02"] {
                        try tx.upsertResult(key: "k", metric: metric, variant: "control", day: day, segment: segment, stats: "e,1", source: "t", at: "x")
                    }
                }
            }
        }
        let all = try store.read { tx in try tx.results(key: "k", segmentPrefix: "platform=") }
        #expect(Set(all.map(\.segment)) == ["platform=android", "platform=ios"] && all.count == 12)
        let one = try store.read { tx in try tx.results(key: "k", segmentPrefix: "platform=", metric: "m", beforeDay: "2026-12-02") }
        #expect(one.count == 4 && Set(one.map(\.metric)) == ["m", "__exposures"] && one.allSatisfy { $0.day == "2026-12-01" })
        #expect(try store.read { tx in try tx.results(key: "k", segmentPrefix: "city=") }.isEmpty)
    }
}
