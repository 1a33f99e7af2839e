import API
import Registry
import RPC
import JSONCore
import Statistics
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `stats.*`: the statistics module over the control interface. Inputs are sufficient statistics;
/// degenerate input is error 1009 `invalid_input` naming the field.
extension RefereeService {
    /// The members of one comparison, as `stats.compare` declares them (elements of a batch are checked against it).
    static let compareFields = Catalog.byName[StatsCompare.name]!.allowedFields

    static let binomialFields: Set<String> = ["n", "successes"]
    static let momentFields: Set<String> = ["sum", "sum_squares"]
    static let meanVarianceFields: Set<String> = ["n", "mean", "variance"]
    static let sumFields: Set<String> = ["n", "sum", "sum_squares"]

    /// Runs one `stats.compare`; `path` prefixes field paths (an element of a batch).
    static func compare(_ p: CompareParams, path: String = "") throws -> ComparisonResult {
        func at(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }
        let control = try Fields(p.control, path: at("control")), treatment = try Fields(p.treatment, path: at("treatment"))
        let arms: ComparisonArms
        if p.metric != .quantile, p.q != nil { throw FieldError(path: at("q"), message: "applies only to metric \"quantile\"") }
        switch p.metric {
        case .quantile:
            guard let q = p.q else { throw FieldError(path: at("q"), message: "is required for metric \"quantile\": the quantile compared, 0 < q < 1") }
            guard q > 0, q < 1 else { throw FieldError(path: at("q"), message: "must be between 0 and 1 (exclusive), got \(q)") }
            return try compareQuantileArms(p, q: q, control: control, treatment: treatment, at: at)
        case .binomial:
            arms = .binomial(control: try binomialArm(control), treatment: try binomialArm(treatment))
        case .continuous:
            if control.has("pre") || treatment.has("pre") {
                arms = .cuped(control: try cupedArm(control), treatment: try cupedArm(treatment))
            } else {
                arms = .continuous(control: try continuousArm(control), treatment: try continuousArm(treatment))
            }
        case .ratio:
            arms = .ratio(control: try ratioArm(control), treatment: try ratioArm(treatment))
        case .nps:
            arms = .nps(control: try npsArm(control), treatment: try npsArm(treatment))
        }
        return try ABTest.compare(arms, options: try options(p, at: at))
    }

    /// The options of one comparison: every member but the metric and its arms.
    static func options(_ p: CompareParams, at: (String) -> String) throws -> CompareOptions {
        var options = CompareOptions()
        options.difference = p.difference ?? .absolute
        options.test = p.test
        options.variance = p.variance ?? .pooled
        options.alpha = p.alpha ?? 0.05
        options.alternative = p.alternative ?? .twoSided
        switch p.analysis ?? .fixed {
        case .sequential:
            options.analysis = .sequential(tuning: p.sequential_tuning ?? 5000)
        case .bayesian:
            let prior = p.prior.map { GaussianPrior(mean: $0.mean ?? 0, stddev: $0.stddev ?? 1, proper: $0.proper ?? false) } ?? GaussianPrior()
            options.analysis = .bayesian(prior: prior)
        case .fixed:
            options.analysis = .frequentist
        }
        if p.prior != nil, p.analysis != .bayesian {
            throw FieldError(path: at("prior"), message: "applies only to analysis \"bayesian\"")
        }
        if p.sequential_tuning != nil, p.analysis != .sequential {
            throw FieldError(path: at("sequential_tuning"), message: "applies only to analysis \"sequential\"")
        }
        return options
    }

    /// A quantile comparison in `stats.compare`: each arm's values or sketch, compared as `stats.compare_quantiles` does.
    static func compareQuantileArms(_ p: CompareParams, q: Double, control: Fields, treatment: Fields, at: (String) -> String) throws -> ComparisonResult {
        for (name, present) in [("test", p.test != nil), ("variance", p.variance != nil)] where present {
            throw FieldError(path: at(name), message: "does not apply to metric \"quantile\" (Welch's test on the quantiles' variances)")
        }
        func arm(_ f: Fields, _ name: String) throws -> Quantiles.Arm {
            guard case .quantile(_, let sketch) = try Aggregate.read(.object(f.members), type: .quantile, quantile: q, path: f.path), !sketch.isEmpty else {
                throw FieldError(path: f.path, message: "needs at least one value")
            }
            do throws(StatisticsError) { return try Quantiles.arm(sketch.view(), q: q) } catch { throw StatisticsError(field: at(name), reason: error.reason) }
        }
        let c = try arm(control, "control"), t = try arm(treatment, "treatment")
        let options = try options(p, at: at)
        do throws(StatisticsError) { return try Quantiles.compare(control: c, treatment: t, options: options) } catch {
            throw StatisticsError(field: at(error.field), reason: error.reason)
        }
    }

    static func isSequential(_ a: Statistics.Analysis) -> Bool { if case .sequential = a { true } else { false } }

    static func binomialArm(_ f: Fields) throws -> BinomialArm {
        try f.rejectUnknown(Self.binomialFields)
        return BinomialArm(n: try f.double("n"), successes: try f.double("successes"))
    }

    static func moments(_ f: Fields) throws -> Moments {
        try f.rejectUnknown(Self.momentFields)
        return Moments(sum: try f.double("sum"), sumSquares: try f.double("sum_squares"))
    }

    static func continuousArm(_ f: Fields) throws -> ContinuousArm {
        if f.has("mean") || f.has("variance") {
            try f.rejectUnknown(Self.meanVarianceFields)
            return .moments(n: try f.double("n"), mean: try f.double("mean"), variance: try f.double("variance"))
        }
        try f.rejectUnknown(Self.sumFields)
        return .sums(n: try f.double("n"), sum: try f.double("sum"), sumSquares: try f.double("sum_squares"))
    }

    static func cupedArm(_ f: Fields) throws -> CupedArm {
        try f.rejectUnknown(["n", "post", "pre", "post_pre_sum_of_products"])
        return CupedArm(n: try f.double("n"), post: try moments(try f.object("post")), pre: try moments(try f.object("pre")),
                        postPreSumOfProducts: try f.double("post_pre_sum_of_products"))
    }

    static func ratioArm(_ f: Fields) throws -> RatioArm {
        try f.rejectUnknown(["n", "numerator", "denominator", "numerator_denominator_sum_of_products"])
        return RatioArm(n: try f.double("n"), numerator: try moments(try f.object("numerator")),
                        denominator: try moments(try f.object("denominator")),
                        numeratorDenominatorSumOfProducts: try f.double("numerator_denominator_sum_of_products"))
    }

    static func npsArm(_ f: Fields) throws -> NPSArm {
        try f.rejectUnknown(["promoters", "passives", "detractors"])
        return NPSArm(promoters: try f.double("promoters"), passives: try f.double("passives"), detractors: try f.double("detractors"))
    }

    /// `stats.compare_batch {comparisons}` → `{results: [result | {error}]}`; one bad comparison never fails the rest.
    /// The comparisons are independent: they run on every core and are written straight to wire text.
    static func compareBatch(_ p: StatsCompareBatch.Params) -> JSON {
        let items = p.comparisons
        let workers = min(max(1, items.count / 256), max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        let parts = Mutex([[UInt8]](repeating: [], count: workers))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var out: [UInt8] = []
            out.reserveCapacity(items.count / workers * 360)
            for i in stride(from: items.count * w / workers, to: items.count * (w + 1) / workers, by: 1) {
                if i > items.count * w / workers { out.append(UInt8(ascii: ",")) }
                compareResult(items[i], index: i).write(into: &out)
            }
            parts.withLock { $0[w] = out }
        }
        var out: [UInt8] = []
        out.append(contentsOf: #"{"results":["#.utf8)
        parts.withLock { parts in
            for (w, part) in parts.enumerated() where !part.isEmpty {
                if w > 0 && out.last != UInt8(ascii: "[") { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: part)
            }
        }
        out.append(contentsOf: "]}".utf8)
        return .raw(String(decoding: out, as: UTF8.self))
    }

    /// One comparison of a batch: its result, or its error with the field path inside the batch.
    private static func compareResult(_ item: JSON, index i: Int) -> BatchItem {
        do {
            let path = "comparisons[\(i)]"
            try Fields(item, path: path).rejectUnknown(compareFields)
            let params: CompareParams
            if case .object(let members) = item, let fast = CompareParams.decodeFast(members) { params = fast } else {
                params = try JSONValueDecoder.decode(CompareParams.self, from: item, path: path)
            }
            return .result(try compare(params, path: path))
        } catch let e as FieldError {
            return .error(["error": RPCError.invalidParams(e).json])
        } catch let e as StatisticsError {
            var error = e
            error.field = "comparisons[\(i)].\(e.field)"
            return .error(["error": error.rpc.json])
        } catch {
            return .error(["error": RPCError.internalError("\(error)").json])
        }
    }

    private enum BatchItem {
        case result(ComparisonResult)
        case error(JSON)

        func write(into out: inout [UInt8]) {
            switch self {
            case .result(let r): r.write(into: &out)
            case .error(let e): e.write(into: &out)
            }
        }
    }

    static func chanceToBeat(_ p: StatsChanceToBeat.Params) throws -> JSON {
        let prior = p.prior.map { BetaPrior(alpha: $0.alpha ?? 1, beta: $0.beta ?? 1) } ?? BetaPrior()
        let value = try BayesianBinomial.chanceToBeat(control: try binomialArm(try Fields(p.control, path: "control")),
                                                      treatment: try binomialArm(try Fields(p.treatment, path: "treatment")), prior: prior)
        return ["chance_to_beat_control": .number(value)]
    }

    static func srm(_ p: StatsSRM.Params) throws -> JSON {
        let r = try SRM.check(observed: p.observed, weights: p.weights, threshold: p.threshold ?? 0.001)
        return ["chi2": .number(r.chi2), "df": .number(r.df), "p_value": .number(r.pValue), "mismatch": .bool(r.mismatch)]
    }

    struct PowerInputs {
        var binomial: Bool
        var rate = 0.0, mean = 0.0, sd = 0.0
        var alpha: Double
        var alternative: PowerAlternative
        var ratio: Double
        var proportionFormula = ProportionFormula.classic
        var meanFormula = MeanFormula.normal
    }

    static func powerInputs(_ p: some PowerParams) throws -> PowerInputs {
        let baseline = try Fields(p.baseline, path: "baseline")
        var inputs = PowerInputs(binomial: p.metric == .binomial, alpha: p.alpha ?? 0.05, alternative: p.alternative ?? .twoSided, ratio: p.ratio ?? 1)
        func formula<F: RawRepresentable & CaseIterable>(_ fallback: F) throws -> F where F.RawValue == String {
            guard let name = p.formula else { return fallback }
            guard let f = F(rawValue: name) else {
                throw FieldError(path: "formula", message: "\"\(name)\" is not one of \(F.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return f
        }
        if inputs.binomial {
            try baseline.rejectUnknown(["rate"])
            inputs.rate = try baseline.double("rate")
            inputs.proportionFormula = try formula(ProportionFormula.classic)
        } else {
            try baseline.rejectUnknown(["mean", "sd"])
            inputs.mean = try baseline.double("mean")
            inputs.sd = try baseline.double("sd")
            inputs.meanFormula = try formula(MeanFormula.normal)
        }
        return inputs
    }

    static func effect(_ value: JSON) throws -> Effect {
        let mde = try Fields(value, path: "mde")
        try mde.rejectUnknown(["absolute", "relative"])
        switch (try mde.optionalDouble("absolute"), try mde.optionalDouble("relative")) {
        case (let a?, nil): return .absolute(a)
        case (nil, let r?): return .relative(r)
        default: throw FieldError(path: "mde", message: "give exactly one of {\"absolute\": x} or {\"relative\": x}")
        }
    }

    static func sampleSize(_ p: StatsSampleSize.Params) throws -> JSON {
        let i = try powerInputs(p)
        let mde = try effect(p.mde)
        let power = p.power ?? 0.8
        let size = i.binomial
            ? try PowerAnalysis.proportions(baseline: i.rate, mde: mde, alpha: i.alpha, power: power, alternative: i.alternative, ratio: i.ratio, formula: i.proportionFormula)
            : try PowerAnalysis.means(mean: i.mean, sd: i.sd, mde: mde, alpha: i.alpha, power: power, alternative: i.alternative, ratio: i.ratio, formula: i.meanFormula)
        return ["control": .number(size.control), "treatment": .number(size.treatment), "total": .number(size.total),
                "control_ceil": JSON(size.controlCeil), "treatment_ceil": JSON(size.treatmentCeil), "total_ceil": JSON(size.totalCeil)]
    }

    static func power(_ p: StatsPower.Params) throws -> JSON {
        let i = try powerInputs(p)
        let mde = try effect(p.mde)
        let n = p.n_control
        let value = i.binomial
            ? try PowerAnalysis.proportionsPower(baseline: i.rate, mde: mde, nControl: n, alpha: i.alpha, alternative: i.alternative, ratio: i.ratio, formula: i.proportionFormula)
            : try PowerAnalysis.meansPower(mean: i.mean, sd: i.sd, mde: mde, nControl: n, alpha: i.alpha, alternative: i.alternative, ratio: i.ratio, formula: i.meanFormula)
        return ["power": .number(value)]
    }

    static func mde(_ p: StatsMDE.Params) throws -> JSON {
        let i = try powerInputs(p)
        let n = p.n_control
        let power = p.power ?? 0.8
        let d = i.binomial
            ? try PowerAnalysis.proportionsMDE(baseline: i.rate, nControl: n, alpha: i.alpha, power: power, alternative: i.alternative, ratio: i.ratio, formula: i.proportionFormula)
            : try PowerAnalysis.meansMDE(mean: i.mean, sd: i.sd, nControl: n, alpha: i.alpha, power: power, alternative: i.alternative, ratio: i.ratio, formula: i.meanFormula)
        return ["absolute": .number(d.absolute), "relative": JSON(d.relative)]
    }

    static func adjust(_ p: StatsAdjust.Params) throws -> JSON {
        let r = try MultipleTesting.adjust(pValues: p.p_values, method: p.method, alpha: p.alpha ?? 0.05)
        return ["adjusted": JSON(r.adjusted), "reject": .array(r.reject.map { .bool($0) })]
    }

    static func compareQuantiles(_ p: StatsCompareQuantiles.Params) throws -> JSON {
        func arm(_ values: [Double], _ name: String) throws -> Quantiles.Arm {
            do { return try Quantiles.arm(values, q: p.q) } catch { throw StatisticsError(field: error.field == "q" ? "q" : name, reason: error.reason) }
        }
        let c = try arm(p.control, "control"), t = try arm(p.treatment, "treatment")
        let options = CompareOptions(difference: p.difference ?? .absolute, alpha: p.alpha ?? 0.05, alternative: p.alternative ?? .twoSided)
        var o = try Quantiles.compare(control: c, treatment: t, options: options).json.objectValue!
        func armJSON(_ a: Quantiles.Arm) -> JSON {
            ["n": .number(a.n), "quantile": .number(a.estimate), "lower": .number(a.lower), "upper": .number(a.upper), "variance": .number(a.variance)]
        }
        o["control"] = armJSON(c)
        o["treatment"] = armJSON(t)
        o["quantile"] = .number(p.q)
        o["method"] = "gbstats QuantileStatistic: variance from the binomial order-statistic interval, Welch's test"
        return .object(o)
    }

    static func mannWhitney(_ p: StatsMannWhitney.Params) throws -> JSON {
        let r = try MannWhitney.test(control: p.control, treatment: p.treatment, alternative: p.alternative ?? .twoSided,
                                     useContinuity: p.use_continuity ?? true)
        return ["u_treatment": .number(r.uTreatment), "u_control": .number(r.uControl), "p_value": .number(r.pValue)]
    }
}

extension ComparisonResult {
    /// The wire shape of `stats.compare`.
    var json: JSON {
        var o: [String: JSON] = [
            "control": ["n": .number(control.n), "mean": .number(control.mean)],
            "treatment": ["n": .number(treatment.n), "mean": .number(treatment.mean)],
            "difference": .string(difference.rawValue), "estimate": .number(estimate), "se": .number(se),
            "ci": [JSON(ci.lower), JSON(ci.upper)], "statistic": .number(statistic), "df": JSON(df),
            "p_value": JSON(pValue), "significant": .bool(significant),
        ]
        if let chanceToWin { o["chance_to_win"] = .number(chanceToWin) }
        if let risk { o["risk"] = [.number(risk.control), .number(risk.treatment)] }
        return .object(o)
    }

    /// Writes exactly `json.serialized()` without building it: members in canonical (sorted) order.
    func write(into out: inout [UInt8]) {
        var first = true
        func key(_ name: StaticString) {
            out.append(UInt8(ascii: first ? "{" : ","))
            first = false
            out.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { out.append(contentsOf: $0) }
            out.append(contentsOf: "\":".utf8)
        }
        func number(_ d: Double?) {
            if let d { JSON.writeNumber(d, into: &out) } else { out.append(contentsOf: "null".utf8) }
        }
        func arm(_ a: ArmSummary) {
            out.append(contentsOf: #"{"mean":"#.utf8)
            number(a.mean)
            out.append(contentsOf: #","n":"#.utf8)
            number(a.n)
            out.append(UInt8(ascii: "}"))
        }
        if let chanceToWin { key("chance_to_win"); number(chanceToWin) }
        key("ci"); out.append(UInt8(ascii: "[")); number(ci.lower); out.append(UInt8(ascii: ",")); number(ci.upper); out.append(UInt8(ascii: "]"))
        key("control"); arm(control)
        key("df"); number(df)
        key("difference"); JSON.writeString(difference.rawValue, into: &out)
        key("estimate"); number(estimate)
        key("p_value"); number(pValue)
        if let risk {
            key("risk"); out.append(UInt8(ascii: "[")); number(risk.control); out.append(UInt8(ascii: ",")); number(risk.treatment)
            out.append(UInt8(ascii: "]"))
        }
        key("se"); number(se)
        key("significant"); out.append(contentsOf: (significant ? "true" : "false").utf8)
        key("statistic"); number(statistic)
        key("treatment"); arm(treatment)
        out.append(UInt8(ascii: "}"))
    }
}
