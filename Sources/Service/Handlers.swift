import API
import JSONCore
import RPC
import Store

/// A method of ``Catalog`` with its handler: decode (done by the dispatcher from `Params`), call, encode.
protocol Handler: MethodSpec {
    static func run(_ service: RefereeService, _ params: Params, _ context: RPCContext) throws -> JSON
}

extension Handler {
    /// The typed handler over the wire's params.
    static func bind(_ service: RefereeService) -> (JSON?, RPCContext) throws -> JSON {
        { [unowned service] params, context in try run(service, try Params.decode(params), context) }
    }
}

extension RefereeService {
    /// The handler of every method of ``Catalog/methods``; a method without one stops the program at start-up
    /// (and the catalog tests), never at a request.
    static func handler(_ method: MethodDescriptor) -> any Handler.Type {
        guard let handler = method.type as? any Handler.Type else { preconditionFailure("\(method.name) has no handler in Service") }
        return handler
    }
}

extension ServerInfo: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { s.serverInfo(ctx) } }
extension ExperimentRegister: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.register(p, ctx) } }
extension ExperimentCheck: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.check(p) } }
extension ExperimentGet: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.get(p, ctx) } }
extension ExperimentList: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.list(p) } }
extension ExperimentUpdate: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.update(p, ctx) } }
extension ExperimentAmend: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.amend(p, ctx) } }
extension ExperimentTransition: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.transition(p, ctx) } }
extension HoldoutRegister: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.holdoutRegister(p, ctx) } }
extension HoldoutGet: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.holdoutGet(p) } }
extension HoldoutList: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.holdoutList(p) } }
extension HoldoutUpdate: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.holdoutUpdate(p, ctx) } }
extension HoldoutTransition: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.holdoutTransition(p, ctx) } }
extension ConflictsScan: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.scan(p) } }
extension Assign: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.assign(p, ctx) } }
extension AssignBulk: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.assignBulk(p, ctx) } }
extension StatsCompare: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try RefereeService.compare(p).json } }
extension StatsCompareBatch: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { RefereeService.compareBatch(p) } }
extension StatsChanceToBeat: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try RefereeService.chanceToBeat(p) } }
extension StatsSRM: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try RefereeService.srm(p) } }
extension StatsSampleSize: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try RefereeService.sampleSize(p) } }
extension StatsPower: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try RefereeService.power(p) } }
extension StatsMDE: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try RefereeService.mde(p) } }
extension StatsAdjust: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try RefereeService.adjust(p) } }
extension StatsCompareQuantiles: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try RefereeService.compareQuantiles(p) } }
extension StatsMannWhitney: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try RefereeService.mannWhitney(p) } }
extension ResultsRecord: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.recordResult(p, ctx) } }
extension ResultsIngest: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.ingestMethod(p, ctx) } }
extension ResultsSummary: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.summary(p) } }
extension ResultsTimeseries: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.timeseries(p) } }
extension ResultsSegments: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.segments(p) } }
extension ResultsInteractions: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.interactions(p) } }
extension ResultsSQL: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.sqlMethod(p) } }
extension ResultsPull: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.pull(p, ctx) } }
extension ResultsAggregates: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.aggregates(p) } }
extension ResultsExportMethod: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.export(p) } }
extension AccessGrant: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.grant(p, ctx) } }
extension AccessRevoke: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.revoke(p, ctx) } }
extension AccessList: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.accessList() } }
extension SessionActFor: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.actFor(p, ctx) } }
extension AuditLog: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.auditLog(p) } }
extension AuditHead: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.auditHead() } }
extension AuditVerify: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.auditVerify(p) } }
extension StoreIntegrity: Handler {
    static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { ["integrity_check": .string(try s.store.integrityCheck())] }
}
extension ProtocolList: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { s.protocolList() } }
extension ProtocolGet: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.protocolGet(p) } }
extension RPCDiscover: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { Catalog.openRPC } }
extension Shutdown: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { s.requestShutdown() } }
extension TargetingEval: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.evalTargeting(p) } }
extension GroupsPut: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.groupPut(p, ctx) } }
extension GroupsGet: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.groupGet(p) } }
extension GroupsList: Handler { static func run(_ s: RefereeService, _ p: Params, _ ctx: RPCContext) throws -> JSON { try s.groupList() } }
