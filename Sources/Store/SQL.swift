internal import GRDB

/// The two databases a registry can live in. The store's statements are written once, in the SQL both accept
/// (`?` placeholders, `ON CONFLICT`, `WITH RECURSIVE`); only the schema and the transaction framing differ.
enum SQLDialect: Sendable { case sqlite, postgresql }

/// A value bound to or read from a statement: the schema uses integers, text and null only.
enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int)
    case text(String)
}

/// What a statement's arguments can be.
protocol SQLBindable {
    var sqlValue: SQLValue { get }
}

extension SQLValue: SQLBindable { var sqlValue: SQLValue { self } }
extension String: SQLBindable { var sqlValue: SQLValue { .text(self) } }
extension Int: SQLBindable { var sqlValue: SQLValue { .integer(self) } }
extension Optional: SQLBindable where Wrapped: SQLBindable {
    var sqlValue: SQLValue { map(\.sqlValue) ?? .null }
}

/// One row of an answer, read by column position (the store's queries name their columns).
protocol SQLRow {
    func optionalText(_ column: Int) -> String?
    /// Integers, and booleans as 0 and 1.
    func optionalInteger(_ column: Int) -> Int?
    /// The cell as stored (copying a registry).
    func value(_ column: Int) -> SQLValue
}

extension SQLRow {
    func text(_ column: Int) -> String { optionalText(column) ?? "" }
    func integer(_ column: Int) -> Int { optionalInteger(column) ?? 0 }
}

/// One connection inside one transaction (or one statement), of either database.
protocol SQLSession {
    var dialect: SQLDialect { get }
    /// Runs one statement; answers how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLBindable]) throws -> Int
    /// Runs one query and hands each row to `body`, in order.
    func each(_ sql: String, _ arguments: [any SQLBindable], _ body: (any SQLRow) throws -> Void) throws
    /// Runs a statement whose answer the caller does not need now: on PostgreSQL it is sent and not waited for (the
    /// connection runs its statements in order), and the next statement waited for, or the transaction's end, reports
    /// its failure; on SQLite it runs at once.
    func executeLater(_ sql: String, _ arguments: [any SQLBindable]) throws
}

extension SQLSession {
    func all<T>(_ sql: String, _ arguments: [any SQLBindable] = [], _ read: (any SQLRow) throws -> T) throws -> [T] {
        var out: [T] = []
        try each(sql, arguments) { out.append(try read($0)) }
        return out
    }

    func one<T>(_ sql: String, _ arguments: [any SQLBindable] = [], _ read: (any SQLRow) throws -> T) throws -> T? {
        var out: T?
        try each(sql, arguments) { row in if out == nil { out = try read(row) } }
        return out
    }
}

/// SQLite through GRDB: statements are prepared once per connection and cached.
struct SQLiteSession: SQLSession {
    let db: Database
    var dialect: SQLDialect { .sqlite }

    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLBindable]) throws -> Int {
        try db.cachedStatement(sql: sql).execute(arguments: Self.arguments(arguments))
        return db.changesCount
    }

    func executeLater(_ sql: String, _ arguments: [any SQLBindable]) throws {
        try db.cachedStatement(sql: sql).execute(arguments: Self.arguments(arguments))
    }

    func each(_ sql: String, _ arguments: [any SQLBindable], _ body: (any SQLRow) throws -> Void) throws {
        let cursor = try Row.fetchCursor(try db.cachedStatement(sql: sql), arguments: Self.arguments(arguments))
        while let row = try cursor.next() { try body(SQLiteRow(row: row)) }
    }

    static func arguments(_ values: [any SQLBindable]) -> StatementArguments {
        StatementArguments(values.map { value -> DatabaseValue in
            switch value.sqlValue {
            case .null: .null
            case .integer(let i): i.databaseValue
            case .text(let s): s.databaseValue
            }
        })
    }
}

struct SQLiteRow: SQLRow {
    let row: Row
    func optionalText(_ column: Int) -> String? { row[column] }
    func optionalInteger(_ column: Int) -> Int? { row[column] }
    func value(_ column: Int) -> SQLValue {
        switch (row[column] as DatabaseValue).storage {
        case .int64(let i): .integer(Int(i))
        case .string(let s): .text(s)
        case .double(let d): .text(String(d))
        case .blob(let b): .text(String(decoding: b, as: UTF8.self))
        case .null: .null
        }
    }
}
