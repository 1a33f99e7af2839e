public import JSONCore
import Statistics

/// The planned sample size and duration of an experiment, from its design.
public struct Plan: Sendable, Equatable {
    /// Units needed in every arm (rounded up).
    public var perArm: Int
    /// The fractional solution before rounding.
    public var perArmExact: Double
    public var arms: Int
    /// Units the whole experiment needs, given the variant weights.
    public var totalUnits: Int
    /// Units entering the experiment per day: expected_daily_units × traffic.
    public var dailyUnits: Double
    public var daysNeeded: Int
    public var formula: String

    public var json: JSON {
        ["per_arm": JSON(perArm), "per_arm_exact": .number(perArmExact), "arms": JSON(arms), "total_units": JSON(totalUnits),
         "daily_units": .number(dailyUnits), "days_needed": JSON(daysNeeded), "formula": .string(formula)]
    }
}

/// Everything validation found: all violations at once, and the plan when the design allows one.
public struct ValidationOutcome: Sendable, Equatable {
    public var violations: [Violation]
    public var plan: Plan?
    public var protocolHash: String?
    public var isValid: Bool { violations.isEmpty }
}

public enum Validator {
    /// The smallest variant weight: assignment hashes units to 10,000 positions.
    public static let smallestWeight = 1e-4
    public static let maxDailyUnits = 1e12
    /// Plans longer than this (about 2,700 years) are refused rather than computed.
    static let maxPlanDays = 1e6

    /// Validates a document against the protocol it names.
    public static func validate(_ json: JSON, protocols: ProtocolSet, limits: DocumentLimits = DocumentLimits()) -> (ExperimentDocument?, ValidationOutcome) {
        let (doc, shapeViolations) = ExperimentDocument.read(json, limits: limits)
        guard let doc else { return (nil, ValidationOutcome(violations: shapeViolations, plan: nil, protocolHash: nil)) }
        guard let proto = protocols.protocols[doc.protocolName] else {
            let known = protocols.protocols.keys.sorted().joined(separator: ", ")
            return (doc, ValidationOutcome(
                violations: shapeViolations + [Violation(path: "protocol", rule: "unknown_protocol", message: "protocol \"\(doc.protocolName)\" is not loaded; available: \(known)")],
                plan: nil, protocolHash: nil))
        }
        var outcome = validate(doc, against: proto, catalog: protocols.catalog)
        outcome.violations = shapeViolations + outcome.violations
        return (doc, outcome)
    }

    /// Applies every rule of `proto` to `doc`; never stops at the first problem.
    public static func validate(_ doc: ExperimentDocument, against proto: ExperimentProtocol, catalog: MetricsCatalog) -> ValidationOutcome {
        var v: [Violation] = []
        func add(_ path: String, _ rule: String, _ message: String) { v.append(Violation(path: path, rule: rule, message: message)) }
        let name = proto.name

        for path in proto.required {
            let value = doc.json.value(atPath: path)
            let missing: Bool
            switch value {
            case nil, .null?: missing = true
            case .string(let s)?: missing = s.isBlank
            case .array(let a)?: missing = a.isEmpty
            case .object(let o)?: missing = o.isEmpty
            default: missing = false
            }
            if missing { add(path, "required", "is required by protocol '\(name)'") }
        }

        // Design thresholds.
        if let alpha = doc.alpha {
            if !(alpha > 0 && alpha < 1) { add("design.alpha", "range", "must be between 0 and 1, got \(alpha)") }
            else if alpha > proto.alphaMax { add("design.alpha", "alpha_max", "design.alpha \(fmt(alpha)) exceeds protocol '\(name)' ceiling \(fmt(proto.alphaMax)); lower it to at most \(fmt(proto.alphaMax))") }
        }
        if let power = doc.power {
            if !(power > 0 && power < 1) { add("design.power", "range", "must be between 0 and 1, got \(power)") }
            else if power < proto.powerMin { add("design.power", "power_min", "design.power \(fmt(power)) is below protocol '\(name)' floor \(fmt(proto.powerMin)); raise it to at least \(fmt(proto.powerMin))") }
        }
        let analysis = doc.analysis ?? proto.analyses.first ?? "fixed"
        if !proto.analyses.contains(analysis) {
            add("design.analysis", "analysis", "analysis \"\(analysis)\" is not allowed by protocol '\(name)'; use \(proto.analyses.map { "\"\($0)\"" }.joined(separator: " or "))")
        }
        if let daily = doc.expectedDailyUnits, !(daily >= 1 && daily <= Self.maxDailyUnits) {
            add("design.expected_daily_units", "range", "must be from 1 to 1e12 units per day, got \(daily)")
        }
        // A layer has 10,000 buckets: less traffic than one bucket gives the experiment no units at all.
        let smallestTraffic = 1 / Double(GrowthBookHash.buckets)
        if doc.json["traffic"] != nil, doc.traffic < smallestTraffic - 1e-15 {
            add("traffic", "traffic_min", "traffic \(doc.traffic) is less than one of the layer's \(GrowthBookHash.buckets) buckets; the smallest traffic a layer can give is \(smallestTraffic) (one bucket)")
        }

        // Schedule.
        if doc.json.value(atPath: "schedule") == nil || doc.json.value(atPath: "schedule")?.isNull == true {
            add("schedule", "required", "is required: {\"start\": ..., \"end\": ...} spanning \(fmt(proto.scheduleDaysMin))–\(fmt(proto.scheduleDaysMax)) days under protocol '\(name)'")
        } else {
            if doc.json.value(atPath: "schedule.start") == nil { add("schedule.start", "required", "is required") }
            if doc.json.value(atPath: "schedule.end") == nil { add("schedule.end", "required", "is required") }
        }
        if let start = doc.start, let end = doc.end {
            let days = Timestamp.days(from: start, to: end)
            if days <= 0 {
                add("schedule.end", "schedule_order", "schedule.end \(end) must be after schedule.start \(start)")
            } else if days < proto.scheduleDaysMin || days > proto.scheduleDaysMax {
                add("schedule", "schedule_length", "schedule spans \(fmt(days)) days; protocol '\(name)' requires \(fmt(proto.scheduleDaysMin)) to \(fmt(proto.scheduleDaysMax)) days")
            }
        }

        // Dimensions: a protocol caps them; none may be named like a metric (its column would be ambiguous).
        if doc.dimensions.count > proto.maxDimensions {
            add("dimensions", "dimensions_limit", "lists \(doc.dimensions.count) dimensions; protocol '\(name)' allows at most \(proto.maxDimensions)")
        }
        for (i, d) in doc.dimensions.enumerated() where catalog.metrics[d] != nil {
            add("dimensions[\(i)]", "format", "\"\(d)\" is a metric of the catalog; a dimension needs a column name of its own")
        }

        // Variants.
        let count = doc.variants.count
        if doc.json["variants"] != nil, count < proto.variantsMin || count > proto.variantsMax {
            add("variants", "variant_count", "has \(count) variants; protocol '\(name)' allows \(proto.variantsMin) to \(proto.variantsMax)")
        } else if doc.json["variants"] == nil {
            add("variants", "required", "is required: \(proto.variantsMin) to \(proto.variantsMax) variants, exactly one with \"control\": true")
        }
        let controls = doc.variants.filter(\.isControl).count
        if count > 0, controls != 1 { add("variants", "control_count", "must have exactly one control variant (\"control\": true), found \(controls)") }
        var seen = Set<String>()
        for (i, variant) in doc.variants.enumerated() {
            if variant.key.isEmpty { add("variants[\(i)].key", "format", "must not be empty") }
            if !seen.insert(variant.key).inserted { add("variants[\(i)].key", "duplicate", "variant key \"\(variant.key)\" is used twice") }
            if !(variant.weight > 0 && variant.weight <= 1) { add("variants[\(i)].weight", "range", "must be greater than 0 and at most 1, got \(variant.weight)") }
            else if variant.weight < Self.smallestWeight { add("variants[\(i)].weight", "weight_min", "weight \(variant.weight) is below \(Self.smallestWeight), the resolution of assignment (units hash to one of 10,000 positions); give the variant at least \(Self.smallestWeight)") }
        }
        let sum = doc.variants.reduce(0) { $0 + $1.weight }
        if count > 0, abs(sum - 1) > 1e-9 { add("variants", "weights_sum", "weights sum to \(fmt(sum)); they must sum to 1") }

        // Metrics.
        var metricPaths: [(String, String)] = []
        if let p = doc.primaryMetric { metricPaths.append(("metrics.primary", p)) }
        metricPaths += doc.secondaryMetrics.enumerated().map { ("metrics.secondary[\($0.offset)]", $0.element) }
        metricPaths += doc.guardrails.enumerated().map { ("metrics.guardrails[\($0.offset)]", $0.element) }
        for (path, metric) in metricPaths where catalog.metrics[metric] == nil {
            add(path, "unknown_metric", "metric \"\(metric)\" is not in the metrics catalog; known: \(catalog.metrics.keys.sorted().joined(separator: ", "))")
        }
        for guardrail in proto.requiredGuardrails where !doc.guardrails.contains(guardrail) {
            add("metrics.guardrails", "guardrail_required", "protocol '\(name)' requires guardrail \"\(guardrail)\"; add it to metrics.guardrails")
        }

        // Baseline must fit the primary metric's type.
        if let primary = doc.primaryMetric.flatMap({ catalog.metrics[$0] }), let baseline = doc.baseline {
            switch (primary.type, baseline) {
            case (.binomial, .rate(let p)):
                if !(p > 0 && p < 1) { add("design.baseline.rate", "range", "must be strictly between 0 and 1, got \(p)") }
            case (.binomial, .mean):
                add("design.baseline", "baseline_type", "primary metric \"\(primary.name)\" is binomial: give {\"rate\": p}")
            case (_, .rate):
                add("design.baseline", "baseline_type", "primary metric \"\(primary.name)\" is \(primary.type.rawValue): give {\"mean\": m, \"sd\": s}")
            case (_, .mean(let m, let sd)):
                if !m.isFinite { add("design.baseline.mean", "range", "must be finite") }
                if !(sd > 0 && sd.isFinite) { add("design.baseline.sd", "range", "must be a positive standard deviation, got \(sd)") }
            }
        }

        // Plan and the underpowered rule.
        var plan: Plan?
        if v.allSatisfy({ !$0.path.hasPrefix("design") && !$0.path.hasPrefix("variants") && !$0.path.hasPrefix("metrics.primary") && $0.path != "traffic" }) {
            switch makePlan(doc, proto: proto, catalog: catalog) {
            case .planned(let p): plan = p
            case .invalid(let violation): v.append(violation)
            case .lacksInputs: break
            }
        }
        if let plan, let start = doc.start, let end = doc.end {
            let days = Timestamp.days(from: start, to: end)
            if days > 0, days + 1e-9 < Double(plan.daysNeeded) {
                add("schedule.end", "underpowered",
                    "schedule runs \(fmt(days)) day\(days == 1 ? "" : "s") but \(plan.daysNeeded) day\(plan.daysNeeded == 1 ? " is" : "s are") needed to reach \(plan.perArm) units per arm at \(fmt(plan.dailyUnits)) units/day (expected_daily_units × traffic); end on or after \(start.adding(days: Double(plan.daysNeeded))) or raise traffic")
            }
        }
        return ValidationOutcome(violations: v, plan: plan, protocolHash: proto.contentHash)
    }

    /// Computes the plan through the statistics module's normal-approximation formulas.
    enum PlanOutcome {
        case planned(Plan)
        case invalid(Violation)
        /// The design lacks inputs; that is already reported as a missing required field.
        case lacksInputs
    }

    static func makePlan(_ doc: ExperimentDocument, proto: ExperimentProtocol, catalog: MetricsCatalog) -> PlanOutcome {
        guard let mde = doc.mde, let baseline = doc.baseline, let daily = doc.expectedDailyUnits, daily > 0,
              let primary = doc.primaryMetric.flatMap({ catalog.metrics[$0] }), !doc.variants.isEmpty
        else { return .lacksInputs }
        let alpha = doc.alpha ?? proto.alphaMax
        let power = doc.power ?? proto.powerMin
        let size: SampleSize
        let formula: String
        do {
            switch (primary.type, baseline) {
            case (.binomial, .rate(let p)):
                size = try PowerAnalysis.proportions(baseline: p, mde: mde, alpha: alpha, power: power)
                formula = "two proportions, normal approximation (R power.prop.test), two-sided alpha \(fmt(alpha)), power \(fmt(power))"
            case (_, .mean(let m, let sd)):
                size = try PowerAnalysis.means(mean: m, sd: sd, mde: mde, alpha: alpha, power: power)
                formula = "two means, normal approximation, two-sided alpha \(fmt(alpha)), power \(fmt(power))"
            default:
                return .lacksInputs
            }
        } catch {
            return .invalid(Violation(path: "design.\(error.field)", rule: "design", message: error.reason))
        }
        let perArm = size.controlCeil
        let dailyUnits = daily * doc.traffic
        let smallestWeight = doc.variants.map(\.weight).min() ?? 1
        let days = (Double(perArm) / (dailyUnits * smallestWeight)).rounded(.up)
        let totalUnits = (Double(perArm) / smallestWeight).rounded(.up)
        // Extreme designs must not reach a whole-number conversion that traps; they are violations instead.
        guard days.isFinite, days <= Self.maxPlanDays, totalUnits <= PowerAnalysis.maxUnitsPerArm else {
            return .invalid(Violation(path: "design.mde", rule: "underpowered",
                                      message: "needs \(perArm) units per arm, which takes more than \(Int(Self.maxPlanDays)) days at \(fmt(dailyUnits)) units/day; use a larger design.mde or more traffic"))
        }
        let total = Int(totalUnits)
        return .planned(Plan(perArm: perArm, perArmExact: size.control, arms: doc.variants.count, totalUnits: total,
                             dailyUnits: dailyUnits, daysNeeded: Int(days), formula: formula))
    }
}

/// Short decimal formatting for messages: 0.05, 7, 12.5.
func fmt(_ x: Double) -> String {
    if x.rounded() == x, abs(x) < 1e15 { return String(Int(x)) }
    let s = "\(x)"
    if s.count <= 8 { return s }
    return String((x * 10_000).rounded() / 10_000)
}

extension String {
    /// Empty or only white space: a required text that says nothing.
    public var isBlank: Bool { allSatisfy(\.isWhitespace) }
}
