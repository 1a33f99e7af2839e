import Foundation
import API
import RPC
import Registry
import Store
import JSONCore
import Warehouse
import WarehouseClient

extension RefereeService {
    /// The named source of `warehouse.json`, or the only one.
    func warehouseSource(_ name: String?) throws -> WarehouseSource {
        guard let warehouse else {
            throw FieldError(path: "source", message: "no warehouse is defined: add \(WarehouseDefinitions.fileName) beside the protocols (\(protocols.origin)); see Protocols/README.md")
        }
        if let name {
            guard let source = warehouse.sources[name] else {
                throw FieldError(path: "source", message: "\"\(name)\" is not a source of \(WarehouseDefinitions.fileName); its sources are \(warehouse.sources.keys.sorted().joined(separator: ", "))")
            }
            return source
        }
        guard warehouse.sources.count == 1, let only = warehouse.sources.values.first else {
            throw FieldError(path: "source", message: "is required: \(WarehouseDefinitions.fileName) has several sources (\(warehouse.sources.keys.sorted().joined(separator: ", ")))")
        }
        return only
    }

    /// The experiment's query on `source`: exposures in its schedule, as of `asOf` (by default now, or, once the
    /// schedule and the longest window have passed, their end, so a concluded experiment's query never changes).
    func warehouseQuery(_ c: ResultsContext, source: WarehouseSource, dialect: Dialect?, asOf text: String?) throws -> WarehouseQuery {
        guard let start = c.doc.start, let end = c.doc.end else {
            throw FieldError(path: "key", message: "\(c.doc.key) has no schedule (start and end); the warehouse query reads exposures within it")
        }
        let longest = c.metrics.compactMap { source.metrics[$0.name] }.flatMap(\.measures).compactMap(\.window.toSeconds).max() ?? 0
        let asOf = try text.map { _ in try asOfTime(text) } ?? min(now(), end.adding(days: Double(max(longest, 0)) / 86_400))
        var request = QueryRequest(experimentKey: c.doc.key, variants: c.doc.variants.map(\.key), start: start, end: end, asOf: asOf,
                                   dimensions: c.doc.dimensions, metrics: c.metrics.map(\.name))
        for m in c.metrics { if let capping = c.catalog.metrics[m.name]?.capping { request.capping[m.name] = capping } }
        do { return try source.query(request, dialect: dialect) } catch { throw FieldError(path: error.field, message: error.message) }
    }

    /// `results.sql {key, source?, dialect?, as_of?}`.
    func sqlMethod(_ p: ResultsSQL.Params) throws -> JSON {
        let c = try resultsContext(p.key)
        let query = try warehouseQuery(c, source: try warehouseSource(p.source), dialect: p.dialect.flatMap { Dialect(rawValue: $0.rawValue) }, asOf: p.as_of)
        guard case .object(var o) = query.json else { return query.json }
        o["experiment"] = .string(c.doc.key)
        return .object(o)
    }

    /// `results.pull {key, source, as_of?}`: the query run on a PostgreSQL source, its aggregates stored in one transaction.
    func pull(_ p: ResultsPull.Params, _ ctx: RPCContext) throws -> JSON {
        let c = try resultsContext(p.key)
        try requireHasRun(c)
        let source = try warehouseSource(p.source)
        guard source.dialect == .postgresql, let url = source.url else {
            throw FieldError(path: "source", message: "\(source.name) is a \(source.dialect.rawValue) source\(source.url == nil ? " without a url" : ""); Referee runs queries on PostgreSQL sources only. Print its query with referee sql \(c.doc.key) --source \(source.name), run it there and record its rows (results.record)")
        }
        guard case .success(let connection) = ConnectionURL.parse(url) else { throw FieldError(path: "source", message: "\(source.name)'s url cannot be read") }
        // Every failure is 1012 with its kind, naming the source and where it lives (never a credential).
        func failure(_ kind: String, _ message: String, _ extra: [String: JSON] = [:]) -> RPCError {
            RPCError(code: .warehouseError, message: message,
                     data: .object(["reason": "warehouse_error", "kind": .string(kind), "source": .string(source.name),
                                    "warehouse": .string(connection.displayName)].merging(extra) { $1 }))
        }
        var password: String?
        if let variable = source.passwordEnvironment {
            guard let value = ProcessInfo.processInfo.environment[variable] else {
                throw failure("connect", "source \(source.name) reads its password from the environment variable \(variable), which the daemon does not have; set it where the daemon starts",
                              ["password_env": .string(variable)])
            }
            password = value
        }
        let query = try warehouseQuery(c, source: source, dialect: .postgresql, asOf: p.as_of)
        let answer: PostgresSource.Answer
        do { answer = try PostgresSource(url: connection, timeoutSeconds: source.timeoutSeconds).run(query.sql, password: password) } catch {
            throw failure(error.kind.rawValue, error.message, ["sqlstate": JSON(error.sqlState)])
        }
        let pulled: PulledResults
        do { pulled = try query.read(columns: answer.columns, rows: answer.rows) } catch {
            throw failure("query", "the answer of source \(source.name) cannot be read: \(error.message); nothing was stored")
        }
        let at = now().description
        let provenance = query.provenance.merging(pulled.report) { $1 }.merging([
            "warehouse": .string(connection.displayName), "rows_returned": JSON(answer.rows.count), "bytes_fetched": JSON(answer.bytes),
        ]) { $1 }
        try store.write { tx in
            try tx.deleteResults(key: c.doc.key, source: "pull")
            for a in pulled.aggregates {
                try tx.upsertResult(key: c.doc.key, metric: a.metric, variant: a.variant, day: a.day, segment: a.segment, stats: a.aggregate.storageText,
                                    source: "pull", at: at)
            }
            try tx.refreshTotals(key: c.doc.key)
            try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: ctx.onBehalfOf, method: "results.pull", key: c.doc.key,
                               before: .null, after: .object(provenance), reason: nil)
        }
        var out = provenance
        out["loaded"] = true
        out["experiment"] = .string(c.doc.key)
        out["query_seconds"] = .number((answer.seconds * 1000).rounded() / 1000)
        out["not_in_warehouse"] = JSON(query.notDefined)
        out["left_out"] = query.leftOutJSON
        return .object(out)
    }

    /// `results.aggregates {key, segment?, metric?}`.
    func aggregates(_ p: ResultsAggregates.Params) throws -> JSON {
        let c = try resultsContext(p.key)
        let rows = try store.read { tx in try tx.storedResults(key: c.doc.key, segment: p.segment?.name, metric: p.metric) }
        let items: [JSON] = rows.map { r in
            let stats = Aggregate(storage: r.row.stats)?.json ?? .null
            return ["metric": .string(r.row.metric), "variant": .string(r.row.variant), "day": .string(r.row.day), "segment": .string(r.row.segment),
                    "stats": stats, "source": .string(r.source), "updated_at": .string(r.updatedAt)]
        }
        return ["experiment": .string(c.doc.key), "aggregates": .array(items), "count": JSON(items.count)]
    }
}
