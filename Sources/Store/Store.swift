public import Registry
public import JSONCore
internal import GRDB
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A stored experiment: the document plus lifecycle state, version and validation record.
public struct ExperimentRecord: Sendable, Equatable {
    public var key: String
    public var state: ExperimentState
    public var version: Int
    public var owner: String
    public var layer: String?
    public var protocolName: String
    public var protocolHash: String
    public var document: JSON
    public var plan: JSON
    public var decision: String?
    public var createdAt: String
    public var updatedAt: String
    public var createdBy: String
    public var updatedBy: String
    /// Buckets held in the layer (allocated at approval), as half-open ranges.
    public var buckets: [Range<Int>]

    public init(key: String, state: ExperimentState, version: Int, owner: String, layer: String?, protocolName: String,
                protocolHash: String, document: JSON, plan: JSON, decision: String?, createdAt: String, updatedAt: String,
                createdBy: String, updatedBy: String, buckets: [Range<Int>] = []) {
        self.key = key; self.state = state; self.version = version; self.owner = owner; self.layer = layer
        self.protocolName = protocolName; self.protocolHash = protocolHash; self.document = document; self.plan = plan
        self.decision = decision; self.createdAt = createdAt; self.updatedAt = updatedAt
        self.createdBy = createdBy; self.updatedBy = updatedBy; self.buckets = buckets
    }

    /// The record plus the conflict warnings of the request that produced it (not stored).
    public func json(warnings: [JSON]) -> JSON {
        guard case .object(var o) = json else { return json }
        o["warnings"] = .array(warnings)
        return .object(o)
    }

    /// The record as returned on the wire.
    public var json: JSON {
        var o: [String: JSON] = [
            "key": .string(key), "state": .string(state.rawValue), "version": JSON(version), "owner": .string(owner),
            "layer": JSON(layer), "protocol": .string(protocolName), "protocol_hash": .string(protocolHash),
            "document": document, "plan": plan, "created_at": .string(createdAt), "updated_at": .string(updatedAt),
            "created_by": .string(createdBy), "updated_by": .string(updatedBy), "decision": JSON(decision),
        ]
        o["buckets"] = .array(buckets.map { [JSON($0.lowerBound), JSON($0.upperBound)] })
        return .object(o)
    }
}

/// One audit entry: who did what, when, with the record before and after.
public struct AuditEntry: Sendable, Equatable {
    public var seq: Int
    public var at: String
    public var principal: String
    public var onBehalfOf: String?
    public var method: String
    public var key: String?
    public var before: JSON
    public var after: JSON
    public var reason: String?
    public var prevHash: String
    public var hash: String

    /// The content the chain hash covers (everything but the hash itself).
    var chainedContent: JSON {
        ["seq": JSON(seq), "at": .string(at), "principal": .string(principal), "on_behalf_of": JSON(onBehalfOf),
         "method": .string(method), "key": JSON(key), "before": before, "after": after, "reason": JSON(reason),
         "prev_hash": .string(prevHash)]
    }

    static func chainHash(prev: String, content: JSON) -> String {
        SHA256.hex(prev + "\n" + content.serialized())
    }

    public var json: JSON {
        var o = chainedContent.objectValue!
        o["hash"] = .string(hash)
        return .object(o)
    }
}

/// The store can no longer be written safely (its files were replaced or removed under the daemon): every
/// write is refused until the daemon is restarted.
public struct StoreUnavailable: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// Failures of the storage layer itself (not domain rules).
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// The experiment registry's persistence, on SQLite through GRDB.
///
/// Uses a WAL `DatabasePool` with `synchronous = FULL`, so an acknowledged write survives a crash,
/// and runs every check-then-write in one `BEGIN IMMEDIATE` transaction, so two processes sharing the
/// file cannot both act on the same stale state.
public final class Store: @unchecked Sendable {
    let writer: any DatabaseWriter
    public let path: String
    /// `experiment.get` answers, valid until the next commit by anyone (nil for in-memory stores).
    private let wireCache: CommitCache<[UInt8], JSON?>?
    /// The files this process has open; a write is refused once the files on disk are other ones.
    private let identity: FileIdentity?
    /// Whether grants exist and a principal's roles, on the same terms as `wireCache`.
    private let accessCache: CommitCache<[UInt8], Access>?

    /// What authorization needs to know about one principal.
    public struct Access: Sendable, Equatable {
        public var enforced: Bool
        public var roles: [String]
    }

    /// Opens (creating if needed) the store at `path`; `":memory:"` gives a private in-memory store for tests.
    /// `readOnly`: the store must exist and is opened with SQLite's read-only flag (read-only commands of the CLI):
    /// nothing, not even a migration, can be written through it.
    public init(path: String, readOnly: Bool = false) throws(StoreError) {
        self.path = path
        var config = Configuration()
        config.readonly = readOnly && path != ":memory:"
        config.busyMode = .timeout(30)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        // Another process may be opening the same file (switching it to WAL, migrating): that is a short race,
        // not a failure, so opening retries for a while before giving up.
        var attempt = 0
        while true {
            do {
                let opened: any DatabaseWriter
                if path == ":memory:" {
                    opened = try DatabaseQueue(configuration: config)
                } else {
                    opened = try DatabasePool(path: path, configuration: config)
                    // GRDB sets `synchronous = NORMAL` when it enables WAL, after prepareDatabase: restore FULL on the
                    // writer so an acknowledged commit survives power loss too, not only a process crash.
                    if !config.readonly { try opened.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") } }
                }
                if config.readonly {
                    guard try opened.read({ db in try Store.migrator.hasCompletedMigrations(db) }) else {
                        throw StoreError(message: "the store at \(path) was written by an older Referee; open it once with a writing command (referee serve) to migrate it")
                    }
                } else {
                    try Store.migrator.migrate(opened)
                }
                writer = opened
                // One mapping of the WAL-index header serves both caches.
                let watch = CommitWatch(storePath: path)
                wireCache = watch.map { CommitCache(watch: $0) }
                accessCache = watch.map { CommitCache(watch: $0) }
                identity = path == ":memory:" ? nil : FileIdentity(storePath: path)
                break
            } catch let error as DatabaseError where attempt < 200 && (error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED
                                                                           || (error.message ?? "").contains("already exists")) {
                // "already exists": another process applied the same migration between our check and our write;
                // the next attempt finds it applied.
                attempt += 1
                usleep(50_000)
            } catch let error as StoreError {
                throw error
            } catch {
                throw StoreError(message: "cannot open store at \(path): \(error)")
            }
        }
    }

    /// Runs `body` in one immediate write transaction; any thrown error rolls everything back.
    public func write<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        var result: T?
        try writer.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) {
                result = try body(StoreTransaction(db: db))
                // Checked under the write lock, just before the commit is acknowledged.
                if let problem = identity?.problem() { throw StoreUnavailable(message: problem) }
                return .commit
            }
        }
        return result!
    }

    /// Runs one statement outside a transaction (a single SELECT is its own consistent snapshot): the hot
    /// read path of `experiment.get`.
    func readStatement<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        try writer.unsafeReentrantRead { db in try body(StoreTransaction(db: db)) }
    }

    /// The record of `key` as `experiment.get` returns it, as wire text (`.raw`); answered from memory
    /// while nobody, in any process, has committed since it was read.
    public func experimentWire(_ key: String) throws -> JSON? {
        let load = { try self.readStatement { tx in try tx.experimentWire(key).map { JSON.raw($0.serialized()) } } }
        // A cache that watches a `-shm` file no longer on disk would miss other processes' commits.
        guard let wireCache, identity?.recentlyIntact() ?? true else { return try load() }
        // Keyed by the key's bytes, as SQLite compares them: Swift strings that are canonically equivalent
        // (a Kelvin sign and a K) are equal, and must not share an answer.
        return try wireCache.value(Array(key.utf8), load: load)
    }

    /// Whether the store has grants and the roles of `principal`, from one snapshot; answered from memory
    /// while nobody has committed (every request is authorized, reads included).
    public func access(of principal: String) throws -> (enforced: Bool, roles: [String]) {
        let load = { try self.read { tx in Access(enforced: try tx.hasGrants(), roles: try tx.roles(of: principal)) } }
        let cache = identity?.recentlyIntact() ?? true ? accessCache : nil
        let a = try cache.map { try $0.value(Array(principal.utf8), load: load) } ?? load()
        return (a.enforced, a.roles)
    }

    /// Runs `body` on a consistent snapshot.
    public func read<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        try writer.read { db in try body(StoreTransaction(db: db)) }
    }

    /// `PRAGMA integrity_check`, "ok" when the file is sound.
    public func integrityCheck() throws -> String {
        try writer.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "" }
    }
}

/// Operations available inside a transaction. All SQL of the project lives in this module.
public struct StoreTransaction {
    let db: Database

    public func experiment(_ key: String) throws -> ExperimentRecord? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT \(Self.recordColumns) FROM experiments WHERE key = ?"), arguments: [key]).map(Self.record)
    }

    /// The wire form of a record, with the stored document and plan passed through without parsing.
    public func experimentWire(_ key: String) throws -> JSON? {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT \(Self.recordColumns) FROM experiments WHERE key = ?"), arguments: [key]) else { return nil }
        var record = Self.record(row, parseDocument: false)
        record.document = .raw(row[7])
        record.plan = .raw((row[8] as String?) ?? "null")
        return record.json
    }

    public func experiments(state: String? = nil, owner: String? = nil, layer: String? = nil, states: [ExperimentState]? = nil,
                            after: String? = nil, limit: Int? = nil) throws -> [ExperimentRecord] {
        var clauses: [String] = []
        var args: [any DatabaseValueConvertible] = []
        if let state { clauses.append("state = ?"); args.append(state) }
        if let owner { clauses.append("owner = ?"); args.append(owner) }
        if let layer { clauses.append("layer = ?"); args.append(layer) }
        if let states {
            clauses.append("state IN (\(states.map { _ in "?" }.joined(separator: ",")))")
            args += states.map(\.rawValue)
        }
        if let after { clauses.append("key > ?"); args.append(after) }
        let whereSQL = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        var sql = "SELECT \(Self.recordColumns) FROM experiments\(whereSQL) ORDER BY key"
        if let limit { sql += " LIMIT ?"; args.append(limit) }
        return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map(Self.record)
    }

    public func insert(_ r: ExperimentRecord) throws {
        let seq = try bumpGeneration()
        try db.execute(sql: """
            INSERT INTO experiments (key, state, version, owner, layer, protocol, protocol_hash, document, plan, decision,
                                     created_at, updated_at, created_by, updated_by, buckets, change_seq)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [r.key, r.state.rawValue, r.version, r.owner, r.layer, r.protocolName, r.protocolHash,
                             r.document.serialized(), r.plan.serialized(), r.decision, r.createdAt, r.updatedAt,
                             r.createdBy, r.updatedBy, Self.encode(r.buckets), seq])
    }

    /// The store-wide generation: bumped by every experiment write.
    public func generation() throws -> Int {
        try Int.fetchOne(try db.cachedStatement(sql: "SELECT value FROM meta WHERE name = 'generation'")) ?? 0
    }

    private func bumpGeneration() throws -> Int {
        try db.execute(sql: "UPDATE meta SET value = value + 1 WHERE name = 'generation'")
        return try generation()
    }

    /// Marks experiments as changed (so every process's conflict index reads them again), without changing them:
    /// used when something they refer to, a saved group, changes.
    public func touch(_ keys: [String]) throws {
        guard !keys.isEmpty else { return }
        let seq = try bumpGeneration()
        for key in keys { try db.execute(sql: "UPDATE experiments SET change_seq = ? WHERE key = ?", arguments: [seq, key]) }
    }

    // MARK: Holdouts

    /// Bumped by every holdout write, so each process re-reads its holdouts only when one changed.
    public func holdoutsGeneration() throws -> Int {
        try Int.fetchOne(try db.cachedStatement(sql: "SELECT value FROM meta WHERE name = 'holdouts_generation'")) ?? 0
    }

    public func holdout(_ key: String) throws -> ExperimentRecord? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT \(Self.recordColumns) FROM holdouts WHERE key = ?"), arguments: [key]).map(Self.record)
    }

    public func holdouts(state: String? = nil) throws -> [ExperimentRecord] {
        if let state {
            return try Row.fetchAll(db, sql: "SELECT \(Self.recordColumns) FROM holdouts WHERE state = ? ORDER BY key", arguments: [state]).map(Self.record)
        }
        return try Row.fetchAll(db, sql: "SELECT \(Self.recordColumns) FROM holdouts ORDER BY key").map(Self.record)
    }

    public func insertHoldout(_ r: ExperimentRecord) throws {
        try db.execute(sql: """
            INSERT INTO holdouts (key, state, version, owner, layer, protocol, protocol_hash, document, plan, decision,
                                  created_at, updated_at, created_by, updated_by, buckets)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')
            """, arguments: [r.key, r.state.rawValue, r.version, r.owner, r.layer, r.protocolName, r.protocolHash,
                             r.document.serialized(), r.plan.serialized(), r.decision, r.createdAt, r.updatedAt, r.createdBy, r.updatedBy])
        try bumpHoldoutsGeneration()
    }

    /// Replaces a holdout whose stored version is `expectedVersion`; false when someone else changed it.
    public func updateHoldout(_ r: ExperimentRecord, expectedVersion: Int) throws -> Bool {
        try db.execute(sql: """
            UPDATE holdouts SET state = ?, version = ?, owner = ?, protocol = ?, protocol_hash = ?, document = ?, plan = ?,
                decision = ?, updated_at = ?, updated_by = ? WHERE key = ? AND version = ?
            """, arguments: [r.state.rawValue, r.version, r.owner, r.protocolName, r.protocolHash, r.document.serialized(),
                             r.plan.serialized(), r.decision, r.updatedAt, r.updatedBy, r.key, expectedVersion])
        let changed = db.changesCount == 1
        try bumpHoldoutsGeneration()
        return changed
    }

    private func bumpHoldoutsGeneration() throws {
        try db.execute(sql: "UPDATE meta SET value = value + 1 WHERE name = 'holdouts_generation'")
    }

    // MARK: Saved groups

    /// Bumped by every change of a saved group.
    public func groupsGeneration() throws -> Int {
        try Int.fetchOne(try db.cachedStatement(sql: "SELECT value FROM meta WHERE name = 'groups_generation'")) ?? 0
    }

    public func groups() throws -> [SavedGroup] {
        try Row.fetchAll(db, sql: "SELECT * FROM saved_groups ORDER BY name").map(Self.group)
    }

    public func group(_ name: String) throws -> SavedGroup? {
        try Row.fetchOne(db, sql: "SELECT * FROM saved_groups WHERE name = ?", arguments: [name]).map(Self.group)
    }

    public func putGroup(_ g: SavedGroup) throws {
        try db.execute(sql: """
            INSERT INTO saved_groups (name, version, items, reason, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT(name) DO UPDATE SET version = excluded.version, items = excluded.items, reason = excluded.reason,
                updated_at = excluded.updated_at, updated_by = excluded.updated_by
            """, arguments: [g.name, g.version, JSON.array(g.values).serialized(), g.reason, g.updatedAt, g.updatedBy])
        try db.execute(sql: "UPDATE meta SET value = value + 1 WHERE name = 'groups_generation'")
    }

    static func group(_ row: Row) -> SavedGroup {
        let items = (try? JSONParser.parse(row["items"] as String))?.arrayValue ?? []
        return SavedGroup(name: row["name"], version: row["version"], values: items, reason: row["reason"], updatedAt: row["updated_at"], updatedBy: row["updated_by"])
    }

    /// Experiments written after generation `since`, with their change stamps.
    public func experiments(changedSince since: Int) throws -> [ExperimentRecord] {
        try Row.fetchAll(db, sql: "SELECT \(Self.recordColumns) FROM experiments WHERE change_seq > ? ORDER BY change_seq", arguments: [since]).map(Self.record)
    }

    /// Replaces a record whose stored version is `expectedVersion`; returns false if someone else changed it.
    public func update(_ r: ExperimentRecord, expectedVersion: Int) throws -> Bool {
        let seq = try bumpGeneration()
        try db.execute(sql: """
            UPDATE experiments SET state = ?, version = ?, owner = ?, layer = ?, protocol = ?, protocol_hash = ?, document = ?,
                plan = ?, decision = ?, updated_at = ?, updated_by = ?, buckets = ?, change_seq = ?
            WHERE key = ? AND version = ?
            """, arguments: [r.state.rawValue, r.version, r.owner, r.layer, r.protocolName, r.protocolHash, r.document.serialized(),
                             r.plan.serialized(), r.decision, r.updatedAt, r.updatedBy, Self.encode(r.buckets), seq, r.key, expectedVersion])
        return db.changesCount == 1
    }

    /// Remembers the exact text of a protocol an experiment was validated against.
    public func rememberProtocol(name: String, hash: String, source: String, at: String) throws {
        try db.execute(sql: "INSERT OR IGNORE INTO protocol_versions (hash, name, source, first_seen) VALUES (?, ?, ?, ?)",
                       arguments: [hash, name, source, at])
    }

    public func protocolSource(hash: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT source FROM protocol_versions WHERE hash = ?", arguments: [hash])
    }

    /// Appends an entry to the hash-chained audit log and returns it.
    @discardableResult
    public func appendAudit(at: String, principal: String, onBehalfOf: String?, method: String, key: String?,
                            before: JSON, after: JSON, reason: String?) throws -> AuditEntry {
        let last = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        let seq = (last?["seq"] as Int? ?? 0) + 1
        let prev = last?["hash"] as String? ?? String(repeating: "0", count: 64)
        var entry = AuditEntry(seq: seq, at: at, principal: principal, onBehalfOf: onBehalfOf, method: method, key: key,
                               before: before, after: after, reason: reason, prevHash: prev, hash: "")
        entry.hash = AuditEntry.chainHash(prev: prev, content: entry.chainedContent)
        try db.execute(sql: """
            INSERT INTO audit (seq, at, principal, on_behalf_of, method, key, before, after, reason, prev_hash, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [seq, at, principal, onBehalfOf, method, key, before.serialized(), after.serialized(), reason, prev, entry.hash])
        return entry
    }

    public func auditEntries(key: String? = nil, limit: Int? = nil, afterSeq: Int = 0) throws -> [AuditEntry] {
        var sql = "SELECT * FROM audit WHERE seq > ?"
        var args: [any DatabaseValueConvertible] = [afterSeq]
        if let key { sql += " AND key = ?"; args.append(key) }
        sql += " ORDER BY seq"
        if let limit { sql += " LIMIT ?"; args.append(limit) }
        return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map(Self.audit)
    }

    /// Recomputes the audit chain; returns the number of entries and the first broken sequence number.
    public func verifyAudit() throws -> (entries: Int, firstBroken: Int?) {
        var prev = String(repeating: "0", count: 64)
        var count = 0
        let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM audit ORDER BY seq")
        var expectedSeq = 1
        while let row = try cursor.next() {
            let entry = Self.audit(row)
            count += 1
            if entry.seq != expectedSeq || entry.prevHash != prev || AuditEntry.chainHash(prev: prev, content: entry.chainedContent) != entry.hash {
                return (count, entry.seq)
            }
            prev = entry.hash
            expectedSeq += 1
        }
        return (count, nil)
    }

    /// The newest entry's position and hash: an operator or a CI job records it, and a later
    /// `verifyAudit(expectedHead:)` proves that nothing up to it was removed or rewritten.
    public func auditHead() throws -> (entries: Int, hash: String) {
        let last = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return (last?["seq"] as Int? ?? 0, last?["hash"] as String? ?? String(repeating: "0", count: 64))
    }

    /// What the audit log says the registry holds, against what it holds.
    public struct AuditReconciliation: Sendable {
        /// Experiments whose stored record differs from the `after` of their newest audit entry, or that
        /// exist on one side only: `(key, what)`.
        public var records: [(key: String, problem: String)] = []
        /// Grants the log does not account for, or that it says exist but do not: `(principal, role, what)`.
        public var grants: [(principal: String, role: String, problem: String)] = []
    }

    /// Recomputes the chain, and replays it against the stored records and grants. The hash of each
    /// experiment's newest `after` is kept, not the record, so memory stays small for large registries.
    public func reconcileAudit() throws -> AuditReconciliation {
        var latest: [String: String] = [:]          // key → SHA-256 of the newest `after` text (empty: absent)
        var grants = Set<[String]>()
        let cursor = try Row.fetchCursor(db, sql: "SELECT method, key, before, after FROM audit ORDER BY seq")
        while let row = try cursor.next() {
            let method: String = row[0]
            switch method {
            case "experiment.register", "experiment.update", "experiment.amend", "experiment.transition":
                if let key: String = row[1] { latest[key] = SHA256.hex(row[3] as String) }
            case "access.bootstrap", "access.grant":
                if let after = try? JSONParser.parse(row[3] as String), let p = after["principal"]?.stringValue, let r = after["role"]?.stringValue { grants.insert([p, r]) }
            case "access.revoke":
                if let before = try? JSONParser.parse(row[2] as String), let p = before["principal"]?.stringValue, let r = before["role"]?.stringValue { grants.remove([p, r]) }
            default: break
            }
        }
        var out = AuditReconciliation()
        let records = try Row.fetchCursor(db, sql: "SELECT \(Self.recordColumns) FROM experiments ORDER BY key")
        var seen = Set<String>()
        while let row = try records.next() {
            let record = Self.record(row)
            seen.insert(record.key)
            guard let expected = latest[record.key] else {
                out.records.append((record.key, "exists in the store but no audit entry created it"))
                continue
            }
            if SHA256.hex(record.json.serialized()) != expected {
                out.records.append((record.key, "differs from the after of its newest audit entry (changed outside Referee)"))
            }
        }
        for key in latest.keys.sorted() where !seen.contains(key) {
            out.records.append((key, "the audit log records it but the store has no such experiment (deleted outside Referee)"))
        }
        var stored = Set<[String]>()
        for g in try self.grants() { stored.insert([g.principal, g.role]) }
        for g in stored.subtracting(grants).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            out.grants.append((g[0], g[1], "granted in the store without an audit entry (written outside Referee)"))
        }
        for g in grants.subtracting(stored).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            out.grants.append((g[0], g[1], "granted in the audit log but missing from the store (removed outside Referee)"))
        }
        return out
    }

    /// Roles granted to principals: `(principal, role, granted_by, granted_at)`.
    public func grants() throws -> [(principal: String, role: String, grantedBy: String, grantedAt: String)] {
        try Row.fetchAll(db, sql: "SELECT * FROM grants ORDER BY principal, role").map { ($0["principal"], $0["role"], $0["granted_by"], $0["granted_at"]) }
    }

    public func hasGrants() throws -> Bool {
        try Bool.fetchOne(try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM grants)")) ?? false
    }

    public func roles(of principal: String) throws -> [String] {
        try String.fetchAll(try db.cachedStatement(sql: "SELECT role FROM grants WHERE principal = ? ORDER BY role"), arguments: [principal])
    }

    public func grant(principal: String, role: String, by: String, at: String) throws {
        try db.execute(sql: "INSERT OR IGNORE INTO grants (principal, role, granted_by, granted_at) VALUES (?, ?, ?, ?)",
                       arguments: [principal, role, by, at])
    }

    /// Returns false when the principal did not have the role.
    public func revoke(principal: String, role: String) throws -> Bool {
        try db.execute(sql: "DELETE FROM grants WHERE principal = ? AND role = ?", arguments: [principal, role])
        return db.changesCount > 0
    }

    /// One stored aggregate row.
    public struct ResultRow: Sendable {
        public var metric: String
        public var variant: String
        public var day: String
        public var segment: String
        /// The aggregate's storage text (see `Aggregate.storageText`).
        public var stats: String
    }

    /// Inserts or replaces the aggregate of one metric, variant, day and segment.
    public func upsertResult(key: String, metric: String, variant: String, day: String, segment: String, stats: String, source: String, at: String) throws {
        try db.execute(sql: """
            INSERT INTO results (key, metric, variant, day, segment, stats, source, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (key, segment, metric, variant, day) DO UPDATE SET stats = excluded.stats, source = excluded.source, updated_at = excluded.updated_at
            """, arguments: [key, metric, variant, day, segment, stats, source, at])
        // The totals no longer answer for this experiment until they are refreshed.
        try db.execute(sql: "UPDATE result_totals_state SET fresh = 0 WHERE key = ? AND fresh = 1", arguments: [key])
    }

    /// Removes the aggregates of `key` that came from `source` (a pull replaces the previous pull's); returns how many.
    @discardableResult
    public func deleteResults(key: String, source: String) throws -> Int {
        try db.execute(sql: "DELETE FROM results WHERE key = ? AND source = ?", arguments: [key, source])
        let removed = db.changesCount
        if removed > 0 { try db.execute(sql: "UPDATE result_totals_state SET fresh = 0 WHERE key = ? AND fresh = 1", arguments: [key]) }
        return removed
    }

    /// Every stored aggregate of `key` (of one segment or metric when given) with where it came from.
    public func storedResults(key: String, segment: String? = nil, metric: String? = nil) throws -> [(row: ResultRow, source: String, updatedAt: String)] {
        var sql = "SELECT metric, variant, day, segment, stats, source, updated_at FROM results WHERE key = ?"
        var args: [any DatabaseValueConvertible] = [key]
        if let segment { sql += " AND segment = ?"; args.append(segment) }
        if let metric { sql += " AND metric = ?"; args.append(metric) }
        sql += " ORDER BY segment, metric, variant, day"
        return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map {
            (ResultRow(metric: $0[0], variant: $0[1], day: $0[2], segment: $0[3], stats: $0[4]), $0[5], $0[6])
        }
    }

    /// Records the cap an ingestion used for `metric` (its report's `capping` entry).
    public func setCapping(key: String, metric: String, spec: JSON) throws {
        try db.execute(sql: "INSERT INTO result_capping (key, metric, spec) VALUES (?, ?, ?) ON CONFLICT (key, metric) DO UPDATE SET spec = excluded.spec",
                       arguments: [key, metric, spec.serialized()])
    }

    /// The caps the last ingestion of each capped metric used.
    public func capping(key: String) throws -> [String: JSON] {
        var out: [String: JSON] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT metric, spec FROM result_capping WHERE key = ?", arguments: [key]) {
            if let spec = try? JSONParser.parse(row[1] as String) { out[row[0]] = spec }
        }
        return out
    }

    /// Whether the experiment's totals equal the sums of its rows (every write since was followed by a refresh).
    public func totalsFresh(key: String) throws -> Bool {
        try Int.fetchOne(try db.cachedStatement(sql: "SELECT fresh FROM result_totals_state WHERE key = ?"), arguments: [key]) == 1
    }

    func setTotalsFresh(_ key: String) throws {
        try db.execute(sql: "INSERT INTO result_totals_state (key, fresh) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET fresh = 1", arguments: [key])
    }

    /// Recomputes the totals of an experiment's rows (every segment, metric and variant), or of the one group a
    /// write changed (`wasFresh`: whether the totals were fresh before that write; they are again after it).
    public func refreshTotals(key: String, segment: String? = nil, metric: String? = nil, variant: String? = nil, wasFresh: Bool = false) throws {
        var sql = "SELECT segment, metric, variant, day, stats FROM results WHERE key = ?"
        var args: [any DatabaseValueConvertible] = [key]
        if let segment, let metric, let variant {
            sql += " AND segment = ? AND metric = ? AND variant = ?"
            args += [segment, metric, variant]
            try db.execute(sql: "DELETE FROM result_totals WHERE key = ? AND segment = ? AND metric = ? AND variant = ?", arguments: [key, segment, metric, variant])
        } else {
            try db.execute(sql: "DELETE FROM result_totals WHERE key = ?", arguments: [key])
        }
        sql += " ORDER BY segment, metric, variant"
        let insert = try db.cachedStatement(sql: "INSERT INTO result_totals (key, segment, metric, variant, last_day, stats) VALUES (?, ?, ?, ?, ?, ?)")
        var group: (String, String, String)?
        var sum: Aggregate?
        var lastDay = ""
        func flush() throws {
            guard let g = group, let s = sum else { return }
            try insert.execute(arguments: [key, g.0, g.1, g.2, lastDay, s.storageText])
        }
        let cursor = try Row.fetchCursor(try db.cachedStatement(sql: sql), arguments: StatementArguments(args))
        while let row = try cursor.next() {
            let g: (String, String, String) = (row[0], row[1], row[2])
            if group.map({ $0 != g }) ?? true {
                try flush()
                group = g
                sum = nil
                lastDay = ""
            }
            let day: String = row[3]
            if day > lastDay { lastDay = day }
            if let a = Aggregate(storage: row[4]) { sum = sum.map { ($0 + a) ?? $0 } ?? a }
        }
        try flush()
        if segment == nil || wasFresh { try setTotalsFresh(key) }
    }

    /// The totals of every segment whose name starts with `prefix`, for one metric (and the exposures) or all, when
    /// no stored day of the experiment is on or after `beforeDay` (so the totals are exactly the rows before it);
    /// nil when the totals cannot answer and the rows per day must be read.
    public func resultTotals(key: String, segmentPrefix prefix: String, metric: String? = nil, beforeDay: String) throws -> [ResultRow]? {
        guard try totalsFresh(key: key) else { return nil }
        let last = try String.fetchOne(try db.cachedStatement(sql: "SELECT MAX(last_day) FROM result_totals WHERE key = ?"), arguments: [key]) ?? ""
        guard last < beforeDay else { return nil }
        let upper = String(prefix.dropLast()) + String(UnicodeScalar(prefix.unicodeScalars.last!.value + 1)!)
        var sql = "SELECT metric, variant, segment, stats FROM result_totals WHERE key = ? AND segment >= ? AND segment < ?"
        var args: [any DatabaseValueConvertible] = [key, prefix, upper]
        if let metric { sql += " AND metric IN (?, ?)"; args += [metric, "__exposures"] }
        sql += " ORDER BY segment, metric, variant"
        var out: [ResultRow] = []
        let cursor = try Row.fetchCursor(try db.cachedStatement(sql: sql), arguments: StatementArguments(args))
        while let row = try cursor.next() {
            out.append(ResultRow(metric: row[0], variant: row[1], day: "", segment: row[2], stats: row[3]))
        }
        return out
    }

    /// Aggregates of an experiment, for one segment ('' = all units), of the days before `beforeDay` when given
    /// (a day's rows count from the end of that day).
    public func results(key: String, segment: String = "", beforeDay: String? = nil) throws -> [ResultRow] {
        var sql = "SELECT metric, variant, day, segment, stats FROM results WHERE key = ? AND segment = ?"
        var args: [any DatabaseValueConvertible] = [key, segment]
        if let beforeDay { sql += " AND (day = '' OR day < ?)"; args.append(beforeDay) }
        sql += " ORDER BY metric, variant, day"
        // A cursor read by column position: rows are not copied and names are not looked up per row.
        var out: [ResultRow] = []
        let cursor = try Row.fetchCursor(try db.cachedStatement(sql: sql), arguments: StatementArguments(args))
        while let row = try cursor.next() {
            out.append(ResultRow(metric: row[0], variant: row[1], day: row[2], segment: row[3], stats: row[4]))
        }
        return out
    }

    /// Aggregates of every segment whose name starts with `prefix` (`country=` for one dimension), of the days
    /// before `beforeDay` when given.
    public func results(key: String, segmentPrefix prefix: String, metric: String? = nil, beforeDay: String? = nil) throws -> [ResultRow] {
        // Each segment's rows by the key's prefix (key, segment, metric): a breakdown of one metric reads that metric's rows only.
        let names = try segments(key: key, prefix: prefix)
        var sql = "SELECT metric, variant, day, segment, stats FROM results WHERE key = ? AND segment = ?"
        if metric != nil { sql += " AND metric IN (?, ?)" }
        if beforeDay != nil { sql += " AND (day = '' OR day < ?)" }
        sql += " ORDER BY metric, variant, day"
        let statement = try db.cachedStatement(sql: sql)
        var out: [ResultRow] = []
        for name in names {
            var args: [any DatabaseValueConvertible] = [key, name]
            if let metric { args += [metric, "__exposures"] }
            if let beforeDay { args.append(beforeDay) }
            let cursor = try Row.fetchCursor(statement, arguments: StatementArguments(args))
            while let row = try cursor.next() {
                out.append(ResultRow(metric: row[0], variant: row[1], day: row[2], segment: row[3], stats: row[4]))
            }
        }
        return out
    }

    /// The names of an experiment's segments that start with `prefix`, by a skip scan of the primary key (one index seek
    /// per name: every name with the prefix sorts between it and the prefix with its last character raised).
    public func segments(key: String, prefix: String) throws -> [String] {
        let upper = String(prefix.dropLast()) + String(UnicodeScalar(prefix.unicodeScalars.last!.value + 1)!)
        return try String.fetchAll(db, sql: """
            WITH RECURSIVE names(segment) AS (
                SELECT MIN(segment) FROM results WHERE key = ?1 AND segment >= ?2 AND segment < ?3
                UNION ALL
                SELECT (SELECT MIN(segment) FROM results WHERE key = ?1 AND segment > names.segment AND segment < ?3)
                FROM names WHERE names.segment IS NOT NULL)
            SELECT segment FROM names WHERE segment IS NOT NULL
            """, arguments: [key, prefix, upper])
    }

    /// The segments an experiment has aggregates for ('' = all units), in order.
    public func segments(key: String) throws -> [String] {
        try String.fetchAll(db, sql: "SELECT DISTINCT segment FROM results WHERE key = ? ORDER BY segment", arguments: [key])
    }

    /// Record queries name their columns so rows are read by position (name lookups dominate hot reads).
    static let recordColumns = "key, state, version, owner, layer, protocol, protocol_hash, document, plan, decision, created_at, updated_at, created_by, updated_by, buckets"

    static func record(_ row: Row) -> ExperimentRecord { record(row, parseDocument: true) }

    static func record(_ row: Row, parseDocument: Bool) -> ExperimentRecord {
        ExperimentRecord(
            key: row[0], state: ExperimentState(rawValue: row[1]) ?? .draft, version: row[2],
            owner: row[3], layer: row[4], protocolName: row[5], protocolHash: row[6],
            document: parseDocument ? (try? JSONParser.parse(row[7] as String)) ?? .null : .null,
            plan: parseDocument ? (row[8] as String?).flatMap { try? JSONParser.parse($0) } ?? .null : .null,
            decision: row[9], createdAt: row[10], updatedAt: row[11],
            createdBy: row[12], updatedBy: row[13], buckets: decode(row[14]))
    }

    static func audit(_ row: Row) -> AuditEntry {
        AuditEntry(seq: row["seq"], at: row["at"], principal: row["principal"], onBehalfOf: row["on_behalf_of"],
                   method: row["method"], key: row["key"],
                   before: (try? JSONParser.parse(row["before"] as String)) ?? .null,
                   after: (try? JSONParser.parse(row["after"] as String)) ?? .null,
                   reason: row["reason"], prevHash: row["prev_hash"], hash: row["hash"])
    }

    static func encode(_ ranges: [Range<Int>]) -> String {
        ranges.map { "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
    }

    static func decode(_ text: String?) -> [Range<Int>] {
        guard let text, !text.isEmpty else { return [] }
        return text.split(separator: ",").compactMap { part in
            let ends = part.split(separator: "-").compactMap { Int($0) }
            return ends.count == 2 && ends[0] < ends[1] ? ends[0]..<ends[1] : nil
        }
    }
}

/// The device and inode of the store's three files when they were opened. SQLite keeps writing to the
/// files it has open: if someone deletes `-wal` or `-shm` (or replaces the store) under a running daemon,
/// its commits go to files nobody else will read, and two daemons no longer share locks. Comparing with
/// what is on disk before each commit turns that silent loss into a refusal.
final class FileIdentity: Sendable {
    private let paths: [String]
    private let opened: [FileID?]
    private struct State { var broken: String?; var lastCheck = 0.0 }
    private let state = Mutex(State())

    struct FileID: Equatable, Sendable { var dev: UInt64; var ino: UInt64 }

    init(storePath: String) {
        // SQLite names -wal and -shm after the database path with symbolic links resolved.
        var resolved = storePath
        if let real = realpath(storePath, nil) { resolved = String(cString: real); free(real) }
        paths = ["", "-wal", "-shm"].map { resolved + $0 }
        opened = paths.map(Self.identity)
    }

    static func identity(_ path: String) -> FileID? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileID(dev: UInt64(info.st_dev), ino: UInt64(info.st_ino))
    }

    /// Why writes must stop, or nil; once broken, broken until the process restarts.
    func problem() -> String? {
        state.withLock { s in
            if let broken = s.broken { return broken }
            for (path, was) in zip(paths, opened) {
                guard let was else { continue }
                guard let now = Self.identity(path) else {
                    s.broken = "\(path) was deleted while this daemon had it open; writes are refused to lose nothing (restart the daemon)"
                    return s.broken
                }
                if now != was {
                    s.broken = "\(path) was replaced while this daemon had it open; writes are refused to lose nothing (restart the daemon)"
                    return s.broken
                }
            }
            return nil
        }
    }

    /// `problem() == nil`, checked at most every 50 ms (for hot reads).
    func recentlyIntact() -> Bool {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let now = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        let due = state.withLock { s -> Bool? in
            if s.broken != nil { return nil }
            if now - s.lastCheck < 0.05 { return false }
            s.lastCheck = now
            return true
        }
        guard let due else { return false }
        return due ? problem() == nil : true
    }
}

/// A saved group: a named list of values that targeting refers to with `$inGroup`/`$notInGroup`.
public struct SavedGroup: Sendable, Equatable {
    public var name: String
    public var version: Int
    public var values: [JSON]
    public var reason: String
    public var updatedAt: String
    public var updatedBy: String

    public init(name: String, version: Int, values: [JSON], reason: String, updatedAt: String, updatedBy: String) {
        self.name = name; self.version = version; self.values = values; self.reason = reason; self.updatedAt = updatedAt; self.updatedBy = updatedBy
    }

    public var json: JSON {
        ["name": .string(name), "version": JSON(version), "values": .array(values), "count": JSON(values.count), "reason": .string(reason),
         "updated_at": .string(updatedAt), "updated_by": .string(updatedBy)]
    }
}
