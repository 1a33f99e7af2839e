public import JSONCore
public import Registry

let holdoutKeyDoc: FieldDoc = "the holdout's key"
let holdoutDocumentDoc = FieldDoc("the holdout document {key, protocol, unit, share, seed?, scope: {layers: [..] | \"all\", parameters?: [prefixes]}, schedule, metrics?, dimensions?, name?, owner?, description?}", schema: Schema.object)

/// `holdout.register {holdout}`: validates a holdout against its protocol (`holdout_share.max`), checks it against
/// the other holdouts and the experiments it would cover, and stores it as a draft at version 1, audited. Keys are
/// unique across experiments and holdouts. Errors: 1001 with every violation, 1002 for an error-severity finding,
/// 1007 when the key exists.
public enum HoldoutRegister: MethodSpec {
    public static let name = "holdout.register"
    public static let summary = "Validates a holdout, checks it against holdouts and the experiments it covers, stores it as a draft (version 1)."
    public static let permission = Permission.register
    public static let result = Schema.record
    public static let errors: [ErrorCode] = [.protocolViolation, .conflict, .duplicateKey, .forbidden, .storeUnavailable]
    public struct Params: MethodParams {
        public let holdout: JSON
        public static let docs: [String: FieldDoc] = ["holdout": holdoutDocumentDoc]
    }
}

/// `holdout.get {key}`: one holdout's record. Errors: 1003.
public enum HoldoutGet: MethodSpec {
    public static let name = "holdout.get"
    public static let summary = "One holdout's record."
    public static let permission = Permission.read
    public static let result = Schema.record
    public static let errors: [ErrorCode] = [.notFound, .forbidden]
    public struct Params: MethodParams {
        public let key: String
        public static let docs: [String: FieldDoc] = ["key": holdoutKeyDoc]
    }
}

/// `holdout.list {state?}`: every holdout in key order (a registry holds few).
public enum HoldoutList: MethodSpec {
    public static let name = "holdout.list"
    public static let summary = "Holdouts in key order."
    public static let permission = Permission.read
    public static let result = Schema.object(["holdouts": Schema.array(Schema.record), "count": Schema.integer])
    public struct Params: MethodParams {
        public let state: ExperimentState?
        public static let docs: [String: FieldDoc] = ["state": "only this state"]
    }
}

/// `holdout.update {key, version, changes, reason?}`: a JSON Merge Patch. A draft or a holdout in review takes any
/// change; once approved, `share`, `scope`, `seed` and `unit` are locked (1008) and a reason is required; a
/// concluded or aborted holdout no longer changes.
public enum HoldoutUpdate: MethodSpec {
    public static let name = "holdout.update"
    public static let summary = "A JSON Merge Patch on a holdout; share, scope, seed and unit are locked once approved."
    public static let permission = Permission.editOwn
    public static let result = Schema.record
    public static let errors: [ErrorCode] = [.protocolViolation, .conflict, .notFound, .versionConflict, .lockedField, .forbidden, .storeUnavailable]
    public struct Params: MethodParams {
        public let key: String
        public let version: Int
        public let changes: JSON
        public let reason: String?
        public static let docs: [String: FieldDoc] = ["key": holdoutKeyDoc, "version": versionDoc, "changes": FieldDoc("the merge patch", schema: Schema.object),
                                                      "reason": "why, recorded in the audit log (required once approved)"]
    }
}

/// `holdout.transition {key, version, to, reason?}`: `draft → review → approved → running → concluded`, `aborted`
/// from any state before `concluded`. `approved` applies the four-eyes rule; `approved` and `running` check the
/// holdout against the other holdouts and the experiments it covers.
public enum HoldoutTransition: MethodSpec {
    public static let name = "holdout.transition"
    public static let summary = "Moves a holdout through draft, review, approved, running and concluded (or aborted); four eyes at approval."
    public static let permission = Permission.transition
    public static let result = Schema.record
    public static let errors: [ErrorCode] = [.invalidTransition, .conflict, .notFound, .versionConflict, .forbidden, .protocolViolation, .storeUnavailable]
    public struct Params: MethodParams {
        public let key: String
        public let version: Int
        public let to: String
        public let reason: String?
        public static let docs: [String: FieldDoc] = [
            "key": holdoutKeyDoc, "version": versionDoc, "to": FieldDoc("the new state", schema: Schema.oneOf(["review", "approved", "running", "concluded", "aborted"])),
            "reason": reasonDoc,
        ]
    }
}
