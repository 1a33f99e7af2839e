public import JSONCore
public import Statistics

public struct Variant: Sendable, Equatable {
    public var key: String
    public var weight: Double
    public var isControl: Bool
}

public enum Baseline: Sendable, Equatable {
    case rate(Double)
    case mean(Double, sd: Double)
}

/// Size limits on one experiment document, each configurable on `referee serve`.
public struct DocumentLimits: Sendable, Equatable {
    public var targeting: TargetingLimits
    public var maxVariants: Int
    public init(targeting: TargetingLimits = TargetingLimits(), maxVariants: Int = 20) {
        self.targeting = targeting
        self.maxVariants = maxVariants
    }
}

/// An experiment document, read leniently: every field that is present and well-typed is kept,
/// every problem becomes a ``Violation`` so validation can report all of them at once.
public struct ExperimentDocument: Sendable, Equatable {
    public var json: JSON
    public var key: String
    public var name: String?
    public var owner: String?
    public var hypothesis: String?
    public var protocolName: String
    public var layer: String?
    public var parameters: [String]
    public var unit: String?
    public var traffic: Double
    public var variants: [Variant]
    public var targeting: Condition
    public var start: Timestamp?
    public var end: Timestamp?
    public var primaryMetric: String?
    public var secondaryMetrics: [String]
    public var guardrails: [String]
    public var alpha: Double?
    public var power: Double?
    public var mde: Effect?
    public var baseline: Baseline?
    public var analysis: String?
    public var expectedDailyUnits: Double?
    public var seed: String?
    /// Columns of unit-level results that results are broken down by (`country`, `platform`, …).
    public var dimensions: [String] = []

    public static let topLevelFields: Set<String> = [
        "key", "name", "owner", "hypothesis", "protocol", "layer", "parameters", "unit", "traffic", "variants",
        "targeting", "schedule", "metrics", "design", "seed", "description", "tags", "links", "dimensions",
    ]

    /// Column names ingestion gives a meaning of its own: a dimension cannot take one.
    public static let reservedColumns: Set<String> = ["unit_id", "variant", "day"]

    /// The seed for variant assignment: the `seed` field, else the key.
    public var assignmentSeed: String { seed ?? key }

    /// Reads a document. Returns nil only when the key or protocol is unusable; otherwise a document
    /// plus the shape problems found.
    public static func read(_ json: JSON, limits: DocumentLimits = DocumentLimits()) -> (ExperimentDocument?, [Violation]) {
        var r = DocumentReader()
        guard case .object(let root) = json else {
            return (nil, [Violation(path: "experiment", rule: "type", message: "the experiment must be a JSON object, got \(json.typeName)")])
        }
        for field in root.keys.sorted() where !topLevelFields.contains(field) {
            r.add(field, "unknown_field", "is not a field of an experiment; known fields: \(topLevelFields.sorted().joined(separator: ", "))")
        }
        let key = r.string(root, "key", path: "key")
        if let key, !isValidKey(key) {
            r.add("key", "format", "\"\(key.prefix(60))\" must be 1–128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        let protocolName = r.string(root, "protocol", path: "protocol")
        if key == nil, root["key"] == nil { r.add("key", "required", "is required: a unique identifier such as \"checkout-green-button\"") }
        if protocolName == nil, root["protocol"] == nil { r.add("protocol", "required", "is required: the name of a protocol under Protocols/, e.g. \"standard\"") }

        var doc = ExperimentDocument(
            json: json, key: key ?? "", name: r.string(root, "name", path: "name"), owner: r.string(root, "owner", path: "owner"),
            hypothesis: r.string(root, "hypothesis", path: "hypothesis"), protocolName: protocolName ?? "",
            layer: r.string(root, "layer", path: "layer"), parameters: r.strings(root, "parameters", path: "parameters") ?? [],
            unit: r.string(root, "unit", path: "unit"), traffic: 1, variants: [], targeting: .always,
            primaryMetric: nil, secondaryMetrics: [], guardrails: [], seed: r.string(root, "seed", path: "seed"))
        if let layer = doc.layer, layer.isEmpty || layer.count > 128 {
            r.add("layer", "format", "must be a non-empty name of at most 128 characters")
        }
        if let unit = doc.unit, unit.isEmpty { r.add("unit", "format", "must name the randomization unit, e.g. \"user_id\"") }
        if Set(doc.parameters).count != doc.parameters.count { r.add("parameters", "duplicate", "lists a parameter more than once") }
        doc.dimensions = r.strings(root, "dimensions", path: "dimensions") ?? []
        if Set(doc.dimensions).count != doc.dimensions.count { r.add("dimensions", "duplicate", "lists a dimension more than once") }
        for (i, d) in doc.dimensions.enumerated() {
            let ok = !d.isEmpty && d.count <= 64 && d.utf8.first.map { ($0 >= 0x61 && $0 <= 0x7a) } == true
                && d.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f }
            if !ok { r.add("dimensions[\(i)]", "format", "\"\(d.prefix(60))\" must be a column name: 1–64 lowercase letters, digits or '_', starting with a letter") }
            if reservedColumns.contains(d) { r.add("dimensions[\(i)]", "format", "\"\(d)\" is a column ingestion reads itself (unit_id, variant, day); choose another name") }
        }
        for (i, p) in doc.parameters.enumerated() where p.isEmpty { r.add("parameters[\(i)]", "format", "must not be empty") }
        if let traffic = r.number(root, "traffic", path: "traffic") {
            if traffic > 0 && traffic <= 1 { doc.traffic = traffic } else { r.add("traffic", "range", "must be greater than 0 and at most 1 (a share of the layer), got \(traffic)") }
        }
        if let variants = root["variants"] {
            if case .array(let items) = variants, items.count > limits.maxVariants {
                r.add("variants", "variants_limit", "lists \(items.count) variants; this service accepts at most \(limits.maxVariants) (serve --max-variants)")
            } else if case .array(let items) = variants {
                for (i, item) in items.enumerated() {
                    let path = "variants[\(i)]"
                    guard case .object(let v) = item else { r.add(path, "type", "must be an object {key, weight, control?}, got \(item.typeName)"); continue }
                    for f in v.keys.sorted() where !["key", "weight", "control", "name", "description"].contains(f) {
                        r.add("\(path).\(f)", "unknown_field", "is not a field of a variant; use key, weight, control, name, description")
                    }
                    let vkey = r.string(v, "key", path: "\(path).key")
                    let weight = r.number(v, "weight", path: "\(path).weight")
                    if v["key"] == nil { r.add("\(path).key", "required", "is required") }
                    if v["weight"] == nil { r.add("\(path).weight", "required", "is required") }
                    let isControl = r.bool(v, "control", path: "\(path).control") ?? false
                    if let vkey, let weight { doc.variants.append(Variant(key: vkey, weight: weight, isControl: isControl)) }
                }
            } else if !variants.isNull {
                r.add("variants", "type", "must be an array of variants, got \(variants.typeName)")
            }
        }
        if let t = root["targeting"], !t.isNull {
            switch Condition.parse(t, path: "targeting", limits: limits.targeting) {
            case .success(let c): doc.targeting = c
            case .failure(let f):
                // Targeting that does not parse (a stored document whose $regex the linear engine refuses, say)
                // matches no one, never everyone.
                doc.targeting = .never
                r.violations += f.violations
            }
        }
        if let schedule = r.object(root, "schedule", path: "schedule") {
            for f in schedule.keys.sorted() where !["start", "end"].contains(f) { r.add("schedule.\(f)", "unknown_field", "is not a field of schedule; use start and end") }
            doc.start = r.timestamp(schedule, "start", path: "schedule.start")
            doc.end = r.timestamp(schedule, "end", path: "schedule.end")
        }
        if let metrics = r.object(root, "metrics", path: "metrics") {
            for f in metrics.keys.sorted() where !["primary", "secondary", "guardrails"].contains(f) { r.add("metrics.\(f)", "unknown_field", "is not a field of metrics; use primary, secondary, guardrails") }
            doc.primaryMetric = r.string(metrics, "primary", path: "metrics.primary")
            doc.secondaryMetrics = r.strings(metrics, "secondary", path: "metrics.secondary") ?? []
            doc.guardrails = r.strings(metrics, "guardrails", path: "metrics.guardrails") ?? []
        }
        if let design = r.object(root, "design", path: "design") {
            for f in design.keys.sorted() where !["alpha", "power", "mde", "baseline", "analysis", "expected_daily_units"].contains(f) {
                r.add("design.\(f)", "unknown_field", "is not a field of design; use alpha, power, mde, baseline, analysis, expected_daily_units")
            }
            doc.alpha = r.number(design, "alpha", path: "design.alpha")
            doc.power = r.number(design, "power", path: "design.power")
            doc.analysis = r.string(design, "analysis", path: "design.analysis")
            doc.expectedDailyUnits = r.number(design, "expected_daily_units", path: "design.expected_daily_units")
            if let mde = r.object(design, "mde", path: "design.mde") {
                let abs = r.number(mde, "absolute", path: "design.mde.absolute")
                let rel = r.number(mde, "relative", path: "design.mde.relative")
                switch (abs, rel, mde.count) {
                case (let a?, nil, 1): doc.mde = .absolute(a)
                case (nil, let x?, 1): doc.mde = .relative(x)
                default: r.add("design.mde", "format", "must be exactly one of {\"absolute\": x} or {\"relative\": x}")
                }
            }
            if let b = r.object(design, "baseline", path: "design.baseline") {
                if b["rate"] != nil {
                    if let rate = r.number(b, "rate", path: "design.baseline.rate") { doc.baseline = .rate(rate) }
                    if b.count > 1 { r.add("design.baseline", "format", "use either {\"rate\": p} or {\"mean\": m, \"sd\": s}, not both") }
                } else {
                    let m = r.number(b, "mean", path: "design.baseline.mean")
                    let sd = r.number(b, "sd", path: "design.baseline.sd")
                    if let m, let sd, b.count == 2 { doc.baseline = .mean(m, sd: sd) } else {
                        r.add("design.baseline", "format", "must be {\"rate\": p} for a binomial metric or {\"mean\": m, \"sd\": s} for a continuous one")
                    }
                }
            }
        }
        guard key != nil, protocolName != nil else { return (nil, r.violations) }
        return (doc, r.violations)
    }

    public static func isValidKey(_ key: String) -> Bool {
        guard let first = key.unicodeScalars.first, key.unicodeScalars.count <= 128,
              first.properties.isAlphabetic || ("0"..."9").contains(first), first.isASCII else { return false }
        return key.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "." || $0 == "_" || $0 == "-") }
    }
}

/// Reads typed members and records type violations (experiment and holdout documents).
struct DocumentReader {
    var violations: [Violation] = []

    mutating func add(_ path: String, _ rule: String, _ message: String) {
        violations.append(Violation(path: path, rule: rule, message: message))
    }

    private mutating func present(_ o: [String: JSON], _ key: String) -> JSON? {
        guard let v = o[key], !v.isNull else { return nil }
        return v
    }

    mutating func string(_ o: [String: JSON], _ key: String, path: String) -> String? {
        guard let v = present(o, key) else { return nil }
        guard case .string(let s) = v else { add(path, "type", "must be a string, got \(v.typeName)"); return nil }
        return s
    }

    mutating func number(_ o: [String: JSON], _ key: String, path: String) -> Double? {
        guard let v = present(o, key) else { return nil }
        guard case .number(let d) = v else { add(path, "type", "must be a number, got \(v.typeName)"); return nil }
        return d
    }

    mutating func bool(_ o: [String: JSON], _ key: String, path: String) -> Bool? {
        guard let v = present(o, key) else { return nil }
        guard case .bool(let b) = v else { add(path, "type", "must be true or false, got \(v.typeName)"); return nil }
        return b
    }

    mutating func object(_ o: [String: JSON], _ key: String, path: String) -> [String: JSON]? {
        guard let v = present(o, key) else { return nil }
        guard case .object(let x) = v else { add(path, "type", "must be an object, got \(v.typeName)"); return nil }
        return x
    }

    mutating func strings(_ o: [String: JSON], _ key: String, path: String) -> [String]? {
        guard let v = present(o, key) else { return nil }
        guard case .array(let items) = v else { add(path, "type", "must be an array of strings, got \(v.typeName)"); return nil }
        var out: [String] = []
        for (i, item) in items.enumerated() {
            if case .string(let s) = item { out.append(s) } else { add("\(path)[\(i)]", "type", "must be a string, got \(item.typeName)") }
        }
        return out
    }

    mutating func timestamp(_ o: [String: JSON], _ key: String, path: String) -> Timestamp? {
        guard let s = string(o, key, path: path) else { return nil }
        guard let t = Timestamp(rfc3339: s) else {
            add(path, "format", "\"\(s.prefix(40))\" is not an RFC 3339 time such as \"2026-12-01T00:00:00Z\"")
            return nil
        }
        return t
    }
}
