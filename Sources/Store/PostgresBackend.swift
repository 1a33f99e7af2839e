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
            // As libpq: no TLS on a Unix socket, whatever sslmode says (the kernel carries the bytes).
            switch location.socketPath == nil ? location.sslMode : .disable {
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
        var configuration = location.socketPath.map {
            PostgresConnection.Configuration(unixSocketPath: $0, username: location.user, password: location.password, database: location.database)
        } ?? PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                              password: location.password, database: location.database, tls: tls)
        configuration.options.connectTimeout = .milliseconds(Int64(connectSeconds * 1000))
        var parameters = [
            ("application_name", "referee"), ("TimeZone", "UTC"),
            // The server gives up too (a lock wait included), and frees what a vanished client held.
            ("statement_timeout", String(Int64(statementSeconds * 1000))),
            ("idle_in_transaction_session_timeout", "60000"),
            // A write sent as one statement is a transaction of its own: READ COMMITTED whatever the database's default.
            ("default_transaction_isolation", "read committed"),
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
                try session.flush()
                release(session)
                return result
            } catch {
                release(session)
                // Not once a commit was sent: it may have been applied.
                if session.broken && pooled && session.answered == 0 && !session.committing && attempts < 3 { continue }
                throw error
            }
        }
    }

    private func release(_ session: PostgresSession) {
        if session.broken || !session.settled || session.connection.isClosed {
            PostgresWire.close(session.connection)
        } else {
            idle.withLock { if $0.count < Self.maxConnections { $0.append(session.connection) } else { PostgresWire.close(session.connection) } }
        }
    }

    /// A read transaction: one snapshot.
    func read<T>(_ body: (PostgresSession) throws -> T) throws -> T {
        try session(write: false) { s, _ in try body(s) }
    }

    /// A write transaction: it first takes the registry's write lock and reads, under it, the registry's bookkeeping
    /// (`referee_write_begin`: the counters, the audit head, whether grants exist, whether `claiming` is a taken key),
    /// which `body` gets as rows of (entry, label, amount).
    ///
    /// `bookkept`: the bookkeeping this process's last commit left. While the store's commit count is still the one it
    /// records, nobody else has written since, and `body` can run on it before anything is sent: its writes then go as
    /// one statement that takes the lock, checks the count (and that `claiming` is free) and writes only if both hold,
    /// committed on its own (`PostgresSession.sendAsOneStatement`). A write that needs the database's answer to go on
    /// (a read, a row count), that `body` refuses, or that finds the store moved on, runs again as a transaction.
    func write<T>(claiming key: String?, bookkept: StoreTransaction.Bookkept? = nil,
                  _ body: (PostgresSession, [(String, String, Int)]) throws -> T) throws -> T {
        try writeTurns.take(place: location.place) {
            if let bookkept, oneStatementWrites.worthTrying() {
                let written = try oneStatement(claiming: key, bookkept: bookkept, body)
                oneStatementWrites.record(applied: written != nil)
                if let written { return written }
            }
            return try session(write: true, claiming: key, body)
        }
    }

    /// How often writes went as one statement (read and written under the write turn only).
    let oneStatementWrites = OneStatementWrites()

    /// `body`'s value when its writes were applied as one statement; nil when nothing was applied and the write must run
    /// as a transaction. A statement whose outcome is unknown (the connection lost once it was sent) throws.
    private func oneStatement<T>(claiming key: String?, bookkept: StoreTransaction.Bookkept,
                                 _ body: (PostgresSession, [(String, String, Int)]) throws -> T) throws -> T? {
        try withSession { s in
            s.optimistic = true
            let result: T
            do {
                result = try body(s, bookkept.rows)
            } catch {
                // Refused on what this process knew, or it needed an answer: the transaction decides, under the lock.
                s.discardHeld()
                s.optimistic = false
                return nil
            }
            return try s.sendAsOneStatement(guard: Self.currentGuard, [bookkept.commits, Self.writeLock, key]) ? result : nil
        }
    }

    /// True under the write lock when the store's commit count is the one given, the claimed key (if any) is free, and
    /// the statement runs READ COMMITTED (so the function's queries see every commit made before the lock).
    static let currentGuard = """
        SELECT COUNT(*) FILTER (WHERE entry = 'meta' AND label = 'commits' AND amount = ?) = 1
            AND COUNT(*) FILTER (WHERE entry = 'claimed') = 0
            AND current_setting('transaction_isolation') = 'read committed' AS ok
        FROM referee_write_begin(?, ?)
        """

    private func session<T>(write: Bool, claiming key: String? = nil, _ body: (PostgresSession, [(String, String, Int)]) throws -> T) throws -> T {
        try withSession { s in
            // READ COMMITTED whatever the database's default: each statement after the lock sees every commit before it.
            try s.executeLater(write ? "BEGIN ISOLATION LEVEL READ COMMITTED" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", [])
            do {
                let begun = write ? try s.all("SELECT entry, label, amount FROM referee_write_begin(?, ?)", [Self.writeLock, key]) {
                    ($0.text(0), $0.text(1), $0.integer(2))
                } : []
                let result = try body(s, begun)
                // COMMIT of a transaction a statement failed in rolls back without an error: the failure is the answer.
                if let failure = s.failure { throw failure }
                s.committing = true
                try s.execute("COMMIT", [])
                return result
            } catch {
                s.discardHeld()
                if !s.broken { _ = try? s.execute("ROLLBACK", []) }
                throw error
            }
        }
    }

    /// What `store.integrity` answers: every migration applied, every table readable, the audit log's triggers in place.
    func integrity() throws -> String {
        try read { s in
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
    /// Statements that were answered without error: a pooled connection that fails before any was is replaced.
    private(set) var answered = 0
    /// Statements of `executeLater` not sent yet, oldest first: they go out just before the next statement waited for.
    private var held: [(sql: String, arguments: [any SQLBindable])] = []
    /// Statements sent and not yet waited for, oldest first: every statement waited for settles them.
    private var unsettled: [EventLoopFuture<Void>] = []
    /// Whether every statement asked for has been sent and waited for (a connection is pooled again only then).
    var settled: Bool { held.isEmpty && unsettled.isEmpty }
    /// The COMMIT was sent: a failure now leaves the outcome unknown to this daemon.
    var committing = false
    /// A write to be sent as one statement (`sendAsOneStatement`): nothing can be waited for before it.
    var optimistic = false

    /// What a write to be sent as one statement cannot do: wait for an answer, or hold more than one statement carries.
    struct NeedsTransaction: Error {}
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

    /// Holds the statement until the next one waited for. postgres-nio sends a connection's statements one at a time,
    /// each a round trip; held writes go out as few statements as they can (`groups`), one after another on the event
    /// loop, without this thread waiting for each.
    func executeLater(_ sql: String, _ arguments: [any SQLBindable]) throws {
        if optimistic && held.count >= Self.heldAtMost { throw NeedsTransaction() }
        held.append((sql, arguments))
        // A large ingest holds thousands: they are sent and waited for in batches, so memory and waits stay bounded.
        if held.count >= Self.heldAtMost { try flush() }
    }

    static let heldAtMost = 256

    /// Sends what is held and waits for everything sent: a session ends with nothing unsent (a write outside a
    /// transaction, `withSession`, is not dropped).
    func flush() throws {
        sendHeld()
        try settle()
    }

    /// Forgets the held statements (the transaction is rolled back: they must not be sent).
    func discardHeld() { held.removeAll() }

    private func sendHeld() {
        guard !held.isEmpty else { return }
        for group in Self.groups(held) {
            let text = group.count == 1 ? group[0].sql
                : "WITH " + group.indices.map { "w\($0) AS (\(group[$0].sql))" }.joined(separator: ", ") + " SELECT 1"
            unsettled.append(connection.query(Self.numberedPlaceholders(text), Self.binds(group.flatMap(\.arguments)), onRow: { _ in }))
        }
        held.removeAll()
    }

    /// Runs of consecutive writes to distinct tables, each to be sent as one statement (data-modifying `WITH`): its
    /// parts see one snapshot and not each other's changes, which writes to distinct tables never need. Anything else
    /// (`BEGIN`, a lock, a second write to a table) is a statement of its own.
    static func groups(_ statements: [(sql: String, arguments: [any SQLBindable])]) -> [[(sql: String, arguments: [any SQLBindable])]] {
        var out: [[(sql: String, arguments: [any SQLBindable])]] = []
        var tables: Set<String> = []
        var open = false
        for statement in statements {
            guard let table = writtenTable(statement.sql) else {
                out.append([statement])
                open = false
                continue
            }
            if open && !tables.contains(table) {
                out[out.count - 1].append(statement)
            } else {
                out.append([statement])
                tables = []
                open = true
            }
            tables.insert(table)
        }
        return out
    }

    /// The table an INSERT, UPDATE or DELETE writes (nil for any other statement). Read as bytes, only its first words:
    /// every held write of every transaction passes here.
    static func writtenTable(_ sql: String) -> String? {
        var words: [Substring.UTF8View] = []
        var rest = Substring(sql).utf8
        while words.count < 3 {
            rest = rest.drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x09 || $0 == 0x0D }
            guard !rest.isEmpty else { return nil }
            let word = rest.prefix { $0 != 0x20 && $0 != 0x0A && $0 != 0x09 && $0 != 0x0D }
            words.append(word)
            rest = rest[word.endIndex...]
        }
        func isWord(_ w: Substring.UTF8View, _ upper: String) -> Bool {
            w.count == upper.utf8.count && zip(w, upper.utf8).allSatisfy { ($0 & 0xDF) == $1 }
        }
        let name: Substring.UTF8View
        if (isWord(words[0], "INSERT") && isWord(words[1], "INTO")) || (isWord(words[0], "DELETE") && isWord(words[1], "FROM")) {
            name = words[2]
        } else if isWord(words[0], "UPDATE") {
            name = words[1]
        } else {
            return nil
        }
        let table = name.prefix { $0 != UInt8(ascii: "(") }
        // Only a plain name is known to be one table (not `ONLY t`, `schema.t` or a quoted name).
        guard !table.isEmpty, !isWord(table, "ONLY"),
              table.allSatisfy({ $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0) || (0x61...0x7A).contains($0 | 0x20) }) else { return nil }
        return String(decoding: table, as: UTF8.self).lowercased()
    }

    /// Sends the held writes as one statement, a transaction of its own, that applies them only when `guardSQL` (one
    /// row, one boolean `ok`, taking the write lock) is true: every write reads the guard first, so none runs, or takes a
    /// row lock, before the lock is held. True when they were applied. False when nothing was: the guard was false, the
    /// writes cannot be one statement, or the server refused them (the transaction that runs instead meets the refusal
    /// itself). Throws when the outcome is unknown.
    ///
    /// It runs through `referee_write_once`, which commits before CALL's CommandComplete, so the answer means committed:
    /// postgres-nio reports a statement done at its CommandComplete, and PostgreSQL commits a statement sent outside a
    /// transaction only at the Sync after it. The procedure does nothing after its COMMIT but return; what can fail
    /// after it (the connection's end, a cancel, a timeout) is an unknown outcome, never taken for a refusal.
    func sendAsOneStatement(guard guardSQL: String, _ guardArguments: [any SQLBindable]) throws -> Bool {
        optimistic = false
        let statement = Self.oneStatement(held, guard: (guardSQL, guardArguments))
        held.removeAll()
        guard let statement, let text = Self.inlined(statement.sql, statement.arguments) else { return false }
        let answer = Answer()
        committing = true
        unsettled.append(connection.query("CALL referee_write_once($1, NULL)", [PostgresData(string: text)], onRow: { answer.add($0) }))
        do {
            try settle()
        } catch is StoreError {
            return false
        }
        return answer.result().0.first?.optionalInteger(0) == 1
    }

    /// The held writes as one statement under a guard, or nil when they cannot be: each must write a table none of the
    /// others writes, and be an INSERT of one VALUES row (made `SELECT … FROM g WHERE g.ok`) or an UPDATE or DELETE
    /// ending in its WHERE (made `WHERE (SELECT ok FROM g) AND (…)`).
    static func oneStatement(_ statements: [(sql: String, arguments: [any SQLBindable])],
                             guard check: (sql: String, arguments: [any SQLBindable])) -> (sql: String, arguments: [any SQLBindable])? {
        guard !statements.isEmpty else { return nil }
        var tables: Set<String> = []
        var parts: [String] = []
        for statement in statements {
            guard let table = writtenTable(statement.sql), tables.insert(table).inserted,
                  let guarded = guardedWrite(statement.sql) else { return nil }
            parts.append("w\(parts.count) AS (\(guarded))")
        }
        let sql = "WITH g AS MATERIALIZED (\(check.sql)), " + parts.joined(separator: ", ") + " SELECT ok FROM g"
        return (sql, check.arguments + statements.flatMap(\.arguments))
    }

    /// One write made to read the guard `g` before it writes anything (see `oneStatement`); nil for another shape.
    /// `sql` is a write `writtenTable` names a table of: an INSERT INTO, UPDATE or DELETE FROM.
    static func guardedWrite(_ sql: String) -> String? {
        let text = Array(sql.utf8)
        func isWordByte(_ c: UInt8) -> Bool { c == UInt8(ascii: "_") || (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 122) }
        /// Where `word` (upper case) stands as a whole word outside quotes and parentheses.
        func topLevel(_ word: String) -> [Int] {
            let w = Array(word.utf8)
            var out: [Int] = [], depth = 0, quoted = false
            for i in text.indices {
                let c = text[i]
                if c == UInt8(ascii: "'") { quoted.toggle() }
                guard !quoted else { continue }
                if c == UInt8(ascii: "(") { depth += 1 } else if c == UInt8(ascii: ")") { depth -= 1 }
                if depth == 0, i + w.count <= text.count, zip(text[i..<i + w.count], w).allSatisfy({ ($0 & 0xDF) == $1 }),
                   i == 0 || !isWordByte(text[i - 1]), i + w.count == text.count || !isWordByte(text[i + w.count]) {
                    out.append(i)
                }
            }
            return out
        }
        /// The offset of the parenthesis that closes the one at `open`.
        func closing(_ open: Int) -> Int? {
            var depth = 0, quoted = false
            for i in open..<text.count {
                if text[i] == UInt8(ascii: "'") { quoted.toggle() }
                guard !quoted else { continue }
                if text[i] == UInt8(ascii: "(") { depth += 1 }
                if text[i] == UInt8(ascii: ")") { depth -= 1; if depth == 0 { return i } }
            }
            return nil
        }
        func string(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }
        guard topLevel("RETURNING").isEmpty, topLevel("WITH").isEmpty else { return nil }
        // The verb is the first word (`writtenTable` has read it; this is its first letter, upper-cased).
        switch text.first.map({ $0 & 0xDF }) {
        case UInt8(ascii: "I"):
            // One VALUES row, followed by nothing or an ON CONFLICT clause.
            let values = topLevel("VALUES")
            guard values.count == 1 else { return nil }
            guard let open = text[(values[0] + 6)...].firstIndex(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\n") }),
                  text[open] == UInt8(ascii: "("), let close = closing(open) else { return nil }
            let tail = string(text[(close + 1)...]).trimmingCharacters(in: .whitespacesAndNewlines)
            guard tail.isEmpty || tail.uppercased().hasPrefix("ON CONFLICT") else { return nil }
            return string(text[..<values[0]]) + "SELECT " + string(text[(open + 1)..<close]) + " FROM g WHERE g.ok" + (tail.isEmpty ? "" : " " + tail)
        case UInt8(ascii: "U"), UInt8(ascii: "D"):
            let wheres = topLevel("WHERE")
            guard wheres.count <= 1 else { return nil }
            guard let at = wheres.first else { return sql + " WHERE (SELECT ok FROM g)" }
            return string(text[..<at]) + "WHERE (SELECT ok FROM g) AND (" + string(text[(at + 5)...]) + ")"
        default:
            return nil
        }
    }

    private static func binds(_ arguments: [any SQLBindable]) -> [PostgresData] {
        arguments.map {
            switch $0.sqlValue {
            case .null: .null
            case .integer(let i): PostgresData(int: i)
            case .text(let s): PostgresData(string: s)
            }
        }
    }

    private func run(_ sql: String, _ arguments: [any SQLBindable], translate: Bool = true) throws -> (rows: [PostgresValues], changed: Int) {
        if optimistic { throw NeedsTransaction() }
        sendHeld()
        let answer = Answer()
        unsettled.append(connection.query(translate ? Self.numberedPlaceholders(sql) : sql, Self.binds(arguments),
                                          onMetadata: { answer.changed($0.rows ?? 0) }, onRow: { answer.add($0) }))
        // In order, each within its own deadline: an earlier statement's failure is the cause of any later one's (a
        // failed statement aborts the transaction).
        try settle()
        return answer.result()
    }

    /// Waits for the statements sent, in the order they run, each at most the statement time, and throws the first
    /// failure (kept: a transaction that met one cannot commit, whoever caught the error).
    private func settle() throws {
        let sent = unsettled
        unsettled.removeAll()
        for done in sent {
            do {
                guard try PostgresWire.bounded(done, seconds: backend.statementSeconds + 2) != nil else {
                    PostgresWire.close(connection)
                    throw classify(StoreError(message: "no answer"), timedOut: true)
                }
            } catch {
                let failure = error is StoreUnavailable ? error : classify(error, timedOut: false)
                if self.failure == nil { self.failure = failure }
                throw failure
            }
            answered += 1
        }
    }

    /// The first failure of a statement in this session.
    private(set) var failure: (any Error)?

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

    /// `?` placeholders as PostgreSQL's `$1`, `$2`…, outside quoted text (as bytes: every statement passes here).
    static func numberedPlaceholders(_ sql: String) -> String {
        guard sql.utf8.contains(UInt8(ascii: "?")) else { return sql }
        return replacingPlaceholders(sql) { n, out in
            out.append(UInt8(ascii: "$"))
            out += String(n + 1).utf8
            return true
        }!
    }

    /// `sql` with each `?` outside quoted text replaced by its argument as a typed literal, as the argument would have
    /// been bound (`'…'::int8`, `E'…'::text`, `NULL`), for a statement that travels as text (`referee_write_once`).
    /// Nil when the arguments do not match the placeholders or a text holds U+0000, which no PostgreSQL text can.
    static func inlined(_ sql: String, _ arguments: [any SQLBindable]) -> String? {
        var used = 0
        let text = replacingPlaceholders(sql) { n, out in
            guard n < arguments.count else { return false }
            used = n + 1
            switch arguments[n].sqlValue {
            case .null: out += "NULL".utf8
            case .integer(let i): out += "'\(i)'::int8".utf8
            case .text(var s):
                // An E'' literal reads backslashes as escapes whatever standard_conforming_strings says: both are doubled.
                // Copied in runs between them (a registration's document is kilobytes of text).
                out += "E'".utf8
                s.makeContiguousUTF8()
                let clean = s.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
                    var from = 0
                    for i in bytes.indices {
                        let b = bytes[i]
                        if b == 0 { return false }
                        guard b == UInt8(ascii: "'") || b == UInt8(ascii: "\\") else { continue }
                        out += bytes[from...i]
                        from = i
                    }
                    out += bytes[from...]
                    return true
                }
                guard clean == true else { return false }
                out += "'::text".utf8
            }
            return true
        }
        return used == arguments.count ? text : nil
    }

    /// `sql` with the `n`th `?` outside quoted text (from 0) replaced by what `write` appends; nil when it refuses one.
    private static func replacingPlaceholders(_ sql: String, _ write: (_ n: Int, _ out: inout [UInt8]) -> Bool) -> String? {
        var out: [UInt8] = [], n = 0, quoted = false
        out.reserveCapacity(sql.utf8.count + 64)
        for c in sql.utf8 {
            if c == UInt8(ascii: "'") { quoted.toggle() }
            guard c == UInt8(ascii: "?") && !quoted else { out.append(c); continue }
            guard write(n, &out) else { return nil }
            n += 1
        }
        return String(decoding: out, as: UTF8.self)
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
    func result() -> ([PostgresValues], Int) { lock.lock(); defer { lock.unlock() }; return (rows, count) }
}

/// Whether a write is worth sending as one statement: it is while they are applied; each time one finds the store moved
/// on (another daemon wrote in between: the statement was a round trip spent for nothing), the next attempt waits for
/// twice as many writes, up to 63. Used under the write turn only.
final class OneStatementWrites: @unchecked Sendable {
    private var misses = 0
    private var sinceMiss = 0
    /// Writes applied as one statement, and attempts that were not (for tests).
    private(set) var applied = 0
    private(set) var missed = 0

    func worthTrying() -> Bool {
        if sinceMiss >= (1 << min(misses, 6)) - 1 { return true }
        sinceMiss += 1
        return false
    }

    func record(applied wasApplied: Bool) {
        if wasApplied { misses = 0; applied += 1 } else { misses += 1; missed += 1 }
        sinceMiss = 0
    }
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
