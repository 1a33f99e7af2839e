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

/// The experiment registry's persistence: SQLite through GRDB (a file path, the default) or PostgreSQL through
/// postgres-nio (a `postgresql://` URL), behind the same operations (`StoreTransaction`).
///
/// SQLite: a WAL `DatabasePool` with `synchronous = FULL`, so an acknowledged write survives a crash, and every
/// check-then-write in one `BEGIN IMMEDIATE` transaction, so two processes sharing the file cannot both act on the
/// same stale state. PostgreSQL: every write in one transaction holding one advisory lock (see `PostgresBackend`).
public final class Store: @unchecked Sendable {
    private enum Backend {
        case sqlite(any DatabaseWriter)
        case postgres(PostgresBackend)
    }
    private let backend: Backend
    /// The file path, or the PostgreSQL location without its password.
    public let path: String
    /// `experiment.get` answers, valid until the next commit by anyone (nil for in-memory stores). On PostgreSQL, valid
    /// for requests that arrived before the store last said nothing was committed (`PostgresCommitClock`).
    private let wireCache: ReadCache<[UInt8], JSON?>?
    /// The files this process has open; a write is refused once the files on disk are other ones.
    private let identity: FileIdentity?
    /// Whether grants exist and a principal's roles, on the same terms as `wireCache`.
    private let accessCache: ReadCache<[UInt8], Access>?
    /// Values the service derives from one snapshot (`derived`), on the same terms as `wireCache`; keyed by the
    /// value's type and a name, so two callers can never read each other's values.
    private let derivedCache: ReadCache<DerivedKey, any Sendable>?
    private struct DerivedKey: Hashable, Sendable {
        let type: ObjectIdentifier
        let name: String
    }
    /// A PostgreSQL store's commit count, asked once per arrival of requests (nil for SQLite).
    private let commitClock: PostgresCommitClock?

    /// What authorization needs to know about one principal.
    public struct Access: Sendable, Equatable {
        public var enforced: Bool
        public var roles: [String]
    }

    /// Which database holds the registry: "sqlite" or "postgresql".
    public var kind: String {
        if case .postgres = backend { return "postgresql" }
        return "sqlite"
    }

    /// Opens (creating if needed) the store at `path`, a file or a `postgresql://` URL; `":memory:"` gives a private
    /// in-memory store for tests. `readOnly`: the store must exist and nothing, not even a migration, can be written
    /// through it (read-only commands of the CLI).
    public init(path: String, readOnly: Bool = false) throws(StoreError) {
        if PostgresLocation.isLocation(path) {
            let location = try PostgresLocation.parse(path)
            self.path = location.display
            let pg = try PostgresBackend(location: location, readOnly: readOnly)
            backend = .postgres(pg)
            let clock = PostgresCommitClock(backend: pg)
            commitClock = clock
            wireCache = .postgres(CommitCache(clock: clock))
            accessCache = .postgres(CommitCache(clock: clock))
            derivedCache = .postgres(CommitCache(clock: clock))
            identity = nil
            return
        }
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
                backend = .sqlite(opened)
                // One mapping of the WAL-index header serves both caches.
                let watch = CommitWatch(storePath: path)
                wireCache = watch.map { .wal(CommitCache(clock: $0)) }
                accessCache = watch.map { .wal(CommitCache(clock: $0)) }
                derivedCache = watch.map { .wal(CommitCache(clock: $0)) }
                commitClock = nil
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

    /// Lets a PostgreSQL store answer `experiment.get` and authorization from memory for requests that arrived (on
    /// `arrivals`) before it last asked the database whether anything was committed. Without it, or for a request
    /// of unknown arrival, every read asks the database. SQLite stores need no clock (they watch the WAL index).
    public func answerReadsFromMemory(arrivals: any ArrivalClock) {
        commitClock?.use(arrivals)
    }

    /// Runs `body` in one write transaction that no other writer, in any process, interleaves with; any thrown error
    /// rolls everything back.
    /// `claiming`: a key the write will check is free (`keyTaken`), known on PostgreSQL from its first round trip.
    public func write<T>(claiming key: String? = nil, _ body: (StoreTransaction) throws -> T) throws -> T {
        switch backend {
        case .postgres(let pg):
            // Once COMMIT is sent, the clock hears of the write whatever its outcome (unknown: the next read asks the
            // database again); a write that failed before it rolled back, and changed nothing the clock knows.
            var committed: (commits: Int, coversThrough: UInt64)?
            var sendingCommit = false
            defer { if sendingCommit { commitClock?.committedHere(now: committed) } }
            var stamp: UInt64?
            // Recorded only once committed: a write that failed left the generation as it was, or (its COMMIT's outcome
            // unknown) moved it past what is recorded, so the recorded rows are never taken for another's.
            var outcome = StoreTransaction.Outcome()
            // Taken as read by a write sent as one statement, which falls back to a transaction when the store has moved on
            // (the body then runs again, from the start).
            let result = try pg.write(claiming: key, bookkept: writtenHere.bookkept) { s, begun in
                sendingCommit = false
                let tx = StoreTransaction(sql: s, writtenHere: writtenHere, claimed: key, begun: begun)
                let result = try body(tx)
                try tx.finish(countingCommit: true)
                // Taken before COMMIT is sent: a request that had arrived by now arrived before this commit released the
                // write lock, so every other commit acknowledged before it was sent is in the count this transaction read.
                stamp = commitClock?.arrivalStamp()
                outcome = tx.outcome
                sendingCommit = true
                return result
            }
            writtenHere.committed(outcome)
            if let before = outcome.commitsBefore, let stamp {
                committed = (before + 1, stamp)
                // Nothing an authorization reads changed: what was known of roles before this commit holds after it.
                if !outcome.grantsChanged { accessCache?.carry(from: before, to: before + 1) }
            }
            return result
        case .sqlite(let writer):
            var result: T?
            var outcome = StoreTransaction.Outcome()
            try writer.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    let tx = StoreTransaction(sql: SQLiteSession(db: db), writtenHere: writtenHere)
                    result = try body(tx)
                    try tx.finish(countingCommit: false)
                    outcome = tx.outcome
                    // Checked under the write lock, just before the commit is acknowledged.
                    if let problem = identity?.problem() { throw StoreUnavailable(message: problem) }
                    return .commit
                }
            }
            writtenHere.committed(outcome)
            return result!
        }
    }

    /// Writes applied as one statement, and attempts that found the store moved on (PostgreSQL only).
    var oneStatementWrites: (applied: Int, missed: Int)? {
        guard case .postgres(let pg) = backend else { return nil }
        return (pg.oneStatementWrites.applied, pg.oneStatementWrites.missed)
    }

    /// Runs one statement outside a transaction (a single SELECT is its own consistent snapshot): the hot
    /// read path of `experiment.get`.
    func readStatement<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        switch backend {
        case .postgres(let pg): try pg.withSession { s in try body(StoreTransaction(sql: s, writtenHere: writtenHere)) }
        case .sqlite(let writer): try writer.unsafeReentrantRead { db in try body(StoreTransaction(sql: SQLiteSession(db: db), writtenHere: writtenHere)) }
        }
    }

    /// The record of `key` as `experiment.get` returns it, as wire text (`.raw`); answered from memory
    /// while nobody, in any process, has committed since it was read.
    /// `arrival`: when the request had arrived in full, on the transport's count (see ``answerReadsFromMemory``).
    public func experimentWire(_ key: String, arrival: UInt64? = nil) throws -> JSON? {
        let load = { try self.readStatement { tx in try tx.experimentWire(key).map { JSON.raw($0.serialized()) } } }
        // A cache that watches a `-shm` file no longer on disk would miss other processes' commits.
        guard let wireCache, identity?.recentlyIntact() ?? true else { return try load() }
        // Keyed by the key's bytes, as SQLite compares them: Swift strings that are canonically equivalent
        // (a Kelvin sign and a K) are equal, and must not share an answer.
        return try wireCache.value(Array(key.utf8), arrival: arrival, load: load)
    }

    /// Whether the store has grants and the roles of `principal`, from one statement; answered from memory
    /// while nobody has committed (every request is authorized, reads included). `lastKnownWhenUnavailable`: when the
    /// store cannot be reached, answer what it said last (for methods that need nothing else from it).
    public func access(of principal: String, arrival: UInt64? = nil, lastKnownWhenUnavailable: Bool = false) throws -> (enforced: Bool, roles: [String]) {
        let load = { try self.readStatement { tx in try tx.access(of: principal) } }
        let cache = identity?.recentlyIntact() ?? true ? accessCache : nil
        do {
            let a = try cache.map { try $0.value(Array(principal.utf8), arrival: arrival, load: load) } ?? load()
            // Only a store on the network can be away while the daemon runs; SQLite's hot path stays as it was.
            guard case .postgres = backend else { return (a.enforced, a.roles) }
            lastKnownAccess.remember(principal, enforced: a.enforced, roles: a.roles)
            return (a.enforced, a.roles)
        } catch let error as StoreUnavailable where lastKnownWhenUnavailable {
            let known = lastKnownAccess.recall(principal)
            guard let known else { throw error }
            return known
        }
    }

    private let lastKnownAccess = LastKnownAccess()
    private let writtenHere = WrittenHere()

    /// `body`'s value on a consistent snapshot, answered from memory while nobody (in any process) has committed
    /// since it was computed, on the terms of `experimentWire`. `body` must depend on the snapshot alone, and `name`
    /// must say everything else it depends on.
    public func derived<T: Sendable>(_ name: String, arrival: UInt64?, _ body: (StoreTransaction) throws -> T) throws -> T {
        guard let derivedCache, identity?.recentlyIntact() ?? true else { return try read(body) }
        let value = try derivedCache.value(DerivedKey(type: ObjectIdentifier(T.self), name: name), arrival: arrival) { try self.read(body) }
        // The key holds T's identity, so the value is a T; reading again is only a guard that cannot be reached.
        return try value as? T ?? read(body)
    }

    /// Runs `body` on a consistent snapshot.
    public func read<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        switch backend {
        case .postgres(let pg): try pg.read { s in try body(StoreTransaction(sql: s, writtenHere: writtenHere)) }
        case .sqlite(let writer): try writer.read { db in try body(StoreTransaction(sql: SQLiteSession(db: db), writtenHere: writtenHere)) }
        }
    }

    /// "ok" when the store is sound: SQLite's `PRAGMA integrity_check`; on PostgreSQL, every migration applied, every
    /// table readable and the audit log's triggers in place.
    public func integrityCheck() throws -> String {
        switch backend {
        case .postgres(let pg): try pg.integrity()
        case .sqlite(let writer): try writer.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "" }
        }
    }
}

/// What this process's committed writes left in the store, for the transactions after them: the rows its latest write
/// stamped (`StoreTransaction.StampedRows`), so the next conflict index need not read them back, and the protocol texts
/// it stored, so a registration does not send its protocol's text again. Given only what committed.
final class WrittenHere: @unchecked Sendable {
    private var rows: StoreTransaction.StampedRows?
    private var protocols: Set<String> = []
    private let lock = SharedLock()

    var stampedRows: StoreTransaction.StampedRows? { lock.reading { rows } }

    /// Whether this process stored the protocol text `hash`, in a store whose generation is still at least what it
    /// was then (a store restored from an older copy under the daemon may lack it).
    func storedProtocol(_ hash: String, generation: Int) -> Bool {
        lock.reading { generation >= protocolsGeneration && protocols.contains(hash) }
    }
    private var protocolsGeneration = 0

    /// The bookkeeping this process's latest commit left (PostgreSQL): true of the store while its commit count is
    /// still the one recorded, which the write that takes it as read checks under the write lock.
    var bookkept: StoreTransaction.Bookkept? { lock.reading { after } }
    private var after: StoreTransaction.Bookkept?

    func committed(_ outcome: StoreTransaction.Outcome) {
        if let bookkept = outcome.after {
            lock.writing { if (after?.commits ?? Int.min) < bookkept.commits { after = bookkept } }
        }
        guard outcome.generationChanged || !outcome.protocols.isEmpty else { return }
        lock.writing {
            if protocols.count < 10_000 { protocols.formUnion(outcome.protocols) }
            protocolsGeneration = max(protocolsGeneration, outcome.generation)
            // A write that left the generation alone leaves the rows known valid. Writes of this process may report out
            // of order: the later generation wins.
            guard outcome.generationChanged else { return }
            if let stamped = outcome.stamped {
                if (rows?.to ?? Int.min) < stamped.to { rows = stamped }
            } else {
                rows = nil
            }
        }
    }
}

/// What a PostgreSQL store last said of each caller's roles, for the methods answered while it is away. Every request
/// on PostgreSQL passes here, so an unchanged answer is checked under a shared lock and not written again.
final class LastKnownAccess: @unchecked Sendable {
    private var enforced: Bool?
    private var roles: [String: [String]] = [:]
    private let lock = SharedLock()

    func remember(_ principal: String, enforced: Bool, roles: [String]) {
        if lock.reading({ self.enforced == enforced && self.roles[principal] == roles }) { return }
        lock.writing {
            self.enforced = enforced
            if self.roles.count > 10_000 { self.roles.removeAll() }
            self.roles[principal] = roles
        }
    }

    func recall(_ principal: String) -> (Bool, [String])? {
        lock.reading {
            if let known = roles[principal] { return (enforced ?? true, known) }
            return enforced == false ? (false, []) : nil
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
    private struct State { var broken: String? }
    private let state = Mutex(State())
    /// Checked without a lock by every hot read (see ``recentlyIntact()``).
    private let isBroken = Atomic<Bool>(false)
    private let lastCheckNanoseconds = Atomic<UInt64>(0)

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
                    isBroken.store(true, ordering: .releasing)
                    return s.broken
                }
                if now != was {
                    s.broken = "\(path) was replaced while this daemon had it open; writes are refused to lose nothing (restart the daemon)"
                    isBroken.store(true, ordering: .releasing)
                    return s.broken
                }
            }
            return nil
        }
    }

    /// `problem() == nil`, checked at most every 50 ms (for hot reads), by whichever caller first finds the check due;
    /// without a lock, as every cached read of every worker asks.
    func recentlyIntact() -> Bool {
        if isBroken.load(ordering: .acquiring) { return false }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let now = UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
        let last = lastCheckNanoseconds.load(ordering: .relaxed)
        if now &- last < 50_000_000 { return true }
        guard lastCheckNanoseconds.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged else { return true }
        return problem() == nil
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
