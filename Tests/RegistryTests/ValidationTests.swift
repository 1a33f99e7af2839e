import Testing
import TestSupport
import JSONCore
import Registry

/// One test per protocol rule: each changes the valid example just enough to break one rule.
@Suite struct ValidationTests {
    func validate(_ changes: JSON) -> ValidationOutcome {
        Validator.validate(exampleExperiment(changes), protocols: shippedProtocols).1
    }

    @Test func exampleIsValidAndPlanned() throws {
        let outcome = validate([:])
        #expect(outcome.violations == [])
        let plan = try #require(outcome.plan)
        // R: power.prop.test(p1 = .12, p2 = .14, power = .8) gives n = 4437.3624 per group.
        #expect(abs(plan.perArmExact - 4437.3624) < 1e-3)
        #expect(plan.perArm == 4438)
        #expect(plan.dailyUnits == 10_000)
        #expect(plan.daysNeeded == 1)
    }

    @Test(arguments: [
        (["design": ["alpha": 0.1]] as JSON, "design.alpha", "alpha_max"),
        (["design": ["power": 0.7]] as JSON, "design.power", "power_min"),
        (["schedule": ["end": "2026-12-05T00:00:00Z"]] as JSON, "schedule", "schedule_length"),
        (["schedule": ["end": "2027-03-01T00:00:00Z"]] as JSON, "schedule", "schedule_length"),
        (["schedule": ["end": "2026-11-01T00:00:00Z"]] as JSON, "schedule.end", "schedule_order"),
        (["variants": [["key": "control", "weight": 1, "control": true]]] as JSON, "variants", "variant_count"),
        (["variants": [["key": "a", "weight": 0.5], ["key": "b", "weight": 0.5]]] as JSON, "variants", "control_count"),
        (["variants": [["key": "a", "weight": 0.5, "control": true], ["key": "b", "weight": 0.4]]] as JSON, "variants", "weights_sum"),
        (["variants": [["key": "a", "weight": 0.5, "control": true], ["key": "a", "weight": 0.5]]] as JSON, "variants[1].key", "duplicate"),
        (["hypothesis": nil] as JSON, "hypothesis", "required"),
        (["owner": "  "] as JSON, "owner", "required"),
        (["parameters": []] as JSON, "parameters", "required"),
        (["design": ["expected_daily_units": nil]] as JSON, "design.expected_daily_units", "required"),
        (["metrics": ["guardrails": []]] as JSON, "metrics.guardrails", "guardrail_required"),
        (["metrics": ["secondary": ["made_up"]]] as JSON, "metrics.secondary[0]", "unknown_metric"),
        (["design": ["analysis": "sequential"]] as JSON, "design.analysis", "analysis"),
        (["design": ["expected_daily_units": 100]] as JSON, "schedule.end", "underpowered"),
        (["traffic": 1.5] as JSON, "traffic", "range"),
        (["traffic": "half"] as JSON, "traffic", "type"),
        (["colour": "green"] as JSON, "colour", "unknown_field"),
        (["targeting": ["country": ["$regexp": "U"]]] as JSON, "targeting.country.$regexp", "targeting_syntax"),
        (["targeting": ["version": ["$regex": 5]]] as JSON, "targeting.version.$regex", "targeting_syntax"),
        (["schedule": ["start": "tomorrow"]] as JSON, "schedule.start", "format"),
        (["design": ["baseline": ["rate": nil, "mean": 3, "sd": 1]]] as JSON, "design.baseline", "baseline_type"),
        (["design": ["mde": ["absolute": 0.02, "relative": 0.1]]] as JSON, "design.mde", "format"),
        (["key": "bad key!"] as JSON, "key", "format"),
        (["protocol": "nonexistent"] as JSON, "protocol", "unknown_protocol"),
    ])
    func eachRuleIsEnforced(changes: JSON, path: String, rule: String) {
        let outcome = validate(changes)
        #expect(outcome.violations.contains { $0.path == path && $0.rule == rule }, "\(outcome.violations)")
    }

    @Test func everyViolationIsReportedAtOnce() {
        let outcome = validate(["design": ["alpha": 0.2, "power": 0.5], "hypothesis": nil, "metrics": ["guardrails": []]])
        #expect(Set(outcome.violations.map(\.rule)).isSuperset(of: ["alpha_max", "power_min", "required", "guardrail_required"]))
    }

    @Test func messagesNameTheFieldAndTheFix() throws {
        let v = try #require(validate(["design": ["alpha": 0.1]]).violations.first)
        #expect(v.message == "design.alpha 0.1 exceeds protocol 'standard' ceiling 0.05; lower it to at most 0.05")
        let under = try #require(validate(["design": ["expected_daily_units": 100]]).violations.first { $0.rule == "underpowered" })
        #expect(under.message.contains("178 days are needed"))
    }

    @Test func continuousBaselinePlansWithMeans() throws {
        let outcome = validate(["metrics": ["primary": "revenue_per_user"],
                                "design": ["baseline": ["rate": nil, "mean": 10, "sd": 20], "mde": ["absolute": nil, "relative": 0.05]]])
        #expect(outcome.violations == [])
        // n = (z_.975 + z_.8)^2 * 2 * 20^2 / 0.5^2 = 25116.9
        #expect(abs(try #require(outcome.plan).perArmExact - 25_116.9) < 1)
    }

    @Test func sequentialProtocolRequiresSequentialAnalysis() {
        let outcome = validate(["protocol": "sequential"])
        #expect(outcome.violations.map(\.rule) == ["analysis"])
        #expect(validate(["protocol": "sequential", "design": ["analysis": "sequential"]]).violations == [])
    }
}

@Suite struct LifecycleTests {
    static let allowed: [(ExperimentState, ExperimentState)] = [
        (.draft, .review), (.review, .approved), (.approved, .running), (.running, .stopped), (.stopped, .concluded),
        (.concluded, .archived), (.draft, .aborted), (.review, .aborted), (.approved, .aborted), (.running, .aborted), (.stopped, .aborted),
    ]

    @Test func everyPairIsAllowedOrRefusedExactly() {
        for from in ExperimentState.allCases {
            for to in ExperimentState.allCases {
                let expected = Self.allowed.contains { $0 == (from, to) }
                let result = Result { () throws(RegistryError) in try Lifecycle.check(from: from, to: to.rawValue, decision: "ship") }
                switch result {
                case .success: #expect(expected, "\(from) → \(to) should be refused")
                case .failure(let e):
                    #expect(!expected, "\(from) → \(to) should be allowed")
                    #expect(e == .invalidTransition(from: from, to: to.rawValue, allowed: from.allowedNext))
                }
            }
        }
    }

    @Test func concludingRequiresADecision() {
        #expect(throws: RegistryError.self) { try Lifecycle.check(from: .stopped, to: "concluded", decision: nil) }
        #expect(throws: RegistryError.self) { try Lifecycle.check(from: .stopped, to: "concluded", decision: "maybe") }
        #expect((try? Lifecycle.check(from: .stopped, to: "concluded", decision: "rollback")) == .concluded)
    }

    @Test func unknownStateIsRefused() {
        #expect(throws: RegistryError.self) { try Lifecycle.check(from: .draft, to: "launched", decision: nil) }
    }
}

@Suite struct TargetingTests {
    func parse(_ text: String) throws -> Condition {
        try Condition.parse(try JSONParser.parse(text)).get()
    }

    @Test func evaluatesGrowthBookOperators() throws {
        let c = try parse(#"{"country": {"$in": ["US", "CA"]}, "platform": "ios", "age": {"$gte": 18, "$lt": 65}, "app": {"$vgte": "5.1.0"}, "$or": [{"beta": true}, {"plan": {"$ne": "free"}}]}"#)
        let base: Attributes = ["country": .string("US"), "platform": .string("ios"), "age": .number(30), "app": .string("5.10.0"), "beta": .bool(true)]
        #expect(c.evaluate(base))
        var a = base; a["country"] = .string("FR"); #expect(!c.evaluate(a))
        a = base; a["age"] = .string("30"); #expect(c.evaluate(a))    // JavaScript compares "30" with 18 as numbers
        a = base; a["age"] = .string("thirty"); #expect(!c.evaluate(a))  // NaN: every comparison is false
        a = base; a["app"] = .string("5.0.9"); #expect(!c.evaluate(a))
        a = base; a["beta"] = .bool(false); a["plan"] = .string("free"); #expect(!c.evaluate(a))
        a = base; a["beta"] = nil; #expect(c.evaluate(a))             // missing plan: $ne holds
    }

    @Test func versionsCompareAsGrowthBookDoes() {
        #expect(VersionString.less(VersionString.padded(.string("1.0.0-beta")), VersionString.padded(.string("1.0.0"))))
        #expect(VersionString.less(VersionString.padded(.string("9.0.0")), VersionString.padded(.string("10.0.0"))))
        #expect(VersionString.padded(.string("v1.2.3+build")) == VersionString.padded(.string("1.2.3")))
    }

    @Test func missingAttributesFollowDocumentedSemantics() throws {
        #expect(try parse(#"{"x": {"$exists": false}}"#).evaluate([:]))
        #expect(try parse(#"{"x": {"$nin": [1]}}"#).evaluate([:]))
        #expect(!(try parse(#"{"x": {"$gt": 1}}"#).evaluate([:])))
        #expect(try parse(#"{"x": {"$lt": 1}}"#).evaluate([:]))       // missing is null, and null < 1 in JavaScript
        #expect(try parse(#"{"x": "null"}"#).evaluate([:]))           // null + "" is "null"
        #expect(try parse(#"{"x": null}"#).evaluate([:]))
        #expect(try parse(#"{"$not": {"x": 1}}"#).evaluate([:]))
    }

    @Test func comparesTextByCodeUnitsAndReadsNumbersAsJavaScriptDoes() throws {
        // "é" (U+00E9) and "e" + U+0301 are canonically equivalent for Swift's ==, different for JavaScript's ===.
        let composed = "\u{E9}", decomposed = "e\u{301}"
        #expect(!(try parse(#"{"name": "\#(composed)"}"#).evaluate(["name": .string(decomposed)])))
        #expect(!(try parse(#"{"name": {"$in": ["\#(composed)"]}}"#).evaluate(["name": .string(decomposed)])))
        #expect(!(try parse(#"{"tags": ["\#(composed)"]}"#).evaluate(["tags": .array([.string(decomposed)])])))
        #expect(try parse(#"{"name": "\#(composed)"}"#).evaluate(["name": .string(composed)]))
        #expect(JSNumber.parse("0x10") == 16 && JSNumber.parse("-0x10").isNaN && JSNumber.parse("0x\u{FF11}").isNaN)
        #expect(JSNumber.parse("0x1000000000000081") == 1152921504606847232)
        #expect(JSNumber.parse(" 12 ") == 12 && JSNumber.parse("") == 0 && JSNumber.parse(".5") == 0.5 && JSNumber.parse("5.") == 5)
        #expect(JSNumber.parse("1e3") == 1000 && JSNumber.parse("Infinity") == .infinity && JSNumber.parse("1_000").isNaN)
        #expect(JSNumber.string(1e21) == "1e+21" && JSNumber.string(1.5e-7) == "1.5e-7" && JSNumber.string(123456789012) == "123456789012")
        #expect(JSNumber.string(0.000001) == "0.000001" && JSNumber.string(-0.5) == "-0.5")
    }

    @Test func reportsEveryProblemWithItsPath() throws {
        guard case .failure(let f) = Condition.parse(try JSONParser.parse(#"{"a": {"$regex": 3}, "$and": {}, "b": {"$gtt": true}, "c": {"$not": {"$regex": "("}}}"#)) else {
            Issue.record("expected failure"); return
        }
        #expect(Set(f.violations.map(\.path)) == ["targeting.a.$regex", "targeting.$and", "targeting.b.$gtt", "targeting.c.$not.$regex"])
        // What GrowthBook evaluates is accepted: `$in` with a non-array operand is false, not an error.
        #expect(!(try parse(#"{"a": {"$in": 3}}"#).evaluate(["a": .number(3)])))
    }

    @Test func enforcesSizeLimits() throws {
        let big = JSON.object(["a": ["$in": .array((0..<2000).map { JSON($0) })]])
        guard case .failure(let f) = Condition.parse(big) else { Issue.record("expected failure"); return }
        #expect(f.violations.first?.rule == "targeting_limit")
    }
}

@Suite struct TimestampTests {
    @Test(arguments: [
        ("2026-12-01T00:00:00Z", 1_796_083_200.0), ("2026-12-01T01:30:00+01:30", 1_796_083_200.0),
        ("1970-01-01T00:00:00.5Z", 0.5), ("2024-02-29", 1_709_164_800.0),
    ])
    func parses(text: String, seconds: Double) throws {
        #expect(try #require(Timestamp(rfc3339: text)).seconds == seconds)
    }

    @Test(arguments: ["2026-13-01T00:00:00Z", "2025-02-29", "2026-12-01 00:00:00Z", "2026-12-01T00:00:00", "x"])
    func rejects(text: String) {
        #expect(Timestamp(rfc3339: text) == nil)
    }

    @Test func roundTrips() {
        #expect(Timestamp(seconds: 1_796_083_200.25).description == "2026-12-01T00:00:00.250Z")
    }
}

/// The published JSON Schema and the reader accept the same fields.
@Suite struct SchemaTests {
    @Test func schemaFieldsMatchTheReader() throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("Protocols/experiment.schema.json"), encoding: .utf8)
        let schema = try JSONParser.parse(text)
        let properties = try #require(schema["properties"]?.objectValue)
        #expect(Set(properties.keys) == ExperimentDocument.topLevelFields)
        #expect(Set(properties["design"]?["properties"]?.objectValue?.keys.map { $0 } ?? []) ==
                ["alpha", "power", "mde", "baseline", "analysis", "expected_daily_units"])
        #expect(Set(properties["metrics"]?["properties"]?.objectValue?.keys.map { $0 } ?? []) == ["primary", "secondary", "guardrails"])
        let operators = try #require(schema["$defs"]?["operators"]?["properties"]?.objectValue)
        let all = targetingOperators.split(separator: " ").map(String.init)
        #expect(Set(operators.keys) == Set(all), "the schema lists every operator Referee evaluates")
        // Every operator in the schema parses (with a saved group that exists).
        for op in operators.keys {
            let operand: JSON = switch op {
            case "$in", "$nin", "$ini", "$nini", "$all", "$alli": ["a"]
            case "$exists": true
            case "$not": ["$eq": "a"]
            case "$size": 2
            case "$elemMatch": ["$eq": "a"]
            case "$type": "string"
            case "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte": "1.2.3"
            default: "a"
            }
            #expect((try? Condition.parse(["x": .object([op: operand])], groups: ["a"]).get()) != nil, "\(op)")
        }
    }
}
