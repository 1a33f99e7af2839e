public import JSONCore

/// One method of the control interface, as a type: its wire name, what it does, the permission it needs, its
/// params (a `Decodable` type: its members are the only allowed fields, decoded with paths in every refusal and
/// read back as JSON Schema by ``SchemaProbe``), its result's JSON Schema and the application errors it answers.
///
/// ``Catalog/methods`` lists every method once; dispatch, authorization, the CLI, `rpc.discover` and the
/// README's method table come from it. The handlers live in `Service`, one conformance per method.
public protocol MethodSpec: Sendable {
    associatedtype Params: MethodParams
    static var name: String { get }
    static var summary: String { get }
    static var permission: Permission { get }
    static var result: JSON { get }
    static var errors: [ErrorCode] { get }
}

extension MethodSpec {
    public static var errors: [ErrorCode] { [.forbidden] }
}

/// A method's params. Declare members in the order a handler checks them (the first problem is the one reported).
public protocol MethodParams: Decodable, Sendable {
    /// What each member means (every member must have an entry), and its schema where the Swift type says too
    /// little (a document, a time, an arm's statistics).
    static var docs: [String: FieldDoc] { get }

    /// The params of the commonest well-formed request without the general decoder (a method on the hot path
    /// answers in about 2 µs, and `Decodable` costs 0.2 µs of it); nil hands the request to ``JSONValueDecoder``,
    /// which also reports every problem. `APITests` checks that both agree.
    static func decodeFast(_ members: [String: JSON]) -> Self?
}

extension MethodParams {
    public static func decodeFast(_ members: [String: JSON]) -> Self? { nil }

    /// Decodes params: the fast path when it applies, else the general decoder.
    public static func decode(_ params: JSON?) throws(FieldError) -> Self {
        if case .object(let members)? = params, let fast = decodeFast(members) { return fast }
        return try JSONValueDecoder.decode(Self.self, from: params)
    }
}

/// The documentation of one member of a method's params.
public struct FieldDoc: Sendable, ExpressibleByStringLiteral {
    public let summary: String
    public let schema: JSON?
    public init(_ summary: String, schema: JSON? = nil) {
        self.summary = summary
        self.schema = schema
    }
    public init(stringLiteral summary: String) { self.init(summary) }
}

/// Params of a method that takes none.
public struct NoParams: MethodParams {
    public static let docs: [String: FieldDoc] = [:]
}

/// What a method needs, declared with it.
public enum Permission: Sendable {
    /// Anyone, also without a role on an enforced store (`server.info`, `rpc.discover`).
    case `public`
    case read, check, stats, register, editOwn, transition, resultsWrite, admin, shutdown
    /// Changing saved groups (`groups.put`).
    case groups
    /// Reading the registry in a way that records something about the caller's session (`session.act_for`).
    case session
}

/// Roles and what each may do.
///
/// Until the first `access.grant` a store is in open mode: every principal may do everything (as any local tool
/// whose user can also open the store file). The first principal to grant a role becomes `admin` in the same
/// transaction, and from then on every request is checked against the roles held in the store.
public enum Role: String, CaseIterable, ParamChoice {
    case admin, pm, approver, ci, analyst

    /// The roles that allow `permission` (admin allows everything).
    public static func allowing(_ permission: Permission, transitionTo: String?) -> [Role] {
        switch permission {
        case .public, .read, .session: allCases
        case .check: [.admin, .ci, .pm]
        case .stats: [.admin, .ci, .analyst]
        case .register, .groups: [.admin, .pm]
        case .editOwn: [.admin, .pm]
        case .transition: transitionTo == "approved" ? [.admin, .approver] : [.admin, .pm]
        case .resultsWrite: [.admin, .analyst]
        case .admin, .shutdown: [.admin]
        }
    }
}

/// The application's error vocabulary on the wire: code, the `reason` every error carries in `data`, and what
/// else `data` holds. `Service` maps each module's errors to these in one place.
public struct ErrorCode: Sendable, Hashable {
    public let code: Int
    public let reason: String
    public let message: String

    public static let invalidParams = ErrorCode(code: -32602, reason: "invalid_params", message: "Invalid params (data.path names the field)")
    public static let protocolViolation = ErrorCode(code: 1001, reason: "protocol_violation", message: "Protocol violation (data.violations)")
    public static let conflict = ErrorCode(code: 1002, reason: "conflict", message: "Conflict (data.conflicts)")
    public static let notFound = ErrorCode(code: 1003, reason: "not_found", message: "Not found")
    public static let forbidden = ErrorCode(code: 1004, reason: "forbidden", message: "Forbidden")
    public static let invalidTransition = ErrorCode(code: 1005, reason: "invalid_transition", message: "Invalid transition (data.allowed)")
    public static let versionConflict = ErrorCode(code: 1006, reason: "version_conflict", message: "Version conflict (data.expected, data.actual)")
    public static let duplicateKey = ErrorCode(code: 1007, reason: "duplicate_key", message: "Duplicate key")
    public static let lockedField = ErrorCode(code: 1008, reason: "locked_field", message: "Locked field (data.paths)")
    public static let invalidInput = ErrorCode(code: 1009, reason: "invalid_input", message: "Invalid input (data.field)")
    /// Input or output failed (cannot read, no data, disk full): `data.path` names the file.
    public static let ioError = ErrorCode(code: 1010, reason: "io_error", message: "I/O error (data.path)")
    public static let storeUnavailable = ErrorCode(code: 1011, reason: "store_unavailable", message: "Store unavailable")
    /// A warehouse query gave no answer: `data.kind` is connect, query, lost or timeout; nothing was stored.
    public static let warehouseError = ErrorCode(code: 1012, reason: "warehouse_error", message: "Warehouse query failed (data.kind)")

    public static let all: [ErrorCode] = [invalidParams, protocolViolation, conflict, notFound, forbidden, invalidTransition, versionConflict,
                                          duplicateKey, lockedField, invalidInput, ioError, storeUnavailable, warehouseError]
}

/// JSON Schema fragments for results and for members whose Swift type is a JSON value.
public enum Schema {
    public static let string: JSON = ["type": "string"]
    public static let integer: JSON = ["type": "integer"]
    public static let number: JSON = ["type": "number"]
    public static let boolean: JSON = ["type": "boolean"]
    public static let object: JSON = ["type": "object"]
    public static let time: JSON = ["type": "string", "description": "RFC 3339 time, or a date YYYY-MM-DD (UTC)"]
    public static func array(_ items: JSON) -> JSON { ["type": "array", "items": items] }
    public static func oneOf(_ values: [String]) -> JSON { ["type": "string", "enum": JSON(values)] }
    public static func nullable(_ type: String) -> JSON { ["type": [.string(type), "null"]] }
    public static func object(_ properties: [String: JSON], required: [String] = [], additional: Bool = false) -> JSON {
        ["type": "object", "properties": .object(properties), "required": JSON(required), "additionalProperties": .bool(additional)]
    }
    public static let stateNames = ["draft", "review", "approved", "running", "stopped", "concluded", "archived", "aborted"]
    public static let record: JSON = object(["key": string, "state": string, "version": integer, "owner": string, "layer": nullable("string"),
                                             "protocol": string, "protocol_hash": string, "plan": nullable("object"), "document": object,
                                             "created_at": string, "updated_at": string, "created_by": string, "updated_by": string,
                                             "decision": nullable("string"), "buckets": array(array(integer)), "warnings": array(object)],
                                            required: ["key", "state", "version", "owner", "document"], additional: true)
    public static let arm: JSON = ["type": "object", "description": "an arm's sufficient statistics, in the shape of its metric (see stats.compare); a quantile arm is {values: [...]} or {sketch}"]
}
