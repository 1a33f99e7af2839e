/// Moving a registry between stores (SQLite ⇄ PostgreSQL, or file to file): every table row for row, in one write
/// transaction on the target, from one snapshot of the source. Stored text is copied as it is, so the audit chain's
/// hashes and the records they cover stay byte-identical.
extension Store {
    /// The tables of a registry and their columns, in an order that satisfies every reference.
    static let copiedTables: [(name: String, columns: String)] = [
        ("protocol_versions", "hash, name, source, first_seen"),
        ("experiments", StoreTransaction.recordColumns + ", change_seq"),
        ("holdouts", StoreTransaction.recordColumns),
        ("audit", StoreTransaction.auditColumns),
        ("grants", "principal, role, granted_by, granted_at"),
        ("saved_groups", StoreTransaction.groupColumns),
        ("results", "key, metric, variant, day, segment, stats, source, updated_at"),
        ("result_totals", "key, segment, metric, variant, last_day, stats"),
        ("result_totals_state", "key, fresh"),
        ("result_capping", "key, metric, spec"),
    ]

    public struct CopyRefused: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { message }
    }

    /// Copies everything in `source` into `self`, which must hold nothing yet; answers the rows copied per table.
    public func copyAll(from source: Store) throws -> [(table: String, rows: Int)] {
        let snapshot = try source.read { tx -> [(String, String, [[SQLValue]])] in
            try Self.copiedTables.map { t in (t.name, t.columns, try tx.sql.all("SELECT \(t.columns) FROM \(t.name)", []) { row in
                (0..<t.columns.split(separator: ",").count).map { row.value($0) } }) }
        }
        let counters = try source.read { tx in
            try tx.sql.all("SELECT name, value FROM meta", []) { ($0.text(0), $0.integer(1)) }
        }
        return try write { tx in
            tx.wroteDirectly()
            for t in Self.copiedTables {
                if let n = try tx.sql.one("SELECT COUNT(*) FROM \(t.name)", [], { $0.integer(0) }), n > 0 {
                    throw CopyRefused(message: "the target \(path) is not empty (its \(t.name) table has \(n) rows); copy into a new, empty store")
                }
            }
            var copied: [(String, Int)] = []
            for (name, columns, rows) in snapshot {
                let placeholders = Array(repeating: "?", count: columns.split(separator: ",").count).joined(separator: ", ")
                for row in rows { try tx.sql.execute("INSERT INTO \(name) (\(columns)) VALUES (\(placeholders))", row) }
                copied.append((name, rows.count))
            }
            for (name, value) in counters {
                try tx.sql.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", [name, value])
            }
            return copied
        }
    }
}
