public import JSONCore

let groupNameDoc: FieldDoc = "the saved group's name (letters, digits, '.', '_', '-'; at most 128 characters)"

/// `targeting.eval {targeting | key, attributes}`: whether a unit with these attributes satisfies a condition (given,
/// or the targeting of a registered experiment), as GrowthBook's SDKs decide it, with the reason for every clause:
/// `trace` lists each clause's path in the condition, the attribute path it reads, the value found there (null when
/// missing) and whether it holds. Saved groups are read from the registry. Errors: -32602 naming the bad clause or
/// attribute; 1001 when the condition is refused at registration (unknown operator, regular expression); 1003.
public enum TargetingEval: MethodSpec {
    public static let name = "targeting.eval"
    public static let summary = "Whether attributes satisfy a targeting condition, and why, clause by clause."
    public static let permission = Permission.read
    public static let result = Schema.object(["matches": Schema.boolean, "trace": Schema.array(Schema.object), "groups": Schema.array(Schema.string)])
    public static let errors: [ErrorCode] = [.protocolViolation, .notFound, .forbidden]
    public struct Params: MethodParams {
        public let targeting: JSON?
        public let key: String?
        public let attributes: JSON?
        public static let docs: [String: FieldDoc] = [
            "targeting": FieldDoc("a condition (GrowthBook's targeting language); or give key", schema: Schema.object),
            "key": "a registered experiment whose targeting to evaluate",
            "attributes": FieldDoc("the unit's attributes (nested objects and arrays allowed)", schema: Schema.object),
        ]
    }
}

/// `groups.put {name, values, reason, version?}`: creates or replaces a saved group (`$inGroup`/`$notInGroup`),
/// versioned and audited (`pm` or `admin`). With `version`, refuses unless the stored group is at that version (1006).
/// A change re-checks the conflicts of every approved or running experiment whose targeting names the group and
/// returns the findings that are new; an error-severity one refuses the change (1002) and nothing is written.
public enum GroupsPut: MethodSpec {
    public static let name = "groups.put"
    public static let summary = "Creates or replaces a saved group; re-checks the conflicts of live experiments that use it."
    public static let permission = Permission.groups
    public static let result = Schema.object(["group": Schema.object, "previous_version": Schema.nullable("integer"), "experiments": Schema.array(Schema.string),
                                              "conflicts": Schema.array(Schema.object)])
    public static let errors: [ErrorCode] = [.conflict, .versionConflict, .forbidden, .storeUnavailable]
    public struct Params: MethodParams {
        public let name: String
        public let values: [JSON]
        public let reason: String
        public let version: Int?
        public static let docs: [String: FieldDoc] = [
            "name": groupNameDoc, "values": FieldDoc("the members: strings, numbers or booleans (at most 100,000)", schema: Schema.array(Schema.object)),
            "reason": reasonDoc, "version": "the version being replaced (optimistic concurrency)",
        ]
    }
}

/// `groups.get {name}`: a saved group's current version. Errors: 1003.
public enum GroupsGet: MethodSpec {
    public static let name = "groups.get"
    public static let summary = "A saved group's current version and values."
    public static let permission = Permission.read
    public static let result = Schema.object(["name": Schema.string, "version": Schema.integer, "values": Schema.array(Schema.object), "count": Schema.integer,
                                              "reason": Schema.string, "updated_at": Schema.string, "updated_by": Schema.string])
    public static let errors: [ErrorCode] = [.notFound, .forbidden]
    public struct Params: MethodParams {
        public let name: String
        public static let docs: [String: FieldDoc] = ["name": groupNameDoc]
    }
}

/// `groups.list`: every saved group without its values (name, version, count, reason, updated_at, updated_by) and
/// the experiments whose targeting names each.
public enum GroupsList: MethodSpec {
    public static let name = "groups.list"
    public static let summary = "Every saved group (without values) and the experiments that use it."
    public static let permission = Permission.read
    public static let result = Schema.object(["groups": Schema.array(Schema.object)])
    public typealias Params = NoParams
}
