public import JSONCore
public import Statistics

/// What the results methods need to know about one experiment.
public struct ResultsContext: Sendable {
    public init(state: ExperimentState, plan: JSON, doc: ExperimentDocument, proto: ExperimentProtocol, catalog: MetricsCatalog,
                control: Variant, treatments: [Variant]) {
        self.state = state; self.plan = plan; self.doc = doc; self.proto = proto; self.catalog = catalog
        self.control = control; self.treatments = treatments
    }

    /// The experiment's state and stored plan.
    public var state: ExperimentState
    public var plan: JSON
    public var doc: ExperimentDocument
    public var proto: ExperimentProtocol
    public var catalog: MetricsCatalog
    public var control: Variant
    public var treatments: [Variant]
    /// `experiment`, or `holdout` for the cumulative effect of a holdout's scope (exposed units against held-out ones).
    public var kind = "experiment"
    /// A holdout's scope and share, as the summary and report state them.
    public var holdout: JSON = .null
    /// Why the sample-ratio check does not apply, when it does not (a holdout's exposed group has no fixed share).
    public var sampleRatioNotChecked: String?
    /// Per capped metric, the cap its last ingestion used (`{type, value, cap, units_capped…}`), when known.
    public var capping: [String: JSON] = [:]

    /// What the summary says of a metric's capping: the cap used when an ingestion recorded it, else the catalog's.
    public func cappingJSON(_ metric: String) -> JSON {
        guard let def = catalog.metrics[metric], let capping = def.capping else { return .null }
        if let used = self.capping[metric], used["type"] == capping.json["type"], used["value"] == capping.json["value"] { return used }
        return capping.json
    }

    /// Metrics in the order primary, secondary, guardrails, with their roles.
    public var metrics: [(name: String, role: String)] {
        var out: [(String, String)] = []
        if let p = doc.primaryMetric { out.append((p, "primary")) }
        out += doc.secondaryMetrics.map { ($0, "secondary") }
        out += doc.guardrails.map { ($0, "guardrail") }
        return out
    }
}

/// The pre-registered analysis of an experiment's stored sums: the sample-ratio check, every metric against control,
/// the correction, guardrails, progress against the plan and the decision its rules give. Pure: the same sums and
/// the same instant give the same summary, with no store and no clock.
public enum Analysis {
    /// Sums stored rows per metric and variant. Rows arrive ordered by metric, variant and day, so each run of
    /// one metric and variant is folded locally and stored once.
    public static func totals(_ rows: [(metric: String, variant: String, stats: String)]) -> [String: [String: Aggregate]] {
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

    public static func compareOptions(_ c: ResultsContext, relative: Bool) -> CompareOptions {
        var o = CompareOptions(difference: relative ? .relative : .absolute, alpha: c.doc.alpha ?? c.proto.alphaMax)
        switch c.doc.analysis ?? c.proto.analyses.first ?? "fixed" {
        case "sequential": o.analysis = .sequential()
        case "bayesian": o.analysis = .bayesian()
        default: o.analysis = .frequentist
        }
        return o
    }

    /// Cumulative comparisons of one metric per day and treatment (`rows`: one metric's stored rows, any order):
    /// each point is the state at the end of its day.
    public static func timeseries(_ c: ResultsContext, rows: [(variant: String, day: String, stats: String)], metric: String) -> JSON {
    let days = Array(Set(rows.map(\.day))).sorted()
    var running: [String: Aggregate] = [:]
    var daily: [String: Double] = [:]
    var points: [JSON] = []
    for day in days {
        daily = [:]
        for row in rows where row.day == day {
            guard let a = Aggregate(storage: row.stats) else { continue }
            let before = running[row.variant]
            running[row.variant] = before.flatMap { $0 + a } ?? a
            if let now = running[row.variant], let v = now.dayValue(increment: a) { daily[row.variant] = v }
        }
        guard let control = running[c.control.key] else { continue }
        // An arm without rows on the day added nothing (0), where the metric has a daily value at all.
        func dayJSON(_ variant: String, _ total: Aggregate) -> JSON {
            daily[variant].map(JSON.number) ?? (total.dayValue(increment: total) == nil ? .null : .number(0))
        }
        for t in c.treatments {
            guard let treatment = running[t.key], Aggregate.comparable(control, treatment) else { continue }
            let abs = try? Aggregate.compare(control: control, treatment: treatment, options: compareOptions(c, relative: false))
            let rel = try? Aggregate.compare(control: control, treatment: treatment, options: compareOptions(c, relative: true))
            points.append(["day": .string(day), "variant": .string(t.key), "n": .number(treatment.n), "control_n": .number(control.n),
                           "mean": .number(treatment.mean), "control_mean": .number(control.mean),
                           "daily_mean": dayJSON(t.key, treatment), "control_daily_mean": dayJSON(c.control.key, control),
                           "estimate": JSON(abs?.estimate), "ci": [JSON(abs?.ci.lower), JSON(abs?.ci.upper)],
                           "relative": JSON(rel?.estimate), "relative_ci": [JSON(rel?.ci.lower), JSON(rel?.ci.upper)]])
        }
    }
        return ["metric": .string(metric), "points": .array(points)]
    }

    /// `dataDays`: the first and last day that holds rows (the data window shown with the schedule).
    public static func summarize(_ c: ResultsContext, totals: [String: [String: Aggregate]], asOf: Timestamp,
                                 dataDays: (first: String, last: String)? = nil) throws -> JSON {
        let alpha = c.doc.alpha ?? c.proto.alphaMax
        var reasons: [String] = []

        // 1. Sample-ratio check first: exposures, else the primary metric's units.
        let exposureSource = totals[exposuresMetric] ?? c.doc.primaryMetric.flatMap { totals[$0] } ?? [:]
        let observed = c.doc.variants.map { exposureSource[$0.key]?.n ?? 0 }
        let totalUnits = observed.reduce(0, +)
        var srmJSON: JSON = ["checked": false, "reason": "no data yet"]
        var srmMismatch = false
        if let why = c.sampleRatioNotChecked {
            srmJSON = ["checked": false, "reason": .string(why)]
        } else if totalUnits > 0 {
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
                    guard let treatmentAgg = perVariant[t.key], Aggregate.comparable(controlAgg, treatmentAgg) else { continue }
                    // A failed sample-ratio check makes every lift unreadable: the numbers stay, marked as such.
                    var entry: [String: JSON] = ["variant": .string(t.key), "readable": .bool(!srmMismatch),
                                                 "not_readable_because": srmMismatch ? "sample ratio mismatch" : .null]
                    do {
                        guard let abs = try Aggregate.compare(control: controlAgg, treatment: treatmentAgg, options: compareOptions(c, relative: false)) else { continue }
                        entry["adjustment"] = .null
                        if case .cuped(let ca, let ta)? = Aggregate.arms(control: controlAgg, treatment: treatmentAgg) {
                            // The adjusted estimate is the one tested; the raw difference and what CUPED removed are shown beside it.
                            let raw = try ABTest.compare(.continuous(control: .sums(n: ca.n, sum: ca.post.sum, sumSquares: ca.post.sumSquares),
                                                                     treatment: .sums(n: ta.n, sum: ta.post.sum, sumSquares: ta.post.sumSquares)),
                                                         options: compareOptions(c, relative: false))
                            let reduction = raw.se > 0 ? min(1, max(0, 1 - (abs.se * abs.se) / (raw.se * raw.se))) : 0
                            entry["adjustment"] = ["method": "cuped", "covariate": .string(name + ".pre"), "theta": .number(try ABTest.cupedTheta(ca, ta)),
                                                   "variance_reduction": .number(reduction)]
                            entry["unadjusted_estimate"] = .number(raw.estimate)
                            entry["unadjusted_ci"] = [JSON(raw.ci.lower), JSON(raw.ci.upper)]
                            entry["unadjusted_p_value"] = JSON(raw.pValue)
                        }
                        let rel = try? Aggregate.compare(control: controlAgg, treatment: treatmentAgg, options: compareOptions(c, relative: true))
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
                            // The guardrail's own verdict: harm beyond the margin, no harm beyond it shown (the one-sided
                            // bound of the harm is below the margin), or neither.
                            let noHarmP = Normal.cdf(z)
                            let bound = harmDirection * abs.estimate + Normal.quantile(1 - alpha) * abs.se
                            entry["guardrail"] = ["verdict": .string(harmed ? "harm" : (noHarmP < alpha ? "no_harm" : "inconclusive")),
                                                  "margin": .number(def.nonInferiorityMargin), "harm_p_value": .number(p),
                                                  "no_harm_p_value": .number(noHarmP), "harm_upper_bound": .number(bound),
                                                  "harm_direction": .string(def.direction == .increase ? "decrease" : "increase")]
                            if harmed { guardrailHarms.append("\(name) harmed in \(t.key): \(signed(abs.estimate, def.type)) (margin \(def.nonInferiorityMargin)), one-sided \(pText(p))") }
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
                                "capping": c.cappingJSON(name), "quantile": JSON(def?.quantile),
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
        // The primary metric across several arms: corrected by the protocol's correction, as the decision reads it.
        let analysis = c.doc.analysis ?? c.proto.analyses.first ?? "fixed"
        var primaryCorrection: String?
        if primaryComparisons.count > 1, analysis != "bayesian", c.proto.correction != "none",
           let method = AdjustmentMethod(rawValue: c.proto.correction), let pi = c.metrics.firstIndex(where: { $0.role == "primary" }) {
            let ps = primaryComparisons.compactMap { $0.result.pValue }
            if ps.count == primaryComparisons.count {
                let adjusted = try MultipleTesting.adjust(pValues: ps, method: method, alpha: alpha)
                primaryCorrection = c.proto.correction
                for k in primaryComparisons.indices {
                    primaryComparisons[k].result.significant = adjusted.reject[k]
                    guard let j = comparisonsByMetric[pi].firstIndex(where: { $0["variant"]?.stringValue == primaryComparisons[k].variant }),
                          case .object(var o) = comparisonsByMetric[pi][j] else { continue }
                    o["adjusted_p_value"] = .number(adjusted.adjusted[k])
                    o["significant"] = .bool(adjusted.reject[k])
                    comparisonsByMetric[pi][j] = .object(o)
                }
            }
        }
        for i in metricsJSON.indices {
            guard case .object(var o) = metricsJSON[i] else { continue }
            o["comparisons"] = .array(comparisonsByMetric[i])
            metricsJSON[i] = .object(o)
        }

        // 3. Progress against the plan.
        let plan = c.plan
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
        var shipVariant: String?
        let primaryDef = c.doc.primaryMetric.flatMap { c.catalog.metrics[$0] }
        let good: Double = primaryDef?.direction == .decrease ? -1 : 1
        var recommendation: String
        if totalUnits == 0 {
            recommendation = "keep_running"
            reasons.append("no results recorded yet")
        } else if srmMismatch {
            recommendation = "invalid"
            reasons.append("sample-ratio mismatch: observed \(zip(c.doc.variants, observed).map { "\($0.key) \($1.wholeText)" }.joined(separator: ", ")) against weights \(c.doc.variants.map { "\($0.weight)" }.joined(separator: "/")) (\(pText(srmJSON["p_value"]?.doubleValue ?? 0)) < \(c.proto.srmThreshold)); the assignment is broken, do not read any lift")
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
                if let p = x.result.pValue { s += ", \(pText(p))" }
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
                if let best, toWin >= 0.95 { recommendation = "ship"; shipVariant = best.variant; reasons.append("ship \(best.variant): " + describe(best)) }
                else if let best, toWin <= 0.05 { recommendation = "rollback"; reasons.append(describe(best)) }
                else { recommendation = reachedSample || reachedEnd ? "inconclusive" : "keep_running"; reasons += primaryComparisons.map(describe) }
            default:
                if let best = winners.max(by: { good * $0.result.estimate < good * $1.result.estimate }) {
                    recommendation = "ship"
                    shipVariant = best.variant
                    reasons.append("ship \(best.variant): " + describe(best))
                    if let correction = primaryCorrection {
                        reasons.append("\(name) compared across \(primaryComparisons.count) arms with \(correction) correction")
                    }
                    let others = winners.filter { $0.variant != best.variant }.map(\.variant)
                    if !others.isEmpty {
                        reasons.append("\(others.joined(separator: ", ")) also beat\(others.count == 1 ? "s" : "") control; \(best.variant) has the largest estimate, but the arms were not tested against each other: an ambiguity to weigh before shipping")
                    }
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

        if c.kind == "holdout" {
            reasons.insert("holdout: \(c.doc.hypothesis ?? "the cumulative effect of its scope"), read as exposed units against held-out units", at: 0)
        }
        return ["experiment": .string(c.doc.key), "kind": .string(c.kind), "holdout": c.holdout, "name": JSON(c.doc.name), "as_of": .string(asOf.description), "state": .string(c.state.rawValue),
                "schedule": ["start": JSON(c.doc.start?.description), "end": JSON(c.doc.end?.description)],
                "data_window": dataDays.map { ["first_day": .string($0.first), "last_day": .string($0.last)] } ?? .null,
                "dimensions": JSON(c.doc.dimensions),
                "analysis": .string(analysis), "alpha": .number(alpha), "correction": .string(c.proto.correction),
                "srm": srmJSON, "metrics": .array(metricsJSON), "progress": progress,
                "decision": ["recommendation": .string(recommendation), "variant": JSON(shipVariant), "reasons": JSON(reasons)]]
    }

    /// "+1.8 points" for rates, "+0.35" otherwise.
    static func signed(_ x: Double, _ type: MetricType?) -> String {
        if type == .binomial || type == .nps {
            let pts = x * 100
            return "\(pts >= 0 ? "+" : "")\(short(pts)) points"
        }
        return "\(x >= 0 ? "+" : "")\(short(x))"
    }

    /// The one p-value rule of summaries and reports: "p < 0.0001" at the floor, "p > 0.999" at the top, else
    /// three significant digits.
    static func pText(_ p: Double) -> String {
        if p < 0.0001 { return "p < 0.0001" }
        if p > 0.999 { return "p > 0.999" }
        return "p = " + short(p)
    }

    /// Three significant digits, no exponent for ordinary magnitudes (as C's `%.Nf`, and `%.1e` below 0.001).
    static func short(_ x: Double) -> String {
        guard x.isFinite else { return "\(x)" }
        if x == 0 { return "0" }
        let magnitude = abs(x)
        if magnitude < 0.001 { return exponentText(x) }
        var exponent = 0
        var v = magnitude
        while v >= 10 { v /= 10; exponent += 1 }
        while v < 1 { v *= 10; exponent -= 1 }
        return fixedText(x, max(0, 2 - exponent))
    }

    static func fixedText(_ x: Double, _ decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(x) * scale).rounded()
        guard scaled < 9.0e15 else { return "\(x)" }
        let n = UInt64(scaled)
        var s = String(n / UInt64(scale))
        if decimals > 0 {
            let f = String(n % UInt64(scale))
            s += "." + String(repeating: "0", count: decimals - f.count) + f
        }
        return x < 0 ? "-" + s : s
    }

    static func exponentText(_ x: Double) -> String {
        var m = abs(x), e = 0
        while m >= 10 { m /= 10; e += 1 }
        while m < 1 { m *= 10; e -= 1 }
        var mantissa = (m * 10).rounded() / 10
        if mantissa >= 10 { mantissa /= 10; e += 1 }
        let digits = String(abs(e))
        return (x < 0 ? "-" : "") + fixedText(mantissa, 1) + "e" + (e < 0 ? "-" : "+") + (digits.count < 2 ? "0" + digits : digits)
    }
}

extension Analysis {
    /// One dimension's breakdown (`results.segments`): per value, every arm of every metric (or of `metric`) against
    /// control; p-values adjusted by Benjamini–Hochberg across the dimension's values, separately for each metric and
    /// arm (`(other)` included); and Cochran's Q across the values per metric and arm, flagging an effect that differs.
    /// `rows` maps each segment (`dimension=value`) to its stored rows.
    public static func segments(_ c: ResultsContext, dimension: String, rows: [String: [(metric: String, variant: String, stats: String)]],
                                metric: String?, asOf: Timestamp) throws -> JSON {
        let alpha = c.doc.alpha ?? c.proto.alphaMax
        let metrics = c.metrics.filter { metric == nil || $0.name == metric }
        let prefix = dimension + "="
        // Values by units, largest first ((other) last).
        var values: [(value: String, totals: [String: [String: Aggregate]], units: Double)] = rows.map { segment, rows in
            let totals = Analysis.totals(rows)
            let source = totals[exposuresMetric] ?? c.doc.primaryMetric.flatMap { totals[$0] } ?? [:]
            return (String(segment.dropFirst(prefix.count)), totals, source.values.reduce(0) { $0 + $1.n })
        }
        values.sort { a, b in
            if (a.value == "(other)") != (b.value == "(other)") { return b.value == "(other)" }
            return (a.units, b.value) > (b.units, a.value)
        }
        // comparisons[value][metric][arm]
        var table: [[[ComparisonResult?]]] = []
        for v in values {
            table.append(metrics.map { m in
                c.treatments.map { t in
                    guard let ca = v.totals[m.name]?[c.control.key], let ta = v.totals[m.name]?[t.key] else { return nil }
                    return (try? Aggregate.compare(control: ca, treatment: ta, options: compareOptions(c, relative: false))) ?? nil
                }
            })
        }
        var adjusted = table.map { $0.map { $0.map { _ in Double?.none } } }
        var heterogeneity: [JSON] = []
        var flagged = false
        for mi in metrics.indices {
            for ti in c.treatments.indices {
                let present = values.indices.filter { table[$0][mi][ti]?.pValue != nil }
                if !present.isEmpty {
                    let bh = try MultipleTesting.adjust(pValues: present.map { table[$0][mi][ti]!.pValue! }, method: .bh, alpha: alpha)
                    for (k, vi) in present.enumerated() { adjusted[vi][mi][ti] = bh.adjusted[k] }
                }
                let usable = values.indices.filter { (table[$0][mi][ti]?.se ?? 0) > 0 }
                guard usable.count >= 2,
                      let q = try? Heterogeneity.cochranQ(estimates: usable.map { table[$0][mi][ti]!.estimate }, standardErrors: usable.map { table[$0][mi][ti]!.se })
                else { continue }
                let differs = q.pValue < alpha
                flagged = flagged || differs
                heterogeneity.append(["metric": .string(metrics[mi].name), "variant": .string(c.treatments[ti].key), "q": .number(q.q), "df": .number(q.df),
                                      "p_value": .number(q.pValue), "i_squared": .number(q.iSquared), "pooled_estimate": .number(q.pooled),
                                      "values": JSON(usable.count), "differs": .bool(differs)])
            }
        }
        let valuesJSON: [JSON] = values.indices.map { vi in
            let v = values[vi]
            return ["value": .string(v.value), "units": .number(v.units),
                    "metrics": .array(metrics.indices.map { mi in
                        ["metric": .string(metrics[mi].name), "role": .string(metrics[mi].role),
                         "variants": .array(c.doc.variants.map { arm in
                             let a = v.totals[metrics[mi].name]?[arm.key]
                             return ["variant": .string(arm.key), "n": .number(a?.n ?? 0), "mean": a.map { .number($0.mean) } ?? .null]
                         }),
                         "comparisons": .array(c.treatments.indices.compactMap { ti -> JSON? in
                             guard let r = table[vi][mi][ti] else { return nil }
                             let adj = adjusted[vi][mi][ti]
                             return ["variant": .string(c.treatments[ti].key), "estimate": .number(r.estimate), "ci": [JSON(r.ci.lower), JSON(r.ci.upper)],
                                     "se": .number(r.se), "p_value": JSON(r.pValue), "adjusted_p_value": JSON(adj),
                                     "significant": .bool((adj ?? 1) < alpha)]
                         })]
                    })]
        }
        return ["experiment": .string(c.doc.key), "dimension": .string(dimension), "as_of": .string(asOf.description), "alpha": .number(alpha),
                "correction": "Benjamini-Hochberg across the dimension's values, separately for each metric and arm ((other) included)",
                "heterogeneity_test": "Cochran's Q on the per-value absolute differences with inverse-variance weights",
                "values": .array(valuesJSON), "heterogeneity": .array(heterogeneity), "flagged": .bool(flagged),
                "other": .bool(values.contains { $0.value == "(other)" })]
    }
}
