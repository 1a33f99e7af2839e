public import JSONCore
import RPC
import Store
import Foundation

/// One method of the control interface, declared once: its wire name, what it does, the permission it needs,
/// its params and result as JSON Schema, and the application errors it can answer. Dispatch, authorization,
/// the allowed-field check, `rpc.discover` (OpenRPC 1.3) and the README's method table all come from
/// ``RefereeService/catalog``; a test keeps the README and `Docs/openrpc.json` equal to it.
public struct MethodDescriptor: Sendable {
    public let name: String
    public let summary: String
    let permission: Permission
    public let params: [Param]
    public let result: JSON
    public let errors: [RPCErrorCode]
    let run: @Sendable (RefereeService, Fields, RPCContext) throws -> JSON

    /// One top-level member of a method's params.
    public struct Param: Sendable {
        public let name: String
        public let required: Bool
        public let schema: JSON
        public let summary: String
    }

    /// The README's spelling of the params: `{key, version, reason?}`.
    public var paramsSignature: String {
        params.isEmpty ? "–" : "{" + params.map { $0.name + ($0.required ? "" : "?") }.joined(separator: ", ") + "}"
    }
}

/// JSON Schema fragments for the catalog.
enum Schema {
    static let string: JSON = ["type": "string"]
    static let integer: JSON = ["type": "integer"]
    static let number: JSON = ["type": "number"]
    static let boolean: JSON = ["type": "boolean"]
    static let object: JSON = ["type": "object"]
    static let time: JSON = ["type": "string", "description": "RFC 3339 time, or a date YYYY-MM-DD (UTC)"]
    static func array(_ items: JSON) -> JSON { ["type": "array", "items": items] }
    static func oneOf(_ values: [String]) -> JSON { ["type": "string", "enum": JSON(values)] }
    static func object(_ properties: [String: JSON], required: [String] = [], additional: Bool = false) -> JSON {
        ["type": "object", "properties": .object(properties), "required": JSON(required), "additionalProperties": .bool(additional)]
    }
    static let record: JSON = object(["key": string, "state": string, "version": integer, "owner": string, "layer": ["type": ["string", "null"]],
                                      "protocol": string, "protocol_hash": string, "plan": ["type": ["object", "null"]], "document": object,
                                      "created_at": string, "updated_at": string, "created_by": string, "updated_by": string,
                                      "decision": ["type": ["string", "null"]], "buckets": array(array(integer)), "warnings": array(object)],
                                     required: ["key", "state", "version", "owner", "document"], additional: true)
    static let arm: JSON = ["type": "object", "description": "an arm's sufficient statistics, in the shape of its metric (see stats.compare)"]
    static let stateNames = ["draft", "review", "approved", "running", "stopped", "concluded", "archived", "aborted"]
}

extension RefereeService {
    private typealias P = MethodDescriptor.Param
    private static func p(_ name: String, _ schema: JSON, _ summary: String, required: Bool = false) -> P {
        P(name: name, required: required, schema: schema, summary: summary)
    }
    private static func method(_ name: String, _ summary: String, _ permission: Permission, _ params: [P], result: JSON,
                               errors: [RPCErrorCode] = [], _ run: @escaping @Sendable (RefereeService, Fields, RPCContext) throws -> JSON) -> MethodDescriptor {
        MethodDescriptor(name: name, summary: summary, permission: permission, params: params, result: result, errors: errors, run: run)
    }

    /// Every method of the control interface, in the README's order. This is the only list.
    public static let catalog: [MethodDescriptor] = {
        let key = p("key", Schema.string, "the experiment's key", required: true)
        let version = p("version", Schema.integer, "the version you read; a stale one is refused with 1006", required: true)
        let reason = p("reason", Schema.string, "why, recorded in the audit log")
        let statsErrors: [RPCErrorCode] = [.invalidInput, .forbidden]
        let compareParams: [P] = [
            p("metric", Schema.oneOf(["binomial", "continuous", "ratio", "nps"]), "the metric type", required: true),
            p("control", Schema.arm, "the control arm", required: true), p("treatment", Schema.arm, "the treatment arm", required: true),
            p("difference", Schema.oneOf(["absolute", "relative"]), "absolute (default) or relative difference"),
            p("test", Schema.string, "z, welch or student (defaults by metric)"), p("variance", Schema.oneOf(["pooled", "unpooled"]), "binomial variance"),
            p("alpha", Schema.number, "significance level (0.05)"), p("alternative", Schema.oneOf(["two-sided", "greater", "less"]), "sidedness"),
            p("analysis", Schema.oneOf(["frequentist", "sequential", "bayesian"]), "the analysis"),
            p("prior", Schema.object, "Bayesian prior {mean, stddev, proper}"), p("sequential_tuning", Schema.number, "sequential tuning parameter"),
        ]
        let powerCommon: [P] = [
            p("metric", Schema.oneOf(["binomial", "continuous"]), "the metric type", required: true),
            p("baseline", Schema.object, "{rate} for binomial, {mean, sd} for continuous", required: true),
            p("alpha", Schema.number, "significance level (0.05)"), p("alternative", Schema.oneOf(["two-sided", "one-sided"]), "sidedness"),
            p("ratio", Schema.number, "n_treatment / n_control (1)"), p("formula", Schema.string, "classic, unpooled, cohen_h (binomial); normal, t (continuous)"),
        ]
        let mde = p("mde", Schema.object, "{absolute} or {relative}", required: true)
        let power = p("power", Schema.number, "target power", required: true)
        let nControl = p("n_control", Schema.number, "units in control", required: true)
        let assignParams: [P] = [p("layer", Schema.string, "the layer (or key)"), p("key", Schema.string, "an experiment's key (or layer)"),
                                 p("attributes", Schema.object, "the unit's targeting attributes"), p("at", Schema.time, "when (now)")]
        return [
            method("server.info", "Version, store, protocols loaded, the caller's principal and the methods.", .public, [],
                   result: Schema.object(["name": Schema.string, "version": Schema.string, "principal": Schema.string, "methods": Schema.array(Schema.string)], additional: true)) { s, _, ctx in
                s.serverInfo(ctx) },
            method("experiment.register", "Validates a document against its protocol, checks conflicts, stores it as a draft (version 1).", .register,
                   [p("experiment", Schema.object, "the experiment document (Protocols/experiment.schema.json)", required: true)],
                   result: Schema.record, errors: [.protocolViolation, .conflict, .duplicateKey, .forbidden, .storeUnavailable]) { s, f, ctx in try s.register(f, ctx) },
            method("experiment.check", "A dry run of registration: violations, conflicts and the plan; nothing is written.", .check,
                   [p("experiment", Schema.object, "the document", required: true), p("with", Schema.array(Schema.object), "other proposed documents"),
                    p("proposed", Schema.boolean, "the document and those in with are meant to run: findings among them take their severity between approved experiments")],
                   result: Schema.object(["valid": Schema.boolean, "violations": Schema.array(Schema.object), "conflicts": Schema.array(Schema.object),
                                          "errors": Schema.integer, "warnings": Schema.integer, "plan": ["type": ["object", "null"]],
                                          "registered": ["type": ["object", "null"]], "checked_as": Schema.oneOf(["new", "update", "amendment", "closed"])], additional: true),
                   errors: [.forbidden]) { s, f, _ in try s.check(f) },
            method("experiment.get", "One experiment's record.", .read, [key], result: Schema.record, errors: [.notFound, .forbidden]) { s, f, _ in try s.get(f) },
            method("experiment.list", "Experiments in key order, a page at a time.", .read,
                   [p("state", Schema.oneOf(Schema.stateNames), "only this state"), p("owner", Schema.string, "only this owner"),
                    p("layer", Schema.string, "only this layer"), p("limit", Schema.integer, "page size, 1 to 1000 (100)"),
                    p("after", Schema.string, "the next_after of the previous page")],
                   result: Schema.object(["experiments": Schema.array(Schema.record), "count": Schema.integer, "next_after": ["type": ["string", "null"]]]),
                   errors: [.forbidden]) { s, f, _ in try s.list(f) },
            method("experiment.update", "A JSON Merge Patch (RFC 7386) on a draft or an experiment in review.", .editOwn,
                   [key, version, p("changes", Schema.object, "the merge patch", required: true), reason], result: Schema.record,
                   errors: [.protocolViolation, .conflict, .notFound, .versionConflict, .lockedField, .forbidden, .storeUnavailable]) { s, f, ctx in try s.update(f, ctx) },
            method("experiment.amend", "A merge patch on an approved or running experiment; fields the protocol locks are refused.", .editOwn,
                   [key, version, p("changes", Schema.object, "the merge patch", required: true), p("reason", Schema.string, "why", required: true)], result: Schema.record,
                   errors: [.protocolViolation, .conflict, .notFound, .versionConflict, .lockedField, .forbidden, .storeUnavailable]) { s, f, ctx in try s.amend(f, ctx) },
            method("experiment.transition", "Moves an experiment through its lifecycle; approved and running check conflicts and allocate buckets.", .transition,
                   [key, version, p("to", Schema.oneOf(Schema.stateNames), "the new state", required: true), reason,
                    p("decision", Schema.oneOf(["ship", "rollback", "iterate", "inconclusive"]), "required to conclude")], result: Schema.record,
                   errors: [.invalidTransition, .conflict, .notFound, .versionConflict, .forbidden, .protocolViolation, .storeUnavailable]) { s, f, ctx in try s.transition(f, ctx) },
            method("conflicts.scan", "Every pair of live experiments that can collide, with evidence.", .check,
                   [p("at", Schema.time, "one instant"), p("window", Schema.object(["start": Schema.time, "end": Schema.time], required: ["start", "end"]), "a window")],
                   result: Schema.object(["findings": Schema.array(Schema.object), "errors": Schema.integer, "warnings": Schema.integer]),
                   errors: [.forbidden]) { s, f, _ in try s.scan(f) },
            method("assign", "A unit's bucket, experiment and variant in a layer.", .read,
                   [p("unit", Schema.string, "the unit id", required: true)] + assignParams,
                   result: Schema.object(["unit": Schema.string, "layer": Schema.string, "bucket": Schema.integer,
                                          "experiment": ["type": ["string", "null"]], "variant": ["type": ["string", "null"]]]),
                   errors: [.notFound, .forbidden]) { s, f, _ in try s.assign(f) },
            method("assign.bulk", "Assignments of many units (at most 100,000 a call), in the order given.", .read,
                   [p("units", Schema.array(Schema.string), "the unit ids", required: true)] + assignParams,
                   result: Schema.object(["assignments": Schema.array(Schema.object)]), errors: [.notFound, .forbidden]) { s, f, _ in try s.assignBulk(f) },
            method("stats.compare", "Compares two arms from sufficient statistics.", .stats, compareParams,
                   result: Schema.object(["estimate": Schema.number, "se": Schema.number, "ci": Schema.object, "p_value": ["type": ["number", "null"]],
                                          "significant": Schema.boolean], additional: true), errors: statsErrors) { _, f, _ in try RefereeService.compare(f).json },
            method("stats.compare_batch", "Many comparisons at once, on every core.", .stats,
                   [p("comparisons", Schema.array(Schema.object), "params of stats.compare, each", required: true)],
                   result: Schema.object(["results": Schema.array(Schema.object)]), errors: statsErrors) { _, f, _ in try RefereeService.compareBatch(f) },
            method("stats.chance_to_beat", "Exact Bayesian P(treatment > control) under Beta posteriors (up to 1e12 units per arm).", .stats,
                   [p("control", Schema.object, "{n, successes}", required: true), p("treatment", Schema.object, "{n, successes}", required: true),
                    p("prior", Schema.object, "{alpha, beta} (1, 1)")],
                   result: Schema.object(["chance_to_beat_control": Schema.number]), errors: statsErrors) { _, f, _ in try RefereeService.chanceToBeat(f) },
            method("stats.srm", "The sample-ratio check (chi-squared).", .stats,
                   [p("observed", Schema.array(Schema.number), "units per arm", required: true), p("weights", Schema.array(Schema.number), "planned weights", required: true),
                    p("threshold", Schema.number, "p-value below which it fails (0.001)")],
                   result: Schema.object(["chi2": Schema.number, "df": Schema.number, "p_value": Schema.number, "mismatch": Schema.boolean]),
                   errors: statsErrors) { _, f, _ in try RefereeService.srm(f) },
            method("stats.sample_size", "Units per arm for a minimum detectable effect (up to 1e15).", .stats, powerCommon + [mde, power],
                   result: Schema.object(["control": Schema.number, "treatment": Schema.number], additional: true), errors: statsErrors) { _, f, _ in try RefereeService.sampleSize(f) },
            method("stats.power", "Power at a sample size.", .stats, powerCommon + [mde, nControl],
                   result: Schema.object(["power": Schema.number]), errors: statsErrors) { _, f, _ in try RefereeService.power(f) },
            method("stats.mde", "The minimum detectable effect at a sample size.", .stats, powerCommon + [power, nControl],
                   result: Schema.object(["absolute": Schema.number, "relative": ["type": ["number", "null"]]]), errors: statsErrors) { _, f, _ in try RefereeService.mde(f) },
            method("stats.adjust", "Multiple-testing correction (statsmodels multipletests).", .stats,
                   [p("p_values", Schema.array(Schema.number), "the p-values", required: true), p("method", Schema.string, "holm, bonferroni, bh, …", required: true),
                    p("alpha", Schema.number, "family-wise level (0.05)")],
                   result: Schema.object(["adjusted": Schema.array(Schema.number), "reject": Schema.array(Schema.boolean)]), errors: statsErrors) { _, f, _ in try RefereeService.adjust(f) },
            method("stats.mann_whitney", "The Mann-Whitney U test.", .stats,
                   [p("control", Schema.array(Schema.number), "values", required: true), p("treatment", Schema.array(Schema.number), "values", required: true),
                    p("alternative", Schema.oneOf(["two-sided", "greater", "less"]), "sidedness"), p("use_continuity", Schema.boolean, "continuity correction (true)")],
                   result: Schema.object(["u_treatment": Schema.number, "u_control": Schema.number, "p_value": Schema.number]), errors: statsErrors) { _, f, _ in try RefereeService.mannWhitney(f) },
            method("results.record", "Upserts one aggregate (metric, variant, day, segment).", .resultsWrite,
                   [key, p("metric", Schema.string, "a metric of the experiment", required: true), p("variant", Schema.string, "a variant", required: true),
                    p("day", Schema.string, "YYYY-MM-DD"), p("segment", Schema.string, "a segment ('' for all units)"),
                    p("stats", Schema.arm, "counts below 2^53, finite sums", required: true)],
                   result: Schema.object(["key": Schema.string, "metric": Schema.string, "variant": Schema.string, "day": Schema.string, "segment": Schema.string, "stats": Schema.object]),
                   errors: [.notFound, .invalidInput, .forbidden, .storeUnavailable]) { s, f, ctx in try s.recordResult(f, ctx) },
            method("results.ingest", "Loads a unit-level CSV or JSON-lines file into aggregates; all or nothing unless allow_partial.", .resultsWrite,
                   [key, p("path", Schema.string, "the file (over the socket: a regular file the caller owns)", required: true),
                    p("format", Schema.oneOf(["csv", "jsonl"]), "from the file name by default"), p("allow_partial", Schema.boolean, "load the valid rows"),
                    p("strict_dates", Schema.boolean, "rows dated outside the schedule reject the file (default: they are left out and counted)")],
                   result: Schema.object(["loaded": Schema.boolean, "rows_read": Schema.integer, "units_loaded": Schema.integer], additional: true),
                   errors: [.notFound, .invalidInput, .ioError, .forbidden, .storeUnavailable]) { s, f, ctx in try s.ingestMethod(f, ctx) },
            method("results.summary", "The pre-registered analysis and a decision.", .read,
                   [key, p("as_of", Schema.time, "read as of this time"), p("segment", Schema.string, "one segment")],
                   result: Schema.object(["experiment": Schema.string, "as_of": Schema.string, "srm": Schema.object, "metrics": Schema.array(Schema.object),
                                          "progress": Schema.object, "decision": Schema.object], additional: true),
                   errors: [.notFound, .invalidInput, .forbidden]) { s, f, _ in try s.summary(f) },
            method("results.timeseries", "Cumulative estimates per day and variant.", .read,
                   [key, p("metric", Schema.string, "the metric (primary)"), p("segment", Schema.string, "one segment")],
                   result: Schema.object(["metric": Schema.string, "points": Schema.array(Schema.object)]), errors: [.notFound, .forbidden]) { s, f, _ in try s.timeseries(f) },
            method("access.grant", "Grants a role; the first grant on a store makes its caller admin.", .admin,
                   [p("principal", Schema.string, "who", required: true), p("role", Schema.oneOf(Role.allCases.map(\.rawValue)), "the role", required: true)],
                   result: Schema.object(["principal": Schema.string, "role": Schema.string, "bootstrapped_admin": ["type": ["string", "null"]]]),
                   errors: [.forbidden, .storeUnavailable]) { s, f, ctx in try s.grant(f, ctx) },
            method("access.revoke", "Revokes a role; the last admin cannot be revoked.", .admin,
                   [p("principal", Schema.string, "who", required: true), p("role", Schema.oneOf(Role.allCases.map(\.rawValue)), "the role", required: true)],
                   result: Schema.object(["principal": Schema.string, "role": Schema.string, "revoked": Schema.boolean]),
                   errors: [.forbidden, .storeUnavailable]) { s, f, ctx in try s.revoke(f, ctx) },
            method("access.list", "The mode (open or enforced) and every grant.", .read, [],
                   result: Schema.object(["mode": Schema.oneOf(["open", "enforced"]), "grants": Schema.array(Schema.object)]), errors: [.forbidden]) { s, _, _ in try s.accessList() },
            method("session.act_for", "Records whom a socket client acts for; grants nothing.", .read,
                   [p("actor", Schema.string, "the person", required: true)],
                   result: Schema.object(["principal": Schema.string, "on_behalf_of": ["type": ["string", "null"]]]), errors: [.forbidden]) { s, f, ctx in try s.actFor(f, ctx) },
            method("audit.log", "Audit entries in order.", .read,
                   [p("key", Schema.string, "one experiment's"), p("limit", Schema.integer, "at most this many"), p("after", Schema.integer, "after this seq")],
                   result: Schema.object(["entries": Schema.array(Schema.object)]), errors: [.forbidden]) { s, f, _ in try s.auditLog(f) },
            method("audit.head", "The chain's newest entry, to record outside the service.", .read, [],
                   result: Schema.object(["entries": Schema.integer, "hash": Schema.string]), errors: [.forbidden]) { s, _, _ in try s.auditHead() },
            method("audit.verify", "Recomputes the hash chain and replays it against records and grants.", .read,
                   [p("expected_head", Schema.object(["entries": Schema.integer, "hash": Schema.string], required: ["entries", "hash"]), "a head recorded earlier")],
                   result: Schema.object(["ok": Schema.boolean, "entries": Schema.integer, "first_broken": ["type": ["integer", "null"]], "records_ok": Schema.boolean,
                                          "grants_ok": Schema.boolean, "expected_head": ["type": ["object", "null"]], "problems": Schema.array(Schema.string)]),
                   errors: [.forbidden]) { s, f, _ in try s.auditVerify(f) },
            method("store.integrity", "SQLite's PRAGMA integrity_check.", .read, [],
                   result: Schema.object(["integrity_check": Schema.string]), errors: [.forbidden]) { s, _, _ in ["integrity_check": .string(try s.store.integrityCheck())] },
            method("protocol.list", "Protocols loaded and the metrics catalog.", .read, [],
                   result: Schema.object(["protocols": Schema.array(Schema.object), "metrics": Schema.array(Schema.object)]), errors: [.forbidden]) { s, _, _ in s.protocolList() },
            method("protocol.get", "One protocol's rules, hash and source text.", .read, [p("name", Schema.string, "the protocol", required: true)],
                   result: Schema.object, errors: [.notFound, .forbidden]) { s, f, _ in try s.protocolGet(f) },
            method("rpc.discover", "This interface as an OpenRPC 1.3 document.", .public, [],
                   result: ["type": "object", "description": "an OpenRPC 1.3 document (Docs/openrpc.json)"]) { _, _, _ in RefereeService.openRPC },
            method("shutdown", "Stops the daemon after answering (refused over the shared socket: SIGTERM stops a service).", .shutdown, [],
                   result: Schema.object(["stopping": Schema.boolean]), errors: [.forbidden]) { s, _, _ in s.requestShutdown() },
        ]
    }()

    /// Whether a method only reads (a CLI command running it must not create a store).
    public static func isReadOnly(_ method: String) -> Bool {
        guard let m = catalogByName[method] else { return false }
        switch m.permission {
        case .public, .read, .check, .stats: return method != "session.act_for"
        default: return false
        }
    }

    /// Whether a method reads or writes the registry (statistics and the self-description do not).
    public static func needsRegistry(_ method: String) -> Bool {
        guard let m = catalogByName[method] else { return true }
        switch m.permission {
        case .public, .stats: return false
        default: return true
        }
    }

    static let catalogByName: [String: MethodDescriptor] = Dictionary(uniqueKeysWithValues: catalog.map { ($0.name, $0) })

    /// The catalog as an OpenRPC 1.3 document (`rpc.discover`, `Docs/openrpc.json`).
    public static let openRPC: JSON = {
        func error(_ code: RPCErrorCode) -> JSON {
            ["code": JSON(code.rawValue), "message": .string(errorMessages[code.rawValue] ?? "error"), "data": ["reason": .string(errorReasons[code.rawValue] ?? "error")]]
        }
        let standard: [RPCErrorCode] = [.invalidParams]
        let methods: [JSON] = catalog.map { m in
            ["name": .string(m.name), "summary": .string(m.summary), "paramStructure": "by-name",
             "params": .array(m.params.map { ["name": .string($0.name), "summary": .string($0.summary), "required": .bool($0.required), "schema": $0.schema] }),
             "result": ["name": .string(m.name.replacingOccurrences(of: ".", with: "_") + "_result"), "schema": m.result],
             "errors": .array((standard + m.errors).map(error))]
        }
        return ["openrpc": "1.3.2",
                "info": ["title": "Referee control interface", "version": .string(RefereeService.version),
                         "description": "JSON-RPC 2.0, one JSON object per line, over stdin/stdout or a Unix socket (referee serve)."],
                "methods": .array(methods)]
    }()

    static let errorReasons: [Int: String] = [
        -32602: "invalid_params", 1001: "protocol_violation", 1002: "conflict", 1003: "not_found", 1004: "forbidden", 1005: "invalid_transition",
        1006: "version_conflict", 1007: "duplicate_key", 1008: "locked_field", 1009: "invalid_input", 1010: "io_error", 1011: "store_unavailable",
    ]
    static let errorMessages: [Int: String] = [
        -32602: "Invalid params (data.path names the field)", 1001: "Protocol violation (data.violations)", 1002: "Conflict (data.conflicts)",
        1003: "Not found", 1004: "Forbidden", 1005: "Invalid transition (data.allowed)", 1006: "Version conflict (data.expected, data.actual)",
        1007: "Duplicate key", 1008: "Locked field (data.paths)", 1009: "Invalid input (data.field)", 1010: "I/O error (data.path)",
        1011: "Store unavailable",
    ]
}
