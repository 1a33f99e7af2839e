import Foundation
import Synchronization
import API
import RPC
import Registry
import Store
import JSONCore

/// The in-memory conflict index of one process, refreshed from the rows written since it last looked.
final class ConflictCache: @unchecked Sendable {
    private let lock = NSLock()
    private var index = ConflictIndex()
    private var generation = 0

    /// Forgets everything (after a transaction that read its own uncommitted writes rolled back).
    func reset() {
        lock.lock()
        defer { lock.unlock() }
        index = ConflictIndex()
        generation = 0
    }

    /// Brings the index up to date inside `tx` (so a write transaction checks exactly what it will commit against).
    func current(_ tx: StoreTransaction, subject: (ExperimentRecord) -> ConflictSubject?) throws -> ConflictIndex {
        lock.lock()
        defer { lock.unlock() }
        let latest = try tx.generation()
        if latest < generation {  // the store was replaced under us: start over
            index = ConflictIndex()
            generation = 0
        }
        if latest != generation {
            for record in try tx.experiments(changedSince: generation) {
                if let s = subject(record) { index.upsert(s) } else { index.remove(record.key) }
            }
            generation = latest
        }
        return index
    }
}

extension RefereeService {
    /// Builds the conflict subject of a stored record (nil for documents without layer or schedule).
    /// Saved groups its targeting names hold `groups`' values.
    func subject(_ record: ExperimentRecord, groups: [String: [JSValue]]) -> ConflictSubject? {
        let (doc, _) = ExperimentDocument.read(record.document, limits: limits)
        guard var doc else { return nil }
        if !doc.targeting.groupNames.isEmpty { doc.targeting = doc.targeting.bindingGroups(groups) }
        var s = ConflictSubject(document: doc, state: record.state, buckets: record.buckets, cooldownDays: cooldown(doc.protocolName))
        s?.plan = PlanNeeds(plan: record.plan, weights: doc.variants.map(\.weight))
        return s
    }

    /// The conflict subject of a document in `tx` (its saved groups bound).
    func subject(_ doc: ExperimentDocument, state: ExperimentState, _ tx: StoreTransaction) throws -> ConflictSubject? {
        ConflictSubject(document: try bound(doc, tx), state: state, cooldownDays: cooldown(doc.protocolName))
    }

    func cooldown(_ protocolName: String) -> Double {
        protocols.protocols[protocolName]?.bucketCooldownDays ?? 0
    }

    func index(_ tx: StoreTransaction) throws -> ConflictIndex {
        let values = try groups.current(tx)
        return try conflicts.current(tx) { self.subject($0, groups: values) }
    }

    /// `admit` and the other callers read the subject of a stored record with its groups bound.
    func subject(_ record: ExperimentRecord, _ tx: StoreTransaction) throws -> ConflictSubject? {
        subject(record, groups: try groups.current(tx))
    }

    /// `experiment.check {experiment}`: everything registration would do, as a report; nothing is written.
    /// With `with: [documents]`, also checks against those proposals as if they were registered drafts
    /// (how `referee check` finds two files of one pull request that collide).
    func check(_ p: ExperimentCheck.Params) throws -> JSON {
        let json = p.experiment
        var (doc, outcome) = Validator.validate(json, protocols: protocols, limits: limits)
        // Proposed: the document and those in `with` are meant to run (the files of a pull request), so findings
        // among them take the severity they would have between approved experiments.
        let proposedState: ExperimentState = p.proposed ?? false ? .approved : .draft
        var proposals: [ExperimentDocument] = []
        if let with = p.with {
            for (i, other) in with.enumerated() {
                let (otherDoc, _) = ExperimentDocument.read(other, limits: limits)
                guard let otherDoc else { throw FieldError(path: "with[\(i)]", message: "is not an experiment document with a key and protocol") }
                proposals.append(otherDoc)
            }
        }
        var findings: [Finding] = []
        var registered: JSON = .null
        var checkedAs = "new"
        var holdoutsJSON: JSON = .null
        if let doc {
            findings = try store.read { tx in
                var idx = try index(tx)
                // A key that is registered is checked as the change it is, never as a conflict with itself.
                var state = proposedState
                if let existing = try tx.experiment(doc.key) {
                    idx.remove(existing.key)
                    registered = ["state": .string(existing.state.rawValue), "version": JSON(existing.version)]
                    if existing.state.isEditable {
                        checkedAs = "update"
                    } else if existing.state == .approved || existing.state == .running {
                        checkedAs = "amendment"
                        state = existing.state
                        let held = try heldProtocol(existing, tx)
                        let changed = JSON.touchedPaths(ofPatch: existing.document.mergePatch(to: json))
                        for path in changed where held.isLocked(path) || path == "key" {
                            outcome.violations.append(Violation(path: path, rule: "locked_field",
                                message: "\(path) cannot change while \(doc.key) is \(existing.state.rawValue) (locked by protocol '\(held.name)'); this file amends the registered experiment"))
                        }
                    } else {
                        checkedAs = "closed"
                        outcome.violations.append(Violation(path: "key", rule: "duplicate_key",
                            message: "\(doc.key) is registered and \(existing.state.rawValue); it can no longer change: choose another key"))
                    }
                }
                outcome.violations += try groupViolations(json, tx)
                guard var s = try subject(doc, state: state, tx) else { return [] }
                s.plan = outcome.plan.map { PlanNeeds(plan: $0, weights: doc.variants.map(\.weight)) }
                for proposal in proposals where proposal.key != s.key {
                    if let p = try subject(proposal, state: proposedState, tx) { idx.upsert(p) }
                }
                let all = try holdouts(tx)
                let (kept, covering) = HoldoutRules.kept(s, by: all)
                if !covering.isEmpty {
                    holdoutsJSON = ["share_kept": .number(kept), "holdouts": .array(covering.map { ["key": .string($0.key), "share": .number($0.share), "state": .string($0.state.rawValue)] })]
                }
                return try experimentFindings(s, idx, tx)
            }
        }
        let key = doc?.key
        return ["valid": .bool(outcome.isValid), "violations": .array(outcome.violations.map(\.json)),
                "registered": registered, "checked_as": .string(checkedAs),
                "conflicts": .array(findings.map { $0.json(from: key) }),
                "errors": JSON(findings.filter { $0.severity == .error }.count),
                "warnings": JSON(findings.filter { $0.severity == .warning }.count),
                "plan": outcome.plan?.json ?? .null, "holdouts": holdoutsJSON]
    }

    /// Refuses error-severity findings with 1002; returns the warnings.
    func refuseErrors(_ findings: [Finding], from key: String) throws -> [JSON] {
        let errors = findings.filter { $0.severity == .error }
        if !errors.isEmpty {
            let head = errors.prefix(2).map(\.message).joined(separator: "; ")
            throw RegistryError.conflict(message: "\(errors.count) conflict\(errors.count == 1 ? " blocks" : "s block") this: \(head)\(errors.count > 2 ? " (and \(errors.count - 2) more)" : "")",
                                         findings: findings.map { $0.json(from: key) })
        }
        return findings.map { $0.json(from: key) }
    }

    /// For approval and running: conflicts against everything, then buckets for the layer.
    func admit(_ record: ExperimentRecord, as state: ExperimentState, _ tx: StoreTransaction) throws -> (buckets: [Range<Int>], warnings: [JSON]) {
        guard var s = try subject(record, tx) else { return (record.buckets, []) }
        s.state = state
        let idx = try index(tx)
        var findings = try experimentFindings(s, idx, tx, includeCapacity: false)
        let (free, capacityFinding) = ConflictRules.capacity(s, holders: idx.holders(layer: s.layer))
        if let capacityFinding { findings.append(capacityFinding) }
        let warnings = try refuseErrors(findings, from: record.key)
        let needed = Allocation.bucketsNeeded(traffic: s.traffic)
        guard let buckets = Allocation.reallocate(current: record.buckets, needed: needed, free: free) else {
            throw RegistryError.inconsistent("allocation failed although capacity was checked")
        }
        return (buckets, warnings)
    }

    /// `conflicts.scan {at?, window?: {start, end}}`.
    func scan(_ p: ConflictsScan.Params) throws -> JSON {
        var from: Timestamp?, to: Timestamp?
        if let at = p.at {
            guard let t = Timestamp(rfc3339: at) else { throw FieldError(path: "at", message: "must be an RFC 3339 time") }
            from = t; to = t
        }
        if let w = p.window {
            guard let s = Timestamp(rfc3339: w.start) else { throw FieldError(path: "window.start", message: "must be an RFC 3339 time") }
            guard let e = Timestamp(rfc3339: w.end) else { throw FieldError(path: "window.end", message: "must be an RFC 3339 time") }
            guard s < e else { throw FieldError(path: "window.end", message: "must be after window.start") }
            from = s; to = e
        }
        var findings = try store.read { tx -> [Finding] in
            let idx = try index(tx)
            let all = try holdouts(tx)
            var out = HoldoutRules.adjustOverlap(idx.scan(from: from, to: to), subjects: { idx[$0] }, holdouts: all)
            // Holdouts: their shares in each layer, and the experiments whose plans they break.
            let inWindow = { (start: Timestamp, end: Timestamp) in from.map { f in start <= to! && f < end } ?? true }
            out += HoldoutRules.shareFindings(all.filter { inWindow($0.start, $0.end) })
            if !all.isEmpty {
                for s in idx.all.sorted(by: { $0.key < $1.key }) where !s.state.isTerminal && s.plan != nil && inWindow(s.start, s.end) {
                    out += HoldoutRules.underpowered(s, holdouts: all) { covering in s.state.holdsTraffic && covering.allSatisfy(\.removesTraffic) }
                }
            }
            return out
        }
        var interactions: JSON = .null
        if p.with_interactions == true {
            let measured = try measuredInteractions(from: from, to: to)
            findings += measured.findings
            interactions = measured.summary
        }
        var reply: [String: JSON] = ["findings": .array(findings.map { $0.json() }),
                                     "errors": JSON(findings.filter { $0.severity == .error }.count),
                                     "warnings": JSON(findings.filter { $0.severity == .warning }.count)]
        if p.with_interactions == true { reply["interactions"] = interactions }
        return .object(reply)
    }

    // MARK: assignment

    struct LayerTable {
        var layer: String
        var owner: [Int32]          // bucket → index into assigners, -1 when free (empty when all are)
        var assigners: [ExperimentAssigner]
        /// Running holdouts of the whole layer (no parameter prefixes): a unit in a free bucket is still theirs.
        var layerHoldouts: [HoldoutSubject]
    }

    /// What assignment reads of one layer, kept in memory while nobody commits (`Store.derived`), with the tables
    /// built from it for each set of live experiments and holdouts (a commit forgets both).
    final class LayerSource: Sendable {
        let holders: [ConflictSubject]      // by key
        let holdouts: [HoldoutSubject]
        let tables = Mutex<[[Int]: LayerTable]>([:])

        init(holders: [ConflictSubject], holdouts: [HoldoutSubject]) {
            self.holders = holders.sorted { $0.key < $1.key }
            self.holdouts = holdouts
        }
    }

    func layerTable(layer: String, at: Timestamp, only key: String?, arrival: UInt64?) throws -> LayerTable {
        let source = try store.derived("layer \(layer)", arrival: arrival) { tx in
            LayerSource(holders: try index(tx).holders(layer: layer), holdouts: try holdouts(tx))
        }
        let live = source.holders.indices.filter { let s = source.holders[$0]; return s.start <= at && at < s.end && (key == nil || s.key == key) }
        let running = source.holdouts.indices.filter { let h = source.holdouts[$0]; return h.state == .running && h.start <= at && at < h.end }
        // The table depends on `at` only through which experiments and holdouts are live then.
        let signature = live + [-1] + running
        if let table = source.tables.withLock({ $0[signature] }) { return table }
        let liveHolders = live.map { source.holders[$0] }, runningHoldouts = running.map { source.holdouts[$0] }
        // A layer nobody holds needs no buckets: anyone may ask about any layer name, and each is kept in memory.
        var owner = [Int32](repeating: -1, count: live.isEmpty ? 0 : GrowthBookHash.buckets)
        for (i, s) in liveHolders.enumerated() {
            for r in s.buckets { for b in r where b < owner.count { owner[b] = Int32(i) } }
        }
        let layerHoldouts = runningHoldouts.filter { $0.scope.covers(layer: layer) && $0.scope.parameterPrefixes.isEmpty }
        let table = LayerTable(layer: layer, owner: owner,
                               assigners: liveHolders.map { ExperimentAssigner($0, holdouts: holdouts(keeping: $0, at: at, from: runningHoldouts)) },
                               layerHoldouts: layerHoldouts.sorted { $0.key < $1.key })
        source.tables.withLock { tables in
            if tables.count >= 64 { tables.removeAll() }
            tables[signature] = table
        }
        return table
    }

    /// `matches[i]`: whether the call's attributes satisfy experiment `i`'s targeting, decided once per call (the
    /// attributes are the same for every unit of `assign.bulk`).
    func assignOne(_ unit: String, _ table: LayerTable, _ attributes: Attributes, _ matches: inout [Bool?]) -> JSON {
        let bucket = GrowthBookHash.bucket(seed: table.layer, value: unit)
        var experiment: JSON = .null, variant: JSON = .null, holdout: JSON = .null
        let i = bucket < table.owner.count ? Int(table.owner[bucket]) : -1
        if i >= 0 {
            let a = table.assigners[i]
            if matches.count < table.assigners.count { matches = [Bool?](repeating: nil, count: table.assigners.count) }
            let outcome = a.outcome(unit, bucket: bucket) { targeting in
                let eligible = matches[i] ?? targeting.evaluate(attributes)
                matches[i] = eligible
                return eligible
            }
            switch outcome {
            case .variant(let v):
                experiment = .string(a.subject.key)
                variant = .string(a.subject.variantKeys[v])
            case .heldOut(let key): holdout = .string(key)
            case .outside, .notTargeted: break
            }
        } else if let h = table.layerHoldouts.first(where: { $0.holdsOut(unit) }) {
            holdout = .string(h.key)
        }
        return ["unit": .string(unit), "layer": .string(table.layer), "bucket": JSON(bucket), "experiment": experiment, "variant": variant, "holdout": holdout]
    }

    func assignmentContext(_ p: some AssignmentParams, arrival: UInt64?) throws -> (LayerTable, Attributes) {
        let layerName = p.layer, key = p.key
        guard (layerName == nil) != (key == nil) else { throw FieldError(path: "layer", message: "give exactly one of layer or key") }
        var at = now()
        if let text = p.at {
            guard let t = Timestamp(rfc3339: text) else { throw FieldError(path: "at", message: "must be an RFC 3339 time") }
            at = t
        }
        let attributes = try Self.attributes(p.attributes)
        let layer: String
        if let key {
            // Whether it exists, and its layer (nil: it has none).
            let found: String?? = try store.derived("layer of \(key)", arrival: arrival) { tx in try tx.experiment(key).map(\.layer) }
            guard let record = found else { throw RegistryError.notFound(key) }
            guard let l = record else { throw FieldError(path: "key", message: "experiment \(key) has no layer") }
            layer = l
        } else {
            layer = layerName!
        }
        guard !layer.isEmpty, layer.count <= 128 else { throw FieldError(path: "layer", message: "must be a non-empty name of at most 128 characters") }
        return (try layerTable(layer: layer, at: at, only: key, arrival: arrival), attributes)
    }

    /// A unit's attributes as targeting reads them: any JSON object (nested objects and arrays included, as
    /// GrowthBook's SDKs take them); null members read as missing. Strings are at most ``maxAttributeBytes`` and
    /// nesting at most 16 levels, so evaluation stays cheap.
    static func attributes(_ json: JSON?) throws -> Attributes {
        guard let json, !json.isNull else { return [:] }
        guard case .object(let members) = json else { throw FieldError(path: "attributes", message: "must be an object of attribute values, got \(json.typeName)") }
        func check(_ v: JSON, _ path: String, _ depth: Int) throws {
            guard depth <= 16 else { throw FieldError(path: path, message: "nests deeper than 16 levels") }
            switch v {
            case .string(let text) where text.utf8.count > maxAttributeBytes:
                throw FieldError(path: path, message: "is \(text.utf8.count) bytes; attribute values are at most \(maxAttributeBytes) bytes")
            case .array(let items): for (i, item) in items.enumerated() { try check(item, "\(path)[\(i)]", depth + 1) }
            case .object(let o): for (k, item) in o { try check(item, "\(path).\(k)", depth + 1) }
            default: break
            }
        }
        var out: Attributes = [:]
        for (name, value) in members where !value.isNull {
            try check(value, "attributes.\(name)", 1)
            out[name] = JSValue(value)
        }
        return out
    }

    /// `assign {unit, layer | key, attributes?, at?}` → `{layer, bucket, experiment, variant}`.
    func assign(_ p: Assign.Params, _ ctx: RPCContext) throws -> JSON {
        let unit = p.unit
        let (table, attributes) = try assignmentContext(p, arrival: ctx.arrival)
        var matches: [Bool?] = []
        return assignOne(unit, table, attributes, &matches)
    }

    /// `assign.bulk {units, layer | key, attributes?, at?}` → `{assignments}` in the order given.
    /// The longest attribute value `assign` takes (a URL or a user agent fits; a megabyte does not).
    static let maxAttributeBytes = 16 << 10

    /// Units per `assign.bulk` call: bounds the request's memory (about 200 bytes a unit in and out).
    static let maxBulkUnits = 100_000

    func assignBulk(_ p: AssignBulk.Params, _ ctx: RPCContext) throws -> JSON {
        let units = p.units
        guard units.count <= Self.maxBulkUnits else {
            throw FieldError(path: "units", message: "has \(units.count) units; the limit is \(Self.maxBulkUnits) per call, split them into several calls")
        }
        let (table, attributes) = try assignmentContext(p, arrival: ctx.arrival)
        var matches: [Bool?] = []
        return ["assignments": .array(units.map { assignOne($0, table, attributes, &matches) })]
    }
}
