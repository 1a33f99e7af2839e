import JSONCore
import Registry

/// What a report can be rendered as.
public enum ReportFormat: String, Sendable, CaseIterable {
    case json, markdown, html
}

/// A tolerant reading of a `results.summary` result: every field may be missing, null or of the wrong
/// type; what cannot be read is nil and is rendered as "n/a" or left out.
struct Summary {
    var experiment: String?
    var name: String?
    var asOf: String?
    var state: String?
    var analysis: String?
    var alpha: Double?
    var srm: SRM?
    var metrics: [Metric]
    var progress: Progress?
    var decision: Decision?
    var scheduleStart: String?
    var scheduleEnd: String?
    var dataFirst: String?
    var dataLast: String?
    /// Interactions with overlapping experiments (`interactions` of the summary), when any were examined.
    var interactions: Interactions?

    struct Interactions {
        var pairs: Int
        var tests: Int
        var flagged: [(with: String, metric: String, verdict: String)]
    }

    /// "Schedule Dec 1 – Dec 29 · data Dec 1 – Dec 10": what the numbers cover, beside the as-of time.
    var window: [String] {
        var out: [String] = []
        if let a = scheduleStart, let b = scheduleEnd { out.append("schedule \(Dates.short(a)) – \(Dates.short(b))") }
        if let a = dataFirst, let b = dataLast { out.append("data \(Dates.short(a)) – \(Dates.short(b))") } else { out.append("no data yet") }
        return out
    }

    struct SRM {
        var chi2: Double?
        var df: Double?
        var pValue: Double?
        var mismatch: Bool?
        var threshold: Double?
        var variants: [Share]
    }

    struct Share {
        var variant: String
        var n: Double?
        var expected: Double?
        var observed: Double?
    }

    /// The summary's `capping` of a metric in words.
    static func capLabel(_ c: JSON?) -> String? {
        guard let c, let type = Read.string(c["type"]), let value = Read.double(c["value"]) else { return nil }
        if type == "absolute" { return "capped at \(Fmt.plain(value))" }
        let name = Fmt.percentileName(value)
        if let cap = Read.double(c["cap"]) { return "capped at \(Fmt.plain(cap)) (\(name))" }
        return "capped at the \(name)"
    }

    struct Metric {
        var metric: String
        var role: Role
        var type: String?
        var direction: String?
        /// How each unit's value was capped before summing (winsorisation), in words: "capped at 250 (99th percentile)".
        var capLabel: String?
        /// A quantile metric's q: its arms' values are their q-quantiles.
        var quantile: Double?

        /// What the metric's cell says besides its name: the quantile and the capping.
        var qualifiers: [String] {
            (quantile.map { ["\(Fmt.percentileName($0)) per arm"] } ?? []) + (capLabel.map { [$0] } ?? [])
        }
        var variants: [VariantStat]
        var comparisons: [Comparison]

        var isBinomial: Bool { type == "binomial" }
        var decreaseIsGood: Bool { direction == "decrease" }

        /// The control arm: the variant no comparison names (preferring one called "control").
        var control: VariantStat? {
            let compared = Set(comparisons.map(\.variant))
            let rest = variants.filter { !compared.contains($0.variant) }
            return rest.first { $0.variant == "control" } ?? rest.first
        }

        func stat(_ variant: String) -> VariantStat? { variants.first { $0.variant == variant } }
    }

    enum Role: Int, Comparable, CaseIterable {
        case primary = 0, secondary, guardrail, other
        init(_ s: String?) {
            switch s {
            case "primary": self = .primary
            case "secondary": self = .secondary
            case "guardrail", "guardrails": self = .guardrail
            default: self = .other
            }
        }
        static func < (a: Role, b: Role) -> Bool { a.rawValue < b.rawValue }
        var title: String {
            switch self {
            case .primary: "Primary metric"
            case .secondary: "Secondary metrics"
            case .guardrail: "Guardrail metrics"
            case .other: "Other metrics"
            }
        }
        var short: String {
            switch self {
            case .primary: "primary"
            case .secondary: "secondary"
            case .guardrail: "guardrail"
            case .other: "metric"
            }
        }
    }

    struct VariantStat {
        var variant: String
        var n: Double?
        var mean: Double?
    }

    struct Comparison {
        var variant: String
        var estimate: Double?
        var ci: (Double, Double)?
        var relative: Double?
        var relativeCI: (Double, Double)?
        var pValue: Double?
        var adjustedPValue: Double?
        var significant: Bool?
        var chanceToWin: Double?
        var harmDetected: Bool?
        /// False when the sample-ratio check failed: no lift is a result.
        var readable: Bool?
        /// The guardrail test's verdict: harm, no_harm or inconclusive (with its margin).
        var guardrailVerdict: String?
        var margin: Double?
        /// CUPED: what was adjusted, and the raw difference beside the adjusted one.
        var adjustment: String?
        var varianceReduction: Double?
        var unadjustedEstimate: Double?
        var unadjustedCI: (Double, Double)?
    }

    struct Progress {
        var units: Double?
        var plannedUnits: Double?
        var shareOfPlan: Double?
        var daysElapsed: Double?
        var daysScheduled: Double?
        var achievedPower: Double?
        var isEmpty: Bool {
            [units, plannedUnits, shareOfPlan, daysElapsed, daysScheduled, achievedPower].allSatisfy { $0 == nil }
        }
    }

    struct Decision {
        var recommendation: String?
        var variant: String?
        var reasons: [String]
    }

    init(_ json: JSON) {
        experiment = Read.string(json["experiment"])
        name = Read.string(json["name"])
        asOf = Read.string(json["as_of"])
        state = Read.string(json["state"])
        analysis = Read.string(json["analysis"])
        alpha = Read.double(json["alpha"])
        scheduleStart = Read.string(json["schedule"]?["start"])
        scheduleEnd = Read.string(json["schedule"]?["end"])
        dataFirst = Read.string(json["data_window"]?["first_day"])
        dataLast = Read.string(json["data_window"]?["last_day"])
        if let s = json["srm"], s.objectValue != nil {
            srm = SRM(
                chi2: Read.double(s["chi2"]), df: Read.double(s["df"]), pValue: Read.double(s["p_value"]),
                mismatch: s["mismatch"]?.boolValue, threshold: Read.double(s["threshold"]),
                variants: (s["variants"]?.arrayValue ?? []).enumerated().map { i, v in
                    Share(variant: Read.string(v["variant"]) ?? "variant \(i + 1)", n: Read.double(v["n"]),
                          expected: Read.double(v["expected_share"]), observed: Read.double(v["observed_share"]))
                })
        }
        metrics = (json["metrics"]?.arrayValue ?? []).enumerated().compactMap { i, m in
            guard m.objectValue != nil else { return nil }
            return Metric(
                metric: Read.string(m["metric"]) ?? "metric \(i + 1)", role: Role(Read.string(m["role"])),
                type: Read.string(m["type"]), direction: Read.string(m["direction"]), capLabel: Self.capLabel(m["capping"]),
                quantile: Read.double(m["quantile"]),
                variants: (m["variants"]?.arrayValue ?? []).enumerated().map { j, v in
                    VariantStat(variant: Read.string(v["variant"]) ?? "variant \(j + 1)", n: Read.double(v["n"]), mean: Read.double(v["mean"]))
                },
                comparisons: (m["comparisons"]?.arrayValue ?? []).enumerated().map { j, c in
                    Comparison(
                        variant: Read.string(c["variant"]) ?? "treatment \(j + 1)",
                        estimate: Read.double(c["estimate"]), ci: Read.interval(c["ci"]),
                        relative: Read.double(c["relative"]), relativeCI: Read.interval(c["relative_ci"]),
                        pValue: Read.double(c["p_value"]), adjustedPValue: Read.double(c["adjusted_p_value"]),
                        significant: c["significant"]?.boolValue, chanceToWin: Read.double(c["chance_to_win"]),
                        harmDetected: c["harm_detected"]?.boolValue, readable: c["readable"]?.boolValue,
                        guardrailVerdict: Read.string(c["guardrail"]?["verdict"]), margin: Read.double(c["guardrail"]?["margin"]),
                        adjustment: Read.string(c["adjustment"]?["method"]), varianceReduction: Read.double(c["adjustment"]?["variance_reduction"]),
                        unadjustedEstimate: Read.double(c["unadjusted_estimate"]), unadjustedCI: Read.interval(c["unadjusted_ci"]))
                })
        }
        if let p = json["progress"], p.objectValue != nil {
            progress = Progress(
                units: Read.double(p["units"]), plannedUnits: Read.double(p["planned_units"]),
                shareOfPlan: Read.double(p["share_of_plan"]), daysElapsed: Read.double(p["days_elapsed"]),
                daysScheduled: Read.double(p["days_scheduled"]), achievedPower: Read.double(p["achieved_power"]))
        }
        if let i = json["interactions"], let pairs = Read.double(i["pairs"]), pairs > 0 {
            interactions = Interactions(pairs: Int(pairs), tests: Int(Read.double(i["tests"]) ?? 0),
                                        flagged: (i["flagged"]?.arrayValue ?? []).map {
                                            (Read.string($0["with"]) ?? "?", Read.string($0["metric"]) ?? "?", Read.string($0["verdict"]) ?? "")
                                        })
        }
        if let d = json["decision"], d.objectValue != nil {
            decision = Decision(
                recommendation: Read.string(d["recommendation"]), variant: Read.string(d["variant"]),
                reasons: (d["reasons"]?.arrayValue ?? []).compactMap { Read.string($0) })
        }
    }

    /// Metrics in report order: primary, secondary, guardrail, other; input order within a role.
    var metricsByRole: [(Role, [Metric])] {
        Role.allCases.compactMap { role in
            let ms = metrics.filter { $0.role == role }
            return ms.isEmpty ? nil : (role, ms)
        }
    }

    var primary: Metric? { metrics.first { $0.role == .primary } }

    /// The interactions section's lead sentence (shared by both renderers).
    var interactionsLead: String? {
        guard let i = interactions else { return nil }
        let scope = "\(i.tests) test\(i.tests == 1 ? "" : "s") against \(i.pairs) overlapping experiment\(i.pairs == 1 ? "" : "s") (Benjamini–Hochberg adjusted)"
        return i.flagged.isEmpty ? "No interaction found in \(scope)." : "\(i.flagged.count) interaction\(i.flagged.count == 1 ? "" : "s") flagged in \(scope):"
    }

    var title: String { name ?? experiment ?? "Experiment" }

    /// "95% CI" for alpha 0.05, plain "CI" when alpha is unknown.
    var ciLabel: String { Fmt.confidence(alpha: alpha).map { "\($0) CI" } ?? "CI" }
}

/// The verdict of one comparison, from the point of view of the metric's desired direction. A guardrail is read by
/// its own test against the margin, never by the two-sided p-value; under a failed sample-ratio check nothing is a
/// result.
enum Verdict {
    case win, harm, neutral, unknown
    case unreadable
    case guardrailHarm, guardrailSafe, guardrailInconclusive

    init(_ c: Summary.Comparison, _ m: Summary.Metric) {
        if c.readable == false { self = .unreadable; return }
        if m.role == .guardrail, let g = c.guardrailVerdict {
            self = g == "harm" ? .guardrailHarm : g == "no_harm" ? .guardrailSafe : .guardrailInconclusive
            return
        }
        if c.harmDetected == true { self = .guardrailHarm; return }
        guard let sig = c.significant else { self = .unknown; return }
        guard sig else { self = .neutral; return }
        let effect = c.estimate ?? c.relative ?? 0
        let good = m.decreaseIsGood ? effect < 0 : effect > 0
        self = effect == 0 ? .neutral : (good ? .win : .harm)
    }

    var label: String {
        switch self {
        case .win: "significant improvement"
        case .harm: "significant harm"
        case .neutral: "not significant"
        case .unknown: "n/a"
        case .unreadable: "not readable: sample ratio mismatch"
        case .guardrailHarm: "harm beyond the margin"
        case .guardrailSafe: "no harm beyond the margin shown"
        case .guardrailInconclusive: "inconclusive against the margin"
        }
    }

    var icon: String {
        switch self {
        case .win, .guardrailSafe: "✔"
        case .harm, .guardrailHarm: "✖"
        case .neutral, .guardrailInconclusive: "○"
        case .unknown: "?"
        case .unreadable: "–"
        }
    }

    /// good, bad or neutral: how the verdict is coloured (always with its words and icon).
    var tone: String {
        switch self {
        case .win, .guardrailSafe: "good"
        case .harm, .guardrailHarm: "bad"
        default: "neutral"
        }
    }
}

/// A cumulative-lift series (`results.timeseries`), tolerant like ``Summary``.
struct Series {
    var metric: String?
    var points: [Point]

    struct Point {
        var day: String
        var dayNumber: Int?
        var variant: String
        var relative: Double?
        var ci: (Double, Double)?
        var n: Double?
        /// What the day added per exposed unit, treatment and control (``Aggregate/dayValue(increment:)``).
        var daily: Double?
        var controlDaily: Double?
    }

    init(_ json: JSON) {
        metric = Read.string(json["metric"])
        points = (json["points"]?.arrayValue ?? []).compactMap { p in
            guard let day = Read.string(p["day"]) else { return nil }
            return Point(day: day, dayNumber: Dates.dayNumber(day), variant: Read.string(p["variant"]) ?? "treatment",
                         relative: Read.double(p["relative"]), ci: Read.interval(p["relative_ci"]), n: Read.double(p["n"]),
                         daily: Read.double(p["daily_mean"]), controlDaily: Read.double(p["control_daily_mean"]))
        }
    }

    /// Treatment variants in first-seen order.
    var variants: [String] {
        var seen: [String] = []
        for p in points where !seen.contains(p.variant) { seen.append(p.variant) }
        return seen
    }
}

enum Read {
    static func string(_ j: JSON?) -> String? {
        switch j {
        case .string(let s)?: s
        case .number(let d)?: Fmt.sig(d)
        case .bool(let b)?: b ? "true" : "false"
        default: nil
        }
    }

    static func double(_ j: JSON?) -> Double? {
        guard let d = j?.doubleValue, d.isFinite else { return nil }
        return d
    }

    /// A `[lo, hi]` pair of finite numbers (swapped if reversed), else nil.
    static func interval(_ j: JSON?) -> (Double, Double)? {
        guard let a = j?.arrayValue, a.count == 2, let lo = double(a[0]), let hi = double(a[1]) else { return nil }
        return lo <= hi ? (lo, hi) : (hi, lo)
    }
}

enum Dates {
    /// Days since 1970-01-01 for "YYYY-MM-DD" (an optional time part is ignored), else nil.
    static func dayNumber(_ s: String) -> Int? { CalendarDay.epochDay(s) }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// "2026-12-01" → "Dec 1"; anything unparseable is returned as is.
    static func short(_ s: String) -> String {
        let parts = s.prefix(10).split(separator: "-")
        guard parts.count == 3, let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m) else { return s }
        return "\(months[m - 1]) \(d)"
    }
}

/// One dimension's breakdown (`results.segments`), tolerant like ``Summary``: the primary metric's comparisons per
/// value and the heterogeneity verdict.
struct Segments {
    var dimension: String
    var flagged: Bool
    var metric: String?
    var arms: [String]
    var rows: [(value: String, units: Double?, cells: [(estimate: Double?, ci: (Double, Double)?, adjustedP: Double?)])]
    var tests: [(variant: String, q: Double?, df: Double?, p: Double?, differs: Bool)]
    var isBinomial: Bool

    /// Decimal places of each arm's Δ column (one rule per column).
    var decimals: [Int] {
        arms.indices.map { i in
            ColumnDecimals(magnitudes: rows.map { Fmt.tripleMagnitude($0.cells[i].estimate, $0.cells[i].ci, scale: isBinomial ? 100 : 1) }).value
        }
    }

    init?(_ json: JSON, primary: Summary.Metric?) {
        guard let dimension = Read.string(json["dimension"]) else { return nil }
        let values = json["values"]?.arrayValue ?? []
        let metric = primary?.metric ?? values.first?["metrics"]?.arrayValue?.first?["metric"]?.stringValue
        func metricOf(_ v: JSON) -> JSON? { v["metrics"]?.arrayValue?.first { Read.string($0["metric"]) == metric } }
        var arms: [String] = []
        for v in values {
            for c in metricOf(v)?["comparisons"]?.arrayValue ?? [] {
                if let a = Read.string(c["variant"]), !arms.contains(a) { arms.append(a) }
            }
        }
        self.dimension = dimension
        self.metric = metric
        self.arms = arms
        flagged = json["flagged"]?.boolValue ?? false
        isBinomial = primary?.isBinomial ?? false
        rows = values.map { v in
            let cs = metricOf(v)?["comparisons"]?.arrayValue ?? []
            return (Read.string(v["value"]) ?? "?", Read.double(v["units"]), arms.map { a in
                let c = cs.first { Read.string($0["variant"]) == a }
                return (Read.double(c?["estimate"]), Read.interval(c?["ci"]), Read.double(c?["adjusted_p_value"]))
            })
        }
        tests = (json["heterogeneity"]?.arrayValue ?? []).filter { Read.string($0["metric"]) == metric }.map {
            (Read.string($0["variant"]) ?? "?", Read.double($0["q"]), Read.double($0["df"]), Read.double($0["p_value"]), $0["differs"]?.boolValue ?? false)
        }
    }

    /// "the effect of green on checkout_conversion differs across platform (Cochran's Q = 31.2, df 1, p < 0.0001)".
    var verdicts: [String] {
        tests.map { t in
            let stats = [t.q.map { "Cochran's Q = \(Fmt.plain($0))" }, t.df.map { "df \(Fmt.plain($0))" }, t.p.map(Fmt.pEquals)].compactMap { $0 }.joined(separator: ", ")
            return (t.differs ? "The effect of \(t.variant) differs across \(dimension) values" : "No evidence that the effect of \(t.variant) differs across \(dimension) values")
                + (stats.isEmpty ? "" : " (\(stats))")
        }
    }
}
