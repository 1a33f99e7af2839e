public import JSONCore

/// The kinds of metric the statistics module can analyse.
public enum MetricType: String, Sendable, CaseIterable {
    case binomial, continuous, ratio, nps
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
    /// Winsorisation: each unit's value (and its pre-period covariate) is capped at this before it is summed.
    public var cap: Double?

    public init(name: String, type: MetricType, direction: MetricDirection, description: String, nonInferiorityMargin: Double, cap: Double? = nil) {
        self.name = name; self.type = type; self.direction = direction; self.description = description
        self.nonInferiorityMargin = nonInferiorityMargin; self.cap = cap
    }

    /// `{type: "absolute", value}` for a capped metric, else null.
    public var cappingJSON: JSON { cap.map { ["type": "absolute", "value": .number($0)] } ?? .null }

    public var json: JSON {
        ["name": .string(name), "type": .string(type.rawValue), "direction": .string(direction.rawValue),
         "description": .string(description), "non_inferiority_margin": .number(nonInferiorityMargin), "capping": cappingJSON]
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
            try m.rejectUnknown(["type", "direction", "description", "non_inferiority_margin", "capping"])
            let type = MetricType(rawValue: try m.choice("type", MetricType.allCases.map(\.rawValue)))!
            let direction = MetricDirection(rawValue: try m.choice("direction", MetricDirection.allCases.map(\.rawValue), default: "increase"))!
            let margin = try m.optionalDouble("non_inferiority_margin") ?? 0
            guard margin >= 0 else { throw FieldError(path: m.fieldPath("non_inferiority_margin"), message: "must be zero or positive") }
            var cap: Double?
            if m.members["capping"].map({ !$0.isNull }) == true {
                let c = try m.object("capping")
                try c.rejectUnknown(["type", "value"])
                guard type == .continuous else {
                    throw FieldError(path: c.path, message: "applies to continuous metrics; \(name) is \(type.rawValue)")
                }
                let kind = try c.choice("type", ["absolute", "percentile"])
                guard kind == "absolute" else {
                    throw FieldError(path: c.fieldPath("type"), message: "percentile capping is not available yet; cap at a value with {\"type\": \"absolute\", \"value\": x}")
                }
                guard let value = try c.optionalDouble("value"), value.isFinite else {
                    throw FieldError(path: c.fieldPath("value"), message: "is required: the largest value a unit contributes, in the metric's units")
                }
                cap = value
            }
            metrics[name] = MetricDefinition(name: name, type: type, direction: direction,
                                             description: try m.optionalString("description") ?? "", nonInferiorityMargin: margin, cap: cap)
        }
        return MetricsCatalog(metrics: metrics, contentHash: SHA256.hex(text))
    }
}
