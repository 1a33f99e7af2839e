public import Registry

/// Deterministic generators of realistic registries, shared by property tests and benchmarks.

public struct SplitMix: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A random registry with realistic shapes, for property tests and benchmarks.
/// `spanDays` is the period the schedules start in: a registry that grows by accumulating history keeps its
/// concurrency (experiments live at once) roughly constant when the span grows with the count.
public func randomRegistry(count: Int, layers: Int, parameters: Int, metrics: Int, seed: UInt64, spanDays: Int = 700) -> [ConflictSubject] {
    var rng = SplitMix(seed: seed)
    let base = Timestamp(rfc3339: "2026-01-01T00:00:00Z")!
    let countries = ["US", "CA", "FR", "DE", "JP", "BR", "IN"]
    return (0..<count).map { i in
        let layer = "layer-\(Int(rng.next() % UInt64(layers)))"
        let start = base.adding(days: Double(rng.next() % UInt64(spanDays)))
        let states: [ExperimentState] = [.draft, .review, .approved, .running]
        let state = states[Int(rng.next() % 4)]
        var tests: [Condition] = []
        func ops(_ o: Operator...) -> ValueCondition { .operators(o) }
        if rng.next() % 2 == 0 { tests.append(.path("country", ops(.isIn(Array(countries.shuffled(using: &rng).prefix(Int(rng.next() % 3) + 1)).map { .string($0) }, insensitive: false)))) }
        if rng.next() % 3 == 0 { tests.append(.path("platform", .string(["ios", "android", "web"][Int(rng.next() % 3)], insensitive: false))) }
        if rng.next() % 4 == 0 { tests.append(.path("app_version", ops(.version(rng.next() % 2 == 0 ? .vgte : .vlt, .string("\(rng.next() % 6 + 1).0.0"))))) }
        // The newer operators, as teams use them: nested attributes, array attributes, case-insensitive lists.
        if rng.next() % 5 == 0 { tests.append(.path("account.plan", ops(.isIn([.string(["Pro", "Team", "Free"][Int(rng.next() % 3)])], insensitive: true)))) }
        if rng.next() % 6 == 0 { tests.append(.path("tags", ops(.elemMatch(.value(ops(.eq(.string(["beta", "staff", "vip"][Int(rng.next() % 3)])))))))) }
        if rng.next() % 8 == 0 { tests.append(.path("purchases", ops(.size(ops(.compare(.gte, .number(Double(rng.next() % 3)))))))) }
        if rng.next() % 10 == 0 { tests.append(.path("account.age_days", ops(.compare(rng.next() % 2 == 0 ? .gt : .lte, .number(Double(rng.next() % 60)))))) }
        let traffic = Double(rng.next() % 20 + 1) / 100
        let needed = Allocation.bucketsNeeded(traffic: traffic)
        let offset = Int(rng.next() % UInt64(10_000 - needed))
        var subject = ConflictSubject(
            key: "exp-\(i)", state: state, layer: layer, unit: rng.next() % 50 == 0 ? "device_id" : "user_id",
            parameters: Set((0..<Int(rng.next() % 3 + 1)).map { _ in "param-\(rng.next() % UInt64(parameters))" }),
            primaryMetric: "metric-\(rng.next() % UInt64(metrics))", seed: rng.next() % 100 == 0 ? "shared-seed" : "exp-\(i)",
            traffic: traffic, start: start, end: start.adding(days: Double(rng.next() % 50 + 7)),
            targeting: .object(tests), buckets: state.holdsTraffic ? [offset..<(offset + needed)] : [])
        subject.variantKeys = ["control", "treatment"]
        subject.variantWeights = [0.5, 0.5]
        return subject
    }
}

