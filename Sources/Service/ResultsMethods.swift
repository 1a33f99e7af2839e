import API
import RPC
import Registry
import Store
import JSONCore
import Statistics
import Foundation


extension RefereeService {
    func resultsContext(_ key: String) throws -> ResultsContext {
        // The record and the protocol version it was held to, from one snapshot.
        let held = try store.read { tx -> (ExperimentRecord, ExperimentProtocol, [String: JSON], Bool)? in
            if let record = try tx.experiment(key) { return (record, try heldProtocol(record, tx), try tx.capping(key: key), false) }
            guard let record = try tx.holdout(key) else { return nil }
            return (record, try heldProtocol(record, tx), try tx.capping(key: key), true)
        }
        guard let (record, proto, capping, isHoldout) = held else { throw RegistryError.notFound(key) }
        var context: ResultsContext
        if isHoldout {
            let (h, _) = HoldoutDocument.read(record.document)
            guard let h else { throw RegistryError.inconsistent("stored document of holdout \(key) cannot be read") }
            let doc = h.resultsDocument(catalog: protocols.catalog)
            context = ResultsContext(state: record.state, plan: .null, doc: doc, proto: proto, catalog: protocols.catalog,
                                     control: doc.variants[0], treatments: [doc.variants[1]])
            context.kind = "holdout"
            context.holdout = ["scope": h.scope.json, "share": .number(h.share), "seed": .string(h.assignmentSeed),
                               "arms": ["control": .string(HoldoutDocument.heldOutArm), "treatment": .string(HoldoutDocument.exposedArm)]]
            context.sampleRatioNotChecked = "a holdout compares its units with the exposed units of its scope, whose share is not fixed in advance"
        } else {
            let (doc, _) = ExperimentDocument.read(record.document, limits: limits)
            guard let doc, let control = doc.variants.first(where: \.isControl) else {
                throw RegistryError.inconsistent("stored document of \(key) cannot be read")
            }
            context = ResultsContext(state: record.state, plan: record.plan, doc: doc, proto: proto, catalog: protocols.catalog, control: control,
                                     treatments: doc.variants.filter { !$0.isControl })
        }
        context.capping = capping
        return context
    }

    /// Results belong to experiments that have run: data for a draft, a review or an approved experiment
    /// (or one aborted before it ran) is refused, so nothing is read that the protocol did not govern.
    func requireHasRun(_ c: ResultsContext) throws {
        switch c.state {
        case .running, .stopped, .concluded, .archived: return
        case .aborted:
            let ran = try store.read { tx in
                try tx.auditEntries(key: c.doc.key).contains { ($0.method == "experiment.transition" || $0.method == "holdout.transition") && $0.after["state"] == "running" }
            }
            if ran { return }
        default: break
        }
        throw StatisticsError(field: "key", reason: "\(c.kind) \"\(c.doc.key)\" is \(c.state.rawValue) and has never run; results are recorded only for experiments that have run (move it to running first)")
    }

    /// `results.record {key, metric, variant, day?, segment?, stats}`: an upsert of one aggregate.
    func recordResult(_ p: ResultsRecord.Params, _ ctx: RPCContext) throws -> JSON {
        let c = try resultsContext(p.key)
        try requireHasRun(c)
        let metric = p.metric
        // `__exposures` holds the units exposed per variant (and day, segment), which the sample-ratio check reads.
        let def = c.catalog.metrics[metric]
        guard metric == exposuresMetric || (c.metrics.contains(where: { $0.name == metric }) && def != nil) else {
            throw FieldError(path: "metric", message: "\"\(metric)\" is not a metric of \(c.doc.key); its metrics are \(c.metrics.map(\.name).joined(separator: ", ")) (and \(exposuresMetric) for the units exposed)")
        }
        let variant = p.variant
        guard c.doc.variants.contains(where: { $0.key == variant }) else {
            throw FieldError(path: "variant", message: "\"\(variant)\" is not a variant of \(c.doc.key); use \(c.doc.variants.map(\.key).joined(separator: ", "))")
        }
        let day = p.day ?? ""
        if !day.isEmpty { guard day.count == 10, Timestamp(rfc3339: day) != nil else { throw FieldError(path: "day", message: "must be a UTC date YYYY-MM-DD") } }
        let segment = p.segment?.name ?? ""
        let stats = p.stats
        let read = Result { () throws(FieldError) in
            guard let def else { return try Aggregate.readExposures(stats, path: "stats") }
            return try Aggregate.read(stats, type: def.type, quantile: def.quantile, path: "stats")
        }
        // A value out of range is degenerate input (1009), as the statistics methods say.
        if case .failure(let e) = read, e.outOfRange { throw StatisticsError(field: e.path, reason: e.message) }
        let aggregate = try read.get()
        let at = now().description
        try store.write { tx in
            let fresh = try tx.totalsFresh(key: c.doc.key)
            try tx.upsertResult(key: c.doc.key, metric: metric, variant: variant, day: day, segment: segment, stats: aggregate.storageText, source: "record", at: at)
            try tx.refreshTotals(key: c.doc.key, segment: segment, metric: metric, variant: variant, wasFresh: fresh)
            try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: ctx.onBehalfOf, method: "results.record", key: c.doc.key,
                               before: .null, after: ["metric": .string(metric), "variant": .string(variant), "day": .string(day),
                                                      "segment": .string(segment), "stats": aggregate.json], reason: nil)
        }
        return ["key": .string(c.doc.key), "metric": .string(metric), "variant": .string(variant), "day": .string(day),
                "segment": .string(segment), "stats": aggregate.json]
    }

    /// `results.summary {key, as_of?, segment?}`: the pre-registered analysis and a decision.
    func summary(_ p: ResultsSummary.Params) throws -> JSON {
        let c = try resultsContext(p.key)
        let asOf = try asOfTime(p.as_of)
        let rows = try segmentRows(c, segment: p.segment?.name ?? "", before: asOf)
        let days = rows.lazy.map(\.day).filter { !$0.isEmpty }
        let summary = try Analysis.summarize(c, totals: Analysis.totals(rows.map { ($0.metric, $0.variant, $0.stats) }), asOf: asOf,
                                             dataDays: days.min().flatMap { first in days.max().map { (first, $0) } })
        guard c.kind == "experiment", p.segment == nil else { return summary }
        return Analysis.adding(interactions: try interactions(c, metric: nil, asOf: asOf, notCrossed: false), to: summary)
    }

    /// `as_of` as an instant (now when absent).
    func asOfTime(_ text: String?) throws -> Timestamp {
        guard let text else { return now() }
        guard let t = Timestamp(rfc3339: text) else { throw FieldError(path: "as_of", message: "must be an RFC 3339 time or a date") }
        return t
    }

    /// The stored rows of one segment of the days that ended before `before` (all days when nil); an unknown
    /// segment is refused with the ones that exist rather than read as empty.
    func segmentRows(_ c: ResultsContext, segment: String, before: Timestamp?) throws -> [StoreTransaction.ResultRow] {
        try store.read { tx in
            let rows = try tx.results(key: c.doc.key, segment: segment, beforeDay: before?.day)
            if !segment.isEmpty, rows.isEmpty {
                let known = try tx.segments(key: c.doc.key)
                if !known.contains(segment) { throw RegistryError.segmentNotFound(key: c.doc.key, segment: segment, known: known) }
            }
            return rows
        }
    }

    /// `results.timeseries {key, metric}`: cumulative comparisons per day, for charts.
    func timeseries(_ p: ResultsTimeseries.Params) throws -> JSON {
        let c = try resultsContext(p.key)
        let metric = p.metric ?? c.doc.primaryMetric ?? ""
        guard c.catalog.metrics[metric] != nil, c.metrics.contains(where: { $0.name == metric }) else {
            throw FieldError(path: "metric", message: "\"\(metric)\" is not a metric of \(c.doc.key)")
        }
        let asOf = try p.as_of.map { _ in try asOfTime(p.as_of) }
        let rows = try segmentRows(c, segment: p.segment?.name ?? "", before: asOf).filter { $0.metric == metric && !$0.day.isEmpty }
        return Analysis.timeseries(c, rows: rows.map { ($0.variant, $0.day, $0.stats) }, metric: metric)
    }
}

extension RefereeService {
    /// `results.export`: the summary or every metric's time series, as one table.
    func export(_ p: ResultsExportMethod.Params) throws -> JSON {
        let c = try resultsContext(p.key)
        let asOf = try asOfTime(p.as_of)
        let rows = try segmentRows(c, segment: p.segment?.name ?? "", before: asOf)
        let table: [[JSON]]
        switch p.what {
        case .summary:
            table = ResultsExport.summaryRows(try Analysis.summarize(c, totals: Analysis.totals(rows.map { ($0.metric, $0.variant, $0.stats) }), asOf: asOf))
        case .timeseries:
            let series = c.metrics.map { m in
                Analysis.timeseries(c, rows: rows.filter { $0.metric == m.name && !$0.day.isEmpty }.map { ($0.variant, $0.day, $0.stats) }, metric: m.name)
            }
            table = ResultsExport.timeseriesRows(experiment: c.doc.key, asOf: asOf.description, series)
        case .segments:
            let dimensions = p.dimension.map { [$0] } ?? c.doc.dimensions
            table = ResultsExport.segmentRows(try dimensions.map { d in
                try segments(c, dimension: d, metric: nil, asOf: asOf)
            })
        }
        let format = p.format ?? .csv
        let columns = ResultsExport.columns(p.what)
        return ["what": .string(p.what.rawValue), "format": .string(format.rawValue), "columns": JSON(columns), "rows": JSON(table.count),
                "text": .string(ResultsExport.encode(columns: columns, rows: table, format: format))]
    }
}


extension RefereeService {
    /// `results.segments`: one declared dimension's values, from the segments ingestion stored.
    func segments(_ p: ResultsSegments.Params) throws -> JSON {
        try segments(try resultsContext(p.key), dimension: p.dimension, metric: p.metric, asOf: try asOfTime(p.as_of))
    }

    func segments(_ c: ResultsContext, dimension: String, metric: String?, asOf: Timestamp) throws -> JSON {
        guard c.doc.dimensions.contains(dimension) else {
            throw RegistryError.dimensionNotFound(key: c.doc.key, dimension: dimension, known: c.doc.dimensions)
        }
        if let metric, !c.metrics.contains(where: { $0.name == metric }) {
            throw FieldError(path: "metric", message: "\"\(metric)\" is not a metric of \(c.doc.key); its metrics are \(c.metrics.map(\.name).joined(separator: ", "))")
        }
        // When the as-of time is after every stored day, the totals answer; otherwise the rows before the day do.
        let stored = try store.read { tx in
            try tx.resultTotals(key: c.doc.key, segmentPrefix: dimension + "=", metric: metric, beforeDay: asOf.day)
                ?? tx.results(key: c.doc.key, segmentPrefix: dimension + "=", metric: metric, beforeDay: asOf.day)
        }
        var rows: [String: [(metric: String, variant: String, stats: String)]] = [:]
        for r in stored { rows[r.segment, default: []].append((r.metric, r.variant, r.stats)) }
        return try Analysis.segments(c, dimension: dimension, rows: rows, metric: metric, asOf: asOf)
    }
}
