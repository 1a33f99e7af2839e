public import Registry
public import JSONCore

/// Operations available inside a transaction, on either database. All SQL of the project lives in this module.
public struct StoreTransaction {
    let sql: any SQLSession
    /// The registry's bookkeeping, read in one statement the first time any of it is asked for: a registration asks
    /// for the counters four times, the audit head and whether grants exist once each, and on PostgreSQL each ask was
    /// a round trip. Nobody else's write can land inside the transaction (writes hold the store's write lock, reads a
    /// snapshot), and its own writes are kept here as they are made.
    private let known = Bookkeeping()

    private final class Bookkeeping {
        var loaded = false
        var counters: [String: Int] = [:]
        var auditHead = (seq: 0, hash: String(repeating: "0", count: 64))
        /// Whether any grant exists; nil once this transaction revoked one (ask the database).
        var hasGrants: Bool?
        /// This transaction granted or revoked a role (what is known of principals' roles no longer holds).
        var grantsChanged = false
        /// Counter increments not written yet, in the order first made: one statement writes them all (`finish`).
        var bumps: [(name: String, by: Int)] = []
        /// The generation when the transaction began, and the experiment rows it has stamped since, in order (nil once
        /// it stamped rows whose stored form it does not hold: `touch`, `update`).
        var generationBegun = 0
        var stamped: [ExperimentRecord]? = []
        /// A key the transaction said it would check (`Store.write(claiming:)`), and whether it is taken.
        var claimed: (key: String, taken: Bool)?
        /// Hashes of the protocol texts it stored.
        var protocols: [String] = []
        /// Rows were written around the bookkeeping (`wroteDirectly`): what it knows says nothing of the store now.
        var direct = false
    }

    /// Says that this transaction writes tables directly, through `sql` (`store copy`): no count or row it would
    /// otherwise tell the process's later transactions, or its commit clock, is known.
    func wroteDirectly() {
        known.direct = true
        known.grantsChanged = true
    }

    /// What this process's earlier writes left in the store (`experiments(changedSince:)`, `rememberProtocol`).
    let writtenHere: WrittenHere?

    /// `begun`: the bookkeeping already read, as rows of `bookkeepingQuery` (PostgreSQL's `referee_write_begin`, which
    /// also says whether `claimed` is a taken key).
    init(sql: any SQLSession, writtenHere: WrittenHere? = nil, claimed: String? = nil, begun: [(String, String, Int)]? = nil) {
        self.sql = sql
        self.writtenHere = writtenHere
        if let begun {
            absorb(begun)
            if let claimed { known.claimed = (claimed, begun.contains { $0.0 == "claimed" && $0.1 == claimed }) }
        }
    }

    /// The bookkeeping as rows of (entry, label, amount): each counter, the audit head (its hash and seq), a row when
    /// any grant exists. `referee_write_begin` answers the same rows.
    static let bookkeepingQuery = """
        SELECT 'meta', name, value FROM meta
        UNION ALL SELECT 'audit', hash, seq FROM (SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1) AS head
        UNION ALL SELECT 'grants', '', 1 WHERE EXISTS (SELECT 1 FROM grants)
        """

    private func absorb(_ rows: [(String, String, Int)]) {
        var grants = false
        for (entry, label, amount) in rows {
            switch entry {
            case "meta": known.counters[label] = amount
            case "audit": known.auditHead = (amount, label)
            case "grants": grants = true
            default: break
            }
        }
        known.hasGrants = grants
        known.generationBegun = known.counters["generation"] ?? 0
        known.loaded = true
    }

    /// The experiment rows one write transaction of this process stamped, as it wrote them, and the generations it moved
    /// the store from and to. While the store's generation is still `to`, these are exactly the rows stamped after
    /// `from`: every stamp takes the next generation, and nothing else stamps rows.
    struct StampedRows: Sendable {
        let from: Int
        let to: Int
        let records: [ExperimentRecord]
    }

    /// What a committed transaction tells the process's later ones (`WrittenHere`).
    struct Outcome {
        /// Whether it moved the generation, and to rows it holds (nil: it stamped rows it does not hold).
        var generationChanged = false
        var stamped: StampedRows?
        /// The generation it left.
        var generation = 0
        /// The hashes of the protocol texts it stored.
        var protocols: [String] = []
        /// The store's commit count when it began (PostgreSQL; nil when not known), and whether it changed any grant:
        /// what its commit lets the process's commit clock and role cache know without asking.
        var commitsBefore: Int?
        var grantsChanged = true
        /// The bookkeeping as it stands after the commit (PostgreSQL, when all of it is known): the next write of this
        /// process can take it as read while the store's commit count is still `commits` (`PostgresBackend.write`).
        var after: Bookkept?
    }

    /// The registry's bookkeeping as of one commit count, as rows of `bookkeepingQuery`.
    struct Bookkept: Sendable {
        let commits: Int
        let rows: [(String, String, Int)]
    }

    var outcome: Outcome {
        var out = Outcome(generation: known.counters["generation"] ?? 0, protocols: known.protocols,
                          commitsBefore: known.loaded && !known.direct ? known.counters["commits"] : nil,
                          grantsChanged: known.grantsChanged)
        if known.direct { out.generationChanged = true; out.protocols = []; return out }
        if let before = out.commitsBefore, let hasGrants = known.hasGrants {
            var rows = known.counters.map { ("meta", $0.key, $0.key == "commits" ? before + 1 : $0.value) }
            rows.append(("audit", known.auditHead.hash, known.auditHead.seq))
            if hasGrants { rows.append(("grants", "", 1)) }
            out.after = Bookkept(commits: before + 1, rows: rows)
        }
        guard known.loaded, let to = known.counters["generation"], to != known.generationBegun else { return out }
        out.generationChanged = true
        guard let stamped = known.stamped else { return out }
        // Each row once, at its last stamp, as the database would answer.
        var last: [String: Int] = [:]
        for (i, r) in stamped.enumerated() { last[r.key] = i }
        let rows = stamped.indices.filter { last[stamped[$0].key] == $0 }.map { stamped[$0] }
        out.stamped = StampedRows(from: known.generationBegun, to: to, records: rows)
        return out
    }

    private func bookkeeping() throws -> Bookkeeping {
        if !known.loaded { absorb(try sql.all(Self.bookkeepingQuery, []) { ($0.text(0), $0.text(1), $0.integer(2)) }) }
        return known
    }

    /// Whether an experiment or a holdout has `key` (keys are unique across both), in one statement.
    public func keyTaken(_ key: String) throws -> Bool {
        if let claimed = known.claimed, claimed.key == key { return claimed.taken }
        return try sql.one("SELECT 1 FROM experiments WHERE key = ? UNION ALL SELECT 1 FROM holdouts WHERE key = ?", [key, key]) { _ in true } ?? false
    }

    public func experiment(_ key: String) throws -> ExperimentRecord? {
        try sql.one("SELECT \(Self.recordColumns) FROM experiments WHERE key = ?", [key], Self.record)
    }

    /// The wire form of a record, with the stored document and plan passed through without parsing.
    public func experimentWire(_ key: String) throws -> JSON? {
        try sql.one("SELECT \(Self.recordColumns) FROM experiments WHERE key = ?", [key]) { row in
            var record = Self.record(row, parseDocument: false)
            record.document = .raw(row.text(7))
            record.plan = .raw(row.optionalText(8) ?? "null")
            return record.json
        }
    }

    public func experiments(state: String? = nil, owner: String? = nil, layer: String? = nil, states: [ExperimentState]? = nil,
                            after: String? = nil, limit: Int? = nil) throws -> [ExperimentRecord] {
        var clauses: [String] = []
        var args: [any SQLBindable] = []
        if let state { clauses.append("state = ?"); args.append(state) }
        if let owner { clauses.append("owner = ?"); args.append(owner) }
        if let layer { clauses.append("layer = ?"); args.append(layer) }
        if let states {
            clauses.append("state IN (\(states.map { _ in "?" }.joined(separator: ",")))")
            args += states.map(\.rawValue)
        }
        if let after { clauses.append("key > ?"); args.append(after) }
        let whereSQL = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        var query = "SELECT \(Self.recordColumns) FROM experiments\(whereSQL) ORDER BY key"
        if let limit { query += " LIMIT ?"; args.append(limit) }
        return try sql.all(query, args, Self.record)
    }

    public func insert(_ r: ExperimentRecord) throws {
        let seq = try bumpGeneration()
        try sql.executeLater("""
            INSERT INTO experiments (key, state, version, owner, layer, protocol, protocol_hash, document, plan, decision,
                                     created_at, updated_at, created_by, updated_by, buckets, change_seq)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [r.key, r.state.rawValue, r.version, r.owner, r.layer, r.protocolName, r.protocolHash,
                  r.document.serialized(), r.plan.serialized(), r.decision, r.createdAt, r.updatedAt,
                  r.createdBy, r.updatedBy, Self.encode(r.buckets), seq])
        known.stamped?.append(r)
        if known.claimed?.key == r.key { known.claimed?.taken = true }
    }

    /// The store-wide generation: bumped by every experiment write.
    public func generation() throws -> Int { try counter("generation") }

    private func counter(_ name: String) throws -> Int {
        try bookkeeping().counters[name] ?? 0
    }

    /// Adds one to a counter; its new value. Written when the transaction finishes: nothing reads `meta` but
    /// `bookkeeping`, which ran before.
    @discardableResult
    private func bump(_ name: String) throws -> Int {
        let known = try bookkeeping()
        let value = (known.counters[name] ?? 0) + 1
        known.counters[name] = value
        if let i = known.bumps.firstIndex(where: { $0.name == name }) { known.bumps[i].by += 1 } else { known.bumps.append((name, 1)) }
        return value
    }

    /// Writes the counters' increments, and on PostgreSQL counts the commit (`meta.commits`, which every daemon's read
    /// cache checks, see `PostgresCommitClock`): the last statement of every write transaction before COMMIT.
    func finish(countingCommit: Bool) throws {
        var bumps = known.bumps
        known.bumps = []
        if countingCommit { bumps.append(("commits", 1)) }
        guard !bumps.isEmpty else { return }
        // Relative: a transaction may also set counters outright (`store copy`).
        let cases = bumps.map { _ in "WHEN ? THEN ?" }.joined(separator: " ")
        let names = bumps.map { _ in "?" }.joined(separator: ", ")
        try sql.executeLater("UPDATE meta SET value = value + CASE name \(cases) ELSE 0 END WHERE name IN (\(names))",
                             bumps.flatMap { [$0.name, $0.by] as [any SQLBindable] } + bumps.map(\.name))
    }

    private func bumpGeneration() throws -> Int {
        try bump("generation")
    }

    /// Marks experiments as changed (so every process's conflict index reads them again), without changing them:
    /// used when something they refer to, a saved group, changes.
    public func touch(_ keys: [String]) throws {
        guard !keys.isEmpty else { return }
        let seq = try bumpGeneration()
        known.stamped = nil
        for key in keys { try sql.executeLater("UPDATE experiments SET change_seq = ? WHERE key = ?", [seq, key]) }
    }

    // MARK: Holdouts

    /// Bumped by every holdout write, so each process re-reads its holdouts only when one changed.
    public func holdoutsGeneration() throws -> Int { try counter("holdouts_generation") }

    public func holdout(_ key: String) throws -> ExperimentRecord? {
        try sql.one("SELECT \(Self.recordColumns) FROM holdouts WHERE key = ?", [key], Self.record)
    }

    public func holdouts(state: String? = nil) throws -> [ExperimentRecord] {
        if let state {
            return try sql.all("SELECT \(Self.recordColumns) FROM holdouts WHERE state = ? ORDER BY key", [state], Self.record)
        }
        return try sql.all("SELECT \(Self.recordColumns) FROM holdouts ORDER BY key", [], Self.record)
    }

    public func insertHoldout(_ r: ExperimentRecord) throws {
        try sql.executeLater("""
            INSERT INTO holdouts (key, state, version, owner, layer, protocol, protocol_hash, document, plan, decision,
                                  created_at, updated_at, created_by, updated_by, buckets)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')
            """, [r.key, r.state.rawValue, r.version, r.owner, r.layer, r.protocolName, r.protocolHash,
                  r.document.serialized(), r.plan.serialized(), r.decision, r.createdAt, r.updatedAt, r.createdBy, r.updatedBy])
        if known.claimed?.key == r.key { known.claimed?.taken = true }
        try bump("holdouts_generation")
    }

    /// Replaces a holdout whose stored version is `expectedVersion`; false when someone else changed it.
    public func updateHoldout(_ r: ExperimentRecord, expectedVersion: Int) throws -> Bool {
        let changed = try sql.execute("""
            UPDATE holdouts SET state = ?, version = ?, owner = ?, protocol = ?, protocol_hash = ?, document = ?, plan = ?,
                decision = ?, updated_at = ?, updated_by = ? WHERE key = ? AND version = ?
            """, [r.state.rawValue, r.version, r.owner, r.protocolName, r.protocolHash, r.document.serialized(),
                  r.plan.serialized(), r.decision, r.updatedAt, r.updatedBy, r.key, expectedVersion])
        try bump("holdouts_generation")
        return changed == 1
    }

    // MARK: Saved groups

    /// Bumped by every change of a saved group.
    public func groupsGeneration() throws -> Int { try counter("groups_generation") }

    static let groupColumns = "name, version, items, reason, updated_at, updated_by"

    public func groups() throws -> [SavedGroup] {
        try sql.all("SELECT \(Self.groupColumns) FROM saved_groups ORDER BY name", [], Self.group)
    }

    public func group(_ name: String) throws -> SavedGroup? {
        try sql.one("SELECT \(Self.groupColumns) FROM saved_groups WHERE name = ?", [name], Self.group)
    }

    public func putGroup(_ g: SavedGroup) throws {
        try sql.executeLater("""
            INSERT INTO saved_groups (name, version, items, reason, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT(name) DO UPDATE SET version = excluded.version, items = excluded.items, reason = excluded.reason,
                updated_at = excluded.updated_at, updated_by = excluded.updated_by
            """, [g.name, g.version, JSON.array(g.values).serialized(), g.reason, g.updatedAt, g.updatedBy])
        try bump("groups_generation")
    }

    static func group(_ row: any SQLRow) -> SavedGroup {
        let items = (try? JSONParser.parse(row.text(2)))?.arrayValue ?? []
        return SavedGroup(name: row.text(0), version: row.integer(1), values: items, reason: row.text(3), updatedAt: row.text(4), updatedBy: row.text(5))
    }

    /// Experiments written after generation `since`, with their change stamps.
    public func experiments(changedSince since: Int) throws -> [ExperimentRecord] {
        // Nothing stamped since this process's last write: its rows are the answer, without reading them back.
        if let last = writtenHere?.stampedRows, last.from == since, try generation() == last.to { return last.records }
        return try sql.all("SELECT \(Self.recordColumns) FROM experiments WHERE change_seq > ? ORDER BY change_seq", [since], Self.record)
    }

    /// Replaces a record whose stored version is `expectedVersion`; returns false if someone else changed it.
    public func update(_ r: ExperimentRecord, expectedVersion: Int) throws -> Bool {
        let seq = try bumpGeneration()
        let changed = try sql.execute("""
            UPDATE experiments SET state = ?, version = ?, owner = ?, layer = ?, protocol = ?, protocol_hash = ?, document = ?,
                plan = ?, decision = ?, updated_at = ?, updated_by = ?, buckets = ?, change_seq = ?
            WHERE key = ? AND version = ?
            """, [r.state.rawValue, r.version, r.owner, r.layer, r.protocolName, r.protocolHash, r.document.serialized(),
                  r.plan.serialized(), r.decision, r.updatedAt, r.updatedBy, Self.encode(r.buckets), seq, r.key, expectedVersion]) == 1
        // The stored row keeps columns `r` does not write (when it was created, by whom): it is read back if needed.
        if changed { known.stamped = nil }
        return changed
    }

    /// Remembers the exact text of a protocol an experiment was validated against.
    public func rememberProtocol(name: String, hash: String, source: String, at: String) throws {
        // Rows of protocol_versions are never removed: one this process committed is there still.
        if try writtenHere?.storedProtocol(hash, generation: generation()) == true || known.protocols.contains(hash) { return }
        known.protocols.append(hash)
        try sql.executeLater("INSERT INTO protocol_versions (hash, name, source, first_seen) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        [hash, name, source, at])
    }

    public func protocolSource(hash: String) throws -> String? {
        try sql.one("SELECT source FROM protocol_versions WHERE hash = ?", [hash]) { $0.text(0) }
    }

    // MARK: Audit

    static let auditColumns = "seq, at, principal, on_behalf_of, method, key, before, after, reason, prev_hash, hash"

    /// Appends an entry to the hash-chained audit log and returns it.
    @discardableResult
    public func appendAudit(at: String, principal: String, onBehalfOf: String?, method: String, key: String?,
                            before: JSON, after: JSON, reason: String?) throws -> AuditEntry {
        let known = try bookkeeping()
        let (last, prev) = known.auditHead
        var entry = AuditEntry(seq: last + 1, at: at, principal: principal, onBehalfOf: onBehalfOf, method: method, key: key,
                               before: before, after: after, reason: reason, prevHash: prev, hash: "")
        entry.hash = AuditEntry.chainHash(prev: prev, content: entry.chainedContent)
        try insertAudit(entry, beforeText: before.serialized(), afterText: after.serialized())
        known.auditHead = (entry.seq, entry.hash)
        return entry
    }

    func insertAudit(_ e: AuditEntry, beforeText: String, afterText: String) throws {
        try sql.executeLater("""
            INSERT INTO audit (seq, at, principal, on_behalf_of, method, key, before, after, reason, prev_hash, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [e.seq, e.at, e.principal, e.onBehalfOf, e.method, e.key, beforeText, afterText, e.reason, e.prevHash, e.hash])
    }

    public func auditEntries(key: String? = nil, limit: Int? = nil, afterSeq: Int = 0) throws -> [AuditEntry] {
        var query = "SELECT \(Self.auditColumns) FROM audit WHERE seq > ?"
        var args: [any SQLBindable] = [afterSeq]
        if let key { query += " AND key = ?"; args.append(key) }
        query += " ORDER BY seq"
        if let limit { query += " LIMIT ?"; args.append(limit) }
        return try sql.all(query, args, Self.audit)
    }

    /// Recomputes the audit chain; returns the number of entries and the first broken sequence number.
    public func verifyAudit() throws -> (entries: Int, firstBroken: Int?) {
        var prev = String(repeating: "0", count: 64)
        var count = 0
        var expectedSeq = 1
        var broken: Int?
        try sql.each("SELECT \(Self.auditColumns) FROM audit ORDER BY seq", []) { row in
            guard broken == nil else { return }
            let entry = Self.audit(row)
            count += 1
            if entry.seq != expectedSeq || entry.prevHash != prev || AuditEntry.chainHash(prev: prev, content: entry.chainedContent) != entry.hash {
                broken = entry.seq
                return
            }
            prev = entry.hash
            expectedSeq += 1
        }
        return (count, broken)
    }

    /// The newest entry's position and hash: an operator or a CI job records it, and a later
    /// `verifyAudit(expectedHead:)` proves that nothing up to it was removed or rewritten.
    public func auditHead() throws -> (entries: Int, hash: String) {
        let head = try bookkeeping().auditHead
        return (head.seq, head.hash)
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
        try sql.each("SELECT method, key, before, after FROM audit ORDER BY seq", []) { row in
            switch row.text(0) {
            case "experiment.register", "experiment.update", "experiment.amend", "experiment.transition":
                if let key = row.optionalText(1) { latest[key] = SHA256.hex(row.text(3)) }
            case "access.bootstrap", "access.grant":
                if let after = try? JSONParser.parse(row.text(3)), let p = after["principal"]?.stringValue, let r = after["role"]?.stringValue { grants.insert([p, r]) }
            case "access.revoke":
                if let before = try? JSONParser.parse(row.text(2)), let p = before["principal"]?.stringValue, let r = before["role"]?.stringValue { grants.remove([p, r]) }
            default: break
            }
        }
        var out = AuditReconciliation()
        var seen = Set<String>()
        try sql.each("SELECT \(Self.recordColumns) FROM experiments ORDER BY key", []) { row in
            let record = Self.record(row)
            seen.insert(record.key)
            guard let expected = latest[record.key] else {
                out.records.append((record.key, "exists in the store but no audit entry created it"))
                return
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

    // MARK: Access

    /// Roles granted to principals: `(principal, role, granted_by, granted_at)`.
    public func grants() throws -> [(principal: String, role: String, grantedBy: String, grantedAt: String)] {
        try sql.all("SELECT principal, role, granted_by, granted_at FROM grants ORDER BY principal, role") { ($0.text(0), $0.text(1), $0.text(2), $0.text(3)) }
    }

    public func hasGrants() throws -> Bool {
        if let known = try bookkeeping().hasGrants { return known }
        return try sql.one("SELECT EXISTS (SELECT 1 FROM grants)") { $0.integer(0) != 0 } ?? false
    }

    public func roles(of principal: String) throws -> [String] {
        try sql.all("SELECT role FROM grants WHERE principal = ? ORDER BY role", [principal]) { $0.text(0) }
    }

    /// Whether any grant exists and the roles of `principal`, in one statement (one snapshot, one round trip).
    func access(of principal: String) throws -> Store.Access {
        var enforced = false
        var roles: [String] = []
        try sql.each("SELECT role FROM grants WHERE principal = ? UNION ALL SELECT '' WHERE EXISTS (SELECT 1 FROM grants)", [principal]) { row in
            let role = row.text(0)
            if role.isEmpty { enforced = true } else { roles.append(role) }
        }
        return Store.Access(enforced: enforced, roles: roles.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    }

    public func grant(principal: String, role: String, by: String, at: String) throws {
        try sql.executeLater("INSERT INTO grants (principal, role, granted_by, granted_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                             [principal, role, by, at])
        known.grantsChanged = true
        if known.loaded { known.hasGrants = true }
    }

    /// Returns false when the principal did not have the role.
    public func revoke(principal: String, role: String) throws -> Bool {
        known.grantsChanged = true
        known.hasGrants = nil
        return try sql.execute("DELETE FROM grants WHERE principal = ? AND role = ?", [principal, role]) > 0
    }

    // MARK: Results

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
        try sql.executeLater("""
            INSERT INTO results (key, metric, variant, day, segment, stats, source, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (key, segment, metric, variant, day) DO UPDATE SET stats = excluded.stats, source = excluded.source, updated_at = excluded.updated_at
            """, [key, metric, variant, day, segment, stats, source, at])
        // The totals no longer answer for this experiment until they are refreshed.
        try sql.executeLater("UPDATE result_totals_state SET fresh = 0 WHERE key = ? AND fresh = 1", [key])
    }

    /// Removes the aggregates of `key` that came from `source` (a pull replaces the previous pull's); returns how many.
    @discardableResult
    public func deleteResults(key: String, source: String) throws -> Int {
        let removed = try sql.execute("DELETE FROM results WHERE key = ? AND source = ?", [key, source])
        if removed > 0 { try sql.execute("UPDATE result_totals_state SET fresh = 0 WHERE key = ? AND fresh = 1", [key]) }
        return removed
    }

    /// Every stored aggregate of `key` (of one segment or metric when given) with where it came from.
    public func storedResults(key: String, segment: String? = nil, metric: String? = nil) throws -> [(row: ResultRow, source: String, updatedAt: String)] {
        var query = "SELECT metric, variant, day, segment, stats, source, updated_at FROM results WHERE key = ?"
        var args: [any SQLBindable] = [key]
        if let segment { query += " AND segment = ?"; args.append(segment) }
        if let metric { query += " AND metric = ?"; args.append(metric) }
        query += " ORDER BY segment, metric, variant, day"
        return try sql.all(query, args) { (Self.resultRow($0), $0.text(5), $0.text(6)) }
    }

    /// Records the cap an ingestion used for `metric` (its report's `capping` entry).
    public func setCapping(key: String, metric: String, spec: JSON) throws {
        try sql.executeLater("INSERT INTO result_capping (key, metric, spec) VALUES (?, ?, ?) ON CONFLICT (key, metric) DO UPDATE SET spec = excluded.spec",
                        [key, metric, spec.serialized()])
    }

    /// The caps the last ingestion of each capped metric used.
    public func capping(key: String) throws -> [String: JSON] {
        var out: [String: JSON] = [:]
        try sql.each("SELECT metric, spec FROM result_capping WHERE key = ?", [key]) { row in
            if let spec = try? JSONParser.parse(row.text(1)) { out[row.text(0)] = spec }
        }
        return out
    }

    /// Whether the experiment's totals equal the sums of its rows (every write since was followed by a refresh).
    public func totalsFresh(key: String) throws -> Bool {
        try sql.one("SELECT fresh FROM result_totals_state WHERE key = ?", [key]) { $0.integer(0) } == 1
    }

    func setTotalsFresh(_ key: String) throws {
        try sql.executeLater("INSERT INTO result_totals_state (key, fresh) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET fresh = 1", [key])
    }

    /// Recomputes the totals of an experiment's rows (every segment, metric and variant), or of the one group a
    /// write changed (`wasFresh`: whether the totals were fresh before that write; they are again after it).
    public func refreshTotals(key: String, segment: String? = nil, metric: String? = nil, variant: String? = nil, wasFresh: Bool = false) throws {
        var query = "SELECT segment, metric, variant, day, stats FROM results WHERE key = ?"
        var args: [any SQLBindable] = [key]
        if let segment, let metric, let variant {
            query += " AND segment = ? AND metric = ? AND variant = ?"
            args += [segment, metric, variant]
            try sql.executeLater("DELETE FROM result_totals WHERE key = ? AND segment = ? AND metric = ? AND variant = ?", [key, segment, metric, variant])
        } else {
            try sql.executeLater("DELETE FROM result_totals WHERE key = ?", [key])
        }
        query += " ORDER BY segment, metric, variant"
        // Summed first, written after: a statement is not run while another's rows are still being read.
        var totals: [(group: [String], lastDay: String, sum: Aggregate)] = []
        try sql.each(query, args) { row in
            let g = [row.text(0), row.text(1), row.text(2)]
            let day = row.text(3)
            let a = Aggregate(storage: row.text(4))
            if let last = totals.last, last.group == g {
                if day > last.lastDay { totals[totals.count - 1].lastDay = day }
                if let a { totals[totals.count - 1].sum = (last.sum + a) ?? last.sum }
            } else if let a {
                totals.append((g, day, a))
            }
        }
        for t in totals {
            try sql.executeLater("INSERT INTO result_totals (key, segment, metric, variant, last_day, stats) VALUES (?, ?, ?, ?, ?, ?)",
                            [key, t.group[0], t.group[1], t.group[2], t.lastDay, t.sum.storageText])
        }
        if segment == nil || wasFresh { try setTotalsFresh(key) }
    }

    /// The totals of every segment whose name starts with `prefix`, for one metric (and the exposures) or all, when
    /// no stored day of the experiment is on or after `beforeDay` (so the totals are exactly the rows before it);
    /// nil when the totals cannot answer and the rows per day must be read.
    public func resultTotals(key: String, segmentPrefix prefix: String, metric: String? = nil, beforeDay: String) throws -> [ResultRow]? {
        guard try totalsFresh(key: key) else { return nil }
        let last = try sql.one("SELECT MAX(last_day) FROM result_totals WHERE key = ?", [key]) { $0.text(0) } ?? ""
        guard last < beforeDay else { return nil }
        var query = "SELECT metric, variant, segment, stats FROM result_totals WHERE key = ? AND segment >= ? AND segment < ?"
        var args: [any SQLBindable] = [key, prefix, Self.upperBound(prefix)]
        if let metric { query += " AND metric IN (?, ?)"; args += [metric, "__exposures"] }
        query += " ORDER BY segment, metric, variant"
        return try sql.all(query, args) { ResultRow(metric: $0.text(0), variant: $0.text(1), day: "", segment: $0.text(2), stats: $0.text(3)) }
    }

    /// Aggregates of an experiment, for one segment ('' = all units), of the days before `beforeDay` when given
    /// (a day's rows count from the end of that day).
    public func results(key: String, segment: String = "", beforeDay: String? = nil) throws -> [ResultRow] {
        var query = "SELECT metric, variant, day, segment, stats FROM results WHERE key = ? AND segment = ?"
        var args: [any SQLBindable] = [key, segment]
        if let beforeDay { query += " AND (day = '' OR day < ?)"; args.append(beforeDay) }
        query += " ORDER BY metric, variant, day"
        return try sql.all(query, args, Self.resultRow)
    }

    /// Aggregates of every segment whose name starts with `prefix` (`country=` for one dimension), of the days
    /// before `beforeDay` when given.
    public func results(key: String, segmentPrefix prefix: String, metric: String? = nil, beforeDay: String? = nil) throws -> [ResultRow] {
        // Each segment's rows by the key's prefix (key, segment, metric): a breakdown of one metric reads that metric's rows only.
        let names = try segments(key: key, prefix: prefix)
        var query = "SELECT metric, variant, day, segment, stats FROM results WHERE key = ? AND segment = ?"
        if metric != nil { query += " AND metric IN (?, ?)" }
        if beforeDay != nil { query += " AND (day = '' OR day < ?)" }
        query += " ORDER BY metric, variant, day"
        var out: [ResultRow] = []
        for name in names {
            var args: [any SQLBindable] = [key, name]
            if let metric { args += [metric, "__exposures"] }
            if let beforeDay { args.append(beforeDay) }
            try sql.each(query, args) { out.append(Self.resultRow($0)) }
        }
        return out
    }

    /// The names of an experiment's segments that start with `prefix`, by a skip scan of the primary key (one index seek
    /// per name: every name with the prefix sorts between it and the prefix with its last character raised).
    public func segments(key: String, prefix: String) throws -> [String] {
        try sql.all("""
            WITH RECURSIVE names(segment) AS (
                SELECT MIN(segment) FROM results WHERE key = ? AND segment >= ? AND segment < ?
                UNION ALL
                SELECT (SELECT MIN(segment) FROM results WHERE key = ? AND segment > names.segment AND segment < ?)
                FROM names WHERE names.segment IS NOT NULL)
            SELECT segment FROM names WHERE segment IS NOT NULL
            """, [key, prefix, Self.upperBound(prefix), key, Self.upperBound(prefix)]) { $0.text(0) }
    }

    /// The segments an experiment has aggregates for ('' = all units), in order.
    public func segments(key: String) throws -> [String] {
        try sql.all("SELECT DISTINCT segment FROM results WHERE key = ? ORDER BY segment", [key]) { $0.text(0) }
    }

    /// The least string above every string that starts with `prefix` (its last character raised by one).
    static func upperBound(_ prefix: String) -> String {
        String(prefix.dropLast()) + String(UnicodeScalar(prefix.unicodeScalars.last!.value + 1)!)
    }

    static func resultRow(_ row: any SQLRow) -> ResultRow {
        ResultRow(metric: row.text(0), variant: row.text(1), day: row.text(2), segment: row.text(3), stats: row.text(4))
    }

    /// Record queries name their columns so rows are read by position (name lookups dominate hot reads).
    static let recordColumns = "key, state, version, owner, layer, protocol, protocol_hash, document, plan, decision, created_at, updated_at, created_by, updated_by, buckets"

    static func record(_ row: any SQLRow) -> ExperimentRecord { record(row, parseDocument: true) }

    static func record(_ row: any SQLRow, parseDocument: Bool) -> ExperimentRecord {
        ExperimentRecord(
            key: row.text(0), state: ExperimentState(rawValue: row.text(1)) ?? .draft, version: row.integer(2),
            owner: row.text(3), layer: row.optionalText(4), protocolName: row.text(5), protocolHash: row.text(6),
            document: parseDocument ? (try? JSONParser.parse(row.text(7))) ?? .null : .null,
            plan: parseDocument ? row.optionalText(8).flatMap { try? JSONParser.parse($0) } ?? .null : .null,
            decision: row.optionalText(9), createdAt: row.text(10), updatedAt: row.text(11),
            createdBy: row.text(12), updatedBy: row.text(13), buckets: decode(row.optionalText(14)))
    }

    static func audit(_ row: any SQLRow) -> AuditEntry {
        AuditEntry(seq: row.integer(0), at: row.text(1), principal: row.text(2), onBehalfOf: row.optionalText(3),
                   method: row.text(4), key: row.optionalText(5),
                   before: (try? JSONParser.parse(row.text(6))) ?? .null,
                   after: (try? JSONParser.parse(row.text(7))) ?? .null,
                   reason: row.optionalText(8), prevHash: row.text(9), hash: row.text(10))
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
