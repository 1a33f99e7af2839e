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
    let owned: [Bool]
    let ranges: [(Double, Double)]
    let layerState: UInt32
    let seedState: UInt32
    let holdoutStates: [(state: UInt32, share: Double)]

    /// `holdouts`: those that hold units out of this experiment at the time assigned (``HoldoutRules`` decides).
    public init(_ subject: ConflictSubject, holdouts: [HoldoutSubject]) {
        self.subject = subject
        self.holdouts = holdouts.sorted { $0.key < $1.key }
        var owned = [Bool](repeating: false, count: GrowthBookHash.buckets)
        for r in subject.buckets { for b in r where b < owned.count { owned[b] = true } }
        self.owned = owned
        ranges = GrowthBookHash.ranges(weights: subject.variantWeights)
        layerState = GrowthBookHash.state(subject.layer)
        seedState = GrowthBookHash.state(subject.seed)
        holdoutStates = self.holdouts.map { (GrowthBookHash.state($0.seed), $0.share) }
    }

    /// The holdout (if any) that holds `unit` out of this experiment.
    public func holdout(of unit: String) -> HoldoutSubject? {
        holdouts.first { $0.holdsOut(unit) }
    }

    /// The outcome for a unit whose bucket in the layer is `bucket`; `eligible` evaluates the targeting (asked last,
    /// and only when the unit could otherwise be assigned).
    public func outcome(_ unit: String, bucket: Int, eligible: (Condition) -> Bool) -> Outcome {
        guard owned[bucket] else { return .outside }
        if let h = holdout(of: unit) { return .heldOut(h.key) }
        guard eligible(subject.targeting) else { return .notTargeted }
        guard let v = GrowthBookHash.chooseVariation(GrowthBookHash.hashV2(seed: subject.seed, value: unit), ranges) else { return .outside }
        return .variant(v)
    }

    /// ``outcome(_:bucket:eligible:)`` from the unit's UTF-8 bytes, hashing them without making a string when they
    /// are ASCII (ingestion calls it for every row).
    public func outcome(bytes: UnsafeBufferPointer<UInt8>, eligible: (Condition) -> Bool) -> Outcome {
        guard let bucket = GrowthBookHash.bucket(state: layerState, bytes: bytes) else {
            let unit = String(decoding: bytes, as: UTF8.self)
            return outcome(unit, bucket: GrowthBookHash.bucket(seed: subject.layer, value: unit), eligible: eligible)
        }
        guard owned[bucket] else { return .outside }
        for (i, h) in holdoutStates.enumerated() where Double(GrowthBookHash.bucket(state: h.state, bytes: bytes)!) / 10_000 < h.share {
            return .heldOut(holdouts[i].key)
        }
        guard eligible(subject.targeting) else { return .notTargeted }
        let n = Double(GrowthBookHash.bucket(state: seedState, bytes: bytes)!) / 10_000
        guard let v = GrowthBookHash.chooseVariation(n, ranges) else { return .outside }
        return .variant(v)
    }
}
