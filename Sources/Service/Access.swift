import API
import RPC
import Registry
import Store
import JSONCore
import Foundation

extension RefereeService {
    /// Checks a request against the roles in the store; refusals are audited and answered with 1004.
    func authorize(_ method: String, _ permission: Permission, _ params: JSON?, _ ctx: RPCContext) throws {
        if permission == .public { return }
        // A shared socket server never lets a client stop it, whatever its roles: SIGTERM stops a service.
        if permission == .shutdown && ctx.transport == .socket {
            throw RegistryError.forbidden("shutdown is refused over the shared socket, for every principal; stop the service with SIGTERM (systemctl stop referee)",
                                          details: ["principal": .string(ctx.principal), "needed": []])
        }
        if permission == .shutdown { return }
        // A method that needs no registry (statistics) is still answered while the store is unreachable, on the roles
        // the principal had when the store last answered.
        let (enforced, roles) = try store.access(of: ctx.principal, arrival: ctx.arrival, lastKnownWhenUnavailable: Catalog.byName[method]?.needsRegistry == false)
        if !enforced { return }
        // Least privilege: once grants exist, even reading needs a role (server.info and rpc.discover excepted).
        if permission == .read || permission == .session {
            guard roles.isEmpty else { return }
            try refuse(method, params?["key"]?.stringValue, roles: roles, needed: Role.allCases.map(\.rawValue), ctx,
                       message: "\(ctx.principal) (roles: none) may not call \(method): once a store has grants, every method but server.info and rpc.discover needs a role; ask an admin for one (access.grant)")
        }
        let held = roles.compactMap(Role.init(rawValue:))
        let key = params?["key"]?.stringValue
        let target = params?["to"]?.stringValue
        let allowed = Role.allowing(permission, transitionTo: target)
        var ok = held.contains(.admin) || held.contains { allowed.contains($0) }
        // A pm acts on its own experiments only.
        if ok, !held.contains(.admin), permission == .editOwn || (permission == .transition && target != "approved"),
           !held.contains(where: { $0 != .pm && allowed.contains($0) }), let key {
            let owner = try store.read { tx in try tx.experiment(key)?.owner ?? tx.holdout(key)?.owner }
            if let owner, owner != ctx.principal { ok = false }
        }
        guard !ok else { return }
        let needed = allowed.map(\.rawValue)
        let message = "\(ctx.principal) (roles: \(roles.isEmpty ? "none" : roles.joined(separator: ", "))) may not call \(method)"
            + (key.map { " on \"\($0)\"" } ?? "") + "; it needs " + needed.joined(separator: " or ")
            + (permission == .editOwn || permission == .transition ? " (pm: own experiments only)" : "")
        try refuse(method, key, roles: roles, needed: needed, ctx, message: message)
    }

    /// Audits a refusal (bounded, rate-limited per principal) and throws 1004.
    func refuse(_ method: String, _ key: String?, roles: [String], needed: [String], _ ctx: RPCContext, message: String) throws -> Never {
        if refusalLimiter.admit(ctx.principal, now: now().seconds) {
            let at = now().description
            let (shownKey, shownMessage) = (key.map(AuditBounds.cut), AuditBounds.cut(message))
            _ = try? store.write { tx in
                try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: (ctx.session.onBehalfOf ?? ctx.onBehalfOf).map(AuditBounds.cut), method: "access.refused", key: shownKey,
                                   before: .null, after: ["method": .string(AuditBounds.cut(method)), "roles": JSON(roles), "needed": JSON(needed)], reason: shownMessage)
            }
        }
        throw RegistryError.forbidden(message, details: ["principal": .string(ctx.principal), "roles": JSON(roles), "needed": JSON(needed), "method": .string(method)])
    }

    /// `access.grant {principal, role}`; in open mode the caller first becomes admin (bootstrap).
    func grant(_ p: AccessGrant.Params, _ ctx: RPCContext) throws -> JSON {
        let principal = p.principal, role = p.role.rawValue
        guard !principal.isEmpty else { throw FieldError(path: "principal", message: "must not be empty") }
        let at = now().description
        return try store.write { tx in
            var bootstrapped = false
            if try !tx.hasGrants() {
                try tx.grant(principal: ctx.principal, role: "admin", by: ctx.principal, at: at)
                try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: ctx.session.onBehalfOf, method: "access.bootstrap", key: nil,
                                   before: .null, after: ["principal": .string(ctx.principal), "role": "admin"], reason: "first grant on this store")
                bootstrapped = true
            } else if try !tx.roles(of: ctx.principal).contains("admin") {
                throw RegistryError.forbidden("\(ctx.principal) may not grant roles; it needs admin", details: ["principal": .string(ctx.principal), "needed": ["admin"]])
            }
            try tx.grant(principal: principal, role: role, by: ctx.principal, at: at)
            try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: ctx.session.onBehalfOf, method: "access.grant", key: nil,
                               before: .null, after: ["principal": .string(principal), "role": .string(role)], reason: nil)
            return ["principal": .string(principal), "role": .string(role), "bootstrapped_admin": bootstrapped ? .string(ctx.principal) : .null]
        }
    }

    func revoke(_ p: AccessRevoke.Params, _ ctx: RPCContext) throws -> JSON {
        let principal = p.principal, role = p.role.rawValue
        let at = now().description
        return try store.write { tx in
            if role == "admin", try tx.grants().filter({ $0.role == "admin" }).map(\.principal) == [principal] {
                throw RegistryError.forbidden("\(principal) is the last admin; grant admin to someone else first", details: ["principal": .string(principal)])
            }
            let removed = try tx.revoke(principal: principal, role: role)
            if removed {
                try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: ctx.session.onBehalfOf, method: "access.revoke", key: nil,
                                   before: ["principal": .string(principal), "role": .string(role)], after: .null, reason: nil)
            }
            return ["principal": .string(principal), "role": .string(role), "revoked": .bool(removed)]
        }
    }

    func accessList() throws -> JSON {
        let grants = try store.read { tx in try tx.grants() }
        return ["mode": grants.isEmpty ? "open" : "enforced",
                "grants": .array(grants.map { ["principal": .string($0.principal), "role": .string($0.role), "granted_by": .string($0.grantedBy), "granted_at": .string($0.grantedAt)] })]
    }

    /// `session.act_for {actor}`: a socket client names whom it acts for; recorded with its mutations, grants nothing.
    func actFor(_ p: SessionActFor.Params, _ ctx: RPCContext) throws -> JSON {
        let actor = p.actor
        ctx.session.onBehalfOf = actor.isEmpty ? nil : actor
        return ["principal": .string(ctx.principal), "on_behalf_of": JSON(ctx.session.onBehalfOf)]
    }
}

/// Long values in refusal entries are cut and hashed, so a refused request cannot grow the append-only log
/// by more than a few hundred bytes.
enum AuditBounds {
    static let maxText = 200

    static func cut(_ text: String) -> String {
        guard text.utf8.count > maxText else { return text }
        var prefix = ""
        for ch in text {
            if prefix.utf8.count + ch.utf8.count > maxText - 80 { break }
            prefix.append(ch)
        }
        return "\(prefix)… (\(text.utf8.count) bytes, sha256 \(SHA256.hex(text)))"
    }
}

/// At most `burst` audited refusals per principal, refilled at `perMinute`: refusals past that are still
/// answered with 1004 but not written, so a client cannot fill the disk with them.
final class RefusalLimiter: @unchecked Sendable {
    private let mutex = NSLock()
    private var buckets: [String: (tokens: Double, at: Double)] = [:]
    let burst: Double
    let perMinute: Double

    init(burst: Double = 20, perMinute: Double = 10) {
        self.burst = burst
        self.perMinute = perMinute
    }

    func admit(_ principal: String, now: Double) -> Bool {
        mutex.lock()
        defer { mutex.unlock() }
        if buckets.count > 10_000 { buckets.removeAll() }
        var b = buckets[principal] ?? (burst, now)
        b.tokens = min(burst, b.tokens + max(0, now - b.at) * perMinute / 60)
        b.at = now
        let ok = b.tokens >= 1
        if ok { b.tokens -= 1 }
        buckets[principal] = b
        return ok
    }
}
