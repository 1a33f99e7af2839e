import Foundation
import Testing
import TestSupport
import JSONCore
import Registry
@testable import Store

/// The write path's round-trip savings (`Docs/ARCHITECTURE.md`, "Round trips of a write") keep every promise: writes
/// held until the next statement waited for still fail their transaction whole, the bookkeeping read once stays exact
/// while the transaction writes, and the rows kept from this process's last write are never taken for another's.
@Suite struct StoreWritePathTests {
    /// Every store this test can open: SQLite always, PostgreSQL when the test cluster runs (always under Scripts/test).
    nonisolated(unsafe) static let directory = TemporaryDirectory()

    static func stores() throws -> [String] {
        var out = [directory.path("write-path-\(UUID().uuidString).sqlite")]
        if TestStores.clusterURL != nil { out.append(try TestStores.freshDatabase()) }
        return out
    }

    static func record(_ key: String, layer: String = "l") -> ExperimentRecord {
        ExperimentRecord(key: key, state: .draft, version: 1, owner: "o", layer: layer, protocolName: "standard", protocolHash: "h",
                         document: ["key": .string(key)], plan: .null, decision: nil, createdAt: "2026-12-04T00:00:00Z",
                         updatedAt: "2026-12-04T00:00:00Z", createdBy: "o", updatedBy: "o")
    }

    @Test func heldWritesGoTogetherOnlyToDistinctTables() {
        let statements: [(sql: String, arguments: [any SQLBindable])] = [
            ("BEGIN", []), ("SELECT pg_advisory_xact_lock(?)", [1]),
            ("INSERT INTO protocol_versions (hash) VALUES (?)", ["h"]), ("INSERT INTO experiments (key) VALUES (?)", ["a"]),
            ("INSERT INTO audit (seq) VALUES (?)", [1]), ("UPDATE meta SET value = 1", []),
            ("INSERT INTO experiments(key) VALUES (?)", ["b"]), ("DELETE FROM results WHERE key = ?", ["a"]),
        ]
        let groups = PostgresSession.groups(statements).map { $0.map(\.sql) }
        #expect(groups.map(\.count) == [1, 1, 4, 2])
        #expect(groups[3] == ["INSERT INTO experiments(key) VALUES (?)", "DELETE FROM results WHERE key = ?"])
        #expect(PostgresSession.writtenTable("UPDATE meta SET value = 1") == "meta")
        #expect(PostgresSession.writtenTable("INSERT INTO experiments(key) VALUES (?)") == "experiments")
        #expect(PostgresSession.writtenTable("WITH w AS (SELECT 1) SELECT 1") == nil)
        #expect(PostgresSession.writtenTable("COMMIT") == nil)
    }

    /// A write sent as one statement reads the guard before it writes anything: each INSERT's row comes from it, each
    /// UPDATE and DELETE asks it in its WHERE; any other shape, or two writes to one table, stays a transaction.
    @Test func aWriteAsOneStatementReadsTheGuardFirst() {
        #expect(PostgresSession.guardedWrite("INSERT INTO audit (seq, at) VALUES (?, ?)") == "INSERT INTO audit (seq, at) SELECT ?, ? FROM g WHERE g.ok")
        #expect(PostgresSession.guardedWrite("INSERT INTO holdouts (key, buckets)\n    VALUES (?, '')") == "INSERT INTO holdouts (key, buckets)\n    SELECT ?, '' FROM g WHERE g.ok")
        #expect(PostgresSession.guardedWrite("INSERT INTO p (hash) VALUES (?) ON CONFLICT DO NOTHING") == "INSERT INTO p (hash) SELECT ? FROM g WHERE g.ok ON CONFLICT DO NOTHING")
        #expect(PostgresSession.guardedWrite("UPDATE meta SET value = value + CASE name WHEN ? THEN ? ELSE 0 END WHERE name IN (?)")
                == "UPDATE meta SET value = value + CASE name WHEN ? THEN ? ELSE 0 END WHERE (SELECT ok FROM g) AND ( name IN (?))")
        #expect(PostgresSession.guardedWrite("DELETE FROM result_totals WHERE key = ? AND note = 'a where b'")
                == "DELETE FROM result_totals WHERE (SELECT ok FROM g) AND ( key = ? AND note = 'a where b')")
        #expect(PostgresSession.guardedWrite("UPDATE meta SET value = 0") == "UPDATE meta SET value = 0 WHERE (SELECT ok FROM g)")
        #expect(PostgresSession.guardedWrite("INSERT INTO t (a) VALUES (?), (?)") == nil)
        #expect(PostgresSession.guardedWrite("INSERT INTO t (a) SELECT a FROM u") == nil)
        #expect(PostgresSession.guardedWrite("DELETE FROM t WHERE a = ? RETURNING a") == nil)
        #expect(PostgresSession.guardedWrite("SELECT pg_advisory_xact_lock(?)") == nil)
        let check = (sql: "SELECT ? AS ok", arguments: [7] as [any SQLBindable])
        let one = PostgresSession.oneStatement([("INSERT INTO audit (seq) VALUES (?)", [1]), ("UPDATE meta SET value = ? WHERE name = ?", [2, "n"])], guard: check)
        #expect(one?.sql == "WITH g AS MATERIALIZED (SELECT ? AS ok), w0 AS (INSERT INTO audit (seq) SELECT ? FROM g WHERE g.ok), w1 AS (UPDATE meta SET value = ? WHERE (SELECT ok FROM g) AND ( name = ?)) SELECT ok FROM g")
        #expect(one?.arguments.map(\.sqlValue) == [.integer(7), .integer(1), .integer(2), .text("n")])
        #expect(PostgresSession.oneStatement([("INSERT INTO audit (seq) VALUES (?)", [1]), ("INSERT INTO audit (seq) VALUES (?)", [2])], guard: check) == nil)
        #expect(PostgresSession.oneStatement([], guard: check) == nil)
    }

    /// A write sent as one statement travels as text with its values written in, each typed as it would have been bound;
    /// text is an E'' literal with quotes and backslashes doubled; `?` inside quoted text is not a placeholder.
    @Test func aStatementSentAsTextCarriesItsValuesAsTheyWouldBeBound() {
        #expect(PostgresSession.inlined("UPDATE t SET a = ?, b = '?' WHERE c = ? AND d = ?", [Int.min, "it's a \\ \n", SQLValue.null])
                == "UPDATE t SET a = '-9223372036854775808'::int8, b = '?' WHERE c = E'it''s a \\\\ \n'::text AND d = NULL")
        #expect(PostgresSession.inlined("SELECT ?", []) == nil)
        #expect(PostgresSession.inlined("SELECT 1", [1]) == nil)
        #expect(PostgresSession.inlined("SELECT ?", ["a\u{0}b"]) == nil)
    }

    /// Awkward text (quotes, backslashes, a `?`, new lines, characters beyond ASCII) written as one statement comes back
    /// from the database as it was given.
    @Test(.enabled(if: TestStores.clusterURL != nil)) func textWrittenAsOneStatementComesBackExactly() throws {
        let store = try Store(path: try TestStores.freshDatabase())
        let keys = ["plain", "it's", "back\\slash\\'", "E'x'", "what?", "two\nlines\t", "ключ-🚀", "'; DROP TABLE audit; --"]
        for key in keys {
            try store.write(claiming: key) { tx in
                try tx.insert(Self.record(key))
                try tx.appendAudit(at: "t", principal: "o", onBehalfOf: nil, method: "experiment.register", key: key, before: .null, after: ["k": .string(key)], reason: nil)
            }
        }
        #expect(store.oneStatementWrites!.applied == keys.count - 1)
        let (stored, audit) = try store.read { tx in (try tx.experiments(changedSince: 0).map(\.key), try tx.verifyAudit()) }
        #expect(stored == keys)
        #expect(audit.entries == keys.count && audit.firstBroken == nil)
        for key in keys { #expect(try store.read { tx in try tx.experiment(key)?.document } == ["key": .string(key)]) }
    }

    /// A process whose last commit is still the store's latest sends its next write as one statement; one that another
    /// process wrote after applies nothing that way and runs as a transaction on what the store holds now (here: a key
    /// taken in between is refused). The chain, the counters and the rows come out as if every write had been a transaction.
    @Test(.enabled(if: TestStores.clusterURL != nil)) func aWriteIsOneStatementOnlyWhileNobodyElseWrote() throws {
        let path = try TestStores.freshDatabase()
        let here = try Store(path: path), elsewhere = try Store(path: path)
        func register(_ store: Store, _ key: String) throws {
            try store.write(claiming: key) { tx in
                if try tx.keyTaken(key) { throw StoreError(message: "\(key) is taken") }
                try tx.insert(Self.record(key))
                try tx.appendAudit(at: "t", principal: "o", onBehalfOf: nil, method: "experiment.register", key: key, before: .null, after: ["k": .string(key)], reason: nil)
            }
        }
        try register(here, "a")                                     // nothing known yet: a transaction
        #expect(here.oneStatementWrites! == (0, 0))
        try register(here, "b")
        try register(here, "c")
        #expect(here.oneStatementWrites! == (2, 0))
        try register(elsewhere, "d")
        try register(here, "e")                                     // elsewhere committed since: a transaction
        #expect(here.oneStatementWrites! == (2, 1))
        try register(here, "f")                                     // after a miss one write waits its turn
        try register(here, "g")
        #expect(here.oneStatementWrites! == (3, 1))
        try register(elsewhere, "h")
        #expect(throws: StoreError.self) { try register(here, "h") }
        #expect(here.oneStatementWrites! == (3, 2))
        try register(here, "i")                                     // again one write waits
        try register(here, "j")
        #expect(here.oneStatementWrites! == (4, 2))
        let (keys, generation, audit) = try here.read { tx in
            (try tx.experiments(changedSince: 0).map(\.key), try tx.generation(), try tx.verifyAudit())
        }
        #expect(keys == ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"])
        #expect(generation == 10)
        #expect(audit.entries == 10 && audit.firstBroken == nil)
        #expect(try here.read { tx in try tx.auditEntries().map(\.key) } == keys)
    }

    /// A held insert that the database refuses (the second of one key) fails the whole write, at the statement that
    /// sends it; nothing of it is applied, not the first insert, not its audit entry, not a counter.
    @Test(arguments: try stores()) func aRefusedHeldWriteFailsTheWholeWrite(_ path: String) throws {
        let store = try Store(path: path)
        try store.write { tx in
            try tx.insert(Self.record("kept"))
            try tx.appendAudit(at: "t", principal: "o", onBehalfOf: nil, method: "experiment.register", key: "kept", before: .null, after: ["k": 1], reason: nil)
        }
        let before = try store.read { tx in (try tx.generation(), try tx.auditHead().entries) }
        #expect(throws: (any Error).self) {
            try store.write { tx in
                try tx.insert(Self.record("new"))
                try tx.appendAudit(at: "t", principal: "o", onBehalfOf: nil, method: "experiment.register", key: "new", before: .null, after: ["k": 2], reason: nil)
                try tx.insert(Self.record("new"))
            }
        }
        let after = try store.read { tx in (try tx.generation(), try tx.auditHead().entries, try tx.experiment("new")) }
        #expect(after.0 == before.0)
        #expect(after.1 == before.1)
        #expect(after.2 == nil)
        #expect(try store.read { tx in try tx.verifyAudit() }.firstBroken == nil)
        // The store still writes, and what it knows of its last write is still right.
        try store.write { tx in try tx.insert(Self.record("after")) }
        #expect(try store.read { tx in try tx.experiments(changedSince: before.0).map(\.key) } == ["after"])
    }

    /// A transaction's bookkeeping is read once: its own bumps and audit appends must keep the copy exact.
    @Test(arguments: try stores()) func oneTransactionsBookkeepingFollowsItsOwnWrites(_ path: String) throws {
        let store = try Store(path: path)
        let entries = try store.write { tx -> [AuditEntry] in
            try tx.insert(Self.record("a"))
            try tx.insert(Self.record("b"))
            return try (1...3).map { i in
                try tx.appendAudit(at: "t", principal: "o", onBehalfOf: nil, method: "experiment.register", key: "a", before: .null, after: ["i": JSON(i)], reason: nil)
            }
        }
        #expect(entries.map(\.seq) == [1, 2, 3])
        let verified = try store.read { tx in try tx.verifyAudit() }
        #expect(verified.entries == 3 && verified.firstBroken == nil)
        #expect(try store.read { tx in try tx.generation() } == 2)
        #expect(try store.read { tx in try tx.experiments(changedSince: 0).map(\.key) } == ["a", "b"])
    }

    /// The rows of this process's last write answer `experiments(changedSince:)` only while the store's generation is
    /// the one that write left: another process's write in between is read from the database.
    @Test(arguments: try stores()) func theLastWritesRowsAreNeverTakenForAnothers(_ path: String) throws {
        let here = try Store(path: path), elsewhere = try Store(path: path)
        try here.write { tx in try tx.insert(Self.record("mine")) }
        let g = try here.read { tx in try tx.generation() }
        #expect(try here.read { tx in try tx.experiments(changedSince: g - 1).map(\.key) } == ["mine"])
        try elsewhere.write { tx in try tx.insert(Self.record("theirs")) }
        #expect(try here.read { tx in try tx.experiments(changedSince: g - 1).map(\.key) } == ["mine", "theirs"])
        #expect(try here.write { tx in try tx.experiments(changedSince: g).map(\.key) } == ["theirs"])
        // A failed write of this process records nothing.
        #expect(throws: (any Error).self) {
            try here.write { tx in
                try tx.insert(Self.record("rolled-back"))
                throw StoreError(message: "refused")
            }
        }
        try elsewhere.write { tx in try tx.insert(Self.record("theirs-again")) }
        #expect(try here.read { tx in try tx.experiments(changedSince: g + 1).map(\.key) } == ["theirs-again"])
    }

    /// A daemon's own commit tells its commit clock the count, for the requests that had arrived before its COMMIT was
    /// sent: the larger count wins, so an ask that read the count from before the commit (finishing between the commit
    /// and its report) cannot keep answering requests pipelined after the write, and a later local write that reported
    /// first is not undone.
    @Test(.enabled(if: TestStores.clusterURL != nil)) func theDaemonsOwnCommitSetsTheCountItKnows() throws {
        let location = try PostgresLocation.parse(try TestStores.freshDatabase())
        let clock = PostgresCommitClock(backend: try PostgresBackend(location: location, readOnly: false))
        final class Arrivals: ArrivalClock, @unchecked Sendable { var now: UInt64 = 10 }
        let arrivals = Arrivals()
        clock.use(arrivals)
        #expect(try clock.token(arrival: 5) == 0)                       // asked: covers what had arrived by 10
        clock.committedHere(now: (commits: 1, coversThrough: 8))        // a commit whose COMMIT was sent at 8
        #expect(try clock.token(arrival: 5) == 1)
        #expect(try clock.token(arrival: 8) == 1)
        clock.committedHere(now: (commits: 3, coversThrough: 12))
        clock.committedHere(now: (commits: 2, coversThrough: 11))       // reported after the next write's
        #expect(try clock.token(arrival: 11) == 3)
        clock.committedHere(now: nil)                                   // a write whose outcome is unknown
        arrivals.now = 20
        #expect(try clock.token(arrival: 11) == 0)                      // asked again: the database's count
    }

    /// Held writes are waited for each within the statement time, not all within one: a transaction of tens of
    /// thousands of writes (a large ingest) takes as long as it takes while each statement is answered in time.
    @Test(.enabled(if: TestStores.clusterURL != nil)) func manyHeldWritesEachGetTheStatementTime() throws {
        let location = try PostgresLocation.parse(try TestStores.freshDatabase())
        let backend = try PostgresBackend(location: location, readOnly: false, statementSeconds: 0.25)
        // One at a time through postgres-nio, 30,000 statements take far longer than one statement's 2.25 s.
        let count = 30_000
        try backend.write(claiming: nil) { s, _ in
            for i in 0..<count {
                try s.executeLater("INSERT INTO protocol_versions (hash, name, source, first_seen) VALUES (?, ?, ?, ?)", ["h\(i)", "p", "{}", "t"])
            }
        }
        let stored = try backend.read { s in try s.one("SELECT COUNT(*) FROM protocol_versions", []) { $0.integer(0) } }
        #expect(stored == count)
    }
}
