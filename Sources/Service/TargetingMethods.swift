import Foundation
import API
import RPC
import Registry
import Store
import JSONCore

extension GenerationCache where Value == [String: [JSValue]] {
    /// The saved groups' values as targeting reads them, read again when a group changes.
    func current(_ tx: StoreTransaction) throws -> Value {
        try current(generation: tx.groupsGeneration) {
            Dictionary(uniqueKeysWithValues: try tx.groups().map { ($0.name, $0.values.map(JSValue.init)) })
        }
    }
}

extension RefereeService {
    /// Most members of one saved group.
    static let maxGroupValues = 100_000

    /// The document with every saved group its targeting names bound to the group's current values.
    func bound(_ doc: ExperimentDocument, _ tx: StoreTransaction) throws -> ExperimentDocument {
        guard !doc.targeting.groupNames.isEmpty else { return doc }
        var d = doc
        d.targeting = doc.targeting.bindingGroups(try groups.current(tx))
        return d
    }

    /// Violations for saved groups that the document's targeting names and that do not exist.
    func groupViolations(_ json: JSON, _ tx: StoreTransaction) throws -> [Violation] {
        guard let t = json["targeting"], !t.isNull else { return [] }
        let known = Set(try groups.current(tx).keys)
        guard case .failure(let f) = Condition.parse(t, path: "targeting", limits: limits.targeting, groups: known) else { return [] }
        return f.violations.filter { $0.rule == "unknown_group" }
    }

    /// `targeting.eval {targeting | key, attributes}` → `{matches, trace, groups}`.
    func evalTargeting(_ p: TargetingEval.Params) throws -> JSON {
        guard (p.targeting == nil) != (p.key == nil) else { throw FieldError(path: "targeting", message: "give exactly one of targeting or key") }
        let attributes = try Self.attributes(p.attributes)
        return try store.read { tx in
            let source: JSON
            if let key = p.key {
                guard let record = try tx.experiment(key) else { throw RegistryError.notFound(key) }
                source = record.document["targeting"] ?? .object([:])
            } else {
                source = p.targeting!
            }
            let known = Set(try groups.current(tx).keys)
            let condition: Condition
            switch Condition.parse(source.isNull ? .object([:]) : source, path: "targeting", limits: limits.targeting, groups: known) {
            case .success(let c): condition = c
            case .failure(let f): throw RegistryError.protocolViolation(f.violations)
            }
            let bound = condition.bindingGroups(try groups.current(tx))
            let (matches, trace) = bound.trace(attributes)
            return ["matches": .bool(matches), "trace": .array(trace.map(\.json)), "groups": JSON(condition.groupNames.sorted())]
        }
    }

    func groupGet(_ p: GroupsGet.Params) throws -> JSON {
        try store.read { tx in
            guard let g = try tx.group(p.name) else { throw RegistryError.groupNotFound(p.name, known: try tx.groups().map(\.name)) }
            return g.json
        }
    }

    func groupList() throws -> JSON {
        try store.read { tx in
            let idx = try index(tx)
            var users: [String: [String]] = [:]
            for s in idx.subjects.values { for g in s.targeting.groupNames { users[g, default: []].append(s.key) } }
            return ["groups": .array(try tx.groups().map { g in
                var o = g.json.objectValue!
                o["values"] = nil
                o["experiments"] = JSON((users[g.name] ?? []).sorted())
                return .object(o)
            })]
        }
    }

    /// `groups.put`: validates, writes the new version, re-reads the experiments that name the group, and refuses
    /// (rolling everything back) when a live one gains an error-severity conflict.
    func groupPut(_ p: GroupsPut.Params, _ ctx: RPCContext) throws -> JSON {
        let name = p.name
        guard !name.isEmpty, name.count <= 128, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
            throw FieldError(path: "name", message: "must be 1 to 128 letters, digits, '.', '_' or '-', got \(JSON.string(name).serialized().prefix(60))")
        }
        guard p.values.count <= Self.maxGroupValues else {
            throw FieldError(path: "values", message: "lists \(p.values.count) values; a saved group holds at most \(Self.maxGroupValues)")
        }
        for (i, v) in p.values.enumerated() {
            switch v {
            case .string(let s) where s.utf8.count > Self.maxAttributeBytes:
                throw FieldError(path: "values[\(i)]", message: "is \(s.utf8.count) bytes; values are at most \(Self.maxAttributeBytes) bytes")
            case .string, .number, .bool: continue
            default: throw FieldError(path: "values[\(i)]", message: "must be a string, number or boolean, got \(v.typeName)")
            }
        }
        guard !p.reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw FieldError(path: "reason", message: "must say why the group changes") }
        let at = now().description
        // The caches read this transaction's own writes: if it rolls back they must read again. They are told so
        // before the writer lock is released (so no other write meets them first), and again if the commit fails.
        do {
            return try store.write { tx in
                do {
                    return try groupPutTransaction(p, name: name, at: at, ctx, tx)
                } catch {
                    conflicts.reset()
                    groups.reset()
                    throw error
                }
            }
        } catch {
            conflicts.reset()
            groups.reset()
            throw error
        }
    }

    private func groupPutTransaction(_ p: GroupsPut.Params, name: String, at: String, _ ctx: RPCContext, _ tx: StoreTransaction) throws -> JSON {
        do {
            let before = try tx.group(name)
            if let expected = p.version, expected != (before?.version ?? 0) {
                throw RegistryError.groupVersionConflict(name: name, expected: expected, actual: before?.version ?? 0)
            }
            // Findings of the live experiments that use the group, before the change.
            let old = try index(tx)
            let users = old.subjects.values.filter { $0.targeting.groupNames.contains(name) }
            let live = users.filter { $0.state == .approved || $0.state == .running }
            let key = { (f: Finding) in "\(f.experiments)|\(f.kind.rawValue)|\(f.severity.rawValue)" }
            let beforeFindings = Set(live.flatMap { old.check($0, includeCapacity: false) }.map(key))

            let group = SavedGroup(name: name, version: (before?.version ?? 0) + 1, values: p.values, reason: p.reason, updatedAt: at, updatedBy: ctx.principal)
            try tx.putGroup(group)
            try tx.touch(users.map(\.key))
            let new = try index(tx)
            var fresh: [Finding] = []
            var seen = Set<String>()
            for s in live {
                guard let current = new.subjects[s.key] else { continue }
                for f in new.check(current, includeCapacity: false) where !beforeFindings.contains(key(f)) && seen.insert(key(f) + "|" + f.message).inserted {
                    fresh.append(f)
                }
            }
            let errors = fresh.filter { $0.severity == .error }
            if !errors.isEmpty {
                throw RegistryError.conflict(
                    message: "changing saved group \(name) would create \(errors.count) blocking conflict\(errors.count == 1 ? "" : "s") between live experiments: \(errors.prefix(2).map(\.message).joined(separator: "; "))",
                    findings: fresh.map { $0.json() })
            }
            try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: ctx.onBehalfOf, method: "groups.put", key: nil,
                               before: before?.json ?? .null, after: group.json, reason: p.reason)
            return ["group": group.json, "previous_version": before.map { JSON($0.version) } ?? .null,
                    "experiments": JSON(users.map(\.key).sorted()), "conflicts": .array(fresh.map { $0.json() })]
        }
    }
}
