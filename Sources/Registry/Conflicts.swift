public import JSONCore
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

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
    /// What its plan needs (units per arm, units per day), when it has one: holdouts that cover it are checked against it.
    public var plan: PlanNeeds?

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
         unitMismatch = "unit_mismatch", seedReuse = "seed_reuse",
         /// A holdout takes an experiment below the power it planned for.
         underpowered,
         /// Holdouts together take more of one layer than their protocol allows.
         holdoutShare = "holdout_share",
         /// Measured from data: one running experiment's effect differs between another's arms.
         interaction

    /// Severity against an experiment that holds traffic; against drafts and reviews every finding is a warning.
    public var severityAgainstHeld: Severity {
        switch self {
        case .parameter, .layerCapacity, .unitMismatch, .underpowered, .holdoutShare: .error
        case .metricInteraction, .seedReuse, .interaction: .warning
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
    /// What the message says, kept as its parts: formatting waits until someone reads it (a registry-wide scan
    /// produces hundreds of thousands of findings; most are counted, filtered or sorted before any is printed).
    public var template: MessageTemplate

    public enum MessageTemplate: Sendable, Equatable {
        case unitMismatch(a: String, aUnit: String, b: String, layer: String, bUnit: String)
        case parameter(a: String, aLayer: String, b: String, bLayer: String, parameters: [String])
        case metricInteraction(a: String, b: String, metric: String)
        case seedReuse(a: String, b: String, seed: String)
        case text(String)
    }

    public init(experiments: [String], kind: FindingKind, severity: Severity, windowStart: Timestamp, windowEnd: Timestamp,
                witness: Witness?, overlapShare: Double, template: MessageTemplate) {
        self.experiments = experiments; self.kind = kind; self.severity = severity; self.windowStart = windowStart
        self.windowEnd = windowEnd; self.witness = witness; self.overlapShare = overlapShare; self.template = template
    }

    /// The consequence in plain words: who is affected, from when to when, how much traffic.
    public var message: String {
        let window = "from \(windowStart) to \(windowEnd)"
        let share = ConflictRules.percent(overlapShare)
        let who = witness.map(ConflictRules.describe) ?? "any unit"
        switch template {
        case let .unitMismatch(a, aUnit, b, layer, bUnit):
            return "\(a) randomizes by \(aUnit) but \(b) in the same layer '\(layer)' randomizes by \(bUnit): layer exclusivity no longer holds, and about \(share) of units can be in both \(window); use one unit per layer"
        case let .parameter(a, aLayer, b, bLayer, parameters):
            return "\(a) (layer '\(aLayer)') and \(b) (layer '\(bLayer)') both change \(parameters.joined(separator: ", ")) \(window): about \(share) of eligible units (e.g. \(who)) would get both changes and neither result can be trusted; move one to layer '\(bLayer)' or reschedule"
        case let .metricInteraction(a, b, metric):
            return "\(a) and \(b) share primary metric \(metric) \(window) in different layers: about \(share) of eligible units (e.g. \(who)) are in both, so their effects on it can interact"
        case let .seedReuse(a, b, seed):
            return "\(a) and \(b) use the same assignment seed \"\(seed)\" \(window): units in both (about \(share), e.g. \(who)) get correlated variants; set a distinct seed"
        case let .text(text):
            return text
        }
    }

    /// The finding as seen from `subject`: `with` names the other experiment.
    public func json(from subject: String? = nil) -> JSON {
        var o: [String: JSON] = [
            "kind": .string(kind.rawValue), "severity": .string(severity.rawValue),
            "window": ["start": .string(windowStart.description), "end": .string(windowEnd.description)],
            "overlap_share": .number((overlapShare * 1e9).rounded() / 1e9), "message": .string(message),
            "witness": witness.map { w in
                .object(w.attributes.mapValues(\.json))
            } ?? .null,
        ]
        if let note = witness?.undecided { o["witness_note"] = .string(note) }
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
    /// Findings of `a` against `b`. One severity rule for a pair, whatever method reports it: a finding is an
    /// error when both experiments would hold traffic at once. `a` is the experiment being registered, checked or
    /// admitted, so it counts as about to hold traffic and the severity follows `b`'s state; a registry-wide scan
    /// (`symmetric`) admits nothing, so a pair is an error only when both hold traffic already (a pair of a running
    /// experiment and one in review is a warning there, as when the running one is checked; the one in review
    /// meets the error when it is approved).
    public static func findings(_ a: ConflictSubject, _ b: ConflictSubject, symmetric: Bool = false,
                                audience: (ConflictSubject, ConflictSubject) -> Witness? = { Satisfiability.witness([$0.targeting, $1.targeting]) }) -> [Finding] {
        var out: [Finding] = []
        appendFindings(a, b, symmetric: symmetric, into: &out, audience: audience)
        return out
    }

    /// ``findings(_:_:symmetric:audience:)`` appending to `out` (scans call it for millions of pairs).
    static func appendFindings(_ a: ConflictSubject, _ b: ConflictSubject, symmetric: Bool, into out: inout [Finding],
                               audience: (ConflictSubject, ConflictSubject) -> Witness?) {
        guard a.key != b.key else { return }
        let windowStart = max(a.start, b.start), windowEnd = min(a.end, b.end)
        guard windowStart < windowEnd else { return }
        let held = b.state.holdsTraffic && (!symmetric || a.state.holdsTraffic)
        let severityFor = { (kind: FindingKind) -> Severity in held ? kind.severityAgainstHeld : .warning }
        let sameLayer = a.layer == b.layer
        if sameLayer && a.unit != b.unit {
            let share = a.traffic * b.traffic
            out.append(Finding(
                experiments: [a.key, b.key], kind: .unitMismatch, severity: severityFor(.unitMismatch),
                windowStart: windowStart, windowEnd: windowEnd, witness: nil, overlapShare: share,
                template: .unitMismatch(a: a.key, aUnit: a.unit, b: b.key, layer: a.layer, bUnit: b.unit)))
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
        guard share > 0 else { return }
        let common = a.parameters.isDisjoint(with: b.parameters) ? [] : a.parameters.intersection(b.parameters).sorted()
        let sharedPrimary = !sameLayer && a.primaryMetric != nil && a.primaryMetric == b.primaryMetric
        let sharedSeed = a.seed == b.seed
        guard !common.isEmpty || sharedPrimary || sharedSeed else { return }
        guard let witness = audience(a, b) else { return }
        if !common.isEmpty {
            out.append(Finding(
                experiments: [a.key, b.key], kind: .parameter, severity: severityFor(.parameter),
                windowStart: windowStart, windowEnd: windowEnd, witness: witness, overlapShare: share,
                template: .parameter(a: a.key, aLayer: a.layer, b: b.key, bLayer: b.layer, parameters: common)))
        }
        if sharedPrimary {
            out.append(Finding(
                experiments: [a.key, b.key], kind: .metricInteraction, severity: severityFor(.metricInteraction),
                windowStart: windowStart, windowEnd: windowEnd, witness: witness, overlapShare: share,
                template: .metricInteraction(a: a.key, b: b.key, metric: a.primaryMetric!)))
        }
        if sharedSeed {
            out.append(Finding(
                experiments: [a.key, b.key], kind: .seedReuse, severity: severityFor(.seedReuse),
                windowStart: windowStart, windowEnd: windowEnd, witness: witness, overlapShare: share,
                template: .seedReuse(a: a.key, b: b.key, seed: a.seed)))
        }
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
            template: .text("layer '\(subject.layer)' has \(available) of 10000 buckets (\(percent(Double(available) / 10_000))) free from \(subject.start) to \(windowEnd), but \(subject.key) needs \(needed) (traffic \(subject.traffic)); held by \(names.joined(separator: ", ")); lower traffic to at most \(Double(available) / 10_000) or reschedule"))
        return (free, finding)
    }

    static func percent(_ x: Double) -> String {
        let p = x * 100
        if p >= 10 || p == p.rounded() { return "\(Int(p.rounded()))%" }
        return "\((p * 10).rounded() / 10)%"
    }

    static func describe(_ w: Witness) -> String {
        let parts = w.attributes.keys.sorted().map { k in "\(k)=\(w.attributes[k]!.description)" }
        return parts.isEmpty ? "any unit" : parts.joined(separator: ", ")
    }
}

/// Experiments indexed by what they can share, so a check touches only candidates, never every pair.
///
/// Each shared key (layer, parameter, primary metric, seed) keeps its members sorted by start time with the
/// group's longest duration, so a check looks only at members whose schedules can overlap its own, and a scan
/// sweeps each group once: the cost follows the number of overlapping pairs, not the square of the registry.
public struct ConflictIndex: Sendable {
    /// Subjects live in boxes so passing them around costs one reference count, not a copy of every field.
    final class Box: Sendable {
        let subject: ConflictSubject
        init(_ subject: ConflictSubject) { self.subject = subject }
    }
    private var slots: [Box?] = []
    /// What a check compares before it touches a candidate's subject, by slot.
    private var slotFacts: [Facts] = []
    /// Layers, units, seeds, metrics and parameters as small integers, so a pair compares integers, not strings.
    private var nameIDs: [String: Int32] = [:]
    private var slotOf: [String: Int] = [:]
    private var freeSlots: [Int] = []
    private var groups: [GroupKey: Group] = [:]
    /// Targeting conditions interned by value (by the solver, so the copies of an index agree on every id), so
    /// audience overlap is solved once per distinct pair.
    private var slotCondition: [Int] = []
    /// Conditions interned and compiled once for every check, shared by the copies of this index: what it holds
    /// depends only on the conditions, so any copy may use it.
    private let solver = AudienceSolver()

    /// A subject's schedule, traffic and shared names as integers: enough to rule out most pairs without a finding.
    struct Facts: Sendable {
        var start: Double = 0, end: Double = 0, traffic: Double = 0
        var layer: Int32 = -1, unit: Int32 = -1, seed: Int32 = -1, metric: Int32 = -1
        var parameters: [Int32] = []
        var hasBuckets = false

        /// Whether ``ConflictRules/appendFindings`` can find anything for this pair, and whether it would ask for the
        /// audiences' overlap first (every finding but a unit mismatch needs a unit both audiences hold).
        func mayFind(against b: Facts) -> (any: Bool, needsAudience: Bool) {
            guard max(start, b.start) < min(end, b.end) else { return (false, false) }
            let sameLayer = layer >= 0 && layer == b.layer
            let sameUnit = unit == b.unit && unit >= 0
            if sameLayer && !sameUnit { return (true, false) }
            if sameLayer && (!hasBuckets || !b.hasBuckets) { return (false, false) }
            if !sameLayer && !(traffic * b.traffic > 0) { return (false, false) }
            let shares = (seed >= 0 && seed == b.seed) || (!sameLayer && metric >= 0 && metric == b.metric) || sharesParameter(b)
            // Within one layer the bucket overlap is known only from the subjects: the rules decide it.
            return shares ? (true, !sameLayer) : (false, false)
        }

        func sharesParameter(_ b: Facts) -> Bool {
            var i = 0, j = 0
            while i < parameters.count && j < b.parameters.count {
                if parameters[i] == b.parameters[j] { return true }
                if parameters[i] < b.parameters[j] { i += 1 } else { j += 1 }
            }
            return false
        }
    }

    /// The facts of `s` with names this index has interned (`intern`), or -1 for one it never saw (which no indexed
    /// subject shares).
    func facts(_ s: ConflictSubject, intern: (String) -> Int32) -> Facts {
        Facts(start: s.start.seconds, end: s.end.seconds, traffic: s.traffic,
              layer: intern(s.layer), unit: intern(s.unit), seed: intern(s.seed), metric: s.primaryMetric.map(intern) ?? -1,
              parameters: s.parameters.map(intern).filter { $0 >= 0 }.sorted(), hasBuckets: !s.buckets.isEmpty)
    }

    enum GroupKey: Hashable, Sendable {
        case layer(String), parameter(String), metric(String), seed(String)
    }

    struct Group: Sendable {
        var starts: [Double] = []
        var members: [Int] = []
        var maxDuration: Double = 0

        mutating func insert(_ slot: Int, start: Double, duration: Double) {
            var lo = 0, hi = starts.count
            while lo < hi { let mid = (lo + hi) / 2; if starts[mid] <= start { lo = mid + 1 } else { hi = mid } }
            starts.insert(start, at: lo)
            members.insert(slot, at: lo)
            maxDuration = max(maxDuration, duration)
        }

        mutating func remove(_ slot: Int) {
            if let i = members.firstIndex(of: slot) { members.remove(at: i); starts.remove(at: i) }
        }

        /// Members whose start lies in `[from - maxDuration, to)`: a superset of those overlapping `[from, to)`.
        func overlapping(from: Double, to: Double, _ body: (Int) -> Void) {
            var lo = 0, hi = starts.count
            while lo < hi { let mid = (lo + hi) / 2; if starts[mid] < to { lo = mid + 1 } else { hi = mid } }
            var i = lo - 1
            let earliest = from - maxDuration
            while i >= 0 && starts[i] >= earliest { body(members[i]); i -= 1 }
        }
    }

    public init() {}

    public init(_ subjects: [ConflictSubject]) {
        for s in subjects { upsert(s) }
    }

    /// Every subject, in no order (cheaper than ``subjects`` when no lookup by key is needed).
    public var all: [ConflictSubject] { slots.compactMap { $0?.subject } }

    public var subjects: [String: ConflictSubject] {
        Dictionary(uniqueKeysWithValues: slots.compactMap { $0.map { ($0.subject.key, $0.subject) } })
    }

    public subscript(key: String) -> ConflictSubject? { slotOf[key].flatMap { slots[$0]?.subject } }

    static func keys(_ s: ConflictSubject) -> [GroupKey] {
        var k: [GroupKey] = [.layer(s.layer), .seed(s.seed)]
        k += s.parameters.sorted().map { .parameter($0) }
        if let m = s.primaryMetric { k.append(.metric(m)) }
        return k
    }

    /// Adds or replaces a subject; terminal experiments leave the index.
    public mutating func upsert(_ s: ConflictSubject) {
        remove(s.key)
        guard !s.state.isTerminal else { return }
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
            slots[slot] = Box(s)
        } else {
            slot = slots.count
            slots.append(Box(s))
            slotCondition.append(0)
            slotFacts.append(Facts())
        }
        slotFacts[slot] = facts(s) { name in
            if let id = nameIDs[name] { return id }
            let id = Int32(nameIDs.count)
            nameIDs[name] = id
            return id
        }
        slotOf[s.key] = slot
        slotCondition[slot] = solver.id(of: s.targeting)
        // Occupancy (schedule plus cool-down) bounds both schedule and bucket-holding overlaps.
        let duration = s.occupancyEnd.seconds - s.start.seconds
        for k in Self.keys(s) { groups[k, default: Group()].insert(slot, start: s.start.seconds, duration: duration) }
    }

    public mutating func remove(_ key: String) {
        guard let slot = slotOf.removeValue(forKey: key), let old = slots[slot]?.subject else { return }
        for k in Self.keys(old) { groups[k]?.remove(slot) }
        slots[slot] = nil
        freeSlots.append(slot)
    }

    /// Subjects sharing a key with `s` whose schedules overlap it, in the order of their keys.
    public func candidates(for s: ConflictSubject) -> [ConflictSubject] {
        candidateSlots(for: s).map { slots[$0]!.subject }.sorted { $0.key < $1.key }
    }

    /// The slots of ``candidates(for:)``, in no order.
    func candidateSlots(for s: ConflictSubject) -> [Int] {
        var seen = Set<Int>()
        var out: [Int] = []
        let own = slotOf[s.key] ?? -1, start = s.start.seconds
        for k in Self.keys(s) {
            groups[k]?.overlapping(from: start, to: s.end.seconds) { slot in
                guard slot != own, slots[slot] != nil, slotFacts[slot].end > start, seen.insert(slot).inserted else { return }
                out.append(slot)
            }
        }
        return out
    }

    /// Every finding of `s` against the indexed experiments (which it may or may not be part of).
    public func check(_ s: ConflictSubject, includeCapacity: Bool = true) -> [Finding] {
        var out: [Finding] = []
        // Findings come per candidate, in the order of the candidates' keys: each candidate's run is noted and the
        // (few) runs are put in order at the end, rather than every candidate sorted by key first.
        var runs: [(key: String, findings: Range<Int>)] = []
        let probe = facts(s) { nameIDs[$0] ?? -1 }
        // Audiences solved as a scan solves them: conditions compiled once (and kept for the next check), each path's
        // solution shared by the candidates whose tests on it are the same (a registry targets a few attributes alike).
        // A pair is first ruled out on its facts, then on its audiences, before its subject is read.
        solver.use { cache, compiledByID in
            let compiled = cache.compile(s.targeting)
            func audience(_ slot: Int, _ other: Box) -> Witness? {
                let id = slotCondition[slot]
                let theirs: Satisfiability.Compiled?
                if let known = compiledByID[id] { theirs = known } else {
                    theirs = cache.compile(other.subject.targeting)
                    compiledByID[id] = .some(theirs)
                }
                if let compiled, let theirs, let fast = Satisfiability.witness(compiled, theirs, cache: cache) { return fast }
                return Satisfiability.witness([s.targeting, other.subject.targeting], cache: cache)
            }
            for slot in candidateSlots(for: s) {
                let (any, needsAudience) = probe.mayFind(against: slotFacts[slot])
                guard any else { continue }
                let other = slots[slot]!
                let witness: Witness??
                if needsAudience {
                    guard let w = audience(slot, other) else { continue }
                    witness = w
                } else {
                    witness = .none
                }
                let before = out.count
                ConflictRules.appendFindings(s, other.subject, symmetric: false, into: &out) { _, _ in
                    witness ?? audience(slot, other)
                }
                if out.count > before { runs.append((other.subject.key, before..<out.count)) }
            }
        }
        if runs.count > 1 {
            let found = out
            out = runs.sorted { $0.key < $1.key }.flatMap { found[$0.findings] }
        }
        if includeCapacity, s.buckets.isEmpty, let f = capacityFinding(s) { out.append(f) }
        return out
    }

    /// All findings among indexed experiments, optionally only those live in `[from, to)`.
    public func scan(from: Timestamp? = nil, to: Timestamp? = nil) -> [Finding] {
        // 1. Candidate pairs: sweep each shared-key group by start time; a pair met in several groups counts once.
        var seen = Set<UInt64>(minimumCapacity: slotOf.count * 8)
        var pairs: [UInt64] = []
        pairs.reserveCapacity(slotOf.count * 8)
        for group in groups.values where group.members.count > 1 {
            var active: [Int] = []
            for slot in group.members {
                guard let box = slots[slot] else { continue }
                let start = box.subject.start.seconds
                active.removeAll { slotFacts[$0].end <= start }
                for otherSlot in active {
                    let pair = UInt64(min(slot, otherSlot)) << 32 | UInt64(max(slot, otherSlot))
                    if seen.insert(pair).inserted { pairs.append(pair) }
                }
                active.append(slot)
            }
        }
        // Report order: by experiment keys, then kind. Each key is ranked once, by slot, so the workers attach an
        // integer sort key to every finding as they make it and the findings are moved into order once.
        let ranked = slotOf.keys.sorted()
        var slotRank = [Int32](repeating: -1, count: slots.count)
        var rank: [String: Int32] = [:]
        rank.reserveCapacity(ranked.count)
        for (i, key) in ranked.enumerated() {
            rank[key] = Int32(i)
            if let slot = slotOf[key] { slotRank[slot] = Int32(i) }
        }
        let kindOrder = Dictionary(uniqueKeysWithValues: FindingKind.allCases.map(\.rawValue).sorted().enumerated().map { (FindingKind(rawValue: $1)!, $0) })
        struct SortKey: Comparable {
            var a: Int32, b: Int32, kind: Int
            static func < (x: SortKey, y: SortKey) -> Bool { (x.a, x.b, x.kind) < (y.a, y.b, y.kind) }
        }
        // 2. Findings of each pair, on every core; each worker solves audiences with its own caches.
        let workers = max(1, min(8, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
        nonisolated(unsafe) var partial = [[Finding]](repeating: [], count: workers)
        nonisolated(unsafe) var partialKeys = [[SortKey]](repeating: [], count: workers)
        let ranks = slotRank
        let index = self
        let candidates = pairs
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var audiences: [UInt64: Witness?] = [:]
            let satCache = Satisfiability.Cache()
            var compiled: [Int: Satisfiability.Compiled?] = [:]
            func compile(_ id: Int, _ c: Condition) -> Satisfiability.Compiled? {
                if let known = compiled[id] { return known }
                let made = satCache.compile(c)
                compiled[id] = .some(made)
                return made
            }
            var local: [Finding] = []
            var localKeys: [SortKey] = []
            for i in stride(from: w, to: candidates.count, by: workers) {
                let x = Int(candidates[i] >> 32), y = Int(candidates[i] & 0xFFFF_FFFF)
                let bx = index.slots[x]!, by = index.slots[y]!
                let (a, b) = bx.subject.key < by.subject.key ? (bx, by) : (by, bx)
                let (ra, rb) = bx.subject.key < by.subject.key ? (ranks[x], ranks[y]) : (ranks[y], ranks[x])
                let before = local.count
                defer {
                    for f in local[before...] {
                        let first = f.experiments.first == a.subject.key
                        localKeys.append(SortKey(a: first ? ra : rb, b: first ? rb : ra, kind: kindOrder[f.kind]!))
                    }
                }
                let ca = index.slotCondition[x], cb = index.slotCondition[y]
                let audienceKey = UInt64(min(ca, cb)) << 32 | UInt64(max(ca, cb))
                ConflictRules.appendFindings(a.subject, b.subject, symmetric: true, into: &local) { p, q in
                    if let known = audiences[audienceKey] { return known }
                    var w: Witness?
                    if let cp = compile(ca, index.slots[x]!.subject.targeting), let cq = compile(cb, index.slots[y]!.subject.targeting),
                       let fast = Satisfiability.witness(cp, cq, cache: satCache) {
                        w = fast
                    } else {
                        w = Satisfiability.witness([p.targeting, q.targeting], cache: satCache)
                    }
                    audiences[audienceKey] = .some(w)
                    return w
                }
            }
            partial[w] = local
            partialKeys[w] = localKeys
        }
        // The capacity findings join as one more part; the parts are then read in order, each finding copied once.
        var extra: [Finding] = []
        var extraKeys: [SortKey] = []
        // Capacity of experiments not yet holding buckets, against the holders of their layer.
        // They hold nothing yet, so by the one rule this is a warning here; their approval meets it as an error.
        for case let box? in slots where box.subject.buckets.isEmpty && !box.subject.state.holdsTraffic {
            if var f = capacityFinding(box.subject) {
                f.severity = .warning
                extra.append(f)
                extraKeys.append(SortKey(a: rank[f.experiments[0]] ?? -1, b: f.experiments.count > 1 ? rank[f.experiments[1]] ?? -1 : -1, kind: kindOrder[f.kind]!))
            }
        }
        partial.append(extra)
        partialKeys.append(extraKeys)
        // Sort references (part, index), not the findings themselves: moving large values dominates otherwise.
        var refs: [(part: Int32, index: Int32)] = []
        let total = partial.reduce(0) { $0 + $1.count }
        refs.reserveCapacity(total)
        for (p, part) in partial.enumerated() { for i in part.indices { refs.append((Int32(p), Int32(i))) } }
        let flatKeys = partialKeys.flatMap { $0 }
        let order = flatKeys.indices.sorted { flatKeys[$0] < flatKeys[$1] }
        let lo = from ?? Timestamp(seconds: -.infinity), hi = to ?? Timestamp(seconds: .infinity)
        var out: [Finding] = []
        out.reserveCapacity(refs.count)
        for o in order {
            let r = refs[o]
            let f = partial[Int(r.part)][Int(r.index)]
            if from != nil || to != nil {
                guard lo == hi ? (f.windowStart <= lo && lo < f.windowEnd) : (f.windowStart < hi && lo < f.windowEnd) else { continue }
            }
            out.append(f)
        }
        return out
    }

    /// Experiments holding buckets in a layer (for allocation and assignment).
    public func holders(layer: String) -> [ConflictSubject] {
        (groups[.layer(layer)]?.members ?? []).compactMap { slots[$0]?.subject }.filter { $0.state.holdsTraffic }
    }

    /// The layer-capacity finding of `s`, if any. Counts free buckets first without copying any subject; the
    /// holders are gathered for the message only when the layer is short.
    func capacityFinding(_ s: ConflictSubject) -> Finding? {
        guard let g = groups[.layer(s.layer)] else { return nil }
        var taken: [Range<Int>] = []
        g.overlapping(from: s.start.seconds, to: s.occupancyEnd.seconds) { slot in
            guard let o = slots[slot], o.subject.key != s.key, o.subject.state.holdsTraffic,
                  o.subject.start < s.occupancyEnd, s.start < o.subject.occupancyEnd else { return }
            taken += o.subject.buckets
        }
        let available = Allocation.count(Allocation.free(taken: taken))
        guard available < Allocation.bucketsNeeded(traffic: s.traffic) else { return nil }
        return ConflictRules.capacity(s, holders: holders(layer: s.layer, overlapping: s)).finding
    }

    /// Holders of `s`'s layer whose occupancy (schedule plus cool-down) can overlap `s`'s.
    func holders(layer: String, overlapping s: ConflictSubject) -> [ConflictSubject] {
        guard let g = groups[.layer(layer)] else { return [] }
        var out: [ConflictSubject] = []
        g.overlapping(from: s.start.seconds, to: s.occupancyEnd.seconds) { slot in
            if let o = slots[slot]?.subject, o.state.holdsTraffic, o.occupancyEnd > s.start { out.append(o) }
        }
        return out
    }

    public var count: Int { slotOf.count }
}

/// A solver's cache and the compiled conditions of an index, used by one check at a time; emptied when it grows past
/// a bound (it only saves work).
final class AudienceSolver: Sendable {
    private struct State: @unchecked Sendable {
        var ids: [Condition: Int] = [:]
        var cache = Satisfiability.Cache()
        var compiled: [Int: Satisfiability.Compiled?] = [:]
    }
    private let state = Mutex(State())

    /// The one id of a condition (equal conditions, equal ids), for every copy of the index.
    func id(of condition: Condition) -> Int {
        state.withLock { s in
            if let id = s.ids[condition] { return id }
            s.ids[condition] = s.ids.count
            return s.ids.count - 1
        }
    }

    func use<T>(_ body: (Satisfiability.Cache, inout [Int: Satisfiability.Compiled?]) -> T) -> T {
        state.withLock { s in
            if s.cache.size > 200_000 {
                s.cache = Satisfiability.Cache()
                s.compiled = [:]
            }
            return body(s.cache, &s.compiled)
        }
    }
}

struct PairKey: Hashable {
    let a: String, b: String
    init(_ x: String, _ y: String) { (a, b) = x < y ? (x, y) : (y, x) }
}

