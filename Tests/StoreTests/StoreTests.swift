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

/// The totals per segment, metric and variant equal the sums of the rows per day, and answer only while fresh.
@Suite struct ResultTotalsTests {
    @Test func totalsEqualTheRowsAndGoStaleOnAnyWrite() throws {
        let store = try Store(path: ":memory:")
        var rng = SystemRandomNumberGenerator()
        var expected: [String: Aggregate] = [:]
        try store.write { tx in
            for segment in ["", "country=US", "country=FR", "platform=ios"] {
                for metric in ["m", "__exposures"] {
                    for variant in ["control", "green"] {
                        for d in 1...20 {
                            let a: Aggregate = metric == "m" ? .continuous(n: Double(Int.random(in: 1...50, using: &rng)), sum: Double(Int.random(in: 0...500, using: &rng)), sumSquares: Double(Int.random(in: 0...9000, using: &rng)))
                                                             : .exposures(n: Double(Int.random(in: 1...50, using: &rng)))
                            try tx.upsertResult(key: "k", metric: metric, variant: variant, day: "2026-12-\(d < 10 ? "0" : "")\(d)", segment: segment,
                                                stats: a.storageText, source: "test", at: "now")
                            let g = "\(segment)|\(metric)|\(variant)"
                            expected[g] = expected[g].flatMap { $0 + a } ?? a
                        }
                    }
                }
            }
            // Written but not refreshed: the totals do not answer.
            #expect(try tx.resultTotals(key: "k", segmentPrefix: "country=", beforeDay: "2027-01-01") == nil)
            try tx.refreshTotals(key: "k")
        }
        try store.read { tx in
            let totals = try #require(try tx.resultTotals(key: "k", segmentPrefix: "country=", beforeDay: "2027-01-01"))
            #expect(totals.count == 2 * 2 * 2)
            for t in totals { #expect(Aggregate(storage: t.stats) == expected["\(t.segment)|\(t.metric)|\(t.variant)"], "\(t.segment) \(t.metric) \(t.variant)") }
            let one = try #require(try tx.resultTotals(key: "k", segmentPrefix: "country=", metric: "m", beforeDay: "2027-01-01"))
            #expect(one.count == 2 * 2 * 2 && Set(one.map(\.metric)) == ["m", "__exposures"])
            // An as-of time inside the data cannot be answered by totals.
            #expect(try tx.resultTotals(key: "k", segmentPrefix: "country=", beforeDay: "2026-12-10") == nil)
            #expect(try tx.resultTotals(key: "k", segmentPrefix: "country=", beforeDay: "2026-12-20") == nil)
            #expect(try tx.resultTotals(key: "k", segmentPrefix: "country=", beforeDay: "2026-12-21") != nil)
        }
        // A write of one row followed by the refresh of its group keeps the totals fresh and right.
        try store.write { tx in
            let fresh = try tx.totalsFresh(key: "k")
            try tx.upsertResult(key: "k", metric: "m", variant: "green", day: "2026-12-05", segment: "country=US", stats: Aggregate.continuous(n: 1, sum: 2, sumSquares: 4).storageText, source: "t", at: "now")
            try tx.refreshTotals(key: "k", segment: "country=US", metric: "m", variant: "green", wasFresh: fresh)
        }
        try store.read { tx in
            let rows = try tx.results(key: "k", segment: "country=US").filter { $0.metric == "m" && $0.variant == "green" }
            var sum: Aggregate?
            for r in rows { if let a = Aggregate(storage: r.stats) { sum = sum.flatMap { $0 + a } ?? a } }
            let total = try #require(try tx.resultTotals(key: "k", segmentPrefix: "country=", metric: "m", beforeDay: "2027-01-01")?.first { $0.segment == "country=US" && $0.metric == "m" && $0.variant == "green" })
            #expect(Aggregate(storage: total.stats) == sum)
        }
    }
}
