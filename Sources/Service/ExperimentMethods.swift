import API
import RPC
import Registry
import Store
import JSONCore

extension RefereeService {
    /// `experiment.register {experiment}`: validates against the named protocol and stores a draft at version 1.
    /// Errors: 1001 with every violation; 1007 when the key exists.
    func register(_ p: ExperimentRegister.Params, _ ctx: RPCContext) throws -> JSON {
        let json = p.experiment
        let (doc, outcome) = Validator.validate(json, protocols: protocols, limits: limits)
        guard let doc, outcome.isValid, let proto = protocols.protocols[doc.protocolName] else {
            throw RegistryError.protocolViolation(outcome.violations)
        }
        let at = now().description
        let owner = doc.owner ?? ctx.principal
        return try store.write(claiming: doc.key) { tx in
            try requireMayRegister("experiments", key: doc.key, owner: owner, ctx, tx)
            let unknownGroups = try groupViolations(json, tx)
            if !unknownGroups.isEmpty { throw RegistryError.protocolViolation(unknownGroups) }
            var warnings: [JSON] = []
            if var s = try subject(doc, state: .draft, tx) {
                s.plan = outcome.plan.map { PlanNeeds(plan: $0, weights: doc.variants.map(\.weight)) }
                warnings = try refuseErrors(try experimentFindings(s, index(tx), tx), from: doc.key)
            }
            let record = ExperimentRecord(
                key: doc.key, state: .draft, version: 1, owner: owner, layer: doc.layer,
                protocolName: proto.name, protocolHash: proto.contentHash, document: json,
                plan: outcome.plan?.json ?? .null, decision: nil, createdAt: at, updatedAt: at,
                createdBy: ctx.principal, updatedBy: ctx.principal)
            try tx.rememberProtocol(name: proto.name, hash: proto.contentHash, source: proto.source, at: at)
            try tx.insert(record)
            try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: ctx.onBehalfOf, method: "experiment.register",
                               key: doc.key, before: .null, after: record.json, reason: nil)
            return record.json(warnings: warnings)
        }
    }

    func get(_ p: ExperimentGet.Params, _ ctx: RPCContext) throws -> JSON {
        let key = p.key
        guard let record = try store.experimentWire(key, arrival: ctx.arrival) else { throw RegistryError.notFound(key) }
        return record
    }

    /// Page sizes of `experiment.list`: the default bounds a reply (and a batch of them) for any registry size.
    static let listPageDefault = 100
    static let listPageMax = 1000
    static let listPageBytes = 16 << 20

    func list(_ p: ExperimentList.Params) throws -> JSON {
        let state = p.state?.rawValue, owner = p.owner, layer = p.layer
        let limit = p.limit ?? Self.listPageDefault
        guard (1...Self.listPageMax).contains(limit) else {
            throw FieldError(path: "limit", message: "must be from 1 to \(Self.listPageMax), got \(limit); page with after")
        }
        let after = p.after
        // One more than the page tells whether another page follows.
        var records = try store.read { tx in try tx.experiments(state: state, owner: owner, layer: layer, after: after, limit: limit + 1) }
        var more = records.count > limit
        if more { records.removeLast() }
        // A page also ends at about 16 MiB of records (large documents): memory stays bounded per request.
        var bytes = 0
        var page: [JSON] = []
        for (i, record) in records.enumerated() {
            let json = record.json
            bytes += record.document.serialized().utf8.count + 512
            if bytes > Self.listPageBytes && !page.isEmpty {
                more = true
                records.removeSubrange(i...)
                break
            }
            page.append(json)
        }
        return ["experiments": .array(page), "count": JSON(page.count),
                "next_after": more ? .string(records.last!.key) : .null]
    }

    /// `experiment.update {key, version, changes}`: a JSON Merge Patch on a draft or an experiment in review.
    func update(_ p: ExperimentUpdate.Params, _ ctx: RPCContext) throws -> JSON {
        let key = p.key, version = p.version, changes = p.changes, reason = p.reason
        guard case .object = changes else { throw FieldError(path: "changes", message: "must be a JSON Merge Patch object") }
        return try edit(key: key, version: version, changes: changes, reason: reason, method: "experiment.update", ctx: ctx) { record, _ in
            guard record.state.isEditable else {
                throw RegistryError.lockedField(paths: ["*"], state: record.state, protocolName: record.protocolName)
            }
        }
    }

    /// `experiment.amend {key, version, changes, reason}`: changes to a live experiment, refused for locked fields.
    func amend(_ p: ExperimentAmend.Params, _ ctx: RPCContext) throws -> JSON {
        let key = p.key, version = p.version, changes = p.changes, reason = p.reason
        guard case .object = changes else { throw FieldError(path: "changes", message: "must be a JSON Merge Patch object") }
        guard !reason.isBlank else { throw FieldError(path: "reason", message: "must say why a live experiment changes") }
        return try edit(key: key, version: version, changes: changes, reason: reason, method: "experiment.amend", ctx: ctx) { record, tx in
            guard record.state.isLive else {
                throw RegistryError.lockedField(paths: ["*"], state: record.state, protocolName: record.protocolName)
            }
            let held = try self.heldProtocol(record, tx)
            let locked = JSON.touchedPaths(ofPatch: changes).filter { held.isLocked($0) }
            if !locked.isEmpty { throw RegistryError.lockedField(paths: locked, state: record.state, protocolName: held.name) }
        }
    }

    /// Shared path of update and amend: version check, merge, re-validation, write and audit in one transaction.
    private func edit(key: String, version: Int, changes: JSON, reason: String?, method: String, ctx: RPCContext,
                      precondition: (ExperimentRecord, StoreTransaction) throws -> Void) throws -> JSON {
        let at = now().description
        return try store.write { tx in
            guard let before = try tx.experiment(key) else { throw RegistryError.notFound(key) }
            guard before.version == version else { throw RegistryError.versionConflict(key: key, expected: version, actual: before.version) }
            try precondition(before, tx)
            let touched = JSON.touchedPaths(ofPatch: changes)
            try requireMayChangeOwner(of: before, changes: changes, ctx, tx)
            if touched.contains("key") { throw RegistryError.lockedField(paths: ["key"], state: before.state, protocolName: before.protocolName) }
            let document = before.document.merging(patch: changes)
            var (doc, outcome) = Validator.validate(document, protocols: protocols, limits: limits)
            outcome.violations += try groupViolations(document, tx)
            guard let doc, outcome.isValid, let proto = protocols.protocols[doc.protocolName] else {
                throw RegistryError.protocolViolation(outcome.violations)
            }
            var after = before
            // Conflicts are checked again; a live experiment keeps (or re-sizes) its buckets.
            var warnings: [JSON] = []
            after.document = document
            after.plan = outcome.plan?.json ?? .null
            if before.state.isLive {
                let admitted = try admit(after, as: before.state, tx)
                after.buckets = admitted.buckets
                warnings = admitted.warnings
            } else if var s = try subject(doc, state: before.state, tx) {
                s.plan = outcome.plan.map { PlanNeeds(plan: $0, weights: doc.variants.map(\.weight)) }
                warnings = try refuseErrors(try experimentFindings(s, index(tx), tx), from: key)
            }
            after.version += 1
            after.owner = doc.owner ?? before.owner
            after.layer = doc.layer
            after.protocolName = proto.name
            after.protocolHash = proto.contentHash
            after.plan = outcome.plan?.json ?? .null
            after.updatedAt = at
            after.updatedBy = ctx.principal
            try tx.rememberProtocol(name: proto.name, hash: proto.contentHash, source: proto.source, at: at)
            guard try tx.update(after, expectedVersion: version) else { throw RegistryError.versionConflict(key: key, expected: version, actual: version + 1) }
            try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: ctx.onBehalfOf, method: method, key: key,
                               before: before.json, after: after.json, reason: reason)
            return after.json(warnings: warnings)
        }
    }

    /// `experiment.transition {key, version, to, reason?, decision?}`.
    func transition(_ p: ExperimentTransition.Params, _ ctx: RPCContext) throws -> JSON {
        let key = p.key, version = p.version, to = p.to, reason = p.reason, decision = p.decision
        let at = now().description
        return try store.write { tx in
            guard let before = try tx.experiment(key) else { throw RegistryError.notFound(key) }
            guard before.version == version else { throw RegistryError.versionConflict(key: key, expected: version, actual: before.version) }
            let target = try Lifecycle.check(from: before.state, to: to, decision: decision)
            var after = before
            if target == .approved {
                try requireFourEyes(key: key, owner: before.owner, authors: [("experiment.register", "registered"), ("experiment.update", "updated"), ("experiment.amend", "amended")], ctx, tx)
            }
            var scheduleWarning: JSON?
            if target == .running, let (doc, _) = Optional(ExperimentDocument.read(before.document, limits: limits)), let doc, let start = doc.start, let end = doc.end {
                let today = now()
                if !(today < end) {
                    throw RegistryError.invalidTransition(from: before.state, to: to, allowed: [],
                                                          why: "its schedule ended at \(end); amend schedule.end first (experiment.amend), then start it")
                }
                if today < start {
                    scheduleWarning = ["kind": "schedule", "severity": "warning",
                                       "message": .string("running before the scheduled start \(start): units assigned now are outside the planned window, and rows before it are not counted")]
                }
            }
            if target == .running {
                let (_, outcome) = Validator.validate(before.document, protocols: protocols, limits: limits)
                guard outcome.isValid, let proto = protocols.protocols[before.protocolName] else {
                    throw RegistryError.protocolViolation(outcome.violations)
                }
                after.protocolHash = proto.contentHash
                after.plan = outcome.plan?.json ?? .null
                try tx.rememberProtocol(name: proto.name, hash: proto.contentHash, source: proto.source, at: at)
            }
            var warnings: [JSON] = []
            if target == .approved || target == .running {
                let admitted = try admit(after, as: target, tx)
                after.buckets = admitted.buckets
                warnings = admitted.warnings
            }
            if let scheduleWarning { warnings.append(scheduleWarning) }
            if target == .concluded { after.decision = decision }
            after.state = target
            after.version += 1
            after.updatedAt = at
            after.updatedBy = ctx.principal
            guard try tx.update(after, expectedVersion: version) else { throw RegistryError.versionConflict(key: key, expected: version, actual: version + 1) }
            try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: ctx.onBehalfOf, method: "experiment.transition", key: key,
                               before: before.json, after: after.json, reason: reason)
            return after.json(warnings: warnings)
        }
    }

    /// Registration of experiments and holdouts alike: with grants in force a principal registers under its own name
    /// only (an admin may name another owner), and keys are unique across both tables, so results and the audit log
    /// address either by key.
    func requireMayRegister(_ what: String, key: String, owner: String, _ ctx: RPCContext, _ tx: StoreTransaction) throws {
        if owner != ctx.principal, try tx.hasGrants(), try !tx.roles(of: ctx.principal).contains("admin") {
            throw RegistryError.forbidden("\(ctx.principal) may register \(what) only with itself as owner (document owner: \(owner)); set owner to \(ctx.principal), or ask an admin to register it for \(owner)",
                                          details: ["principal": .string(ctx.principal), "owner": .string(owner), "rule": "own_experiments"])
        }
        if try tx.keyTaken(key) { throw RegistryError.duplicateKey(key) }
    }

    /// With grants in force only an admin hands a record (experiment or holdout) to another owner, as at registration.
    func requireMayChangeOwner(of before: ExperimentRecord, changes: JSON, _ ctx: RPCContext, _ tx: StoreTransaction) throws {
        guard let newOwner = changes["owner"]?.stringValue, newOwner != before.owner else { return }
        if try tx.hasGrants(), try !tx.roles(of: ctx.principal).contains("admin") {
            throw RegistryError.forbidden("\(ctx.principal) may not give \"\(before.key)\" to another owner (\(newOwner)); ask an admin",
                                          details: ["principal": .string(ctx.principal), "owner": .string(newOwner), "rule": "own_experiments"])
        }
    }

    /// Four eyes: the approver is neither the owner nor anyone who wrote the document (from the audit log), so
    /// changing `owner` cannot make an author its own approver. `authors`: the methods that write it, with their verbs.
    func requireFourEyes(key: String, owner: String, authors: [(method: String, verb: String)], _ ctx: RPCContext, _ tx: StoreTransaction) throws {
        let verbs = Dictionary(uniqueKeysWithValues: authors.map { ($0.method, $0.verb) })
        let entries = try tx.auditEntries(key: key).filter { verbs[$0.method] != nil }
        var excluded: [(String, String)] = [(owner, "owns it")]
        for entry in entries {
            let act = verbs[entry.method]! + " it"
            if !excluded.contains(where: { $0.0 == entry.principal }) { excluded.append((entry.principal, act)) }
            // Whom an author acted for wrote the document too (the claim can only tighten the rule).
            if let person = entry.onBehalfOf, !excluded.contains(where: { $0.0 == person }) { excluded.append((person, act + " (through \(entry.principal))")) }
        }
        let approvers = [ctx.principal] + (ctx.onBehalfOf.map { [$0] } ?? [])
        if let why = excluded.first(where: { approvers.contains($0.0) }) {
            let list = excluded.map { "\($0.0) (\($0.1))" }.joined(separator: ", ")
            let named = authors.map(\.verb)
            let verbList = named.count > 1 ? named.dropLast().joined(separator: ", ") + " or " + named.last! : named.joined()
            throw RegistryError.forbidden(
                "\(why.0) \(why.1) and cannot approve \"\(key)\" (four-eyes rule: the owner and everyone who \(verbList) it are excluded: \(list)); ask another principal to approve",
                details: ["principal": .string(ctx.principal), "owner": .string(owner), "rule": "four_eyes",
                          "excluded": .array(excluded.map { ["principal": .string($0.0), "because": .string($0.1)] })])
        }
    }

    /// The protocol an experiment was last validated against, by content hash (the current file may differ).
    func heldProtocol(_ record: ExperimentRecord, _ tx: StoreTransaction) throws -> ExperimentProtocol {
        if let current = protocols.protocols[record.protocolName], current.contentHash == record.protocolHash { return current }
        guard let source = try tx.protocolSource(hash: record.protocolHash) else {
            throw RegistryError.inconsistent("protocol version \(record.protocolHash) of \"\(record.key)\" is missing from the store")
        }
        return try ExperimentProtocol.parse(source)
    }
}
