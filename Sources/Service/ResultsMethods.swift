import API
import RPC
import Registry
import Store
import JSONCore
import Statistics
import Foundation


/// What the results methods need to know about one experiment.
struct ResultsContext {
    var record: ExperimentRecord
    var doc: ExperimentDocument
    var proto: ExperimentProtocol
    var catalog: MetricsCatalog
    var control: Variant
    var treatments: [Variant]

    /// Metrics in the order primary, secondary, guardrails, with their roles.
    var metrics: [(name: String, role: String)] {
        var out: [(String, String)] = []
        if let p = doc.primaryMetric { out.append((p, "primary")) }
        out += doc.secondaryMetrics.map { ($0, "secondary") }
        out += doc.guardrails.map { ($0, "guardrail") }
        return out
    }
}

extension RefereeService {
    func resultsContext(_ key: String) throws -> ResultsContext {
        // The record and the protocol version it was held to, from one snapshot.
        let held = try store.read { tx -> (ExperimentRecord, ExperimentProtocol)? in
            guard let record = try tx.experiment(key) else { return nil }
            return (record, try heldProtocol(record, tx))
        }
        guard let (record, proto) = held else { throw RegistryError.notFound(key) }
        let (doc, _) = ExperimentDocument.read(record.document, limits: limits)
        guard let doc, let control = doc.variants.first(where: \.isControl) else {
            throw RPCError.internalError("stored document of \(key) cannot be read")
        }
        return ResultsContext(record: record, doc: doc, proto: proto, catalog: protocols.catalog, control: control,
                              treatments: doc.variants.filter { !$0.isControl })
    }

    /// Results belong to experiments that have run: data for a draft, a review or an approved experiment
    /// (or one aborted before it ran) is refused, so nothing is read that the protocol did not govern.
    func requireHasRun(_ c: ResultsContext) throws {
        switch c.record.state {
        case .running, .stopped, .concluded, .archived: return
        case .aborted:
            let ran = try store.read { tx in
                try tx.auditEntries(key: c.record.key).contains { $0.method == "experiment.transition" && $0.after["state"] == "running" }
            }
            if ran { return }
        default: break
        }
        throw StatisticsError(field: "key", reason: "experiment \"\(c.record.key)\" is \(c.record.state.rawValue) and has never run; results are recorded only for experiments that have run (move it to running first)")
    }

    /// `results.record {key, metric, variant, day?, segment?, stats}`: an upsert of one aggregate.
    func recordResult(_ p: ResultsRecord.Params, _ ctx: RPCContext) throws -> JSON {
        let c = try resultsContext(p.key)
        try requireHasRun(c)
        let metric = p.metric
        guard c.metrics.contains(where: { $0.name == metric }), let def = c.catalog.metrics[metric] else {
            throw FieldError(path: "metric", message: "\"\(metric)\" is not a metric of \(c.doc.key); its metrics are \(c.metrics.map(\.name).joined(separator: ", "))")
        }
        let variant = p.variant
        guard c.doc.variants.contains(where: { $0.key == variant }) else {
            throw FieldError(path: "variant", message: "\"\(variant)\" is not a variant of \(c.doc.key); use \(c.doc.variants.map(\.key).joined(separator: ", "))")
        }
        let day = p.day ?? ""
        if !day.isEmpty { guard day.count == 10, Timestamp(rfc3339: day) != nil else { throw FieldError(path: "day", message: "must be a UTC date YYYY-MM-DD") } }
        let segment = p.segment ?? ""
        let stats = p.stats
        let read = Result { () throws(FieldError) in try Aggregate.read(stats, type: def.type, path: "stats") }
        // A value out of range is degenerate input (1009), as the statistics methods say.
        if case .failure(let e) = read, e.outOfRange { throw StatisticsError(field: e.path, reason: e.message) }
        let aggregate = try read.get()
        let at = now().description
        try store.write { tx in
            try tx.upsertResult(key: c.doc.key, metric: metric, variant: variant, day: day, segment: segment, stats: aggregate.storageText, source: "record", at: at)
            try tx.appendAudit(at: at, principal: ctx.principal, onBehalfOf: ctx.onBehalfOf, method: "results.record", key: c.doc.key,
                               before: .null, after: ["metric": .string(metric), "variant": .string(variant), "day": .string(day),
                                                      "segment": .string(segment), "stats": aggregate.json], reason: nil)
        }
        return ["key": .string(c.doc.key), "metric": .string(metric), "variant": .string(variant), "day": .string(day),
                "segment": .string(segment), "stats": aggregate.json]
    }

    /// Sums stored rows per metric and variant. Rows arrive ordered by metric, variant and day, so each run of
    /// one metric and variant is folded locally and stored once.
    func totals(_ rows: [StoreTransaction.ResultRow], _ c: ResultsContext) -> [String: [String: Aggregate]] {
        var out: [String: [String: Aggregate]] = [:]
        var i = 0
        while i < rows.count {
            let metric = rows[i].metric, variant = rows[i].variant
            var sum: Aggregate?
            while i < rows.count && rows[i].metric == metric && rows[i].variant == variant {
                if let a = Aggregate(storage: rows[i].stats) {
                    sum = sum.map { ($0 + a) ?? $0 } ?? a
                }
                i += 1
            }
            if let sum { out[metric, default: [:]][variant] = sum }
        }
        return out
    }

    func compareOptions(_ c: ResultsContext, relative: Bool) -> CompareOptions {
        var o = CompareOptions(difference: relative ? .relative : .absolute, alpha: c.doc.alpha ?? c.proto.alphaMax)
        switch c.doc.analysis ?? c.proto.analyses.first ?? "fixed" {
        case "sequential": o.analysis = .sequential()
        case "bayesian": o.analysis = .bayesian()
        default: o.analysis = .frequentist
        }
        return o
    }

    /// `results.summary {key, as_of?, segment?}`: the pre-registered analysis and a decision.
    func summary(_ p: ResultsSummary.Params) throws -> JSON {
        let c = try resultsContext(p.key)
        var asOf = now()
        if let text = p.as_of {
            guard let t = Timestamp(rfc3339: text) else { throw FieldError(path: "as_of", message: "must be an RFC 3339 time or a date") }
            asOf = t
        }
        let rows = try store.read { tx in try tx.results(key: c.doc.key, segment: p.segment ?? "", throughDay: asOf.day) }
        return try summarize(c, totals: totals(rows, c), asOf: asOf)
    }

    func summarize(_ c: ResultsContext, totals: [String: [String: Aggregate]], asOf: Timestamp) throws -> JSON {
        let alpha = c.doc.alpha ?? c.proto.alphaMax
        var reasons: [String] = []

        // 1. Sample-ratio check first: exposures, else the primary metric's units.
        let exposureSource = totals[exposuresMetric] ?? c.doc.primaryMetric.flatMap { totals[$0] } ?? [:]
        let observed = c.doc.variants.map { exposureSource[$0.key]?.n ?? 0 }
        let totalUnits = observed.reduce(0, +)
        var srmJSON: JSON = ["checked": false, "reason": "no data yet"]
        var srmMismatch = false
        if totalUnits > 0 {
            let r = try SRM.check(observed: observed, weights: c.doc.variants.map(\.weight), threshold: c.proto.srmThreshold)
            srmMismatch = r.mismatch
            srmJSON = ["checked": true, "chi2": .number(r.chi2), "df": .number(r.df), "p_value": .number(r.pValue), "mismatch": .bool(r.mismatch),
                       "threshold": .number(c.proto.srmThreshold),
                       "variants": .array(zip(c.doc.variants, observed).map { v, n in
                           ["variant": .string(v.key), "n": .number(n), "expected_share": .number(v.weight), "observed_share": .number(n / totalUnits)]
                       })]
        }

        // 2. Every metric, every treatment against control.
        var metricsJSON: [JSON] = []
        var primaryComparisons: [(variant: String, result: Statistics.ComparisonResult, relative: Statistics.ComparisonResult?)] = []
        var secondaryP: [(index: Int, comparison: Int, p: Double)] = []
        var guardrailHarms: [String] = []
        var comparisonsByMetric: [[JSON]] = []
        for (mi, (name, role)) in c.metrics.enumerated() {
            let def = c.catalog.metrics[name]
            let perVariant = totals[name] ?? [:]
            var comparisons: [JSON] = []
            if let controlAgg = perVariant[c.control.key] {
                for t in c.treatments {
                    guard let treatmentAgg = perVariant[t.key], let arms = Aggregate.arms(control: controlAgg, treatment: treatmentAgg) else { continue }
                    var entry: [String: JSON] = ["variant": .string(t.key)]
                    do {
                        let abs = try ABTest.compare(arms, options: compareOptions(c, relative: false))
                        let rel = try? ABTest.compare(arms, options: compareOptions(c, relative: true))
                        entry["estimate"] = .number(abs.estimate)
                        entry["ci"] = [JSON(abs.ci.lower), JSON(abs.ci.upper)]
                        entry["relative"] = JSON(rel?.estimate)
                        entry["relative_ci"] = [JSON(rel?.ci.lower), JSON(rel?.ci.upper)]
                        entry["p_value"] = JSON(abs.pValue)
                        entry["adjusted_p_value"] = JSON(abs.pValue)
                        entry["significant"] = .bool(abs.significant)
                        entry["se"] = .number(abs.se)
                        if let ctw = abs.chanceToWin { entry["chance_to_win"] = .number(ctw) }
                        if role == "primary" { primaryComparisons.append((t.key, abs, rel)) }
                        if role == "secondary", let pv = abs.pValue { secondaryP.append((mi, comparisons.count, pv)) }
                        if role == "guardrail", let def {
                            // One-sided test for harm beyond the non-inferiority margin, in the metric's bad direction.
                            let harmDirection: Double = def.direction == .increase ? -1 : 1
                            let z = (harmDirection * abs.estimate - def.nonInferiorityMargin) / abs.se
                            let p = Normal.sf(z)
                            let harmed = p < alpha
                            entry["harm_p_value"] = .number(p)
                            entry["harm_detected"] = .bool(harmed)
                            entry["non_inferiority_margin"] = .number(def.nonInferiorityMargin)
                            if harmed { guardrailHarms.append("\(name) harmed in \(t.key): \(signed(abs.estimate, def.type)) (margin \(def.nonInferiorityMargin)), one-sided p = \(short(p))") }
                        }
                    } catch {
                        let e = error
                        entry["error"] = .string("\(e.field): \(e.reason)")
                    }
                    comparisons.append(.object(entry))
                }
            }
            comparisonsByMetric.append(comparisons)
            metricsJSON.append(["metric": .string(name), "role": .string(role), "type": JSON(def?.type.rawValue), "direction": JSON(def?.direction.rawValue),
                                "variants": .array(c.doc.variants.map { v in
                                    ["variant": .string(v.key), "n": .number(perVariant[v.key]?.n ?? 0), "mean": perVariant[v.key].map { .number($0.mean) } ?? .null]
                                })])
        }
        // Secondary metrics: p-values adjusted together by the protocol's correction.
        if !secondaryP.isEmpty, c.proto.correction != "none", let method = AdjustmentMethod(rawValue: c.proto.correction) {
            let adjusted = try MultipleTesting.adjust(pValues: secondaryP.map(\.p), method: method, alpha: alpha)
            for (k, s) in secondaryP.enumerated() {
                guard case .object(var o) = comparisonsByMetric[s.index][s.comparison] else { continue }
                o["adjusted_p_value"] = .number(adjusted.adjusted[k])
                o["significant"] = .bool(adjusted.reject[k])
                comparisonsByMetric[s.index][s.comparison] = .object(o)
            }
        }
        for i in metricsJSON.indices {
            guard case .object(var o) = metricsJSON[i] else { continue }
            o["comparisons"] = .array(comparisonsByMetric[i])
            metricsJSON[i] = .object(o)
        }

        // 3. Progress against the plan.
        let plan = c.record.plan
        let plannedUnits = plan["total_units"]?.doubleValue
        let perArmPlanned = plan["per_arm"]?.doubleValue
        let minArm = observed.min() ?? 0
        let start = c.doc.start ?? asOf, end = c.doc.end ?? asOf
        let daysScheduled = Timestamp.days(from: start, to: end)
        let daysElapsed = min(max(Timestamp.days(from: start, to: asOf), 0), daysScheduled)
        var achievedPower: Double?
        if minArm > 1, let mde = c.doc.mde, let baseline = c.doc.baseline {
            switch baseline {
            case .rate(let r): achievedPower = try? PowerAnalysis.proportionsPower(baseline: r, mde: mde, nControl: minArm, alpha: alpha)
            case .mean(let m, let sd): achievedPower = try? PowerAnalysis.meansPower(mean: m, sd: sd, mde: mde, nControl: minArm, alpha: alpha)
            }
        }
        let reachedSample = perArmPlanned.map { minArm >= $0 } ?? false
        let reachedEnd = asOf >= end
        let progress: JSON = ["units": .number(totalUnits), "planned_units": JSON(plannedUnits), "per_arm_min": .number(minArm),
                              "per_arm_planned": JSON(perArmPlanned), "share_of_plan": JSON(perArmPlanned.map { $0 > 0 ? minArm / $0 : 0 }),
                              "days_elapsed": .number((daysElapsed * 10).rounded() / 10), "days_scheduled": .number(daysScheduled),
                              "achieved_power": JSON(achievedPower), "reached_planned_sample": .bool(reachedSample), "reached_end": .bool(reachedEnd)]

        // 4. The decision: SRM, then guardrails, then the registered analysis of the primary metric.
        let analysis = c.doc.analysis ?? c.proto.analyses.first ?? "fixed"
        let primaryDef = c.doc.primaryMetric.flatMap { c.catalog.metrics[$0] }
        let good: Double = primaryDef?.direction == .decrease ? -1 : 1
        var recommendation: String
        if totalUnits == 0 {
            recommendation = "keep_running"
            reasons.append("no results recorded yet")
        } else if srmMismatch {
            recommendation = "invalid"
            reasons.append("sample-ratio mismatch: observed \(zip(c.doc.variants, observed).map { "\($0.key) \($1.wholeText)" }.joined(separator: ", ")) against weights \(c.doc.variants.map { "\($0.weight)" }.joined(separator: "/")) (p = \(short(srmJSON["p_value"]?.doubleValue ?? 0)) < \(c.proto.srmThreshold)); the assignment is broken, do not read any lift")
        } else if !guardrailHarms.isEmpty {
            recommendation = "rollback"
            reasons += guardrailHarms
        } else {
            let name = c.doc.primaryMetric ?? "primary metric"
            let winners = primaryComparisons.filter { $0.result.significant && good * $0.result.estimate > 0 }
            let losers = primaryComparisons.filter { $0.result.significant && good * $0.result.estimate < 0 }
            let describe = { (x: (variant: String, result: Statistics.ComparisonResult, relative: Statistics.ComparisonResult?)) -> String in
                var s = "\(name) \(x.variant): \(signed(x.result.estimate, primaryDef?.type))"
                if let lo = x.result.ci.lower, let hi = x.result.ci.upper {
                    s += " (\(((1 - alpha) * 100).wholeText)% CI \(signed(lo, primaryDef?.type)) to \(signed(hi, primaryDef?.type)))"
                }
                if let p = x.result.pValue { s += ", p = \(short(p))" }
                if let ctw = x.result.chanceToWin { s += ", chance to win \(short(ctw * 100))%" }
                return s
            }
            switch analysis {
            case "fixed" where !reachedSample && !reachedEnd:
                recommendation = "keep_running"
                reasons.append("fixed-horizon design: \(minArm.wholeText) of \((perArmPlanned ?? 0).wholeText) planned units per arm and \(daysElapsed.rounded(.down).wholeText) of \(daysScheduled.wholeText) days; results are not read before the planned sample or the scheduled end, whatever the p-value")
            case "bayesian":
                let best = primaryComparisons.max { ($0.result.chanceToWin ?? 0) < ($1.result.chanceToWin ?? 0) }
                let ctw = best?.result.chanceToWin ?? 0.5
                let toWin = good > 0 ? ctw : 1 - ctw
                if let best, toWin >= 0.95 { recommendation = "ship"; reasons.append(describe(best)) }
                else if let best, toWin <= 0.05 { recommendation = "rollback"; reasons.append(describe(best)) }
                else { recommendation = reachedSample || reachedEnd ? "inconclusive" : "keep_running"; reasons += primaryComparisons.map(describe) }
            default:
                if let best = winners.max(by: { good * $0.result.estimate < good * $1.result.estimate }) {
                    recommendation = "ship"
                    reasons.append(describe(best))
                } else if let worst = losers.first {
                    recommendation = "rollback"
                    reasons.append(describe(worst))
                } else if analysis == "sequential" && !reachedSample && !reachedEnd {
                    recommendation = "keep_running"
                    reasons.append("sequential design: no boundary crossed yet; always-valid intervals make it safe to keep looking")
                    reasons += primaryComparisons.map(describe)
                } else {
                    recommendation = "inconclusive"
                    reasons += primaryComparisons.map(describe)
                    if primaryComparisons.isEmpty { reasons.append("no primary-metric results for every variant") }
                }
            }
            if recommendation == "ship" || recommendation == "inconclusive" { reasons.append("no guardrail harmed") }
        }

        return ["experiment": .string(c.doc.key), "name": JSON(c.doc.name), "as_of": .string(asOf.description), "state": .string(c.record.state.rawValue),
                "analysis": .string(analysis), "alpha": .number(alpha), "correction": .string(c.proto.correction),
                "srm": srmJSON, "metrics": .array(metricsJSON), "progress": progress,
                "decision": ["recommendation": .string(recommendation), "reasons": JSON(reasons)]]
    }

    /// `results.timeseries {key, metric}`: cumulative comparisons per day, for charts.
    func timeseries(_ p: ResultsTimeseries.Params) throws -> JSON {
        let c = try resultsContext(p.key)
        let metric = p.metric ?? c.doc.primaryMetric ?? ""
        guard c.catalog.metrics[metric] != nil, c.metrics.contains(where: { $0.name == metric }) else {
            throw FieldError(path: "metric", message: "\"\(metric)\" is not a metric of \(c.doc.key)")
        }
        let rows = try store.read { tx in try tx.results(key: c.doc.key, segment: p.segment ?? "") }.filter { $0.metric == metric && !$0.day.isEmpty }
        let days = Array(Set(rows.map(\.day))).sorted()
        var running: [String: Aggregate] = [:]
        var points: [JSON] = []
        for day in days {
            for row in rows where row.day == day {
                guard let a = Aggregate(storage: row.stats) else { continue }
                running[row.variant] = running[row.variant].flatMap { $0 + a } ?? a
            }
            guard let control = running[c.control.key] else { continue }
            for t in c.treatments {
                guard let treatment = running[t.key], let arms = Aggregate.arms(control: control, treatment: treatment) else { continue }
                let abs = try? ABTest.compare(arms, options: compareOptions(c, relative: false))
                let rel = try? ABTest.compare(arms, options: compareOptions(c, relative: true))
                points.append(["day": .string(day), "variant": .string(t.key), "n": .number(treatment.n), "control_n": .number(control.n),
                               "mean": .number(treatment.mean), "control_mean": .number(control.mean),
                               "estimate": JSON(abs?.estimate), "ci": [JSON(abs?.ci.lower), JSON(abs?.ci.upper)],
                               "relative": JSON(rel?.estimate), "relative_ci": [JSON(rel?.ci.lower), JSON(rel?.ci.upper)]])
            }
        }
        return ["metric": .string(metric), "points": .array(points)]
    }
}

/// "+1.8 points" for rates, "+0.35" otherwise.
func signed(_ x: Double, _ type: MetricType?) -> String {
    if type == .binomial || type == .nps {
        let pts = x * 100
        return "\(pts >= 0 ? "+" : "")\(short(pts)) points"
    }
    return "\(x >= 0 ? "+" : "")\(short(x))"
}

/// Three significant digits, no exponent for ordinary magnitudes.
func short(_ x: Double) -> String {
    guard x.isFinite else { return "\(x)" }
    if x == 0 { return "0" }
    let magnitude = abs(x)
    if magnitude < 0.001 { return String(format: "%.1e", x) }
    let decimals = max(0, 2 - (log10(magnitude).rounded(.down).clampedInt ?? 0))
    return String(format: "%.\(decimals)f", x)
}
