import Foundation
import API
import RPC
import Registry
import Store
import JSONCore

extension GenerationCache where Value == [HoldoutSubject] {
    /// The holdouts that are not over (draft to running), as conflict rules and assignment read them, read again when
    /// a holdout changes.
    func current(_ tx: StoreTransaction, subject: (ExperimentRecord) -> HoldoutSubject?) throws -> Value {
        try current(generation: tx.holdoutsGeneration) { try tx.holdouts().filter { !$0.state.isTerminal }.compactMap(subject) }
    }
}

extension RefereeService {
    func holdoutSubject(_ record: ExperimentRecord) -> HoldoutSubject? {
        let (doc, _) = HoldoutDocument.read(record.document)
        guard let doc else { return nil }
        return HoldoutSubject(document: doc, state: record.state, shareCeiling: protocols.protocols[doc.protocolName]?.holdoutShareMax ?? 0.1)
    }

    /// Every holdout from draft to running, in `tx`.
    func holdouts(_ tx: StoreTransaction) throws -> [HoldoutSubject] {
        try holdoutCache.current(tx) { self.holdoutSubject($0) }
    }

    /// The findings of an experiment being registered, checked or admitted: its pairs (their overlap shares net of
    /// the holdouts covering either side) and the holdouts that take it below its plan.
    func experimentFindings(_ s: ConflictSubject, _ idx: ConflictIndex, _ tx: StoreTransaction, includeCapacity: Bool = true) throws -> [Finding] {
        let all = try holdouts(tx)
        var findings = HoldoutRules.adjustOverlap(idx.check(s, includeCapacity: includeCapacity), subjects: { $0 == s.key ? s : idx[$0] }, holdouts: all)
        findings += HoldoutRules.underpowered(s, holdouts: all) { covering in covering.allSatisfy(\.removesTraffic) }
        return findings
    }

    /// The findings of a holdout being registered, changed or admitted (as `h`'s state): the holdouts it meets in a
    /// layer, and the experiments it covers whose plan it breaks.
    func holdoutFindings(_ h: HoldoutSubject, _ tx: StoreTransaction) throws -> [Finding] {
        let others = try holdouts(tx).filter { $0.key != h.key }
        var findings = HoldoutRules.shareFindings(others, involving: h)
        let idx = try index(tx)
        for s in idx.all.sorted(by: { $0.key < $1.key }) where !s.state.isTerminal && h.covers(s) {
            findings += HoldoutRules.underpowered(s, holdouts: others + [h]) { _ in s.state.holdsTraffic }
        }
        return findings
    }

    /// The holdouts that keep units from `s` at `at` (running, and within their schedule).
    func holdouts(keeping s: ConflictSubject, at: Timestamp, from all: [HoldoutSubject]) -> [HoldoutSubject] {
        all.filter { $0.state == .running && $0.start <= at && at < $0.end && $0.covers(s) }
    }

    func validHoldout(_ json: JSON) throws -> (HoldoutDocument, ExperimentProtocol) {
        let (doc, violations) = HoldoutDocument.validate(json, protocols: protocols)
        guard let doc, violations.isEmpty, let proto = protocols.protocols[doc.protocolName] else { throw RegistryError.protocolViolation(violations) }
        return (doc, proto)
    }

    /// `holdout.register {holdout}`.
    func holdoutRegister(_ p: HoldoutRegister.Params, _ ctx: RPCContext) throws -> JSON {
        let (doc, proto) = try validHoldout(p.holdout)
        let at = now().description
        let owner = doc.owner ?? ctx.principal
        return try store.write(claiming: doc.key) { tx in
            try requireMayRegister("holdouts", key: doc.key, owner: owner, ctx, tx)
            var warnings: [JSON] = []
            if let h = HoldoutSubject(document: doc, state: .draft, shareCeiling: proto.holdoutShareMax) {
                warnings = try refuseErrors(try holdoutFindings(h, tx), from: doc.key)
            }
            let record = ExperimentRecord(key: doc.key, state: .draft, version: 1, owner: owner, layer: nil, protocolName: proto.name,
                                          protocolHash: proto.contentHash, document: p.holdout, plan: .null, decision: nil, createdAt: at,
                                          updatedAt: at, createdBy: ctx.principal, updatedBy: ctx.principal)
            try tx.rememberProtocol(name: proto.name, hash: proto.contentHash, source: proto.source, at: at)
            try tx.insertHoldout(record)
            try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: ctx.onBehalfOf, method: "holdout.register", key: doc.key,
                               before: .null, after: record.json, reason: nil)
            return record.json(warnings: warnings)
        }
    }

    func holdoutGet(_ p: HoldoutGet.Params) throws -> JSON {
        guard let record = try store.read({ tx in try tx.holdout(p.key) }) else { throw RegistryError.notFound(p.key) }
        return record.json
    }

    func holdoutList(_ p: HoldoutList.Params) throws -> JSON {
        let records = try store.read { tx in try tx.holdouts(state: p.state?.rawValue) }
        return ["holdouts": .array(records.map(\.json)), "count": JSON(records.count)]
    }

    /// `holdout.update {key, version, changes, reason?}`.
    func holdoutUpdate(_ p: HoldoutUpdate.Params, _ ctx: RPCContext) throws -> JSON {
        guard case .object = p.changes else { throw FieldError(path: "changes", message: "must be a JSON Merge Patch object") }
        let at = now().description
        return try store.write { tx in
            guard let before = try tx.holdout(p.key) else { throw RegistryError.notFound(p.key) }
            guard before.version == p.version else { throw RegistryError.versionConflict(key: p.key, expected: p.version, actual: before.version) }
            let touched = JSON.touchedPaths(ofPatch: p.changes)
            if before.state.isTerminal { throw RegistryError.lockedField(paths: ["*"], state: before.state, protocolName: before.protocolName) }
            if touched.contains("key") { throw RegistryError.lockedField(paths: ["key"], state: before.state, protocolName: before.protocolName) }
            if before.state.isLive {
                let locked = touched.filter { path in HoldoutDocument.lockedWhenLive.contains { path == $0 || path.hasPrefix($0 + ".") } }
                if !locked.isEmpty { throw RegistryError.lockedField(paths: locked, state: before.state, protocolName: before.protocolName) }
                guard !(p.reason ?? "").isBlank else { throw FieldError(path: "reason", message: "must say why a live holdout changes") }
            }
            try requireMayChangeOwner(of: before, changes: p.changes, ctx, tx)
            let document = before.document.merging(patch: p.changes)
            let (doc, proto) = try validHoldout(document)
            var warnings: [JSON] = []
            if let h = HoldoutSubject(document: doc, state: before.state, shareCeiling: proto.holdoutShareMax) {
                warnings = try refuseErrors(try holdoutFindings(h, tx), from: p.key)
            }
            var after = before
            after.document = document
            after.version += 1
            after.owner = doc.owner ?? before.owner
            after.protocolName = proto.name
            after.protocolHash = proto.contentHash
            after.updatedAt = at
            after.updatedBy = ctx.principal
            try tx.rememberProtocol(name: proto.name, hash: proto.contentHash, source: proto.source, at: at)
            guard try tx.updateHoldout(after, expectedVersion: p.version) else { throw RegistryError.versionConflict(key: p.key, expected: p.version, actual: p.version + 1) }
            try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: ctx.onBehalfOf, method: "holdout.update", key: p.key,
                               before: before.json, after: after.json, reason: p.reason)
            return after.json(warnings: warnings)
        }
    }

    /// `holdout.transition {key, version, to, reason?}`.
    func holdoutTransition(_ p: HoldoutTransition.Params, _ ctx: RPCContext) throws -> JSON {
        let at = now().description
        return try store.write { tx in
            guard let before = try tx.holdout(p.key) else { throw RegistryError.notFound(p.key) }
            guard before.version == p.version else { throw RegistryError.versionConflict(key: p.key, expected: p.version, actual: before.version) }
            let allowed = before.state.allowedNextForHoldout
            guard let target = ExperimentState(rawValue: p.to), allowed.contains(target) else {
                throw RegistryError.invalidTransition(from: before.state, to: p.to, allowed: allowed)
            }
            if target == .approved {
                try requireFourEyes(key: p.key, owner: before.owner, authors: [("holdout.register", "registered"), ("holdout.update", "updated")], ctx, tx)
            }
            var warnings: [JSON] = []
            if target == .approved || target == .running {
                // Checked against the current protocol and catalog, as the holdout is about to remove traffic.
                let (doc, proto) = try validHoldout(before.document)
                if target == .running, let end = doc.end, !(now() < end) {
                    throw RegistryError.invalidTransition(from: before.state, to: p.to, allowed: [],
                                                          why: "its schedule ended at \(end); change schedule.end first (holdout.update), then start it")
                }
                if let h = HoldoutSubject(document: doc, state: target, shareCeiling: proto.holdoutShareMax) {
                    warnings = try refuseErrors(try holdoutFindings(h, tx), from: p.key)
                }
            }
            var after = before
            after.state = target
            after.version += 1
            after.updatedAt = at
            after.updatedBy = ctx.principal
            guard try tx.updateHoldout(after, expectedVersion: p.version) else { throw RegistryError.versionConflict(key: p.key, expected: p.version, actual: p.version + 1) }
            try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: ctx.onBehalfOf, method: "holdout.transition", key: p.key,
                               before: before.json, after: after.json, reason: p.reason)
            return after.json(warnings: warnings)
        }
    }
}
