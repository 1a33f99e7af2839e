import API
import Ingest
import Registry
import RPC
import Store
import JSONCore

extension RefereeService {
    /// The experiments that overlap `c`'s (``InteractionRules/overlapping``), as ingestion crosses them: each with
    /// its assigner (B's buckets, seed, weights, targeting, and the holdouts that held units out of it while it ran),
    /// and those left out past ``Ingestor/maxCrossings``.
    func crossings(for c: ResultsContext) throws -> (crossings: [Ingestor.Crossing], beyondLimit: [String]) {
        guard c.kind == "experiment" else { return ([], []) }
        return try store.read { tx in
            let idx = try index(tx)
            guard let a = idx[c.doc.key] else { return ([], []) }
            let (kept, beyond) = InteractionRules.overlapping(a, candidates: idx.all, limit: Ingestor.maxCrossings)
            let ran = try holdoutsThatRan(tx)
            let crossings = kept.map { b in
                Ingestor.Crossing(key: b.key, arms: b.variantKeys,
                                  assigner: ExperimentAssigner(b, holdouts: ran.filter { $0.covers(b) && $0.start < b.end && b.start < $0.end }))
            }
            return (crossings, beyond.map(\.key))
        }
    }

    /// Holdouts that held units out while they ran (running or concluded).
    func holdoutsThatRan(_ tx: StoreTransaction) throws -> [HoldoutSubject] {
        try tx.holdouts().filter { $0.state == .running || $0.state == .concluded }.compactMap(holdoutSubject)
    }

    /// `results.interactions {key, metric?, as_of?}`.
    func interactions(_ p: ResultsInteractions.Params) throws -> JSON {
        let c = try resultsContext(p.key)
        guard c.kind == "experiment" else {
            throw FieldError(path: "key", message: "\(p.key) is a holdout; interactions are measured between experiments (read the experiments of its scope)")
        }
        if let metric = p.metric, !c.metrics.contains(where: { $0.name == metric }) {
            throw FieldError(path: "metric", message: "\"\(metric)\" is not a metric of \(c.doc.key) (\(c.metrics.map(\.name).joined(separator: ", ")))")
        }
        return try interactions(c, metric: p.metric, asOf: try asOfTime(p.as_of))
    }

    /// `notCrossed`: also name the overlapping experiments without cells (a pass over the registry; the summary and the
    /// scan, which report flagged interactions only, leave it out).
    func interactions(_ c: ResultsContext, metric: String?, asOf: Timestamp, notCrossed listNotCrossed: Bool = true) throws -> JSON {
        let (crossed, notCrossed) = try store.read { tx -> ([CrossedExperiment], [(key: String, reason: String)]) in
            let stored = Set(try tx.segments(key: c.doc.key, prefix: CrossedExperiment.segmentPrefix).compactMap { segment -> String? in
                guard segment.hasPrefix(CrossedExperiment.segmentPrefix), let eq = segment.lastIndex(of: "=") else { return nil }
                return String(segment[segment.index(segment.startIndex, offsetBy: CrossedExperiment.segmentPrefix.count)..<eq])
            })
            var crossed: [CrossedExperiment] = []
            for key in stored.sorted() {
                guard let record = try tx.experiment(key), let doc = ExperimentDocument.read(record.document, limits: limits).0,
                      let control = doc.variants.first(where: \.isControl) else { continue }
                let prefix = CrossedExperiment.segmentPrefix + key + "="
                let rows = try tx.resultTotals(key: c.doc.key, segmentPrefix: prefix, metric: metric, beforeDay: asOf.day)
                    ?? tx.results(key: c.doc.key, segmentPrefix: prefix, metric: metric, beforeDay: asOf.day)
                var bySegment: [String: [(metric: String, variant: String, stats: String)]] = [:]
                for r in rows { bySegment[r.segment, default: []].append((r.metric, r.variant, r.stats)) }
                crossed.append(CrossedExperiment(key: key, arms: [control.key] + doc.variants.filter { !$0.isControl }.map(\.key), rows: bySegment))
            }
            // Experiments that overlap but have no cells stored: say so, so a silence is never read as "no interaction".
            var notCrossed: [(key: String, reason: String)] = []
            if listNotCrossed, case let idx = try index(tx), let a = idx[c.doc.key] {
                let (kept, beyond) = InteractionRules.overlapping(a, candidates: idx.all, limit: Ingestor.maxCrossings)
                for b in kept where !stored.contains(b.key) {
                    notCrossed.append((b.key, "overlaps \(c.doc.key) but no cells are stored: ingest \(c.doc.key)'s results again (its arms are computed from the unit ids, or read from a column arm:\(b.key))"))
                }
                for b in beyond where !stored.contains(b.key) {
                    notCrossed.append((b.key, "overlaps \(c.doc.key) beyond the \(Ingestor.maxCrossings) experiments with the most shared traffic that ingestion crosses (the limit keeps each ingestion within its time and storage budget)"))
                }
            }
            return (crossed, notCrossed)
        }
        return try Analysis.interactions(c, crossed: crossed, notCrossed: notCrossed, metric: metric)
    }

    /// The flagged interactions of the running experiments whose windows meet `from`–`to`, as findings for
    /// `conflicts.scan {with_interactions: true}`, and a summary of what was examined.
    func measuredInteractions(from: Timestamp?, to: Timestamp?) throws -> (findings: [Finding], summary: JSON) {
        let running = try store.read { tx in try tx.experiments(state: ExperimentState.running.rawValue) }
        var findings: [Finding] = []
        var examined: [JSON] = []
        let asOf = now()
        for record in running {
            let (doc, _) = ExperimentDocument.read(record.document, limits: limits)
            guard let doc, let start = doc.start, let end = doc.end else { continue }
            if let from, let to, !(start <= to && from < end) { continue }
            let c = try resultsContext(record.key)
            let measured = try interactions(c, metric: nil, asOf: asOf, notCrossed: false)
            guard let pairs = measured["pairs"]?.arrayValue, !pairs.isEmpty else { continue }
            examined.append(["key": .string(record.key), "pairs": JSON(pairs.count), "tests": measured["tests"] ?? 0,
                             "flagged": JSON(measured["flagged"]?.arrayValue?.count ?? 0)])
            for f in measured["flagged"]?.arrayValue ?? [] {
                guard let with = f["with"]?.stringValue, let verdict = f["verdict"]?.stringValue else { continue }
                findings.append(Finding(experiments: [record.key, with], kind: .interaction, severity: .warning, windowStart: start, windowEnd: end,
                                        witness: nil, overlapShare: 0, template: .text("measured interaction: " + verdict)))
            }
        }
        return (findings, ["experiments_examined": .array(examined), "flagged": JSON(findings.count)])
    }
}
