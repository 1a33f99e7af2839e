import API
public import RPC
public import Registry
public import Store
public import JSONCore
import Logging
import Warehouse

/// The method handlers of the control interface, shared by the daemon and the CLI one-shots.
///
/// Build one with ``RefereeService/init(store:protocols:now:)`` and attach it to a ``Dispatcher`` with
/// ``RefereeService/install(on:)``; tests do exactly what the executable does.
public final class RefereeService: @unchecked Sendable {
    public static let version = Catalog.version

    public let store: Store
    public let protocols: ProtocolSet
    public let limits: DocumentLimits
    let now: @Sendable () -> Timestamp
    let logger = Logger(label: "referee.service")
    let conflicts = ConflictCache()
    let groups = GenerationCache<[String: [JSValue]]>([:])
    let holdoutCache = GenerationCache<[HoldoutSubject]>([])
    let refusalLimiter = RefusalLimiter()
    /// Where ingestion writes its spill files (`--spill-dir`), else `$TMPDIR`, else the system's temporary directory.
    public var spillDirectory: String?
    /// Set by the `shutdown` method; the transport stops after answering it.
    public private(set) var shutdownRequested = false

    /// `warehouse.json`, parsed once (the loader refused a file with problems).
    let warehouse: WarehouseDefinitions?

    public init(store: Store, protocols: ProtocolSet, limits: DocumentLimits = DocumentLimits(),
                now: @escaping @Sendable () -> Timestamp = RefereeService.systemNow) {
        self.store = store
        // Requests that come through a transport carry their arrival; the store may answer them from memory.
        store.answerReadsFromMemory(arrivals: TransportArrivals())
        self.protocols = protocols
        if let text = protocols.warehouseText, case .success(let definitions) = WarehouseDefinitions.parse(text, catalog: protocols.catalog) {
            warehouse = definitions
        } else {
            warehouse = nil
        }
        self.limits = limits
        self.now = now
    }

    @Sendable public static func systemNow() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(seconds: Double(ts.tv_sec) + Double(ts.tv_nsec / 1_000_000) / 1000)
    }

    /// Registers every method of ``catalog`` on `dispatcher`: authorization by the method's declared
    /// permission, unknown params refused by its declared fields, then its handler.
    public func install(on dispatcher: Dispatcher) {
        for method in Catalog.methods {
            let allowed = method.allowedFields
            let run = Self.handler(method).bind(self)
            dispatcher.register(method.name) { [unowned self] params, context throws(RPCError) in
                try mapErrors {
                    try authorize(method.name, method.permission, params, context)
                    try Fields(params).rejectUnknown(allowed)
                    var ctx = context
                    if ctx.onBehalfOf == nil { ctx.onBehalfOf = context.session.onBehalfOf }
                    return try run(params, ctx)
                }
            }
        }
    }

    func requestShutdown() -> JSON {
        shutdownRequested = true
        return ["stopping": true]
    }

    func serverInfo(_ ctx: RPCContext) -> JSON {
        ["name": "referee", "version": .string(Self.version), "store": .string(store.path),
         "protocols": .array(protocols.protocols.values.sorted { $0.name < $1.name }.map(\.summary)),
         "protocols_origin": .string(protocols.origin), "catalog_hash": .string(protocols.catalog.contentHash),
         "principal": .string(ctx.principal), "methods": JSON(Catalog.methods.map(\.name).sorted())]
    }

    func protocolList() -> JSON {
        ["protocols": .array(protocols.protocols.values.sorted { $0.name < $1.name }.map(\.summary)),
         "metrics": .array(protocols.catalog.metrics.values.sorted { $0.name < $1.name }.map(\.json))]
    }

    func protocolGet(_ p: ProtocolGet.Params) throws -> JSON {
        let name = p.name
        guard let proto = protocols.protocols[name] else {
            throw RegistryError.protocolNotFound(name, loaded: protocols.protocols.keys.sorted())
        }
        return proto.json
    }

    func auditLog(_ p: AuditLog.Params) throws -> JSON {
        // Checked here, not left to the database: SQLite reads a negative LIMIT as "no limit", PostgreSQL refuses it.
        if let limit = p.limit, limit < 1 { throw FieldError(path: "limit", message: "must be at least 1, got \(limit); leave it out for every entry") }
        if let after = p.after, after < 0 { throw FieldError(path: "after", message: "must be at least 0 (a seq), got \(after)") }
        let entries = try store.read { tx in try tx.auditEntries(key: p.key, limit: p.limit, afterSeq: p.after ?? 0) }
        return ["entries": .array(entries.map(\.json))]
    }

    /// `audit.head`: the chain's newest position and hash, to record somewhere the service user cannot write.
    func auditHead() throws -> JSON {
        let head = try store.read { tx in try tx.auditHead() }
        return ["entries": JSON(head.entries), "hash": .string(head.hash)]
    }

    /// `audit.verify {expected_head?}`: the chain recomputed, every record and grant against the log's
    /// newest entry for it, and, when given, the recorded head still on the chain (truncation and a
    /// recomputed chain are caught by it).
    func auditVerify(_ p: AuditVerify.Params) throws -> JSON {
        var expected: (entries: Int, hash: String)?
        if let head = p.expected_head {
            guard head.entries >= 0 else { throw FieldError(path: "expected_head.entries", message: "must be ≥ 0, got \(head.entries)") }
            expected = (head.entries, head.hash)
        }
        let (chain, reconciliation, headAt) = try store.read { tx in
            (try tx.verifyAudit(), try tx.reconcileAudit(), try expected.map { e in try tx.auditEntries(limit: 1, afterSeq: e.entries - 1).first })
        }
        var problems: [String] = []
        var headJSON: JSON = .null
        if let expected {
            var ok = true
            if expected.entries > 0 {
                if let entry = headAt ?? nil, entry.seq == expected.entries {
                    if entry.hash != expected.hash {
                        ok = false
                        problems.append("entry \(expected.entries) has hash \(entry.hash), not the recorded \(expected.hash): the log was rewritten")
                    }
                } else {
                    ok = false
                    problems.append("the log has \(chain.entries) entries, fewer than the \(expected.entries) recorded: entries were removed")
                }
            } else if expected.hash != String(repeating: "0", count: 64) {
                ok = false
                problems.append("expected_head.hash of an empty log is 64 zeros")
            }
            headJSON = ["ok": .bool(ok), "entries": JSON(expected.entries), "hash": .string(expected.hash)]
        }
        if let broken = chain.firstBroken { problems.insert("the hash chain breaks at entry \(broken)", at: 0) }
        problems += reconciliation.records.prefix(100).map { "experiment \"\($0.key)\" \($0.problem)" }
        problems += reconciliation.grants.prefix(100).map { "grant \($0.role) to \($0.principal) is \($0.problem)" }
        return ["ok": .bool(problems.isEmpty), "entries": JSON(chain.entries),
                "first_broken": chain.firstBroken.map { JSON($0) } ?? .null,
                "records_ok": .bool(reconciliation.records.isEmpty), "grants_ok": .bool(reconciliation.grants.isEmpty),
                "expected_head": headJSON, "problems": JSON(problems)]
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension RefereeService {
    public struct OpenError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Opens the store at `storePath` and loads protocols (`protocolsDirectory`, else `$REFEREE_PROTOCOLS`,
    /// else `./Protocols`, else built-in). The executable's single entry into the service.
    public static func open(storePath: String, protocolsDirectory: String?, maxVariants: Int = 20,
                             maxTargetingConditions: Int = 500, readOnly: Bool = false) throws(OpenError) -> RefereeService {
        let protocolSet: ProtocolSet
        do { protocolSet = try ProtocolLoader.resolve(explicit: protocolsDirectory) } catch {
            throw OpenError(description: error.description)
        }
        let store: Store
        do { store = try Store(path: storePath, readOnly: readOnly) } catch {
            throw OpenError(description: error.description)
        }
        let limits = DocumentLimits(targeting: TargetingLimits(maxNodes: maxTargetingConditions), maxVariants: maxVariants)
        return RefereeService(store: store, protocols: protocolSet, limits: limits)
    }

    public var storePath: String { store.path }
    public var protocolsOrigin: String { protocols.origin }
}

extension RefereeService {
    /// Why the store at `path` must not be served on a shared socket, with the fix (see ``StoreFiles``).
    public static func problemForSharedService(_ path: String) -> String? {
        StoreFiles.problemForSharedService(path)
    }
}

extension RefereeService {
    /// `referee store copy`: everything in the store at `from` into the new, empty store at `to` (files or
    /// `postgresql://` URLs, either way), then the target's audit chain recomputed and replayed against what it holds.
    public static func copyStore(from: String, to: String) throws(OpenError) -> JSON {
        do {
            let source = try Store(path: from, readOnly: true)
            let target = try Store(path: to)
            let copied = try target.copyAll(from: source)
            let (chain, reconciliation) = try target.read { tx in (try tx.verifyAudit(), try tx.reconcileAudit()) }
            let ok = chain.firstBroken == nil && reconciliation.records.isEmpty && reconciliation.grants.isEmpty
            return ["from": .string(source.path), "to": .string(target.path),
                    "tables": .object(Dictionary(uniqueKeysWithValues: copied.map { ($0.table, JSON($0.rows)) })),
                    "audit": ["ok": .bool(ok), "entries": JSON(chain.entries)]]
        } catch {
            throw OpenError(description: "\(error)")
        }
    }
}

/// The transport's arrival count, as the store sees it.
struct TransportArrivals: ArrivalClock {
    var now: UInt64 { Arrivals.now }
}
