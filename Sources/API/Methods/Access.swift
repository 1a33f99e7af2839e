public import JSONCore

/// `access.grant {principal, role}`: grants a role, audited. The first grant on a store makes its caller admin in
/// the same transaction (`bootstrapped_admin`), and from then on every request needs a role.
public enum AccessGrant: MethodSpec {
    public static let name = "access.grant"
    public static let summary = "Grants a role; the first grant on a store makes its caller admin."
    public static let permission = Permission.admin
    public static let result = Schema.object(["principal": Schema.string, "role": Schema.string, "bootstrapped_admin": Schema.nullable("string")])
    public static let errors: [ErrorCode] = [.forbidden, .storeUnavailable]
    public struct Params: MethodParams {
        public let principal: String
        public let role: Role
        public static let docs: [String: FieldDoc] = ["principal": "who", "role": "the role"]
    }
}

/// `access.revoke {principal, role}`: revokes a role, audited; the last admin cannot be revoked (1004).
public enum AccessRevoke: MethodSpec {
    public static let name = "access.revoke"
    public static let summary = "Revokes a role; the last admin cannot be revoked."
    public static let permission = Permission.admin
    public static let result = Schema.object(["principal": Schema.string, "role": Schema.string, "revoked": Schema.boolean])
    public static let errors: [ErrorCode] = [.forbidden, .storeUnavailable]
    public struct Params: MethodParams {
        public let principal: String
        public let role: Role
        public static let docs: [String: FieldDoc] = ["principal": "who", "role": "the role"]
    }
}

/// `access.list`: the mode (`open` until the first grant, then `enforced`) and every grant.
public enum AccessList: MethodSpec {
    public static let name = "access.list"
    public static let summary = "The mode (open or enforced) and every grant."
    public static let permission = Permission.read
    public static let result = Schema.object(["mode": Schema.oneOf(["open", "enforced"]), "grants": Schema.array(Schema.object)])
    public typealias Params = NoParams
}

/// `session.act_for {actor}`: records whom a socket client acts for (written into its audit entries and counted by
/// the four-eyes rule); it grants nothing.
public enum SessionActFor: MethodSpec {
    public static let name = "session.act_for"
    public static let summary = "Records whom a socket client acts for; grants nothing."
    public static let permission = Permission.session
    public static let result = Schema.object(["principal": Schema.string, "on_behalf_of": Schema.nullable("string")])
    public struct Params: MethodParams {
        public let actor: String
        public static let docs: [String: FieldDoc] = ["actor": "the person"]
    }
}

/// `audit.log {key?, limit?, after?}`: audit entries in order (each with its hash and the previous one's).
public enum AuditLog: MethodSpec {
    public static let name = "audit.log"
    public static let summary = "Audit entries in order."
    public static let permission = Permission.read
    public static let result = Schema.object(["entries": Schema.array(Schema.object)])
    public struct Params: MethodParams {
        public let key: String?
        public let limit: Int?
        public let after: Int?
        public static let docs: [String: FieldDoc] = ["key": "one experiment's", "limit": "at most this many", "after": "after this seq"]
    }
}

/// `audit.head`: the chain's newest position and hash, to record somewhere the service user cannot write.
public enum AuditHead: MethodSpec {
    public static let name = "audit.head"
    public static let summary = "The chain's newest entry, to record outside the service."
    public static let permission = Permission.read
    public static let result = Schema.object(["entries": Schema.integer, "hash": Schema.string])
    public typealias Params = NoParams
}

/// `audit.verify {expected_head?}`: the chain recomputed, every record and grant replayed against the log, and,
/// when given, a head recorded earlier still on the chain (truncation and a recomputed chain are caught by it).
public enum AuditVerify: MethodSpec {
    public static let name = "audit.verify"
    public static let summary = "Recomputes the hash chain and replays it against records and grants."
    public static let permission = Permission.read
    public static let result = Schema.object(["ok": Schema.boolean, "entries": Schema.integer, "first_broken": Schema.nullable("integer"), "records_ok": Schema.boolean,
                                              "grants_ok": Schema.boolean, "expected_head": Schema.nullable("object"), "problems": Schema.array(Schema.string)])
    public struct Params: MethodParams {
        public let expected_head: Head?
        public static let docs: [String: FieldDoc] = ["expected_head": "a head {entries, hash} recorded earlier (audit.head)"]
    }
    public struct Head: Decodable, Sendable {
        public let entries: Int
        public let hash: String
        enum CodingKeys: String, CodingKey, CaseIterable { case entries, hash }
    }
}

/// `store.integrity`: SQLite's `PRAGMA integrity_check` ("ok", or the problems it found).
public enum StoreIntegrity: MethodSpec {
    public static let name = "store.integrity"
    public static let summary = "SQLite's PRAGMA integrity_check."
    public static let permission = Permission.read
    public static let result = Schema.object(["integrity_check": Schema.string])
    public typealias Params = NoParams
}
