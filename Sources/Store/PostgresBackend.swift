import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import PostgresWire
import Synchronization

/// The registry on PostgreSQL through postgres-nio: a few connections kept open and reused, every statement with a
/// client-side deadline, every write in a transaction that first takes one transaction-level advisory lock.
///
/// The lock makes writes from every daemon on every host run one at a time, as SQLite's `BEGIN IMMEDIATE` does for
/// the processes sharing a file; under READ COMMITTED each statement after the lock sees every commit that released
/// it, so a check-then-write never acts on a state another daemon has already changed.
final class PostgresBackend: @unchecked Sendable {
    let location: PostgresLocation
    let readOnly: Bool
    /// How long one statement may go unanswered before the connection is given up (the request gets 1011).
    let statementSeconds: Double
    let connectSeconds: Double
    private let idle = Mutex<[PostgresConnection]>([])
    /// Connections one daemon holds at most: a socket server with a thousand clients must not open a thousand
    /// (the server's `max_connections` is 100 by default). A request waits for one up to `statementSeconds`.
    static let maxConnections = 32
    private let slots = DispatchSemaphore(value: PostgresBackend.maxConnections)
    /// Writes run one at a time across every daemon (the advisory lock), so a daemon's writers queue here, before
    /// taking a connection, rather than on the lock while holding one each: readers always find a connection.
    private let writeTurns: WriteTurns
    /// Set while this thread holds a slot, so a nested session takes none (and cannot wait on itself).
    @TaskLocal private static var holdingSlot = false
    private let nextID = Atomic<Int>(1)
    private let logger: Logger = {
        var l = Logger(label: "referee.store")
        l.logLevel = .critical
        return l
    }()

    /// The advisory lock every write takes (one registry per database, so one constant).
    static let writeLock = 0x5265_6665_7265_6501
    /// The lock migrations take, so daemons starting together apply each migration once.
    static let migrationLock = 0x5265_6665_7265_6502

    init(location: PostgresLocation, readOnly: Bool, statementSeconds: Double = 10, connectSeconds: Double = 5) throws(StoreError) {
        self.location = location
        self.readOnly = readOnly
        self.statementSeconds = statementSeconds
        self.connectSeconds = connectSeconds
        self.writeTurns = WriteTurns(stallSeconds: statementSeconds)
        do {
            try withSession { s in try PostgresSchema.migrate(s, readOnly: readOnly, place: location.place) }
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError(message: "cannot open the store \(location.place): \(error)")
        }
    }

    deinit {
        for c in idle.withLock({ $0 }) { PostgresWire.close(c) }
    }

    // MARK: Connections

    private func connect() throws(StoreUnavailable) -> PostgresConnection {
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch location.sslMode {
            case .disable: tls = .disable
            case .prefer, .require:
                var config = TLSConfiguration.makeClientConfiguration()
                // As libpq's prefer and require: encrypted, the certificate not checked.
                config.certificateVerification = .none
                let context = try NIOSSLContext(configuration: config)
                tls = location.sslMode == .prefer ? .prefer(context) : .require(context)
            case .verifyFull:
                var config = TLSConfiguration.makeClientConfiguration()
                config.certificateVerification = .fullVerification
                if let path = location.rootCertificatePath {
                    guard FileManager.default.isReadableFile(atPath: path) else {
                        throw StoreUnavailable(message: "cannot verify the store \(location.place): sslrootcert \(path) is not a readable file; give the CA certificate with ?sslrootcert=PATH")
                    }
                    config.trustRoots = .file(path)
                }
                tls = .require(try NIOSSLContext(configuration: config))
            }
        } catch let e as StoreUnavailable {
            throw e
        } catch {
            throw StoreUnavailable(message: "cannot set up TLS for the store \(location.place): \(error)")
        }
        var configuration = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                             password: location.password, database: location.database, tls: tls)
        configuration.options.connectTimeout = .milliseconds(Int64(connectSeconds * 1000))
        var parameters = [
            ("application_name", "referee"), ("TimeZone", "UTC"),
            // The server gives up too (a lock wait included), and frees what a vanished client held.
            ("statement_timeout", String(Int64(statementSeconds * 1000))),
            ("idle_in_transaction_session_timeout", "60000"),
        ]
        if readOnly { parameters.append(("default_transaction_read_only", "on")) }
        configuration.options.additionalStartupParameters = parameters
        // The handshake too is bounded: postgres-nio's connect timeout covers only the TCP connection.
        do {
            guard let connection = try PostgresWire.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration,
                                                            id: nextID.add(1, ordering: .relaxed).newValue, logger: logger,
                                                            seconds: connectSeconds + 1) else {
                throw StoreUnavailable(message: "the store \(location.place) is unavailable: no answer to the connection within \(Int(connectSeconds + 1)) s; nothing was applied; Referee retries on the next request")
            }
            return connection
        } catch let e as StoreUnavailable {
            throw e
        } catch {
            throw StoreUnavailable(message: "the store \(location.place) is unavailable: cannot connect as \(location.user): \(PostgresWire.describe(error)); nothing was applied; Referee retries on the next request")
        }
    }

    /// Runs `body` on a connection from the pool (a new one if none is idle); a connection that failed is closed,
    /// not returned. A pooled connection found dead before any statement ran is replaced once: nothing was sent.
    func withSession<T>(_ body: (PostgresSession) throws -> T) throws -> T {
        if Self.holdingSlot { return try pooledSession(body) }
        guard slots.wait(timeout: .now() + statementSeconds) == .success else {
            throw StoreUnavailable(message: "the store \(location.place) is busy: all \(Self.maxConnections) of this daemon's connections stayed in use for \(Int(statementSeconds)) s; nothing was applied; try again")
        }
        defer { slots.signal() }
        return try Self.$holdingSlot.withValue(true) { try pooledSession(body) }
    }

    private func pooledSession<T>(_ body: (PostgresSession) throws -> T) throws -> T {
        var attempts = 0
        while true {
            attempts += 1
            var connection = idle.withLock { $0.popLast() }
            if let c = connection, c.isClosed { connection = nil }
            let pooled = connection != nil
            let session = PostgresSession(connection: try connection ?? connect(), backend: self)
            do {
                let result = try body(session)
                release(session)
                return result
            } catch {
                release(session)
                if session.broken && pooled && session.statements <= 1 && attempts < 3 { continue }
                throw error
            }
        }
    }

    private func release(_ session: PostgresSession) {
        if session.broken || session.connection.isClosed {
            PostgresWire.close(session.connection)
        } else {
            idle.withLock { if $0.count < Self.maxConnections { $0.append(session.connection) } else { PostgresWire.close(session.connection) } }
        }
    }

    /// One transaction: a write takes the registry's write lock first; a read sees one snapshot.
    func transaction<T>(write: Bool, _ body: (PostgresSession) throws -> T) throws -> T {
        guard write else { return try session(write: false, body) }
        return try writeTurns.take(place: location.place) { try session(write: true, body) }
    }

    private func session<T>(write: Bool, _ body: (PostgresSession) throws -> T) throws -> T {
        try withSession { s in
            try s.execute(write ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", [])
            do {
                if write { try s.execute("SELECT pg_advisory_xact_lock(?)", [Self.writeLock]) }
                let result = try body(s)
                // The count every daemon's read cache checks (`PostgresCommitClock`).
                if write { try s.execute("UPDATE meta SET value = value + 1 WHERE name = 'commits'", []) }
                s.committing = true
                try s.execute("COMMIT", [])
                return result
            } catch {
                if !s.broken { _ = try? s.execute("ROLLBACK", []) }
                throw error
            }
        }
    }

    /// What `store.integrity` answers: every migration applied, every table readable, the audit log's triggers in place.
    func integrity() throws -> String {
        try transaction(write: false) { s in
            var problems: [String] = []
            let applied = Set(try s.all("SELECT name FROM referee_migrations", []) { $0.text(0) })
            for m in PostgresSchema.migrations where !applied.contains(m.name) { problems.append("migration \(m.name) is not applied") }
            for table in PostgresSchema.tables {
                _ = try s.one("SELECT COUNT(*) FROM \(table)", []) { $0.integer(0) }
            }
            let triggers = Set(try s.all("SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit'::regclass AND tgenabled <> 'D'", []) { $0.text(0) })
            for t in PostgresSchema.auditTriggers where !triggers.contains(t) {
                problems.append("the audit log's trigger \(t) is missing or disabled: the log is not append-only")
            }
            return problems.isEmpty ? "ok" : problems.joined(separator: "; ")
        }
    }
}

/// One PostgreSQL connection used by one transaction or statement.
final class PostgresSession: SQLSession, @unchecked Sendable {
    let connection: PostgresConnection
    unowned let backend: PostgresBackend
    /// The connection failed or timed out: it is closed, not reused.
    private(set) var broken = false
    private(set) var statements = 0
    /// The COMMIT was sent: a failure now leaves the outcome unknown to this daemon.
    var committing = false
    var dialect: SQLDialect { .postgresql }

    init(connection: PostgresConnection, backend: PostgresBackend) {
        self.connection = connection; self.backend = backend
    }

    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLBindable]) throws -> Int {
        try run(sql, arguments).changed
    }

    func each(_ sql: String, _ arguments: [any SQLBindable], _ body: (any SQLRow) throws -> Void) throws {
        for row in try run(sql, arguments).rows { try body(row) }
    }

    /// Runs a statement that takes no arguments exactly as written (the schema's DDL, with its `$$` bodies).
    func executeLiteral(_ sql: String) throws {
        _ = try run(sql, [], translate: false)
    }

    private func run(_ sql: String, _ arguments: [any SQLBindable], translate: Bool = true) throws -> (rows: [PostgresValues], changed: Int) {
        statements += 1
        let text = translate ? Self.numberedPlaceholders(sql) : sql
        let binds: [PostgresData] = arguments.map {
            switch $0.sqlValue {
            case .null: .null
            case .integer(let i): PostgresData(int: i)
            case .text(let s): PostgresData(string: s)
            }
        }
        let answer = Answer()
        let connection = self.connection
        let deadline = connection.eventLoop.scheduleTask(in: .milliseconds(Int64((backend.statementSeconds + 2) * 1000))) {
            answer.expire()
            PostgresWire.close(connection)
        }
        defer { deadline.cancel() }
        do {
            let done = connection.query(text, binds, onMetadata: { answer.changed($0.rows ?? 0) }, onRow: { answer.add($0) })
            if try PostgresWire.bounded(done, seconds: backend.statementSeconds + 3) == nil {
                answer.expire()
                PostgresWire.close(connection)
                throw classify(StoreError(message: "no answer"), timedOut: true)
            }
        } catch let e as StoreUnavailable {
            throw e
        } catch {
            throw classify(error, timedOut: answer.expired)
        }
        return answer.result()
    }

    private func classify(_ error: any Error, timedOut: Bool) -> any Error {
        let place = backend.location.place
        let outcome = committing ? "the write was sent and is either applied whole or not at all: read it back to know"
                                 : "nothing was applied"
        if timedOut {
            broken = true
            return StoreUnavailable(message: "the store \(place) did not answer within \(Int(backend.statementSeconds)) s; \(outcome); Referee reconnects on the next request")
        }
        if let (state, message) = PostgresWire.serverError(error) {
            // Connection failures, the server shutting down or starting, statement_timeout (a lock held elsewhere).
            if state.hasPrefix("08") || state.hasPrefix("57P") || state.hasPrefix("53") || state == "57014" || state == "25P03" {
                if state != "57014" { broken = true }
                return StoreUnavailable(message: "the store \(place) is unavailable: \(message) (SQLSTATE \(state)); \(outcome); Referee reconnects on the next request")
            }
            if state == "25006" {
                return StoreError(message: "the store \(place) was opened read-only: \(message)")
            }
            return StoreError(message: "the store \(place) refused a statement: \(message) (SQLSTATE \(state))")
        }
        broken = true
        return StoreUnavailable(message: "the store \(place) is unavailable: the connection was lost (\(PostgresWire.describe(error))); \(outcome); Referee reconnects on the next request")
    }

    /// `?` placeholders as PostgreSQL's `$1`, `$2`…, outside quoted text.
    static func numberedPlaceholders(_ sql: String) -> String {
        guard sql.contains("?") else { return sql }
        var out = "", n = 0, quoted = false
        out.reserveCapacity(sql.utf8.count + 16)
        for c in sql {
            if c == "'" { quoted.toggle() }
            if c == "?" && !quoted { n += 1; out += "$\(n)" } else { out.append(c) }
        }
        return out
    }
}

/// A row's cells, converted as they arrived.
struct PostgresValues: SQLRow {
    var values: [SQLValue]

    func value(_ column: Int) -> SQLValue { values[column] }

    func optionalText(_ column: Int) -> String? {
        switch values[column] {
        case .text(let s): s
        case .integer(let i): String(i)
        case .null: nil
        }
    }

    func optionalInteger(_ column: Int) -> Int? {
        switch values[column] {
        case .integer(let i): i
        case .text(let s): Int(s)
        case .null: nil
        }
    }
}

/// What a statement answered, filled on the event loop and read after it ends.
private final class Answer: @unchecked Sendable {
    private let lock = NSLock()
    private var rows: [PostgresValues] = []
    private var count = 0
    private var timedOut = false

    func add(_ row: PostgresRow) {
        var values: [SQLValue] = []
        for cell in row {
            guard cell.bytes != nil else { values.append(.null); continue }
            switch cell.dataType {
            case .int8, .int4, .int2: values.append((try? cell.decode(Int.self)).map(SQLValue.integer) ?? .null)
            case .bool: values.append((try? cell.decode(Bool.self)).map { .integer($0 ? 1 : 0) } ?? .null)
            default: values.append((try? cell.decode(String.self)).map(SQLValue.text) ?? .null)
            }
        }
        lock.lock(); rows.append(PostgresValues(values: values)); lock.unlock()
    }

    func changed(_ n: Int) { lock.lock(); count = n; lock.unlock() }
    func expire() { lock.lock(); timedOut = true; lock.unlock() }
    var expired: Bool { lock.lock(); defer { lock.unlock() }; return timedOut }
    func result() -> ([PostgresValues], Int) { lock.lock(); defer { lock.unlock() }; return (rows, count) }
}

/// A daemon's writes, one at a time. A write waits while the writes ahead of it finish, however many there are, but
/// gives up when none has finished for `stallSeconds` (the one holding the turn is stuck), and at once when the store
/// became unavailable to a write that held the turn after this one began waiting: during an outage a queue of writes
/// is answered 1011 together, not each after a connection attempt of its own.
final class WriteTurns: Sendable {
    private struct State {
        /// Writes that finished, and the number of the last that found the store unavailable, with why.
        var finished: UInt64 = 0
        var lastUnavailable: (at: UInt64, error: StoreUnavailable)?
    }
    private let state = Mutex(State())
    private let turn = DispatchSemaphore(value: 1)
    private let stallSeconds: Double

    init(stallSeconds: Double) { self.stallSeconds = stallSeconds }

    func take<T>(place: String, _ body: () throws -> T) throws -> T {
        let began = state.withLock { $0.finished }
        var seen = began
        var progressAt = DispatchTime.now()
        while turn.wait(timeout: .now() + 0.25) == .timedOut {
            let finished = state.withLock { $0.finished }
            if finished != seen {
                seen = finished
                progressAt = .now()
            } else if Double(DispatchTime.now().uptimeNanoseconds - progressAt.uptimeNanoseconds) / 1e9 > stallSeconds {
                throw StoreUnavailable(message: "the store \(place) is busy: the write ahead of this one in this daemon has not finished in \(Int(stallSeconds)) s; nothing was applied; try again")
            }
        }
        defer { turn.signal() }
        if let failed = state.withLock({ s in s.lastUnavailable.flatMap { $0.at > began ? $0.error : nil } }) {
            // This write was never sent, whatever became of the one that met the outage.
            throw StoreUnavailable(message: "the store \(place) is unavailable: the write before this one found it so (\(failed.message)); this write was not sent, nothing of it was applied; Referee retries on the next request")
        }
        do {
            let result = try body()
            state.withLock { $0.finished &+= 1 }
            return result
        } catch let error as StoreUnavailable {
            state.withLock { s in s.finished &+= 1; s.lastUnavailable = (s.finished, error) }
            throw error
        } catch {
            state.withLock { $0.finished &+= 1 }
            throw error
        }
    }
}
