public import JSONCore
public import Registry



let keyDoc: FieldDoc = "the experiment's key"
let versionDoc: FieldDoc = "the version you read; a stale one is refused with 1006"
let reasonDoc: FieldDoc = "why, recorded in the audit log"
let documentDoc = FieldDoc("the experiment document (Protocols/experiment.schema.json)", schema: Schema.object)
let patchDoc = FieldDoc("a JSON Merge Patch (RFC 7386) of the document", schema: Schema.object)

/// `experiment.register {experiment}`: validates the document against the protocol it names, checks conflicts with
/// every live experiment, and stores it as a draft at version 1, audited. The caller is its owner unless the
/// document names one (with grants, only an admin names another). Errors: 1001 with every violation; 1002 when a
/// conflict of error severity is found (a warning is returned in `warnings`); 1007 when the key exists.
public enum ExperimentRegister: MethodSpec {
    public static let name = "experiment.register"
    public static let summary = "Validates a document against its protocol, checks conflicts, stores it as a draft (version 1)."
    public static let permission = Permission.register
    public static let result = Schema.record
    public static let errors: [ErrorCode] = [.protocolViolation, .conflict, .duplicateKey, .forbidden, .storeUnavailable]
    public struct Params: MethodParams {
        public let experiment: JSON
        public static let docs: [String: FieldDoc] = ["experiment": documentDoc]
    }
}

/// `experiment.check {experiment, with?, proposed?}`: everything registration would do, as a report; nothing is
/// written. A registered key is checked as the update or amendment it would be (`checked_as`).
public enum ExperimentCheck: MethodSpec {
    public static let name = "experiment.check"
    public static let summary = "A dry run of registration: violations, conflicts and the plan; nothing is written."
    public static let permission = Permission.check
    public static let result = Schema.object(["valid": Schema.boolean, "violations": Schema.array(Schema.object), "conflicts": Schema.array(Schema.object),
                                              "errors": Schema.integer, "warnings": Schema.integer, "plan": Schema.nullable("object"),
                                              "registered": Schema.nullable("object"), "checked_as": Schema.oneOf(["new", "update", "amendment", "closed"])],
                                             additional: true)
    public struct Params: MethodParams {
        public let experiment: JSON
        public let with: [JSON]?
        public let proposed: Bool?
        public static let docs: [String: FieldDoc] = [
            "experiment": FieldDoc("the document", schema: Schema.object),
            "with": FieldDoc("other proposed documents", schema: Schema.array(Schema.object)),
            "proposed": "the document and those in with are meant to run: findings among them take their severity between approved experiments",
        ]
    }
}

/// `experiment.get {key}`: one experiment's record, its stored document passed through as written. Errors: 1003.
public enum ExperimentGet: MethodSpec {
    public static let name = "experiment.get"
    public static let summary = "One experiment's record."
    public static let permission = Permission.read
    public static let result = Schema.record
    public static let errors: [ErrorCode] = [.notFound, .forbidden]
    public struct Params: MethodParams {
        public let key: String
        public static let docs: [String: FieldDoc] = ["key": keyDoc]
        public static func decodeFast(_ members: [String: JSON]) -> Params? {
            guard members.count == 1, case .string(let key)? = members["key"] else { return nil }
            return Params(key: key)
        }
    }
}

/// `experiment.list {state?, owner?, layer?, limit?, after?}`: records in key order; a page ends after `limit`
/// records or about 16 MiB, and `next_after` (null on the last page) is the `after` of the next.
public enum ExperimentList: MethodSpec {
    public static let name = "experiment.list"
    public static let summary = "Experiments in key order, a page at a time."
    public static let permission = Permission.read
    public static let result = Schema.object(["experiments": Schema.array(Schema.record), "count": Schema.integer, "next_after": Schema.nullable("string")])
    public struct Params: MethodParams {
        public let state: ExperimentState?
        public let owner: String?
        public let layer: String?
        public let limit: Int?
        public let after: String?
        public static let docs: [String: FieldDoc] = [
            "state": "only this state", "owner": "only this owner", "layer": "only this layer",
            "limit": "page size, 1 to 1000 (100)", "after": "the next_after of the previous page",
        ]
    }
}

/// `experiment.update {key, version, changes, reason?}`: a JSON Merge Patch on a draft or an experiment in review,
/// re-validated and re-checked for conflicts in the same transaction. Errors: 1001, 1002, 1003, 1006 (stale
/// version), 1008 (the key, or an experiment past review: use experiment.amend).
public enum ExperimentUpdate: MethodSpec {
    public static let name = "experiment.update"
    public static let summary = "A JSON Merge Patch (RFC 7386) on a draft or an experiment in review."
    public static let permission = Permission.editOwn
    public static let result = Schema.record
    public static let errors: [ErrorCode] = [.protocolViolation, .conflict, .notFound, .versionConflict, .lockedField, .forbidden, .storeUnavailable]
    public struct Params: MethodParams {
        public let key: String
        public let version: Int
        public let changes: JSON
        public let reason: String?
        public static let docs: [String: FieldDoc] = ["key": keyDoc, "version": versionDoc, "changes": FieldDoc("the merge patch", schema: Schema.object), "reason": reasonDoc]
    }
}

/// `experiment.amend {key, version, changes, reason}`: a merge patch on an approved or running experiment; fields
/// its protocol locks are refused with 1008 naming them; a running experiment keeps or re-sizes its buckets.
public enum ExperimentAmend: MethodSpec {
    public static let name = "experiment.amend"
    public static let summary = "A merge patch on an approved or running experiment; fields the protocol locks are refused."
    public static let permission = Permission.editOwn
    public static let result = Schema.record
    public static let errors: [ErrorCode] = [.protocolViolation, .conflict, .notFound, .versionConflict, .lockedField, .forbidden, .storeUnavailable]
    public struct Params: MethodParams {
        public let key: String
        public let version: Int
        public let changes: JSON
        public let reason: String
        public static let docs: [String: FieldDoc] = ["key": keyDoc, "version": versionDoc, "changes": FieldDoc("the merge patch", schema: Schema.object), "reason": "why"]
    }
}

/// `experiment.transition {key, version, to, reason?, decision?}`: moves an experiment through its lifecycle.
/// `approved` applies the four-eyes rule; `approved` and `running` check conflicts and allocate buckets;
/// `concluded` needs a decision. Errors: 1005 naming the allowed next states, 1002, 1006, 1004.
public enum ExperimentTransition: MethodSpec {
    public static let name = "experiment.transition"
    public static let summary = "Moves an experiment through its lifecycle; approved and running check conflicts and allocate buckets."
    public static let permission = Permission.transition
    public static let result = Schema.record
    public static let errors: [ErrorCode] = [.invalidTransition, .conflict, .notFound, .versionConflict, .forbidden, .protocolViolation, .storeUnavailable]
    public struct Params: MethodParams {
        public let key: String
        public let version: Int
        /// A string rather than a state: an unknown state is an invalid transition (1005) naming the allowed ones.
        public let to: String
        public let reason: String?
        public let decision: String?
        public static let docs: [String: FieldDoc] = [
            "key": keyDoc, "version": versionDoc, "to": FieldDoc("the new state", schema: Schema.oneOf(Schema.stateNames)), "reason": reasonDoc,
            "decision": FieldDoc("required to conclude", schema: Schema.oneOf(Decision.allCases.map(\.rawValue))),
        ]
    }
}
