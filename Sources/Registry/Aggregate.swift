public import JSONCore
public import Statistics

/// Additive sufficient statistics of one metric for one variant (and day, segment): the arm shapes of
/// `stats.compare`, kept as sums so days and segments add up.
public enum Aggregate: Sendable, Equatable {
    case binomial(n: Double, successes: Double)
    case continuous(n: Double, sum: Double, sumSquares: Double)
    case cuped(n: Double, post: Moments, pre: Moments, postPre: Double)
    case ratio(n: Double, numerator: Moments, denominator: Moments, product: Double)
    case nps(promoters: Double, passives: Double, detractors: Double)
    /// Units exposed to a variant (feeds the sample-ratio check).
    case exposures(n: Double)
    /// A quantile metric: the sketch of the units' values (merged, not summed, across days and segments) and its q.
    case quantile(q: Double, sketch: QuantileSketch)

    public var n: Double {
        switch self {
        case .binomial(let n, _), .continuous(let n, _, _), .cuped(let n, _, _, _), .ratio(let n, _, _, _), .exposures(let n): n
        case .nps(let p, let q, let d): p + q + d
        case .quantile(_, let sketch): sketch.count
        }
    }

    public var mean: Double {
        switch self {
        case .binomial(let n, let s): n > 0 ? s / n : 0
        case .continuous(let n, let s, _): n > 0 ? s / n : 0
        case .cuped(let n, let post, _, _): n > 0 ? post.sum / n : 0
        case .ratio(_, let num, let den, _): den.sum != 0 ? num.sum / den.sum : 0
        case .nps(let p, let q, let d): (p + q + d) > 0 ? (p - d) / (p + q + d) : 0
        case .exposures(let n): n
        case .quantile(let q, let sketch): sketch.isEmpty ? 0 : sketch.view().quantile(q)
        }
    }

    /// What one day added per exposed unit, for daily charts: the day's increment of the sum (`increment`,
    /// the day's stored row) over the units exposed by the end of the day (`self`, the running total). A
    /// ratio metric gives the day's own ratio (increment of the numerator over that of the denominator);
    /// NPS and exposures have no daily value; a quantile metric's is the q-quantile of the units first exposed that day.
    public func dayValue(increment: Aggregate) -> Double? {
        switch (self, increment) {
        case let (.binomial(n, _), .binomial(_, s)): return n > 0 ? s / n : nil
        case let (.continuous(n, _, _), .continuous(_, s, _)): return n > 0 ? s / n : nil
        case let (.cuped(n, _, _, _), .cuped(_, post, _, _)): return n > 0 ? post.sum / n : nil
        case let (.ratio(_, _, _, _), .ratio(_, num, den, _)): return den.sum != 0 ? num.sum / den.sum : nil
        case let (.quantile, .quantile(q, day)): return day.isEmpty ? nil : day.view().quantile(q)
        default: return nil
        }
    }

    /// The largest count stored: 2^53, below which every whole number is exact in a double.
    public static let maxCount = 9_007_199_254_740_992.0

    /// Every component is finite and every count is a whole number within ``maxCount``: what the store
    /// accepts, so a summary never meets an infinity or a count it cannot print.
    public var isFinite: Bool {
        func ok(_ x: Moments) -> Bool { x.sum.isFinite && x.sumSquares.isFinite }
        func count(_ x: Double) -> Bool { x >= 0 && x <= Self.maxCount && x.rounded() == x }
        switch self {
        case let .binomial(n, s): return count(n) && count(s)
        case let .continuous(n, s, q): return count(n) && s.isFinite && q.isFinite
        case let .cuped(n, post, pre, x): return count(n) && ok(post) && ok(pre) && x.isFinite
        case let .ratio(n, num, den, x): return count(n) && ok(num) && ok(den) && x.isFinite
        case let .nps(p, q, d): return count(p) && count(q) && count(d)
        case let .exposures(n): return count(n)
        case let .quantile(_, sketch): return count(sketch.count) && sketch.minimum.isFinite == !sketch.isEmpty
        }
    }

    /// Sum of two aggregates of the same shape; nil when the shapes differ.
    public static func + (a: Aggregate, b: Aggregate) -> Aggregate? {
        func m(_ x: Moments, _ y: Moments) -> Moments { Moments(sum: x.sum + y.sum, sumSquares: x.sumSquares + y.sumSquares) }
        switch (a, b) {
        case let (.binomial(n1, s1), .binomial(n2, s2)): return .binomial(n: n1 + n2, successes: s1 + s2)
        case let (.continuous(n1, s1, q1), .continuous(n2, s2, q2)): return .continuous(n: n1 + n2, sum: s1 + s2, sumSquares: q1 + q2)
        case let (.cuped(n1, po1, pr1, x1), .cuped(n2, po2, pr2, x2)): return .cuped(n: n1 + n2, post: m(po1, po2), pre: m(pr1, pr2), postPre: x1 + x2)
        case let (.ratio(n1, nu1, de1, x1), .ratio(n2, nu2, de2, x2)): return .ratio(n: n1 + n2, numerator: m(nu1, nu2), denominator: m(de1, de2), product: x1 + x2)
        case let (.nps(p1, q1, d1), .nps(p2, q2, d2)): return .nps(promoters: p1 + p2, passives: q1 + q2, detractors: d1 + d2)
        case let (.exposures(n1), .exposures(n2)): return .exposures(n: n1 + n2)
        case let (.quantile(q1, s1), .quantile(q2, s2)) where q1 == q2:
            var merged = s1
            merged.merge(s2)
            return .quantile(q: q1, sketch: merged)
        default: return nil
        }
    }

    /// The comparison arms for `stats.compare` (control first).
    public static func arms(control: Aggregate, treatment: Aggregate) -> ComparisonArms? {
        switch (control, treatment) {
        case let (.binomial(n1, s1), .binomial(n2, s2)):
            return .binomial(control: BinomialArm(n: n1, successes: s1), treatment: BinomialArm(n: n2, successes: s2))
        case let (.continuous(n1, s1, q1), .continuous(n2, s2, q2)):
            return .continuous(control: .sums(n: n1, sum: s1, sumSquares: q1), treatment: .sums(n: n2, sum: s2, sumSquares: q2))
        case let (.cuped(n1, po1, pr1, x1), .cuped(n2, po2, pr2, x2)):
            return .cuped(control: CupedArm(n: n1, post: po1, pre: pr1, postPreSumOfProducts: x1),
                          treatment: CupedArm(n: n2, post: po2, pre: pr2, postPreSumOfProducts: x2))
        case let (.ratio(n1, nu1, de1, x1), .ratio(n2, nu2, de2, x2)):
            return .ratio(control: RatioArm(n: n1, numerator: nu1, denominator: de1, numeratorDenominatorSumOfProducts: x1),
                          treatment: RatioArm(n: n2, numerator: nu2, denominator: de2, numeratorDenominatorSumOfProducts: x2))
        case let (.nps(p1, q1, d1), .nps(p2, q2, d2)):
            return .nps(control: NPSArm(promoters: p1, passives: q1, detractors: d1), treatment: NPSArm(promoters: p2, passives: q2, detractors: d2))
        default:
            return nil
        }
    }

    /// Compares two arms of one metric with the options of `stats.compare`; a quantile metric compares its arms'
    /// q-quantiles from their sketches (``Quantiles``). Nil when the shapes differ.
    public static func compare(control: Aggregate, treatment: Aggregate, options: CompareOptions) throws(StatisticsError) -> ComparisonResult? {
        if case let .quantile(q, c) = control, case let .quantile(q2, t) = treatment, q == q2 {
            return try Quantiles.compare(control: try Quantiles.arm(c.view(), q: q), treatment: try Quantiles.arm(t.view(), q: q), options: options)
        }
        guard let arms = arms(control: control, treatment: treatment) else { return nil }
        return try ABTest.compare(arms, options: options)
    }

    /// Whether ``compare(control:treatment:options:)`` can compare the two.
    public static func comparable(_ a: Aggregate, _ b: Aggregate) -> Bool {
        if case let .quantile(q, _) = a, case let .quantile(q2, _) = b { return q == q2 }
        return arms(control: a, treatment: b) != nil
    }

    /// The wire/storage form: the arm shapes of `stats.compare` (continuous as sums).
    public var json: JSON {
        func m(_ x: Moments) -> JSON { ["sum": .number(x.sum), "sum_squares": .number(x.sumSquares)] }
        switch self {
        case let .binomial(n, s): return ["n": .number(n), "successes": .number(s)]
        case let .continuous(n, s, q): return ["n": .number(n), "sum": .number(s), "sum_squares": .number(q)]
        case let .cuped(n, post, pre, x): return ["n": .number(n), "post": m(post), "pre": m(pre), "post_pre_sum_of_products": .number(x)]
        case let .ratio(n, num, den, x): return ["n": .number(n), "numerator": m(num), "denominator": m(den), "numerator_denominator_sum_of_products": .number(x)]
        case let .nps(p, q, d): return ["promoters": .number(p), "passives": .number(q), "detractors": .number(d)]
        case let .exposures(n): return ["exposures": .number(n)]
        case let .quantile(q, sketch):
            return ["n": .number(sketch.count), "q": .number(q), "quantile": sketch.isEmpty ? .null : .number(sketch.view().quantile(q)),
                    "exact": .bool(sketch.isExact), "rank_error_bound": .number(sketch.rankErrorBound), "sketch": .string(sketch.storageText)]
        }
    }

    /// Reads `{exposures: N}`, the units exposed to a variant (a whole number below 2^53).
    public static func readExposures(_ value: JSON, path: String) throws(FieldError) -> Aggregate {
        let f = try Fields(value, path: path)
        try f.rejectUnknown(["exposures"])
        let n = try f.double("exposures")
        guard n >= 0, n <= Aggregate.maxCount, n.rounded() == n else {
            throw FieldError(path: f.fieldPath("exposures"), message: "must be a whole number of units from 0 to 2^53 (9007199254740992), got \(n)", outOfRange: true)
        }
        return .exposures(n: n)
    }

    /// Reads the arm shape given for a metric of `type`; every problem names its field under `path`.
    public static func read(_ value: JSON, type: MetricType, quantile: Double? = nil, path: String) throws(FieldError) -> Aggregate {
        let f = try Fields(value, path: path)
        // Counts are whole numbers that a double holds exactly; sums are finite. Anything else would poison
        // every later summary of the experiment, so it is refused on the way in.
        func count(_ key: String) throws(FieldError) -> Double {
            let v = try f.double(key)
            guard v >= 0, v <= Aggregate.maxCount, v.rounded() == v else {
                throw FieldError(path: f.fieldPath(key), message: "must be a whole number of units from 0 to 2^53 (9007199254740992), got \(v)", outOfRange: true)
            }
            return v
        }
        func nonNegative(_ key: String) throws(FieldError) -> Double {
            let v = try f.double(key)
            guard v >= 0, v.isFinite else { throw FieldError(path: f.fieldPath(key), message: "must be a finite number ≥ 0, got \(v)") }
            return v
        }
        func moments(_ key: String) throws(FieldError) -> Moments {
            let o = try f.object(key)
            try o.rejectUnknown(["sum", "sum_squares"])
            return Moments(sum: try o.double("sum"), sumSquares: try o.double("sum_squares"))
        }
        func checked(_ a: Aggregate) throws(FieldError) -> Aggregate {
            guard a.isFinite else {
                throw FieldError(path: path, message: "its sums overflow a double (not finite); send values whose sums and sums of squares stay below 1.8e308", outOfRange: true)
            }
            return a
        }
        switch type {
        case .binomial:
            try f.rejectUnknown(["n", "successes"])
            let n = try count("n"), s = try count("successes")
            guard s <= n else { throw FieldError(path: f.fieldPath("successes"), message: "\(s) exceeds n \(n)") }
            return .binomial(n: n, successes: s)
        case .continuous:
            if f.has("pre") {
                try f.rejectUnknown(["n", "post", "pre", "post_pre_sum_of_products"])
                return try checked(.cuped(n: try count("n"), post: try moments("post"), pre: try moments("pre"), postPre: try f.double("post_pre_sum_of_products")))
            }
            if f.has("mean") {
                try f.rejectUnknown(["n", "mean", "variance"])
                let n = try count("n"), mean = try f.double("mean"), variance = try nonNegative("variance")
                // Sums from moments: Σx = n·mean, Σx² = (n − 1)·s² + n·mean².
                return try checked(.continuous(n: n, sum: n * mean, sumSquares: max(n - 1, 0) * variance + n * mean * mean))
            }
            try f.rejectUnknown(["n", "sum", "sum_squares"])
            return try checked(.continuous(n: try count("n"), sum: try f.double("sum"), sumSquares: try nonNegative("sum_squares")))
        case .ratio:
            try f.rejectUnknown(["n", "numerator", "denominator", "numerator_denominator_sum_of_products"])
            return try checked(.ratio(n: try count("n"), numerator: try moments("numerator"), denominator: try moments("denominator"),
                                      product: try f.double("numerator_denominator_sum_of_products")))
        case .nps:
            try f.rejectUnknown(["promoters", "passives", "detractors"])
            return try checked(.nps(promoters: try count("promoters"), passives: try count("passives"), detractors: try count("detractors")))
        case .quantile:
            let q = quantile ?? 0.5
            if f.has("values") {
                try f.rejectUnknown(["values"])
                guard case .array(let items)? = f.members["values"] else { throw FieldError(path: f.fieldPath("values"), message: "must be an array of numbers (the units' values)") }
                var sketch = QuantileSketch()
                for (i, item) in items.enumerated() {
                    guard case .number(let x) = item, x.isFinite else { throw FieldError(path: "\(f.fieldPath("values"))[\(i)]", message: "must be a finite number") }
                    sketch.insert(x)
                }
                return .quantile(q: q, sketch: sketch)
            }
            // A sketch as results.record answers it (its `n`, `q`, `quantile`… are what the sketch says, and ignored).
            try f.rejectUnknown(["sketch", "n", "q", "quantile", "exact", "rank_error_bound"])
            let text = try f.string("sketch")
            guard let sketch = QuantileSketch(storage: Substring(text)) else {
                throw FieldError(path: f.fieldPath("sketch"), message: "is not a sketch as results.record answers it; send the units' values as {\"values\": [...]} instead")
            }
            return .quantile(q: q, sketch: sketch)
        }
    }

    /// Compact storage form: a kind letter and the sums, comma-separated ("b,1000,95"). Stored rows are read
    /// once per day of data by every summary, so they avoid JSON objects.
    public var storageText: String {
        func f(_ x: Double) -> String { JSON.number(x).serialized() }
        switch self {
        case let .binomial(n, s): return "b,\(f(n)),\(f(s))"
        case let .continuous(n, s, q): return "c,\(f(n)),\(f(s)),\(f(q))"
        case let .cuped(n, post, pre, x): return "u,\(f(n)),\(f(post.sum)),\(f(post.sumSquares)),\(f(pre.sum)),\(f(pre.sumSquares)),\(f(x))"
        case let .ratio(n, num, den, x): return "r,\(f(n)),\(f(num.sum)),\(f(num.sumSquares)),\(f(den.sum)),\(f(den.sumSquares)),\(f(x))"
        case let .nps(p, q, d): return "p,\(f(p)),\(f(q)),\(f(d))"
        case let .exposures(n): return "e,\(f(n))"
        case let .quantile(q, sketch): return "q,\(f(q)),\(sketch.storageText)"
        }
    }

    /// Reads ``storageText``; nil for anything else.
    public init?(storage text: String) {
        if text.hasPrefix("q,") {
            let rest = text.dropFirst(2)
            guard let comma = rest.firstIndex(of: ","), let q = Double(rest[..<comma]),
                  let sketch = QuantileSketch(storage: rest[rest.index(after: comma)...]) else { return nil }
            self = .quantile(q: q, sketch: sketch)
            return
        }
        let parts = text.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard let kind = parts.first?.first else { return nil }
        var v: [Double] = []
        v.reserveCapacity(parts.count - 1)
        for p in parts.dropFirst() {
            guard let x = Double(Substring(p)) else { return nil }
            v.append(x)
        }
        switch (kind, v.count) {
        case (UInt8(ascii: "b"), 2): self = .binomial(n: v[0], successes: v[1])
        case (UInt8(ascii: "c"), 3): self = .continuous(n: v[0], sum: v[1], sumSquares: v[2])
        case (UInt8(ascii: "u"), 6): self = .cuped(n: v[0], post: Moments(sum: v[1], sumSquares: v[2]), pre: Moments(sum: v[3], sumSquares: v[4]), postPre: v[5])
        case (UInt8(ascii: "r"), 6): self = .ratio(n: v[0], numerator: Moments(sum: v[1], sumSquares: v[2]), denominator: Moments(sum: v[3], sumSquares: v[4]), product: v[5])
        case (UInt8(ascii: "p"), 3): self = .nps(promoters: v[0], passives: v[1], detractors: v[2])
        case (UInt8(ascii: "e"), 1): self = .exposures(n: v[0])
        default: return nil
        }
    }
}

/// Exposures (units per variant and day) are stored as aggregates of this reserved metric name.
public let exposuresMetric = "__exposures"
