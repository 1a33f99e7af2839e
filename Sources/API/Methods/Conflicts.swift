public import JSONCore

/// `conflicts.scan {at?, window?}`: every pair of live experiments that can collide (time, audience, traffic and
/// parameter or metric), each finding with its evidence: window, witness and overlap share.
public enum ConflictsScan: MethodSpec {
    public static let name = "conflicts.scan"
    public static let summary = "Every pair of live experiments (and holdouts) that can collide, with evidence; measured interactions on request."
    public static let permission = Permission.check
    public static let result = Schema.object(["findings": Schema.array(Schema.object), "errors": Schema.integer, "warnings": Schema.integer])
    public struct Params: MethodParams {
        public let at: String?
        public let window: Window?
        public let with_interactions: Bool?
        public static let docs: [String: FieldDoc] = ["at": FieldDoc("one instant", schema: Schema.time), "window": "a window {start, end} of RFC 3339 times",
                                                      "with_interactions": "also report interactions measured from ingested data between running experiments (kind interaction)"]
    }
    public struct Window: Decodable, Sendable {
        public let start: String
        public let end: String
        enum CodingKeys: String, CodingKey, CaseIterable { case start, end }
    }
}

let assignDocs: [String: FieldDoc] = [
    "layer": "the layer (or key)", "key": "an experiment's key (or layer)",
    "attributes": FieldDoc("the unit's targeting attributes", schema: Schema.object), "at": FieldDoc("when (now)", schema: Schema.time),
]

/// `assign {unit, layer | key, attributes?, at?}`: the unit's bucket in the layer (GrowthBook's hash v2), and the
/// experiment and variant that hold it at `at`, when the attributes satisfy that experiment's targeting.
public enum Assign: MethodSpec {
    public static let name = "assign"
    public static let summary = "A unit's bucket, experiment and variant in a layer."
    public static let permission = Permission.read
    public static let result = Schema.object(["unit": Schema.string, "layer": Schema.string, "bucket": Schema.integer,
                                              "experiment": Schema.nullable("string"), "variant": Schema.nullable("string"), "holdout": Schema.nullable("string")])
    public static let errors: [ErrorCode] = [.notFound, .forbidden]
    public struct Params: MethodParams, AssignmentParams {
        public let unit: String
        public let layer: String?
        public let key: String?
        public let attributes: JSON?
        public let at: String?
        public static let docs: [String: FieldDoc] = assignDocs.merging(["unit": "the unit id"]) { a, _ in a }
    }
}

/// `assign.bulk {units, layer | key, attributes?, at?}`: `assign` for many units (at most 100,000 a call), in the
/// order given; targeting is evaluated once per call.
public enum AssignBulk: MethodSpec {
    public static let name = "assign.bulk"
    public static let summary = "Assignments of many units (at most 100,000 a call), in the order given."
    public static let permission = Permission.read
    public static let result = Schema.object(["assignments": Schema.array(Schema.object)])
    public static let errors: [ErrorCode] = [.notFound, .forbidden]
    public struct Params: MethodParams, AssignmentParams {
        public let units: [String]
        public let layer: String?
        public let key: String?
        public let attributes: JSON?
        public let at: String?
        public static let docs: [String: FieldDoc] = assignDocs.merging(["units": "the unit ids"]) { a, _ in a }
    }
}

/// What `assign` and `assign.bulk` share.
public protocol AssignmentParams {
    var layer: String? { get }
    var key: String? { get }
    var attributes: JSON? { get }
    var at: String? { get }
}
