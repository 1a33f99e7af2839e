public import JSONCore

/// What conflict detection needs to know about one experiment.
public struct ConflictSubject: Sendable, Equatable {
    public var key: String
    public var state: ExperimentState
    public var layer: String
    public var unit: String
    public var parameters: Set<String>
    public var primaryMetric: String?
    public var seed: String
    public var traffic: Double
    public var start: Timestamp
    public var end: Timestamp
    public var targeting: Condition
    /// Buckets held in the layer (empty until approved).
    public var buckets: [Range<Int>]
    /// Days a bucket rests after this experiment ends before another may take it.
    public var cooldownDays: Double
    /// Variant keys and weights, in document order, for assignment.
    public var variantKeys: [String] = []
    public var variantWeights: [Double] = []

    public init(key: String, state: ExperimentState, layer: String, unit: String, parameters: Set<String>, primaryMetric: String?,
                seed: String, traffic: Double, start: Timestamp, end: Timestamp, targeting: Condition,
                buckets: [Range<Int>] = [], cooldownDays: Double = 0) {
        self.key = key; self.state = state; self.layer = layer; self.unit = unit; self.parameters = parameters
        self.primaryMetric = primaryMetric; self.seed = seed; self.traffic = traffic; self.start = start; self.end = end
        self.targeting = targeting; self.buckets = buckets; self.cooldownDays = cooldownDays
    }

    /// Builds a subject from a validated document; nil when the document lacks a layer, unit or schedule.
    public init?(document d: ExperimentDocument, state: ExperimentState, buckets: [Range<Int>] = [], cooldownDays: Double = 0) {
        guard let layer = d.layer, let start = d.start, let end = d.end else { return nil }
        self.init(key: d.key, state: state, layer: layer, unit: d.unit ?? "", parameters: Set(d.parameters),
                  primaryMetric: d.primaryMetric, seed: d.assignmentSeed, traffic: d.traffic, start: start, end: end,
                  targeting: d.targeting, buckets: Allocation.normalize(buckets), cooldownDays: cooldownDays)
        variantKeys = d.variants.map(\.key)
        variantWeights = d.variants.map(\.weight)
    }

    /// The span during which this experiment keeps its buckets from others.
    public var occupancyEnd: Timestamp { end.adding(days: cooldownDays) }
}

public enum FindingKind: String, Sendable, CaseIterable {
    case parameter, metricInteraction = "metric_interaction", layerCapacity = "layer_capacity",
         unitMismatch = "unit_mismatch", seedReuse = "seed_reuse"

    /// Severity against an experiment that holds traffic; against drafts and reviews every finding is a warning.
    public var severityAgainstHeld: Severity {
        switch self {
        case .parameter, .layerCapacity, .unitMismatch: .error
        case .metricInteraction, .seedReuse: .warning
        }
    }
}

public enum Severity: String, Sendable, Comparable {
    case warning, error
    public static func < (a: Severity, b: Severity) -> Bool { a == .warning && b == .error }
}

/// One way two experiments (or one experiment and its layer) can interfere, with its evidence.
public struct Finding: Sendable, Equatable {
    public var experiments: [String]
    public var kind: FindingKind
    public var severity: Severity
    public var windowStart: Timestamp
    public var windowEnd: Timestamp
    public var witness: Witness?
    public var overlapShare: Double
    public var message: String

    /// The finding as seen from `subject`: `with` names the other experiment.
    public func json(from subject: String? = nil) -> JSON {
        var o: [String: JSON] = [
            "kind": .string(kind.rawValue), "severity": .string(severity.rawValue),
            "window": ["start": .string(windowStart.description), "end": .string(windowEnd.description)],
            "overlap_share": .number((overlapShare * 1e9).rounded() / 1e9), "message": .string(message),
            "witness": witness.map { w in
                .object(w.attributes.mapValues { $0?.json ?? .null })
            } ?? .null,
        ]
        if let w = witness, w.approximate { o["witness_note"] = "a $regex test was not decided: the audiences can overlap; the witness satisfies every other test" }
        if let subject {
            o["with"] = experiments.first { $0 != subject }.map { .string($0) } ?? .null
        } else {
            o["experiments"] = JSON(experiments)
        }
        return .object(o)
    }
}

/// Pairwise rules: two experiments interact only if their schedules overlap, some unit satisfies both
/// targetings, and their traffic can meet; then what they share decides the kind.
public enum ConflictRules {
    /// Findings of `a` against `b`. Severity follows `b`'s state (an error only against an experiment that
    /// holds traffic); with `symmetric`, either one holding traffic makes it an error (registry-wide scans).
    public static func findings(_ a: ConflictSubject, _ b: ConflictSubject, symmetric: Bool = false) -> [Finding] {
        guard a.key != b.key else { return [] }
        let windowStart = max(a.start, b.start), windowEnd = min(a.end, b.end)
        guard windowStart < windowEnd else { return [] }
        let held = b.state.holdsTraffic || (symmetric && a.state.holdsTraffic)
        let severityFor = { (kind: FindingKind) -> Severity in held ? kind.severityAgainstHeld : .warning }
        let sameLayer = a.layer == b.layer
        var out: [Finding] = []
        let window = "from \(windowStart) to \(windowEnd)"
        if sameLayer && a.unit != b.unit {
            let share = a.traffic * b.traffic
            out.append(Finding(
                experiments: [a.key, b.key], kind: .unitMismatch, severity: severityFor(.unitMismatch),
                windowStart: windowStart, windowEnd: windowEnd, witness: nil, overlapShare: share,
                message: "\(a.key) randomizes by \(a.unit) but \(b.key) in the same layer '\(a.layer)' randomizes by \(b.unit): layer exclusivity no longer holds, and about \(percent(share)) of units can be in both \(window); use one unit per layer"))
        }
        // Share of units that can be in both: independent hashes across layers (or units), exact buckets within one.
        let share: Double
        if !sameLayer || a.unit != b.unit {
            share = a.traffic * b.traffic
        } else if !a.buckets.isEmpty && !b.buckets.isEmpty {
            share = Double(Allocation.intersectionCount(a.buckets, b.buckets)) / Double(GrowthBookHash.buckets)
        } else {
            share = 0  // allocation keeps experiments of one layer on disjoint buckets
        }
        guard share > 0 else { return out }
        let common = a.parameters.intersection(b.parameters).sorted()
        let sharedPrimary = !sameLayer && a.primaryMetric != nil && a.primaryMetric == b.primaryMetric
        let sharedSeed = a.seed == b.seed
        guard !common.isEmpty || sharedPrimary || sharedSeed else { return out }
        guard let witness = Satisfiability.witness([a.targeting, b.targeting]) else { return out }
        let who = describe(witness)
        if !common.isEmpty {
            out.append(Finding(
                experiments: [a.key, b.key], kind: .parameter, severity: severityFor(.parameter),
                windowStart: windowStart, windowEnd: windowEnd, witness: witness, overlapShare: share,
                message: "\(a.key) (layer '\(a.layer)') and \(b.key) (layer '\(b.layer)') both change \(common.joined(separator: ", ")) \(window): about \(percent(share)) of eligible units (e.g. \(who)) would get both changes and neither result can be trusted; move one to layer '\(b.layer)' or reschedule"))
        }
        if sharedPrimary {
            out.append(Finding(
                experiments: [a.key, b.key], kind: .metricInteraction, severity: severityFor(.metricInteraction),
                windowStart: windowStart, windowEnd: windowEnd, witness: witness, overlapShare: share,
                message: "\(a.key) and \(b.key) share primary metric \(a.primaryMetric!) \(window) in different layers: about \(percent(share)) of eligible units (e.g. \(who)) are in both, so their effects on it can interact"))
        }
        if sharedSeed {
            out.append(Finding(
                experiments: [a.key, b.key], kind: .seedReuse, severity: severityFor(.seedReuse),
                windowStart: windowStart, windowEnd: windowEnd, witness: witness, overlapShare: share,
                message: "\(a.key) and \(b.key) use the same assignment seed \"\(a.seed)\" \(window): units in both (about \(percent(share)), e.g. \(who)) get correlated variants; set a distinct seed"))
        }
        return out
    }

    /// Checks that `subject` can get its buckets in its layer, given the experiments that hold buckets there.
    public static func capacity(_ subject: ConflictSubject, holders: [ConflictSubject]) -> (free: [Range<Int>], finding: Finding?) {
        let blocking = holders.filter {
            $0.key != subject.key && $0.layer == subject.layer && $0.state.holdsTraffic
                && $0.start < subject.occupancyEnd && subject.start < $0.occupancyEnd
        }
        let free = Allocation.free(taken: blocking.flatMap(\.buckets))
        let needed = Allocation.bucketsNeeded(traffic: subject.traffic)
        let available = Allocation.count(free)
        guard available < needed else { return (free, nil) }
        let windowEnd = subject.occupancyEnd
        let names = blocking.map(\.key).sorted()
        let finding = Finding(
            experiments: [subject.key] + names, kind: .layerCapacity, severity: .error,
            windowStart: subject.start, windowEnd: windowEnd, witness: nil, overlapShare: 0,
            message: "layer '\(subject.layer)' has \(available) of 10000 buckets (\(percent(Double(available) / 10_000))) free from \(subject.start) to \(windowEnd), but \(subject.key) needs \(needed) (traffic \(subject.traffic)); held by \(names.joined(separator: ", ")); lower traffic to at most \(Double(available) / 10_000) or reschedule")
        return (free, finding)
    }

    static func percent(_ x: Double) -> String {
        let p = x * 100
        if p >= 10 || p == p.rounded() { return "\(Int(p.rounded()))%" }
        return "\((p * 10).rounded() / 10)%"
    }

    static func describe(_ w: Witness) -> String {
        let parts = w.attributes.keys.sorted().map { k in "\(k)=\(w.attributes[k]!.map { $0.description } ?? "absent")" }
        return parts.isEmpty ? "any unit" : parts.joined(separator: ", ")
    }
}

/// Experiments indexed by what they can share, so a check touches only candidates, never every pair.
public struct ConflictIndex: Sendable {
    public private(set) var subjects: [String: ConflictSubject] = [:]
    private var byLayer: [String: Set<String>] = [:]
    private var byParameter: [String: Set<String>] = [:]
    private var byMetric: [String: Set<String>] = [:]
    private var bySeed: [String: Set<String>] = [:]

    public init() {}

    public init(_ subjects: [ConflictSubject]) {
        for s in subjects { upsert(s) }
    }

    /// Adds or replaces a subject; terminal experiments leave the index.
    public mutating func upsert(_ s: ConflictSubject) {
        remove(s.key)
        guard !s.state.isTerminal else { return }
        subjects[s.key] = s
        byLayer[s.layer, default: []].insert(s.key)
        for p in s.parameters { byParameter[p, default: []].insert(s.key) }
        if let m = s.primaryMetric { byMetric[m, default: []].insert(s.key) }
        bySeed[s.seed, default: []].insert(s.key)
    }

    public mutating func remove(_ key: String) {
        guard let old = subjects.removeValue(forKey: key) else { return }
        byLayer[old.layer]?.remove(key)
        for p in old.parameters { byParameter[p]?.remove(key) }
        if let m = old.primaryMetric { byMetric[m]?.remove(key) }
        bySeed[old.seed]?.remove(key)
    }

    /// Keys of experiments that share a layer, parameter, primary metric or seed with `s`.
    public func candidates(for s: ConflictSubject) -> Set<String> {
        var keys = byLayer[s.layer] ?? []
        for p in s.parameters { keys.formUnion(byParameter[p] ?? []) }
        if let m = s.primaryMetric { keys.formUnion(byMetric[m] ?? []) }
        keys.formUnion(bySeed[s.seed] ?? [])
        keys.remove(s.key)
        return keys
    }

    /// Every finding of `s` against the indexed experiments (which it may or may not be part of).
    public func check(_ s: ConflictSubject, includeCapacity: Bool = true) -> [Finding] {
        var out: [Finding] = []
        for key in candidates(for: s).sorted() {
            out += ConflictRules.findings(s, subjects[key]!)
        }
        if includeCapacity, s.buckets.isEmpty {
            let holders = (byLayer[s.layer] ?? []).compactMap { subjects[$0] }
            if let f = ConflictRules.capacity(s, holders: holders).finding { out.append(f) }
        }
        return out
    }

    /// All findings among indexed experiments, optionally only those live in `[from, to)`.
    /// Pairs come from sweeping each shared-key group by start time, so the cost follows the number of
    /// overlapping pairs, not the square of the registry.
    public func scan(from: Timestamp? = nil, to: Timestamp? = nil) -> [Finding] {
        var seen = Set<PairKey>()
        var out: [Finding] = []
        let groups = [byLayer, byParameter, byMetric, bySeed].flatMap { $0.values }
        for group in groups where group.count > 1 {
            let members = group.compactMap { subjects[$0] }.sorted { ($0.start, $0.key) < ($1.start, $1.key) }
            var active: [ConflictSubject] = []
            for s in members {
                active.removeAll { $0.end <= s.start }
                for other in active {
                    let pair = PairKey(other.key, s.key)
                    guard seen.insert(pair).inserted else { continue }
                    let (a, b) = other.key < s.key ? (other, s) : (s, other)
                    out += ConflictRules.findings(a, b, symmetric: true)
                }
                active.append(s)
            }
        }
        // Capacity of experiments not yet holding buckets, against the holders of their layer.
        for s in subjects.values where s.buckets.isEmpty && !s.state.holdsTraffic {
            let holders = (byLayer[s.layer] ?? []).compactMap { subjects[$0] }
            if let f = ConflictRules.capacity(s, holders: holders).finding { out.append(f) }
        }
        if from != nil || to != nil {
            let lo = from ?? Timestamp(seconds: -.infinity), hi = to ?? Timestamp(seconds: .infinity)
            out = out.filter { f in lo == hi ? (f.windowStart <= lo && lo < f.windowEnd) : (f.windowStart < hi && lo < f.windowEnd) }
        }
        return out.sorted { ($0.experiments, $0.kind.rawValue) < ($1.experiments, $1.kind.rawValue) }
    }

    /// Holders of a layer (for allocation).
    public func holders(layer: String) -> [ConflictSubject] {
        (byLayer[layer] ?? []).compactMap { subjects[$0] }.filter { $0.state.holdsTraffic }
    }

    public var count: Int { subjects.count }
}

struct PairKey: Hashable {
    let a: String, b: String
    init(_ x: String, _ y: String) { (a, b) = x < y ? (x, y) : (y, x) }
}

extension Array: @retroactive Comparable where Element == String {
    public static func < (l: [String], r: [String]) -> Bool { l.lexicographicallyPrecedes(r) }
}
