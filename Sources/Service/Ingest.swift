import Foundation
import API
import Ingest
import RPC
import Registry
import Store
import JSONCore

extension RefereeService {
    /// `results.ingest {key, path, format?, allow_partial?}`: all or nothing unless `allow_partial`.
    func ingest(key: String, path: String, format: String?, allowPartial: Bool, principal: String,
                       requiredOwner: uid_t? = nil, progress: ((Int, Int) -> Void)? = nil,
                       cancelled: @escaping @Sendable () -> Bool = { false }, strictDates: Bool = false, spillDirectory: String? = nil) throws -> JSON {
        let c = try resultsContext(key)
        try requireHasRun(c)
        let fmt = format ?? (path.hasSuffix(".jsonl") || path.hasSuffix(".ndjson") ? "jsonl" : "csv")
        guard fmt == "csv" || fmt == "jsonl" else { throw FieldError(path: "format", message: "must be csv or jsonl") }
        let (crossings, beyondLimit) = try crossings(for: c)
        let ingestor = Ingestor(experiment: c.doc, metrics: c.metrics.map(\.name), catalog: c.catalog, allowPartial: allowPartial,
                                crossings: crossings, progress: progress)
        ingestor.requiredOwner = requiredOwner
        ingestor.cancelled = cancelled
        ingestor.strictDates = strictDates
        if let spillDirectory { ingestor.spillDirectory = URL(fileURLWithPath: spillDirectory) }
        ingestor.scheduleDays = Ingestor.scheduleDays(of: c.doc)
        let totals = try ingestor.run(path: path, format: fmt)
        var report = ingestor.report.objectValue!
        if case .object(var crossed)? = report["interactions"] {
            for key in beyondLimit {
                crossed[key] = ["source": "skipped", "reason": .string("beyond the \(Ingestor.maxCrossings) overlapping experiments with the most shared traffic; not crossed (Ingestor.maxCrossings)")]
            }
            report["interactions"] = .object(crossed)
        }
        if !ingestor.problems.isEmpty && !allowPartial {
            report["loaded"] = false
            let first = ingestor.problems.prefix(3).map(\.message).joined(separator: "; ")
            throw IngestError(.invalidInput, message: "\(ingestor.problemCounts.values.reduce(0, +)) problem(s) in \(path), nothing written (pass allow_partial to load the valid rows): \(first)",
                              data: .object(report))
        }
        let at = now().description
        var written = 0
        try store.write { tx in
            // The overall sums, then each dimension's segments (`country=US`), in the same transaction.
            for (segment, segmentTotals) in [("", totals)] + ingestor.segmentTotals.sorted(by: { $0.key < $1.key }) {
                for (metric, perVariant) in segmentTotals {
                    for (variant, perDay) in perVariant {
                        for (day, aggregate) in perDay {
                            try tx.upsertResult(key: key, metric: metric, variant: variant, day: day, segment: segment, stats: aggregate.storageText,
                                                source: "ingest", at: at)
                            written += 1
                        }
                    }
                }
            }
            for (metric, spec) in ingestor.capping.sorted(by: { $0.key < $1.key }) { try tx.setCapping(key: key, metric: metric, spec: spec) }
            try tx.refreshTotals(key: key)
            try tx.appendAudit(at: at, principal: principal, onBehalfOf: nil, method: "results.ingest", key: key, before: .null,
                               after: ["path": .string(path), "rows_read": JSON(ingestor.rowsRead), "units_loaded": JSON(ingestor.unitsLoaded),
                                       "aggregates_written": JSON(written)], reason: nil)
        }
        report["loaded"] = true
        report["aggregates_written"] = JSON(written)
        return .object(report)
    }

    func ingestMethod(_ p: ResultsIngest.Params, _ ctx: RPCContext) throws -> JSON {
        if ctx.transport == .socket {
            // The shared service reads files with its own rights: only accept a regular file that the client owns,
            // so a client cannot make the service read what the client itself may not.
            let path = p.path
            var st = stat()
            guard lstat(path, &st) == 0 else { throw FieldError(path: "path", message: "cannot read \(path)") }
            guard (st.st_mode & S_IFMT) == S_IFREG, let uid = ctx.peerUID, st.st_uid == uid else {
                throw RegistryError.forbidden("over the shared socket, results.ingest reads only regular files owned by the caller (\(ctx.principal)); \(path) is not",
                                              details: ["principal": .string(ctx.principal), "path": .string(path)])
            }
        }
        return try ingest(key: p.key, path: p.path, format: p.format?.rawValue,
                          allowPartial: p.allow_partial ?? false, principal: ctx.principal,
                          requiredOwner: ctx.transport == .socket ? (ctx.peerUID ?? UInt32.max) : nil,
                          progress: ctx.progress, cancelled: ctx.isCancelled, strictDates: p.strict_dates ?? false, spillDirectory: spillDirectory)
    }
}

