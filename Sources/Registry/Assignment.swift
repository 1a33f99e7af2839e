/// How one experiment assigns a unit, exactly as `assign` answers: the unit's bucket in the layer must be the
/// experiment's, no holdout covering it may hold the unit out, its targeting must match, and then the variant is
/// `chooseVariation(hash_v2(seed, unit))`. `assign` and ingestion (the arm of an overlapping experiment, computed from
/// the unit id) both use it, so they cannot disagree.
public struct ExperimentAssigner: Sendable {
    public enum Outcome: Equatable, Sendable {
        case variant(Int)
        case heldOut(String)
        /// The unit's bucket is not the experiment's.
        case outside
        case notTargeted
    }

    public let subject: ConflictSubject
    public let holdouts: [HoldoutSubject]
    let tables: AssignmentTables

    /// `holdouts`: those that hold units out of this experiment at the time assigned (``HoldoutRules`` decides).
    public init(_ subject: ConflictSubject, holdouts: [HoldoutSubject]) {
        self.subject = subject
        self.holdouts = holdouts.sorted { $0.key < $1.key }
        tables = AssignmentTables(subject, holdouts: self.holdouts)
    }

    /// The rule on plain pointers, valid while this assigner lives: for loops that must not touch reference counts
    /// (ingestion computes an arm for every row, on every core).
    public var raw: RawAssigner { tables.raw }

    /// The holdout (if any) that holds `unit` out of this experiment.
    public func holdout(of unit: String) -> HoldoutSubject? {
        holdouts.first { $0.holdsOut(unit) }
    }

    /// The outcome for a unit whose bucket in the layer is `bucket`; `eligible` evaluates the targeting (asked last,
    /// and only when the unit could otherwise be assigned).
    public func outcome(_ unit: String, bucket: Int, eligible: (Condition) -> Bool) -> Outcome {
        guard tables.raw.owned[bucket] else { return .outside }
        if let h = holdout(of: unit) { return .heldOut(h.key) }
        guard eligible(subject.targeting) else { return .notTargeted }
        guard let v = tables.raw.variant(GrowthBookHash.hashV2(seed: subject.seed, value: unit)) else { return .outside }
        return .variant(v)
    }

    /// ``outcome(_:bucket:eligible:)`` from the unit's UTF-8 bytes, hashing them without making a string when they
    /// are ASCII.
    public func outcome(bytes: UnsafeBufferPointer<UInt8>, eligible: (Condition) -> Bool) -> Outcome {
        guard let fast = tables.raw.outcome(bytes: bytes, eligible: { eligible(subject.targeting) }) else {
            let unit = String(decoding: bytes, as: UTF8.self)
            return outcome(unit, bucket: GrowthBookHash.bucket(seed: subject.layer, value: unit), eligible: eligible)
        }
        switch fast {
        case .variant(let v): return .variant(v)
        case .heldOut(let i): return .heldOut(holdouts[i].key)
        case .outside: return .outside
        case .notTargeted: return .notTargeted
        }
    }
}

/// ``ExperimentAssigner``'s rule on tables in raw memory: trivially copyable, so a row loop on several cores reads it
/// without reference counting (shared counts would bounce between the cores' caches on every row).
public struct RawAssigner: @unchecked Sendable {
    public enum Outcome: Equatable, Sendable { case variant(Int), heldOut(Int), outside, notTargeted }
    @usableFromInline let owned: UnsafePointer<Bool>
    @usableFromInline let ranges: UnsafePointer<(Double, Double)>
    @usableFromInline let rangeCount: Int
    @usableFromInline let holdoutStates: UnsafePointer<UInt32>
    @usableFromInline let holdoutShares: UnsafePointer<Double>
    @usableFromInline let holdoutCount: Int
    @usableFromInline let layerState: UInt32
    @usableFromInline let seedState: UInt32
    /// The experiment targets some units only: `eligible` is asked.
    public let targeted: Bool

    /// The outcome from the unit's bytes (held out: the index of the holdout, in key order); nil when the bytes are not
    /// all ASCII (hash the decoded string instead, as ``ExperimentAssigner/outcome(bytes:eligible:)`` does).
    @inlinable @inline(__always)
    public func outcome(bytes: UnsafeBufferPointer<UInt8>, eligible: () -> Bool) -> Outcome? {
        // Both hashes in one pass (most units are in the experiment's buckets, so the second is rarely wasted).
        guard let (bucket, position) = GrowthBookHash.buckets(layerState, seedState, bytes: bytes) else { return nil }
        guard owned[bucket] else { return .outside }
        for i in 0..<holdoutCount where Double(GrowthBookHash.bucket(state: holdoutStates[i], bytes: bytes)!) / 10_000 < holdoutShares[i] {
            return .heldOut(i)
        }
        if targeted && !eligible() { return .notTargeted }
        return variant(Double(position) / 10_000).map(Outcome.variant) ?? .outside
    }

    /// GrowthBook's `chooseVariation(n, ranges)`: the variant whose range holds `n`.
    @inlinable @inline(__always)
    public func variant(_ n: Double) -> Int? {
        for v in 0..<rangeCount where n >= ranges[v].0 && n < ranges[v].1 { return v }
        return nil
    }
}

/// Owns a ``RawAssigner``'s memory.
final class AssignmentTables: Sendable {
    let raw: RawAssigner

    init(_ subject: ConflictSubject, holdouts: [HoldoutSubject]) {
        let owned = UnsafeMutablePointer<Bool>.allocate(capacity: GrowthBookHash.buckets)
        owned.initialize(repeating: false, count: GrowthBookHash.buckets)
        for r in subject.buckets { for b in r where b >= 0 && b < GrowthBookHash.buckets { owned[b] = true } }
        let weights = GrowthBookHash.ranges(weights: subject.variantWeights)
        let ranges = UnsafeMutablePointer<(Double, Double)>.allocate(capacity: max(1, weights.count))
        ranges.initialize(from: weights, count: weights.count)
        let states = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, holdouts.count))
        states.initialize(from: holdouts.map { GrowthBookHash.state($0.seed) }, count: holdouts.count)
        let shares = UnsafeMutablePointer<Double>.allocate(capacity: max(1, holdouts.count))
        shares.initialize(from: holdouts.map(\.share), count: holdouts.count)
        raw = RawAssigner(owned: owned, ranges: ranges, rangeCount: weights.count, holdoutStates: states, holdoutShares: shares,
                          holdoutCount: holdouts.count, layerState: GrowthBookHash.state(subject.layer), seedState: GrowthBookHash.state(subject.seed),
                          targeted: subject.targeting != .always)
    }

    deinit {
        UnsafeMutablePointer(mutating: raw.owned).deallocate()
        UnsafeMutablePointer(mutating: raw.ranges).deallocate()
        UnsafeMutablePointer(mutating: raw.holdoutStates).deallocate()
        UnsafeMutablePointer(mutating: raw.holdoutShares).deallocate()
    }
}
