public import JSONCore

/// A protocol: the rules an experiment is held to, loaded from a file under `Protocols/`.
///
/// The content hash identifies the exact rules; experiments record it with each validation, so
/// editing a protocol file never rewrites what an experiment was held to.
public struct ExperimentProtocol: Sendable, Equatable {
    public var name: String
    public var description: String
    public var alphaMax: Double
    public var powerMin: Double
    public var scheduleDaysMin: Double
    public var scheduleDaysMax: Double
    public var variantsMin: Int
    public var variantsMax: Int
    public var required: [String]
    public var requiredGuardrails: [String]
    public var analyses: [String]
    public var lockedWhenRunning: [String]
    /// Sequential protocols may end before the scheduled end when a boundary is crossed.
    public var earlyStopping: Bool
    public var srmThreshold: Double
    public var correction: String
    public var bucketCooldownDays: Double
    /// The most dimensions an experiment may declare (`max_dimensions`, default 5): each multiplies what is stored.
    public var maxDimensions: Int = 5
    /// The largest share of units holdouts held to this protocol may take out of one layer, alone or together
    /// (`holdout_share: {max}`, default 0.1).
    public var holdoutShareMax: Double = 0.1
    /// The file's text, as loaded; `contentHash` is its SHA-256.
    public var source: String
    public var contentHash: String

    public static let knownFields: Set<String> = [
        "$schema", "name", "description", "alpha", "power", "schedule_days", "variants", "required",
        "required_guardrails", "analysis", "locked_when_running", "early_stopping", "srm_threshold",
        "correction", "bucket_cooldown_days", "max_dimensions", "holdout_share",
    ]

    public static let corrections = ["holm", "bonferroni", "hochberg", "sidak", "holm-sidak", "bh", "by", "none"]

    /// Parses a protocol file's text.
    public static func parse(_ text: String, fileName: String = "protocol") throws(FieldError) -> ExperimentProtocol {
        let json: JSON
        do { json = try JSONParser.parse(text) } catch { throw FieldError(path: fileName, message: "is not valid JSON: \(error)") }
        let f = try Fields(json)
        try f.rejectUnknown(knownFields)
        let alpha = try f.object("alpha")
        let power = try f.object("power")
        let days = try f.object("schedule_days")
        let variants = try f.object("variants")
        let p = ExperimentProtocol(
            name: try f.string("name"),
            description: try f.optionalString("description") ?? "",
            alphaMax: try alpha.double("max"),
            powerMin: try power.double("min"),
            scheduleDaysMin: try days.double("min"),
            scheduleDaysMax: try days.double("max"),
            variantsMin: try variants.int("min"),
            variantsMax: try variants.int("max"),
            required: try f.strings("required"),
            requiredGuardrails: f.has("required_guardrails") ? try f.strings("required_guardrails") : [],
            analyses: try f.strings("analysis"),
            lockedWhenRunning: f.has("locked_when_running") ? try f.strings("locked_when_running") : [],
            earlyStopping: try f.optionalBool("early_stopping") ?? false,
            srmThreshold: try f.optionalDouble("srm_threshold") ?? 0.001,
            correction: try f.choice("correction", corrections, default: "holm"),
            bucketCooldownDays: try f.optionalDouble("bucket_cooldown_days") ?? 0,
            maxDimensions: try f.optionalInt("max_dimensions") ?? 5,
            holdoutShareMax: f.has("holdout_share") ? try f.object("holdout_share").double("max") : 0.1,
            source: text,
            contentHash: SHA256.hex(text))
        for a in p.analyses where !["fixed", "sequential", "bayesian"].contains(a) {
            throw FieldError(path: "analysis", message: "\"\(a)\" is not one of fixed, sequential, bayesian")
        }
        guard p.alphaMax > 0, p.alphaMax < 1 else { throw FieldError(path: "alpha.max", message: "must be between 0 and 1") }
        guard p.powerMin > 0, p.powerMin < 1 else { throw FieldError(path: "power.min", message: "must be between 0 and 1") }
        guard p.variantsMin >= 2, p.variantsMax >= p.variantsMin else { throw FieldError(path: "variants", message: "min must be at least 2 and max at least min") }
        guard p.holdoutShareMax > 0, p.holdoutShareMax < 1 else { throw FieldError(path: "holdout_share.max", message: "must be between 0 and 1, got \(p.holdoutShareMax)") }
        guard p.scheduleDaysMin > 0, p.scheduleDaysMax >= p.scheduleDaysMin else { throw FieldError(path: "schedule_days", message: "min must be positive and max at least min") }
        return p
    }

    public var summary: JSON {
        ["name": .string(name), "description": .string(description), "hash": .string(contentHash)]
    }

    /// The protocol as served by `protocol.get`: its rules, its hash and its source text.
    public var json: JSON {
        let rules = (try? JSONParser.parse(source)) ?? .null
        return ["name": .string(name), "description": .string(description), "hash": .string(contentHash),
                "rules": rules, "source": .string(source)]
    }

    /// Whether a dotted path is locked once running (`design.alpha` is locked by `design`).
    public func isLocked(_ path: String) -> Bool {
        lockedWhenRunning.contains { path == $0 || path.hasPrefix($0 + ".") || $0.hasPrefix(path + ".") }
    }
}

/// The protocols and catalog the daemon enforces.
public struct ProtocolSet: Sendable {
    public var protocols: [String: ExperimentProtocol]
    public var catalog: MetricsCatalog
    /// Where they were loaded from (a directory, or "built-in").
    public var origin: String
    /// The text of `warehouse.json` beside them, when there is one (read by the service's warehouse methods).
    public var warehouseText: String?

    public init(protocols: [String: ExperimentProtocol], catalog: MetricsCatalog, origin: String, warehouseText: String? = nil) {
        self.protocols = protocols
        self.catalog = catalog
        self.origin = origin
        self.warehouseText = warehouseText
    }
}
