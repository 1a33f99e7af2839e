public import JSONCore

/// The kinds of metric the statistics module can analyse.
public enum MetricType: String, Sendable, CaseIterable {
    case binomial, continuous, ratio, nps
    /// The q-quantile of a per-unit continuous value (the median, the 90th percentile), kept as a mergeable sketch.
    case quantile
}

/// Winsorisation of a continuous metric: each unit's value (and its pre-period covariate) is capped before it is
/// summed, at a value or at a percentile of the units' values (all arms together).
public enum Capping: Sendable, Equatable {
    case absolute(Double)
    /// The fraction p (0 < p < 1): the cap is the p-quantile of every unit's value in the experiment.
    case percentile(Double)

    public var json: JSON {
        switch self {
        case .absolute(let x): ["type": "absolute", "value": .number(x)]
        case .percentile(let p): ["type": "percentile", "value": .number(p)]
        }
    }
}

/// Which way is good for a metric.
public enum MetricDirection: String, Sendable, CaseIterable {
    case increase, decrease
}

public struct MetricDefinition: Sendable, Equatable {
    public var name: String
    public var type: MetricType
    public var direction: MetricDirection
    public var description: String
    /// Largest harm tolerated before a guardrail counts as harmed (absolute, in the metric's units).
    public var nonInferiorityMargin: Double
    /// Winsorisation of a continuous metric.
    public var capping: Capping?
    /// A quantile metric's q (0 < q < 1).
    public var quantile: Double?
    /// A quantile metric's per-unit value: the column of ingested files it is read from (by default the metric's name).
    public var column: String?

    public init(name: String, type: MetricType, direction: MetricDirection, description: String, nonInferiorityMargin: Double,
                capping: Capping? = nil, quantile: Double? = nil, column: String? = nil) {
        self.name = name; self.type = type; self.direction = direction; self.description = description
        self.nonInferiorityMargin = nonInferiorityMargin; self.capping = capping; self.quantile = quantile; self.column = column
    }

    /// The value column a quantile metric reads (its own name unless `column` names another).
    public var valueColumn: String { column ?? name }

    /// `{type, value}` for a capped metric, else null.
    public var cappingJSON: JSON { capping?.json ?? .null }

    public var json: JSON {
        var o: [String: JSON] = ["name": .string(name), "type": .string(type.rawValue), "direction": .string(direction.rawValue),
                                 "description": .string(description), "non_inferiority_margin": .number(nonInferiorityMargin), "capping": cappingJSON]
        if type == .quantile { o["quantile"] = JSON(quantile); o["column"] = .string(valueColumn) }
        return .object(o)
    }
}

/// The metrics catalog (`Protocols/metrics.json`): every metric an experiment may name.
public struct MetricsCatalog: Sendable, Equatable {
    public var metrics: [String: MetricDefinition]
    public var contentHash: String

    public init(metrics: [String: MetricDefinition], contentHash: String = "") {
        self.metrics = metrics
        self.contentHash = contentHash
    }

    /// Parses the catalog file; errors name the offending field.
    public static func parse(_ text: String) throws(FieldError) -> MetricsCatalog {
        let json: JSON
        do { json = try JSONParser.parse(text) } catch { throw FieldError(path: "metrics.json", message: "is not valid JSON: \(error)") }
        let root = try Fields(json)
        try root.rejectUnknown(["metrics", "description", "$schema"])
        let list = try root.object("metrics")
        var metrics: [String: MetricDefinition] = [:]
        for name in list.members.keys.sorted() {
            let m = try list.object(name)
            try m.rejectUnknown(["type", "direction", "description", "non_inferiority_margin", "capping", "quantile", "column"])
            let type = MetricType(rawValue: try m.choice("type", MetricType.allCases.map(\.rawValue)))!
            let direction = MetricDirection(rawValue: try m.choice("direction", MetricDirection.allCases.map(\.rawValue), default: "increase"))!
            let margin = try m.optionalDouble("non_inferiority_margin") ?? 0
            guard margin >= 0 else { throw FieldError(path: m.fieldPath("non_inferiority_margin"), message: "must be zero or positive") }
            var capping: Capping?
            if m.members["capping"].map({ !$0.isNull }) == true {
                let c = try m.object("capping")
                try c.rejectUnknown(["type", "value"])
                guard type == .continuous else {
                    throw FieldError(path: c.path, message: "applies to continuous metrics; \(name) is \(type.rawValue)")
                }
                let kind = try c.choice("type", ["absolute", "percentile"])
                if kind == "absolute" {
                    guard let value = try c.optionalDouble("value"), value.isFinite else {
                        throw FieldError(path: c.fieldPath("value"), message: "is required: the largest value a unit contributes, in the metric's units")
                    }
                    capping = .absolute(value)
                } else {
                    guard let p = try c.optionalDouble("value"), p > 0, p < 1 else {
                        throw FieldError(path: c.fieldPath("value"), message: "is required: the percentile as a fraction between 0 and 1 (exclusive), e.g. 0.99")
                    }
                    capping = .percentile(p)
                }
            }
            var quantile: Double?, column: String?
            if type == .quantile {
                guard let q = try m.optionalDouble("quantile"), q > 0, q < 1 else {
                    throw FieldError(path: m.fieldPath("quantile"), message: "is required for a quantile metric: q between 0 and 1 (exclusive), e.g. 0.5 for the median or 0.9")
                }
                quantile = q
                column = try m.optionalString("column")
                if let column, column.isEmpty || ["unit_id", "variant", "day"].contains(column) || column.contains(".") {
                    throw FieldError(path: m.fieldPath("column"), message: "must name a value column (not unit_id, variant or day, without a dot), got \"\(column)\"")
                }
            } else {
                for key in ["quantile", "column"] where m.has(key) {
                    throw FieldError(path: m.fieldPath(key), message: "applies to quantile metrics; \(name) is \(type.rawValue)")
                }
            }
            metrics[name] = MetricDefinition(name: name, type: type, direction: direction,
                                             description: try m.optionalString("description") ?? "", nonInferiorityMargin: margin,
                                             capping: capping, quantile: quantile, column: column)
        }
        return MetricsCatalog(metrics: metrics, contentHash: SHA256.hex(text))
    }
}
