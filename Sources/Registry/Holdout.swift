public import JSONCore

/// Which experiments a holdout keeps its units from: the layers it covers (all of them when `layers` is nil) and,
/// optionally, only experiments with a parameter under one of `parameterPrefixes`.
public struct HoldoutScope: Sendable, Equatable, Hashable {
    public var layers: Set<String>?
    public var parameterPrefixes: [String]

    public init(layers: Set<String>?, parameterPrefixes: [String] = []) {
        self.layers = layers
        self.parameterPrefixes = parameterPrefixes
    }

    public func covers(layer: String) -> Bool { layers?.contains(layer) ?? true }

    /// Whether an experiment in `layer` that sets `parameters` is kept from the holdout's units.
    public func covers(layer: String, parameters: Set<String>) -> Bool {
        guard covers(layer: layer) else { return false }
        if parameterPrefixes.isEmpty { return true }
        return parameters.contains { p in parameterPrefixes.contains { p.hasPrefix($0) } }
    }

    public var description: String {
        let l = layers.map { "layer\($0.count == 1 ? "" : "s") \($0.sorted().joined(separator: ", "))" } ?? "every layer"
        return parameterPrefixes.isEmpty ? l : l + " (parameters \(parameterPrefixes.map { $0 + "*" }.joined(separator: ", ")))"
    }

    public var json: JSON {
        ["layers": layers.map { JSON($0.sorted()) } ?? "all", "parameters": JSON(parameterPrefixes)]
    }
}

/// A holdout document: a share of all units kept out of the experiments of its scope while it runs, so that what
/// shipped there can be measured together against units that never saw it.
public struct HoldoutDocument: Sendable, Equatable {
    public var json: JSON
    public var key: String
    public var name: String?
    public var owner: String?
    public var protocolName: String
    public var unit: String?
    public var share: Double
    public var seed: String?
    public var scope: HoldoutScope
    public var start: Timestamp?
    public var end: Timestamp?
    public var primaryMetric: String?
    public var secondaryMetrics: [String] = []
    public var guardrails: [String] = []
    public var metricsGiven = false
    public var dimensions: [String] = []

    public static let topLevelFields: Set<String> = [
        "key", "name", "owner", "description", "protocol", "unit", "share", "seed", "scope", "schedule", "metrics", "dimensions", "tags", "links",
    ]
    /// Fields that cannot change once a holdout is approved: who is held out, and from what.
    public static let lockedWhenLive = ["share", "scope", "seed", "unit"]
    /// The arms of a holdout's results: its own units (control) and the units of its scope that were not held out.
    public static let heldOutArm = "holdout", exposedArm = "exposed"

    public var assignmentSeed: String { seed ?? key }

    public static func read(_ json: JSON) -> (HoldoutDocument?, [Violation]) {
        var r = DocumentReader()
        guard case .object(let root) = json else {
            return (nil, [Violation(path: "holdout", rule: "type", message: "the holdout must be a JSON object, got \(json.typeName)")])
        }
        for field in root.keys.sorted() where !topLevelFields.contains(field) {
            r.add(field, "unknown_field", "is not a field of a holdout; known fields: \(topLevelFields.sorted().joined(separator: ", "))")
        }
        let key = r.string(root, "key", path: "key")
        if let key, !ExperimentDocument.isValidKey(key) {
            r.add("key", "format", "\"\(key.prefix(60))\" must be 1–128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        if root["key"] == nil { r.add("key", "required", "is required: a unique identifier such as \"growth-2027q1-holdout\"") }
        let protocolName = r.string(root, "protocol", path: "protocol")
        if root["protocol"] == nil { r.add("protocol", "required", "is required: the protocol whose alpha, correction and holdout_share.max apply, e.g. \"standard\"") }
        var doc = HoldoutDocument(json: json, key: key ?? "", name: r.string(root, "name", path: "name"), owner: r.string(root, "owner", path: "owner"),
                                  protocolName: protocolName ?? "", unit: r.string(root, "unit", path: "unit"), share: 0,
                                  seed: r.string(root, "seed", path: "seed"), scope: HoldoutScope(layers: []))
        _ = r.string(root, "description", path: "description")
        if doc.unit == nil { r.add("unit", "required", "is required: the randomization unit the holdout hashes, e.g. \"user_id\"") }
        if let share = r.number(root, "share", path: "share") {
            if share > 0 && share < 1 { doc.share = share } else { r.add("share", "range", "must be greater than 0 and less than 1 (a share of all units), got \(share)") }
        } else if root["share"] == nil {
            r.add("share", "required", "is required: the share of all units held out, e.g. 0.05")
        }
        if let seed = doc.seed, seed.isEmpty { r.add("seed", "format", "must not be empty (leave it out to hash with the key)") }
        if let scope = r.object(root, "scope", path: "scope") {
            for f in scope.keys.sorted() where !["layers", "parameters"].contains(f) { r.add("scope.\(f)", "unknown_field", "is not a field of scope; use layers and parameters") }
            switch scope["layers"] {
            case .string("all")?: doc.scope.layers = nil
            case .array?:
                let layers = r.strings(scope, "layers", path: "scope.layers") ?? []
                if layers.isEmpty { r.add("scope.layers", "required", "names no layer; list the layers held out, or give \"all\"") }
                for (i, l) in layers.enumerated() where l.isEmpty || l.count > 128 { r.add("scope.layers[\(i)]", "format", "must be a non-empty layer name of at most 128 characters") }
                if Set(layers).count != layers.count { r.add("scope.layers", "duplicate", "lists a layer more than once") }
                doc.scope.layers = Set(layers)
            case nil: r.add("scope.layers", "required", "is required: the layers held out (an array of names), or \"all\"")
            case let other?: r.add("scope.layers", "type", "must be an array of layer names or \"all\", got \(other.typeName)")
            }
            doc.scope.parameterPrefixes = r.strings(scope, "parameters", path: "scope.parameters") ?? []
            for (i, p) in doc.scope.parameterPrefixes.enumerated() where p.isEmpty { r.add("scope.parameters[\(i)]", "format", "must be a non-empty parameter prefix such as \"checkout.\"") }
        } else if root["scope"] == nil {
            r.add("scope", "required", "is required: {\"layers\": [...] or \"all\", \"parameters\": [prefixes]?}")
        }
        if let schedule = r.object(root, "schedule", path: "schedule") {
            for f in schedule.keys.sorted() where !["start", "end"].contains(f) { r.add("schedule.\(f)", "unknown_field", "is not a field of schedule; use start and end") }
            doc.start = r.timestamp(schedule, "start", path: "schedule.start")
            doc.end = r.timestamp(schedule, "end", path: "schedule.end")
            if schedule["start"] == nil { r.add("schedule.start", "required", "is required") }
            if schedule["end"] == nil { r.add("schedule.end", "required", "is required") }
            if let s = doc.start, let e = doc.end, !(s < e) { r.add("schedule.end", "range", "must be after schedule.start (\(s))") }
        } else if root["schedule"] == nil {
            r.add("schedule", "required", "is required: {\"start\", \"end\"} (RFC 3339)")
        }
        if let metrics = r.object(root, "metrics", path: "metrics") {
            doc.metricsGiven = true
            for f in metrics.keys.sorted() where !["primary", "secondary", "guardrails"].contains(f) { r.add("metrics.\(f)", "unknown_field", "is not a field of metrics; use primary, secondary, guardrails") }
            doc.primaryMetric = r.string(metrics, "primary", path: "metrics.primary")
            doc.secondaryMetrics = r.strings(metrics, "secondary", path: "metrics.secondary") ?? []
            doc.guardrails = r.strings(metrics, "guardrails", path: "metrics.guardrails") ?? []
        }
        doc.dimensions = r.strings(root, "dimensions", path: "dimensions") ?? []
        guard key != nil, protocolName != nil else { return (nil, r.violations) }
        return (doc, r.violations)
    }

    /// Reads and checks a holdout against its protocol and the catalog: every violation at once.
    public static func validate(_ json: JSON, protocols: ProtocolSet) -> (HoldoutDocument?, [Violation]) {
        var (doc, v) = read(json)
        guard let d = doc else { return (nil, v) }
        guard let proto = protocols.protocols[d.protocolName] else {
            v.append(Violation(path: "protocol", rule: "unknown_protocol", message: "protocol \"\(d.protocolName)\" is not loaded; loaded: \(protocols.protocols.keys.sorted().joined(separator: ", "))"))
            return (doc, v)
        }
        if d.share > proto.holdoutShareMax {
            v.append(Violation(path: "share", rule: "holdout_share_max",
                               message: "share \(fmt(d.share)) exceeds protocol '\(proto.name)' ceiling \(fmt(proto.holdoutShareMax)) for holdouts; lower it to at most \(fmt(proto.holdoutShareMax))"))
        }
        var paths: [(String, String)] = []
        if let p = d.primaryMetric { paths.append(("metrics.primary", p)) }
        paths += d.secondaryMetrics.enumerated().map { ("metrics.secondary[\($0.offset)]", $0.element) }
        paths += d.guardrails.enumerated().map { ("metrics.guardrails[\($0.offset)]", $0.element) }
        for (path, m) in paths where protocols.catalog.metrics[m] == nil {
            v.append(Violation(path: path, rule: "unknown_metric", message: "metric \"\(m)\" is not in the metrics catalog; known: \(protocols.catalog.metrics.keys.sorted().joined(separator: ", "))"))
        }
        if d.dimensions.count > proto.maxDimensions {
            v.append(Violation(path: "dimensions", rule: "dimensions_limit", message: "lists \(d.dimensions.count) dimensions; protocol '\(proto.name)' allows at most \(proto.maxDimensions)"))
        }
        if let s = d.start, let e = d.end, Timestamp.days(from: s, to: e) > 366 * 2 {
            v.append(Violation(path: "schedule.end", rule: "schedule_days", message: "a holdout runs at most two years; end it by \(s.adding(days: 732))"))
        }
        doc = d
        return (doc, v)
    }

    /// The experiment-shaped document results read: the holdout's units (control) against the exposed units of its
    /// scope, with the holdout's metrics (every metric of the catalog when it names none) and the protocol's alpha.
    public func resultsDocument(catalog: MetricsCatalog) -> ExperimentDocument {
        var metrics = (primaryMetric, secondaryMetrics, guardrails)
        if !metricsGiven {
            let all = catalog.metrics.keys.sorted().filter { $0 != exposuresMetric }
            metrics = (nil, all, [])
        }
        var d = ExperimentDocument(
            json: json, key: key, name: name, owner: owner,
            hypothesis: "the cumulative effect of what shipped in \(scope.description)", protocolName: protocolName,
            layer: nil, parameters: [], unit: unit, traffic: 1,
            variants: [Variant(key: Self.heldOutArm, weight: share, isControl: true), Variant(key: Self.exposedArm, weight: 1 - share, isControl: false)],
            targeting: .always, start: start, end: end, primaryMetric: metrics.0, secondaryMetrics: metrics.1, guardrails: metrics.2, seed: seed)
        d.dimensions = dimensions
        return d
    }
}

/// What conflict rules and assignment need of a holdout.
public struct HoldoutSubject: Sendable, Equatable {
    public var key: String
    public var state: ExperimentState
    public var share: Double
    public var seed: String
    public var unit: String
    public var scope: HoldoutScope
    public var start: Timestamp
    public var end: Timestamp
    /// The ceiling of its protocol on the share holdouts take from one layer together.
    public var shareCeiling: Double
    public var protocolName: String

    public init?(document d: HoldoutDocument, state: ExperimentState, shareCeiling: Double) {
        guard let start = d.start, let end = d.end, let unit = d.unit else { return nil }
        key = d.key; self.state = state; share = d.share; seed = d.assignmentSeed; self.unit = unit; scope = d.scope
        self.start = start; self.end = end; self.shareCeiling = shareCeiling; protocolName = d.protocolName
    }

    /// `hash_v2(seed, unit) < share`: the unit is held out (independent of every layer's buckets).
    @inline(__always)
    public func holdsOut(_ unit: String) -> Bool { GrowthBookHash.hashV2(seed: seed, value: unit) < share }

    /// Removes traffic: approved holdouts are counted as running ones are, as approved experiments hold buckets.
    public var removesTraffic: Bool { state.holdsTraffic }

    public func covers(_ s: ConflictSubject) -> Bool {
        s.unit == unit && scope.covers(layer: s.layer, parameters: s.parameters) && start < s.end && s.start < end
    }
}

/// The rules between holdouts and experiments: traffic the holdouts remove, power they take, shares they add up to.
public enum HoldoutRules {
    /// The share of an experiment's units that the holdouts covering it leave (independent hashes multiply).
    public static func kept(_ s: ConflictSubject, by holdouts: [HoldoutSubject]) -> (share: Double, covering: [HoldoutSubject]) {
        let covering = holdouts.filter { $0.covers(s) }.sorted { $0.key < $1.key }
        return (covering.reduce(1) { $0 * (1 - $1.share) }, covering)
    }

    /// Scales the overlap share of each finding by what the holdouts covering either experiment leave: a unit held
    /// out of one of them is in neither pair's overlap.
    public static func adjustOverlap(_ findings: [Finding], subjects: (String) -> ConflictSubject?, holdouts: [HoldoutSubject]) -> [Finding] {
        guard !holdouts.isEmpty else { return findings }
        return findings.map { f in
            guard f.experiments.count == 2, f.overlapShare > 0, let a = subjects(f.experiments[0]), let b = subjects(f.experiments[1]) else { return f }
            var out = f
            let covering = holdouts.filter { $0.covers(a) || $0.covers(b) }
            out.overlapShare *= covering.reduce(1) { $0 * (1 - $1.share) }
            return out
        }
    }

    /// The days an experiment's plan needs once the holdouts covering it take their share of its daily units.
    /// `plan`: units per arm, units per day without holdouts, the smallest variant weight.
    public static func daysNeeded(perArm: Int, dailyUnits: Double, smallestWeight: Double, kept: Double) -> Double {
        (Double(perArm) / (dailyUnits * kept * smallestWeight)).rounded(.up)
    }

    /// `underpowered` findings: an experiment whose plan fits its schedule without the holdouts that cover it and no
    /// longer does with them, naming those holdouts. Severity as for pairs: an error when both remove traffic.
    /// `held(covering)`: whether the finding is an error, by the states of the experiment and the covering holdouts.
    public static func underpowered(_ s: ConflictSubject, holdouts: [HoldoutSubject], held: ([HoldoutSubject]) -> Bool) -> [Finding] {
        guard let plan = s.plan else { return [] }
        let (kept, covering) = self.kept(s, by: holdouts)
        guard !covering.isEmpty else { return [] }
        let scheduled = Timestamp.days(from: s.start, to: s.end)
        let without = daysNeeded(perArm: plan.perArm, dailyUnits: plan.dailyUnits, smallestWeight: plan.smallestWeight, kept: 1)
        let with = daysNeeded(perArm: plan.perArm, dailyUnits: plan.dailyUnits, smallestWeight: plan.smallestWeight, kept: kept)
        guard without <= scheduled + 1e-9, with > scheduled + 1e-9 else { return [] }
        let held = held(covering)
        let names = covering.map(\.key)
        let shares = covering.map { "\($0.key) \(ConflictRules.percent($0.share))" }.joined(separator: ", ")
        let end = s.start.adding(days: with)
        return [Finding(
            experiments: [s.key] + names, kind: .underpowered, severity: held ? .error : .warning,
            windowStart: max(s.start, covering.map(\.start).min()!), windowEnd: min(s.end, covering.map(\.end).max()!), witness: nil,
            overlapShare: 1 - kept,
            template: .text("holdout\(names.count == 1 ? "" : "s") \(shares) take\(names.count == 1 ? "s" : "") \(ConflictRules.percent(1 - kept)) of \(s.key)'s units: its plan (\(plan.perArm) units per arm at \(fmt(plan.dailyUnits * kept)) units/day) now needs \(Int(with)) days but the schedule runs \(fmt(scheduled)); end it on or after \(end), raise its traffic, or narrow the holdout's scope"))]
    }

    /// `holdout_share` findings: in one layer, holdouts whose schedules meet and whose union takes more than the
    /// strictest of their protocols' ceilings. `subject` limits them to findings that involve that holdout.
    public static func shareFindings(_ holdouts: [HoldoutSubject], involving subject: HoldoutSubject? = nil) -> [Finding] {
        var all = holdouts.filter { $0.key != subject?.key }
        if let subject { all.append(subject) }
        let named = Set(all.flatMap { $0.scope.layers ?? [] })
        var out: [Finding] = []
        var reported = Set<[String]>()
        // A layer no holdout names is covered only by the holdouts of every layer: one check stands for all of them.
        for layer in named.sorted().map(Optional.some) + [nil] {
            let covering = all.filter { h in layer.map { h.scope.covers(layer: $0) } ?? (h.scope.layers == nil) }
            for anchor in covering where subject == nil || anchor.key == subject!.key {
                // Holdouts running at the anchor's start or starting within its window, together with it.
                let together = covering.filter { $0.start < anchor.end && anchor.start < $0.end }.sorted { $0.key < $1.key }
                guard together.count >= 2 else { continue }
                let union = 1 - together.reduce(1) { $0 * (1 - $1.share) }
                let ceiling = together.map(\.shareCeiling).min()!
                let keys = together.map(\.key)
                guard union > ceiling + 1e-12, reported.insert(keys + [layer ?? "*"]).inserted else { continue }
                let held = together.allSatisfy { $0.removesTraffic || $0.key == subject?.key }
                let strict = together.min { $0.shareCeiling < $1.shareCeiling }!
                out.append(Finding(
                    experiments: keys, kind: .holdoutShare, severity: held ? .error : .warning,
                    windowStart: together.map(\.start).max()!, windowEnd: together.map(\.end).min()!, witness: nil, overlapShare: union,
                    template: .text("holdouts \(keys.joined(separator: ", ")) together hold out \(ConflictRules.percent(union)) of \(layer.map { "layer '\($0)'" } ?? "every layer"), above protocol '\(strict.protocolName)' ceiling \(ConflictRules.percent(ceiling)); lower a share or move a schedule so they do not meet")))
            }
        }
        return out
    }
}

/// What the holdout rules read of an experiment's plan.
public struct PlanNeeds: Sendable, Equatable {
    public var perArm: Int
    public var dailyUnits: Double
    public var smallestWeight: Double
    public init(perArm: Int, dailyUnits: Double, smallestWeight: Double) {
        self.perArm = perArm; self.dailyUnits = dailyUnits; self.smallestWeight = smallestWeight
    }

    public init(plan: Plan, weights: [Double]) {
        self.init(perArm: plan.perArm, dailyUnits: plan.dailyUnits, smallestWeight: weights.min() ?? 1)
    }

    /// From a stored plan (`per_arm`, `daily_units`) and the document's variant weights.
    public init?(plan: JSON, weights: [Double]) {
        guard let perArm = plan["per_arm"]?.doubleValue, let daily = plan["daily_units"]?.doubleValue, daily > 0,
              let smallest = weights.min(), smallest > 0 else { return nil }
        self.init(perArm: Int(perArm), dailyUnits: daily, smallestWeight: smallest)
    }
}
