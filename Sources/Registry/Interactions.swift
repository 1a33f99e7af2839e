public import JSONCore
import Statistics

/// Which running experiments can interact with one another: another layer (one layer's experiments share no unit),
/// the same unit, windows that overlap, both with traffic, and an audience some unit could be in for both.
public enum InteractionRules {
    /// The experiments of `candidates` that overlap `a`, most shared traffic first (traffic × traffic × days
    /// overlapping), at most `limit`; the rest come back in `beyondLimit` (the ingest report names them).
    public static func overlapping(_ a: ConflictSubject, candidates: [ConflictSubject], limit: Int,
                                   cache: Satisfiability.Cache? = nil) -> (kept: [ConflictSubject], beyondLimit: [ConflictSubject]) {
        let ranked: [(ConflictSubject, Double)] = candidates.compactMap { b in
            guard b.key != a.key, b.layer != a.layer, b.unit == a.unit, b.state.hasRun, !b.buckets.isEmpty,
                  b.start < a.end, a.start < b.end else { return nil }
            guard Satisfiability.witness([a.targeting, b.targeting], cache: cache) != nil else { return nil }
            let days = (min(a.end.seconds, b.end.seconds) - max(a.start.seconds, b.start.seconds)) / 86_400
            return (b, a.traffic * b.traffic * days)
        }.sorted { ($0.1, $1.0.key) > ($1.1, $0.0.key) }
        return (ranked.prefix(limit).map(\.0), ranked.dropFirst(limit).map(\.0))
    }
}

/// One experiment B crossed with the experiment read (A): B's arms (control first) and A's stored totals within
/// each of them, the segments `arm:B=ARM` that ingestion wrote.
public struct CrossedExperiment: Sendable {
    public var key: String
    public var arms: [String]
    /// Segment `arm:KEY=ARM` → its rows.
    public var rows: [String: [(metric: String, variant: String, stats: String)]]
    public init(key: String, arms: [String], rows: [String: [(metric: String, variant: String, stats: String)]]) {
        self.key = key; self.arms = arms; self.rows = rows
    }
    public static let segmentPrefix = "arm:"
    public var segmentPrefix: String { Self.segmentPrefix + key + "=" }
}

extension Analysis {
    /// How `results.interactions` tests, as its answer states it.
    public static let interactionMethod: JSON = [
        "effect_within_arm": "A's effect (treatment − control, absolute) among the units in one arm of B, by the metric's own comparison (as results.summary, with unpooled variances: a Wald z test for binomial, Welch for continuous, CUPED when pre-period data exist, the delta method for ratios, NPS, quantiles from their sketches)",
        "interaction": "the difference of A's effect in B's arm and in B's control arm (a difference of differences); B's arms hold disjoint units, so the two effects are independent and their variances add: a z test",
        "adjustment": "Benjamini–Hochberg across every pair, metric, variant of A and arm of B examined",
        "cells": "A's aggregates per (arm of A × arm of B), stored by results.ingest as segments arm:B=ARM",
    ]

    /// `results.interactions`: for each experiment crossed with `c`'s and each primary and guardrail metric (or only
    /// `metric`), A's effect within each arm of B, the interaction, its BH-adjusted p-value and a verdict.
    public static func interactions(_ c: ResultsContext, crossed: [CrossedExperiment], notCrossed: [(key: String, reason: String)],
                                    metric: String?) throws -> JSON {
        let alpha = c.doc.alpha ?? c.proto.alphaMax
        let metrics = c.metrics.filter { metric == nil ? $0.role != "secondary" : $0.name == metric }
        // Each arm's own variance: A has an effect within B's arms, so H0's pooled proportion is not the variance there.
        var options = compareOptions(c, relative: false)
        options.variance = .unpooled
        struct Test { var pair: Int; var metric: Int; var treatment: Int; var arm: Int
                      var effect: ComparisonResult; var baseline: ComparisonResult; var result: Interaction.Result }
        var tests: [Test] = []
        var untested: [[JSON]] = crossed.map { _ in [] }
        var cells: [[JSON]] = crossed.map { _ in [] }
        for (pi, b) in crossed.enumerated() {
            // totals[arm of B][metric][arm of A]
            let totals = b.arms.map { arm in Analysis.totals(b.rows[b.segmentPrefix + arm] ?? []) }
            let unassigned = Analysis.totals(b.rows[b.segmentPrefix + "(not assigned)"] ?? [])
            for (mi, m) in metrics.enumerated() {
                cells[pi].append(["metric": .string(m.name),
                                  "cells": .array((b.arms.indices.map { (b.arms[$0], totals[$0]) } + [("(not assigned)", unassigned)]).flatMap { arm, t in
                                      c.doc.variants.map { v in
                                          let a = t[m.name]?[v.key]
                                          return ["arm": .string(arm), "variant": .string(v.key), "n": .number(a?.n ?? 0), "mean": a.map { .number($0.mean) } ?? .null]
                                      }
                                  })])
                for (ti, t) in c.treatments.enumerated() {
                    func effect(_ arm: Int) throws -> ComparisonResult? {
                        guard let ctl = totals[arm][m.name]?[c.control.key], let trt = totals[arm][m.name]?[t.key] else { return nil }
                        return try Aggregate.compare(control: ctl, treatment: trt, options: options)
                    }
                    let baseline: ComparisonResult?
                    do { baseline = try effect(0) } catch {
                        untested[pi].append(["metric": .string(m.name), "variant": .string(t.key), "arm": .string(b.arms[0]), "reason": .string("\(error)")])
                        continue
                    }
                    for arm in b.arms.indices.dropFirst() {
                        do {
                            guard let baseline, let within = try effect(arm) else {
                                untested[pi].append(["metric": .string(m.name), "variant": .string(t.key), "arm": .string(b.arms[arm]),
                                                     "reason": .string("no data for \(c.control.key) and \(t.key) in both \(b.key)=\(b.arms[0]) and \(b.key)=\(b.arms[arm])")])
                                continue
                            }
                            let r = try Interaction.test(effect: (within.estimate, within.se), baseline: (baseline.estimate, baseline.se), alpha: alpha)
                            tests.append(Test(pair: pi, metric: mi, treatment: ti, arm: arm, effect: within, baseline: baseline, result: r))
                        } catch {
                            untested[pi].append(["metric": .string(m.name), "variant": .string(t.key), "arm": .string(b.arms[arm]), "reason": .string("\(error)")])
                        }
                    }
                }
            }
        }
        let adjusted = tests.isEmpty ? [] : try MultipleTesting.adjust(pValues: tests.map(\.result.pValue), method: .bh, alpha: alpha).adjusted
        func effectJSON(_ r: ComparisonResult) -> JSON { ["estimate": .number(r.estimate), "se": .number(r.se), "ci": [JSON(r.ci.lower), JSON(r.ci.upper)]] }
        var flagged: [JSON] = []
        var testsJSON: [[JSON]] = crossed.map { _ in [] }
        for (k, t) in tests.enumerated() {
            let b = crossed[t.pair], m = metrics[t.metric], variant = c.treatments[t.treatment].key, r = t.result
            let isFlagged = adjusted[k] < alpha
            let interval = "\(Int((1 - alpha) * 100))% CI [\(short(r.ci.lower)), \(short(r.ci.upper))], adjusted \(pText(adjusted[k]))"
            let verdict = isFlagged
                ? "\(c.doc.key)'s effect on \(m.name) (\(variant) − \(c.control.key)) is \(short(r.effect)) where \(b.key) is \(b.arms[t.arm]) and \(short(r.baselineEffect)) where it is \(b.arms[0]): they differ by \(short(r.estimate)) (\(interval)); read \(variant)'s result on \(m.name) with \(b.key)'s arm in mind"
                : "no evidence that \(b.key)=\(b.arms[t.arm]) changes \(c.doc.key)'s effect on \(m.name) (difference \(short(r.estimate)), \(interval))"
            let entry: JSON = ["with": .string(b.key), "metric": .string(m.name), "role": .string(m.role), "variant": .string(variant),
                               "arm": .string(b.arms[t.arm]), "baseline_arm": .string(b.arms[0]),
                               "effect_within_arm": effectJSON(t.effect), "effect_within_baseline": effectJSON(t.baseline),
                               "interaction": ["estimate": .number(r.estimate), "se": .number(r.se), "ci": [JSON(r.ci.lower), JSON(r.ci.upper)],
                                               "z": .number(r.statistic), "p_value": .number(r.pValue), "adjusted_p_value": .number(adjusted[k])],
                               "flagged": .bool(isFlagged), "verdict": .string(verdict)]
            testsJSON[t.pair].append(entry)
            if isFlagged { flagged.append(entry) }
        }
        let pairs: [JSON] = crossed.indices.map { pi in
            ["with": .string(crossed[pi].key), "arms": JSON(crossed[pi].arms), "tests": .array(testsJSON[pi]), "not_tested": .array(untested[pi]),
             "cells": .array(cells[pi]), "flagged": JSON(testsJSON[pi].filter { $0["flagged"] == true }.count)]
        }
        return ["key": .string(c.doc.key), "alpha": .number(alpha), "metrics": JSON(metrics.map(\.name)),
                "pairs": .array(pairs), "not_crossed": .array(notCrossed.map { ["with": .string($0.key), "reason": .string($0.reason)] }),
                "tests": JSON(tests.count), "flagged": .array(flagged), "method": interactionMethod]
    }

    /// A summary with the interactions that were flagged: named in `interactions` and as a caution in the decision.
    public static func adding(interactions: JSON, to summary: JSON) -> JSON {
        guard case .object(var s) = summary, case .array(let flagged)? = interactions["flagged"] else { return summary }
        s["interactions"] = ["pairs": JSON(interactions["pairs"]?.arrayValue?.count ?? 0), "tests": interactions["tests"] ?? 0,
                             "flagged": .array(flagged.map { ["with": $0["with"] ?? .null, "metric": $0["metric"] ?? .null, "variant": $0["variant"] ?? .null,
                                                              "arm": $0["arm"] ?? .null, "verdict": $0["verdict"] ?? .null] })]
        if !flagged.isEmpty, case .object(var decision)? = s["decision"], case .array(var reasons)? = decision["reasons"] {
            let with = Set(flagged.compactMap { $0["with"]?.stringValue }).sorted()
            reasons.append(.string("interaction with \(with.joined(separator: ", ")): \(flagged.count) effect\(flagged.count == 1 ? "" : "s") of this experiment differ\(flagged.count == 1 ? "s" : "") between another experiment's arms (results.interactions); the result holds for the mix of arms that ran, not for either alone"))
            decision["reasons"] = .array(reasons)
            s["decision"] = .object(decision)
        }
        return .object(s)
    }
}
