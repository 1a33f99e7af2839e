internal import GRDB

extension Store {
    /// Named migrations; a shipped migration is never edited, only followed by a new one.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-experiments-audit") { db in
            try db.execute(sql: """
                CREATE TABLE experiments (
                    key TEXT PRIMARY KEY NOT NULL,
                    state TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    owner TEXT NOT NULL,
                    layer TEXT,
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
                );
                CREATE INDEX experiments_state ON experiments(state);
                CREATE INDEX experiments_owner ON experiments(owner);
                CREATE INDEX experiments_layer ON experiments(layer);
                CREATE TABLE protocol_versions (
                    hash TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL,
                    source TEXT NOT NULL,
                    first_seen TEXT NOT NULL
                );
                CREATE TABLE audit (
                    seq INTEGER PRIMARY KEY NOT NULL,
                    at TEXT NOT NULL,
                    principal TEXT NOT NULL,
                    on_behalf_of TEXT,
                    method TEXT NOT NULL,
                    key TEXT,
                    before TEXT NOT NULL,
                    after TEXT NOT NULL,
                    reason TEXT,
                    prev_hash TEXT NOT NULL,
                    hash TEXT NOT NULL
                );
                CREATE INDEX audit_key ON audit(key);
                CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                """)
        }
        m.registerMigration("v2-change-tracking") { db in
            // Every experiment write bumps a store-wide generation and stamps the row with it, so a process
            // can refresh its in-memory conflict index with only the rows changed since it last looked.
            try db.execute(sql: """
                CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
                INSERT INTO meta (name, value) VALUES ('generation', 0);
                ALTER TABLE experiments ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX experiments_change_seq ON experiments(change_seq);
                """)
        }
        m.registerMigration("v3-results") { db in
            // Additive sufficient statistics per experiment, metric, variant, day ('' = undated) and segment ('' = all).
            try db.execute(sql: """
                CREATE TABLE results (
                    key TEXT NOT NULL,
                    metric TEXT NOT NULL,
                    variant TEXT NOT NULL,
                    day TEXT NOT NULL DEFAULT '',
                    segment TEXT NOT NULL DEFAULT '',
                    stats TEXT NOT NULL,
                    source TEXT NOT NULL,
                    updated_at TEXT NOT NULL,
                    PRIMARY KEY (key, segment, metric, variant, day)
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v4-access") { db in
            try db.execute(sql: """
                CREATE TABLE grants (
                    principal TEXT NOT NULL,
                    role TEXT NOT NULL,
                    granted_by TEXT NOT NULL,
                    granted_at TEXT NOT NULL,
                    PRIMARY KEY (principal, role)
                );
                """)
        }
        m.registerMigration("v5-groups") { db in
            // Saved groups for `$inGroup`/`$notInGroup`: the current version of each (history is in the audit log).
            try db.execute(sql: """
                CREATE TABLE saved_groups (
                    name TEXT PRIMARY KEY NOT NULL,
                    version INTEGER NOT NULL,
                    items TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    updated_at TEXT NOT NULL,
                    updated_by TEXT NOT NULL
                );
                INSERT INTO meta (name, value) VALUES ('groups_generation', 0);
                """)
        }
        m.registerMigration("v6-result-totals") { db in
            // Every day's sums added up per experiment, segment, metric and variant, with the last day they cover:
            // what a breakdown reads when its as-of time is after every stored day (the rows per day stay the truth).
            try db.execute(sql: """
                CREATE TABLE result_totals (
                    key TEXT NOT NULL,
                    segment TEXT NOT NULL,
                    metric TEXT NOT NULL,
                    variant TEXT NOT NULL,
                    last_day TEXT NOT NULL,
                    stats TEXT NOT NULL,
                    PRIMARY KEY (key, segment, metric, variant)
                ) WITHOUT ROWID;
                CREATE TABLE result_totals_state (key TEXT PRIMARY KEY NOT NULL, fresh INTEGER NOT NULL) WITHOUT ROWID;
                """)
            for key in try String.fetchAll(db, sql: "SELECT DISTINCT key FROM results") {
                try StoreTransaction(sql: SQLiteSession(db: db)).refreshTotals(key: key)
            }
        }
        m.registerMigration("v7-result-capping") { db in
            // The cap an ingestion used per capped metric ({type, value, cap, units_capped…} as JSON): a percentile
            // cap is known only from the data, and the summary and report say what it was.
            try db.execute(sql: """
                CREATE TABLE result_capping (
                    key TEXT NOT NULL,
                    metric TEXT NOT NULL,
                    spec TEXT NOT NULL,
                    PRIMARY KEY (key, metric)
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v8-holdouts") { db in
            // Holdouts: records of the same shape as experiments (state, version, owner, document, audit by key), in
            // a table of their own so nothing that lists or indexes experiments meets them. Keys are unique across
            // both tables (checked on registration), so results and the audit log address either by key.
            try db.execute(sql: """
                CREATE TABLE holdouts (
                    key TEXT PRIMARY KEY NOT NULL,
                    state TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    owner TEXT NOT NULL,
                    layer TEXT,
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
                );
                INSERT OR IGNORE INTO meta (name, value) VALUES ('holdouts_generation', 0);
                """)
        }
        return m
    }
}
