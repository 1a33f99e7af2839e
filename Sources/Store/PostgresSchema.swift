/// The registry's schema on PostgreSQL: named migrations, frozen once shipped (a change is a new migration), recorded
/// in `referee_migrations`. PostgreSQL starts at the SQLite store's current schema, in one migration.
///
/// Text that is compared or ordered is `COLLATE "C"`: keys, segments and pages sort by bytes, as in SQLite, whatever
/// the database's locale.
enum PostgresSchema {
    static let migrations: [(name: String, statements: [String])] = [
        ("v1-registry", [
            """
            CREATE TABLE experiments (
                key TEXT COLLATE "C" PRIMARY KEY,
                state TEXT COLLATE "C" NOT NULL,
                version BIGINT NOT NULL,
                owner TEXT COLLATE "C" NOT NULL,
                layer TEXT COLLATE "C",
                protocol TEXT NOT NULL,
                protocol_hash TEXT NOT NULL,
                document TEXT NOT NULL,
                plan TEXT,
                decision TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                updated_by TEXT NOT NULL,
                buckets TEXT NOT NULL DEFAULT '',
                change_seq BIGINT NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX experiments_state ON experiments(state)",
            "CREATE INDEX experiments_owner ON experiments(owner)",
            "CREATE INDEX experiments_layer ON experiments(layer)",
            "CREATE INDEX experiments_change_seq ON experiments(change_seq)",
            """
            CREATE TABLE protocol_versions (
                hash TEXT COLLATE "C" PRIMARY KEY,
                name TEXT NOT NULL,
                source TEXT NOT NULL,
                first_seen TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE audit (
                seq BIGINT PRIMARY KEY,
                at TEXT NOT NULL,
                principal TEXT NOT NULL,
                on_behalf_of TEXT,
                method TEXT NOT NULL,
                key TEXT COLLATE "C",
                before TEXT NOT NULL,
                after TEXT NOT NULL,
                reason TEXT,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL
            )
            """,
            "CREATE INDEX audit_key ON audit(key)",
            """
            CREATE FUNCTION referee_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the audit log is append-only';
            END
            $$
            """,
            "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION referee_audit_append_only()",
            "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION referee_audit_append_only()",
            "CREATE TABLE meta (name TEXT COLLATE \"C\" PRIMARY KEY, value BIGINT NOT NULL)",
            "INSERT INTO meta (name, value) VALUES ('generation', 0), ('groups_generation', 0), ('holdouts_generation', 0)",
            """
            CREATE TABLE results (
                key TEXT COLLATE "C" NOT NULL,
                metric TEXT COLLATE "C" NOT NULL,
                variant TEXT COLLATE "C" NOT NULL,
                day TEXT COLLATE "C" NOT NULL DEFAULT '',
                segment TEXT COLLATE "C" NOT NULL DEFAULT '',
                stats TEXT NOT NULL,
                source TEXT COLLATE "C" NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (key, segment, metric, variant, day)
            )
            """,
            """
            CREATE TABLE grants (
                principal TEXT COLLATE "C" NOT NULL,
                role TEXT COLLATE "C" NOT NULL,
                granted_by TEXT NOT NULL,
                granted_at TEXT NOT NULL,
                PRIMARY KEY (principal, role)
            )
            """,
            """
            CREATE TABLE saved_groups (
                name TEXT COLLATE "C" PRIMARY KEY,
                version BIGINT NOT NULL,
                items TEXT NOT NULL,
                reason TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                updated_by TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE result_totals (
                key TEXT COLLATE "C" NOT NULL,
                segment TEXT COLLATE "C" NOT NULL,
                metric TEXT COLLATE "C" NOT NULL,
                variant TEXT COLLATE "C" NOT NULL,
                last_day TEXT COLLATE "C" NOT NULL,
                stats TEXT NOT NULL,
                PRIMARY KEY (key, segment, metric, variant)
            )
            """,
            "CREATE TABLE result_totals_state (key TEXT COLLATE \"C\" PRIMARY KEY, fresh INTEGER NOT NULL)",
            """
            CREATE TABLE result_capping (
                key TEXT COLLATE "C" NOT NULL,
                metric TEXT COLLATE "C" NOT NULL,
                spec TEXT NOT NULL,
                PRIMARY KEY (key, metric)
            )
            """,
            """
            CREATE TABLE holdouts (
                key TEXT COLLATE "C" PRIMARY KEY,
                state TEXT COLLATE "C" NOT NULL,
                version BIGINT NOT NULL,
                owner TEXT COLLATE "C" NOT NULL,
                layer TEXT COLLATE "C",
                protocol TEXT NOT NULL,
                protocol_hash TEXT NOT NULL,
                document TEXT NOT NULL,
                plan TEXT,
                decision TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                updated_by TEXT NOT NULL,
                buckets TEXT NOT NULL DEFAULT ''
            )
            """,
        ]),
        // Every write transaction bumps it; daemons compare it to keep reads in memory (`PostgresCommitClock`).
        ("v2-commit-count", [
            "INSERT INTO meta (name, value) VALUES ('commits', 0) ON CONFLICT (name) DO NOTHING",
        ]),
        // A write transaction's first statement (`PostgresBackend.write`): the write lock, then what the transaction
        // needs of the registry's bookkeeping, in one round trip. Volatile, so the query after the lock takes a snapshot of
        // its own and sees every commit made before the lock was granted.
        ("v3-write-begin", [
            """
            CREATE FUNCTION referee_write_begin(lock_key BIGINT, claimed TEXT) RETURNS TABLE (entry TEXT, label TEXT, amount BIGINT)
            LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock(lock_key);
                RETURN QUERY
                    SELECT 'meta'::TEXT, m.name::TEXT, m.value FROM meta m
                    UNION ALL SELECT 'audit'::TEXT, h.hash::TEXT, h.seq FROM (SELECT a.seq, a.hash FROM audit a ORDER BY a.seq DESC LIMIT 1) h
                    UNION ALL SELECT 'grants'::TEXT, ''::TEXT, 1::BIGINT WHERE EXISTS (SELECT 1 FROM grants)
                    UNION ALL SELECT 'claimed'::TEXT, claimed, 1::BIGINT
                        WHERE EXISTS (SELECT 1 FROM experiments e WHERE e.key = claimed) OR EXISTS (SELECT 1 FROM holdouts x WHERE x.key = claimed);
            END
            $$
            """,
        ]),
        // A write sent as one statement (`PostgresSession.sendAsOneStatement`) runs through this procedure, which
        // commits before CALL's CommandComplete: outside a transaction, a statement's own commit waits for the Sync after
        // it, so its CommandComplete does not mean committed, and confirming that took a second round trip. The statement
        // comes with its values written in; it runs with the caller's privileges (SECURITY INVOKER).
        ("v4-write-once", [
            """
            CREATE PROCEDURE referee_write_once(statement TEXT, INOUT ok BOOLEAN)
            LANGUAGE plpgsql AS $$
            BEGIN
                EXECUTE statement INTO ok;
                COMMIT;
            END
            $$
            """,
        ]),
    ]

    static let tables = ["experiments", "protocol_versions", "audit", "meta", "results", "grants", "saved_groups",
                         "result_totals", "result_totals_state", "result_capping", "holdouts"]
    static let auditTriggers = ["audit_append_only", "audit_no_truncate"]

    /// Applies what is missing, once: daemons starting together wait on one advisory lock, and each finds the others'
    /// work done. A store whose migrations are all applied needs no privilege beyond reading and writing rows, so the
    /// service role can be one that cannot change the schema (see the README's deployment section).
    static func migrate(_ s: PostgresSession, readOnly: Bool, place: String) throws {
        func applied() throws -> Set<String>? {
            let exists = try s.one("SELECT to_regclass('referee_migrations') IS NOT NULL", [], { $0.integer(0) })
            guard exists == 1 else { return nil }
            return Set(try s.all("SELECT name FROM referee_migrations", []) { $0.text(0) })
        }
        let known = Set(migrations.map(\.name))
        if let done = try applied() {
            if let unknown = done.subtracting(known).sorted().first {
                throw StoreError(message: "the store \(place) has migration \(unknown), which this Referee does not know: it was written by a newer Referee; upgrade this one")
            }
            if done == known { return }
        }
        if readOnly {
            throw StoreError(message: "the store \(place) is not migrated to this Referee's schema; open it once with a writing command (referee serve, or referee store migrate) as a role that may create tables")
        }
        try s.execute("BEGIN", [])
        do {
            try s.execute("SELECT pg_advisory_xact_lock(?)", [PostgresBackend.migrationLock])
            try s.executeLiteral("CREATE TABLE IF NOT EXISTS referee_migrations (name TEXT COLLATE \"C\" PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            let done = try applied() ?? []
            for m in migrations where !done.contains(m.name) {
                for statement in m.statements { try s.executeLiteral(statement) }
                try s.execute("INSERT INTO referee_migrations (name) VALUES (?)", [m.name])
            }
            try s.execute("COMMIT", [])
        } catch {
            _ = try? s.execute("ROLLBACK", [])
            if let e = error as? StoreError { throw StoreError(message: e.message + " (while migrating; a role that owns the database applies migrations)") }
            throw error
        }
    }
}
