public import JSONCore

/// One method of the catalog, read from its ``MethodSpec`` type once.
public struct MethodDescriptor: Sendable {
    public let name: String
    public let summary: String
    public let permission: Permission
    public let params: [Param]
    public let result: JSON
    public let errors: [ErrorCode]
    public let type: any MethodSpec.Type

    /// One top-level member of a method's params.
    public struct Param: Sendable {
        public let name: String
        public let required: Bool
        public let schema: JSON
        public let summary: String
    }

    init<M: MethodSpec>(_ method: M.Type) {
        name = M.name
        summary = M.summary
        permission = M.permission
        result = M.result
        errors = M.errors
        type = method
        params = SchemaProbe.fields(of: M.Params.self).map { field in
            guard let doc = M.Params.docs[field.name] else { preconditionFailure("\(M.name): params member \(field.name) has no entry in docs") }
            return Param(name: field.name, required: field.required, schema: doc.schema ?? field.schema, summary: doc.summary)
        }
        let extra = Set(M.Params.docs.keys).subtracting(params.map(\.name))
        precondition(extra.isEmpty, "\(M.name): docs describe members the params do not have: \(extra.sorted())")
    }

    /// The allowed top-level members.
    public var allowedFields: Set<String> { Set(params.map(\.name)) }

    /// The README's spelling of the params: `{key, version, reason?}`.
    public var paramsSignature: String {
        params.isEmpty ? "–" : "{" + params.map { $0.name + ($0.required ? "" : "?") }.joined(separator: ", ") + "}"
    }

    /// Whether the method only reads (a CLI command running it must not create a store).
    public var isReadOnly: Bool {
        switch permission {
        case .public, .read, .check, .stats: true
        default: false
        }
    }

    /// Whether the method reads or writes the registry (statistics and the self-description do not).
    public var needsRegistry: Bool {
        switch permission {
        case .public, .stats: false
        default: true
        }
    }
}

/// The control interface: every method, once.
public enum Catalog {
    public static let version = "0.1.0"

    /// Every method of the control interface, in the README's order. This is the only list.
    public static let methods: [MethodDescriptor] = [
        MethodDescriptor(ServerInfo.self),
        MethodDescriptor(ExperimentRegister.self), MethodDescriptor(ExperimentCheck.self), MethodDescriptor(ExperimentGet.self),
        MethodDescriptor(ExperimentList.self), MethodDescriptor(ExperimentUpdate.self), MethodDescriptor(ExperimentAmend.self),
        MethodDescriptor(ExperimentTransition.self),
        MethodDescriptor(HoldoutRegister.self), MethodDescriptor(HoldoutGet.self), MethodDescriptor(HoldoutList.self),
        MethodDescriptor(HoldoutUpdate.self), MethodDescriptor(HoldoutTransition.self),
        MethodDescriptor(ConflictsScan.self), MethodDescriptor(Assign.self), MethodDescriptor(AssignBulk.self),
        MethodDescriptor(TargetingEval.self), MethodDescriptor(GroupsPut.self), MethodDescriptor(GroupsGet.self), MethodDescriptor(GroupsList.self),
        MethodDescriptor(StatsCompare.self), MethodDescriptor(StatsCompareBatch.self), MethodDescriptor(StatsChanceToBeat.self),
        MethodDescriptor(StatsSRM.self), MethodDescriptor(StatsSampleSize.self), MethodDescriptor(StatsPower.self), MethodDescriptor(StatsMDE.self),
        MethodDescriptor(StatsAdjust.self), MethodDescriptor(StatsMannWhitney.self), MethodDescriptor(StatsCompareQuantiles.self),
        MethodDescriptor(ResultsRecord.self), MethodDescriptor(ResultsIngest.self), MethodDescriptor(ResultsSummary.self),
        MethodDescriptor(ResultsTimeseries.self), MethodDescriptor(ResultsSegments.self), MethodDescriptor(ResultsInteractions.self), MethodDescriptor(ResultsExportMethod.self),
        MethodDescriptor(ResultsSQL.self), MethodDescriptor(ResultsPull.self), MethodDescriptor(ResultsAggregates.self),
        MethodDescriptor(AccessGrant.self), MethodDescriptor(AccessRevoke.self), MethodDescriptor(AccessList.self), MethodDescriptor(SessionActFor.self),
        MethodDescriptor(AuditLog.self), MethodDescriptor(AuditHead.self), MethodDescriptor(AuditVerify.self), MethodDescriptor(StoreIntegrity.self),
        MethodDescriptor(ProtocolList.self), MethodDescriptor(ProtocolGet.self), MethodDescriptor(RPCDiscover.self), MethodDescriptor(Shutdown.self),
    ]

    public static let byName: [String: MethodDescriptor] = Dictionary(uniqueKeysWithValues: methods.map { ($0.name, $0) })

    /// The catalog as an OpenRPC 1.3 document (`rpc.discover`, `Docs/openrpc.json`).
    public static let openRPC: JSON = {
        func error(_ code: ErrorCode) -> JSON {
            ["code": JSON(code.code), "message": .string(code.message), "data": ["reason": .string(code.reason)]]
        }
        func param(_ p: MethodDescriptor.Param) -> JSON {
            ["name": .string(p.name), "summary": .string(p.summary), "required": .bool(p.required), "schema": p.schema]
        }
        func method(_ m: MethodDescriptor) -> JSON {
            let result: JSON = ["name": .string(m.name.split(separator: ".").joined(separator: "_") + "_result"), "schema": m.result]
            let errors: [JSON] = ([ErrorCode.invalidParams] + m.errors).map(error)
            return ["name": .string(m.name), "summary": .string(m.summary), "paramStructure": "by-name",
                    "params": .array(m.params.map(param)), "result": result, "errors": .array(errors)]
        }
        return ["openrpc": "1.3.2",
                "info": ["title": "Referee control interface", "version": .string(version),
                         "description": "JSON-RPC 2.0, one JSON object per line, over stdin/stdout or a Unix socket (referee serve)."],
                "methods": .array(Catalog.methods.map(method))]
    }()
}
