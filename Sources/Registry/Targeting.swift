public import JSONCore

/// A scalar an attribute can hold or a condition can name.
public enum AttributeValue: Hashable, Sendable, CustomStringConvertible {
    case string(String)
    case number(Double)
    case bool(Bool)

    public init?(_ json: JSON) {
        switch json {
        case .string(let s): self = .string(s)
        case .number(let d): self = .number(d)
        case .bool(let b): self = .bool(b)
        default: return nil
        }
    }

    public var json: JSON {
        switch self {
        case .string(let s): .string(s)
        case .number(let d): .number(d)
        case .bool(let b): .bool(b)
        }
    }

    public var description: String { json.serialized() }
}

/// Comparison operators on numbers and strings (strings by UTF-16 code units, as GrowthBook's JavaScript does).
public enum Ordering: String, Sendable, CaseIterable {
    case gt = "$gt", gte = "$gte", lt = "$lt", lte = "$lte"
}

/// Version comparison operators (GrowthBook's padded version strings).
public enum VersionOperator: String, Sendable, CaseIterable {
    case veq = "$veq", vne = "$vne", vgt = "$vgt", vgte = "$vgte", vlt = "$vlt", vlte = "$vlte"
}

/// One test on one attribute.
public indirect enum AttributeTest: Hashable, Sendable {
    case equals(AttributeValue?)            // nil: the attribute is null/missing (`{"a": null}` or `$eq: null`)
    case notEquals(AttributeValue?)
    case isIn([AttributeValue])
    case notIn([AttributeValue])
    case compare(Ordering, AttributeValue)
    case exists(Bool)
    case version(VersionOperator, String)
    /// Matched in linear time (see ``LinearRegex``); patterns that need backtracking are refused.
    case regex(LinearRegex)
    /// `{"attr": {"$not": {...}}}`: negation of a conjunction of tests on the same attribute.
    case not([AttributeTest])
}

/// A targeting condition in GrowthBook's MongoDB-like syntax, parsed into a tree.
///
/// Semantics (the same for assignment and for conflict detection):
/// - equality is typed (`"5"` ≠ `5`); a missing attribute equals only `null`;
/// - `$gt $gte $lt $lte` compare numbers with numbers and strings with strings; other pairs, and a
///   missing attribute, are false;
/// - `$ne`, `$nin`, `$vne` are the negations of `$eq`, `$in`, `$veq`, so they hold for a missing attribute;
/// - version operators compare GrowthBook's padded version strings; a missing attribute counts as version "0",
///   as in GrowthBook's SDKs;
/// - `$regex` takes ECMAScript syntax without backreferences or lookaround, matched in linear time
///   (``LinearRegex``); conflict detection treats it as "can overlap" and says so.
public indirect enum Condition: Hashable, Sendable {
    case all([Condition])
    case any([Condition])
    case not(Condition)
    case attribute(String, AttributeTest)

    public static let always = Condition.all([])
    /// Holds for no unit (an empty `$or`).
    public static let never = Condition.any([])

    /// Parses a condition; every syntax problem is reported with its path under `basePath`.
    public static func parse(_ json: JSON, path basePath: String = "targeting", limits: TargetingLimits = TargetingLimits()) -> Result<Condition, ParseFailure> {
        var violations: [Violation] = []
        var nodes = 0
        let condition = parseObject(json, path: basePath, depth: 0, nodes: &nodes, limits: limits, violations: &violations)
        if violations.isEmpty, let condition { return .success(condition) }
        return .failure(ParseFailure(violations: violations))
    }

    public struct ParseFailure: Error, Equatable, Sendable {
        public var violations: [Violation]
    }

    private static func syntax(_ path: String, _ message: String) -> Violation {
        Violation(path: path, rule: "targeting_syntax", message: message)
    }

    private static func parseObject(_ json: JSON, path: String, depth: Int, nodes: inout Int, limits: TargetingLimits, violations: inout [Violation]) -> Condition? {
        guard depth <= limits.maxDepth else {
            violations.append(Violation(path: path, rule: "targeting_limit", message: "targeting nests deeper than \(limits.maxDepth) levels; simplify it"))
            return nil
        }
        guard case .object(let members) = json else {
            violations.append(syntax(path, "a condition must be an object, got \(json.typeName)"))
            return nil
        }
        var parts: [Condition] = []
        for key in members.keys.sorted() {
            let value = members[key]!
            let childPath = "\(path).\(key)"
            nodes += 1
            if nodes > limits.maxNodes {
                violations.append(Violation(path: path, rule: "targeting_limit", message: "targeting has more than \(limits.maxNodes) conditions; simplify it"))
                return nil
            }
            switch key {
            case "$and", "$or", "$nor":
                guard case .array(let items) = value else {
                    violations.append(syntax(childPath, "\(key) takes an array of conditions, got \(value.typeName)"))
                    continue
                }
                let children = items.enumerated().compactMap { i, item in
                    parseObject(item, path: "\(childPath)[\(i)]", depth: depth + 1, nodes: &nodes, limits: limits, violations: &violations)
                }
                switch key {
                case "$and": parts.append(.all(children))
                case "$or": parts.append(.any(children))
                default: parts.append(.not(.any(children)))
                }
            case "$not":
                if let child = parseObject(value, path: childPath, depth: depth + 1, nodes: &nodes, limits: limits, violations: &violations) {
                    parts.append(.not(child))
                }
            default:
                if key.hasPrefix("$") {
                    violations.append(syntax(childPath, "unknown logical operator \(key); use $and, $or, $nor or $not, or an attribute name"))
                    continue
                }
                guard !key.isEmpty else {
                    violations.append(syntax(childPath, "attribute names must not be empty"))
                    continue
                }
                if let tests = parseTests(value, path: childPath, nodes: &nodes, limits: limits, violations: &violations) {
                    parts.append(contentsOf: tests.map { .attribute(key, $0) })
                }
            }
        }
        return parts.count == 1 ? parts[0] : .all(parts)
    }

    private static func parseTests(_ json: JSON, path: String, nodes: inout Int, limits: TargetingLimits, violations: inout [Violation]) -> [AttributeTest]? {
        switch json {
        case .null: return [.equals(nil)]
        case .string, .number, .bool: return [.equals(AttributeValue(json))]
        case .raw:
            violations.append(syntax(path, "must be a value or an object of operators"))
            return nil
        case .array:
            violations.append(syntax(path, "equality with an array is not supported; use {\"$in\": [...]}"))
            return nil
        case .object(let ops):
            guard !ops.isEmpty, ops.keys.allSatisfy({ $0.hasPrefix("$") }) else {
                violations.append(syntax(path, "an attribute condition must be a value or an object of operators ($eq, $in, $gt, $vgte, …); nested attribute objects are not supported"))
                return nil
            }
            var tests: [AttributeTest] = []
            for op in ops.keys.sorted() {
                let operand = ops[op]!
                let opPath = "\(path).\(op)"
                nodes += 1
                switch op {
                case "$eq", "$ne":
                    let value: AttributeValue?
                    if operand.isNull { value = nil } else if let v = AttributeValue(operand) { value = v } else {
                        violations.append(syntax(opPath, "\(op) takes a string, number, boolean or null, got \(operand.typeName)"))
                        continue
                    }
                    tests.append(op == "$eq" ? .equals(value) : .notEquals(value))
                case "$in", "$nin":
                    guard case .array(let items) = operand else {
                        violations.append(syntax(opPath, "\(op) takes an array of values, got \(operand.typeName)"))
                        continue
                    }
                    guard items.count <= limits.maxListLength else {
                        violations.append(Violation(path: opPath, rule: "targeting_limit", message: "\(op) lists \(items.count) values; the limit is \(limits.maxListLength)"))
                        continue
                    }
                    var values: [AttributeValue] = []
                    for (i, item) in items.enumerated() {
                        if let v = AttributeValue(item) { values.append(v) } else {
                            violations.append(syntax("\(opPath)[\(i)]", "\(op) values must be strings, numbers or booleans, got \(item.typeName)"))
                        }
                    }
                    tests.append(op == "$in" ? .isIn(values) : .notIn(values))
                case "$gt", "$gte", "$lt", "$lte":
                    switch operand {
                    case .number, .string: tests.append(.compare(Ordering(rawValue: op)!, AttributeValue(operand)!))
                    default: violations.append(syntax(opPath, "\(op) takes a number or a string, got \(operand.typeName)"))
                    }
                case "$exists":
                    guard case .bool(let b) = operand else {
                        violations.append(syntax(opPath, "$exists takes true or false, got \(operand.typeName)"))
                        continue
                    }
                    tests.append(.exists(b))
                case "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte":
                    guard case .string(let v) = operand, VersionString.isValid(v) else {
                        violations.append(syntax(opPath, "\(op) takes a version string such as \"5.1.0\", got \(operand.serialized().prefix(60))"))
                        continue
                    }
                    tests.append(.version(VersionOperator(rawValue: op)!, v))
                case "$regex":
                    guard case .string(let pattern) = operand else {
                        violations.append(syntax(opPath, "$regex takes a pattern string, got \(operand.typeName)"))
                        continue
                    }
                    do {
                        tests.append(.regex(try LinearRegex(pattern)))
                    } catch {
                        violations.append(Violation(path: opPath, rule: error.isSyntax ? "targeting_syntax" : "regex_not_linear", message: error.description))
                    }
                case "$not":
                    if let inner = parseTests(operand, path: opPath, nodes: &nodes, limits: limits, violations: &violations) {
                        tests.append(.not(inner))
                    }
                default:
                    violations.append(syntax(opPath, "unknown operator \(op); supported: $eq $ne $in $nin $gt $gte $lt $lte $exists $not $regex $veq $vne $vgt $vgte $vlt $vlte"))
                }
            }
            return tests
        }
    }
}

/// Size limits for one targeting condition.
public struct TargetingLimits: Sendable, Equatable {
    public var maxDepth: Int
    public var maxNodes: Int
    public var maxListLength: Int
    public init(maxDepth: Int = 16, maxNodes: Int = 500, maxListLength: Int = 1000) {
        self.maxDepth = maxDepth
        self.maxNodes = maxNodes
        self.maxListLength = maxListLength
    }
}

/// Attributes of one unit, as given to `assign` or found as a conflict witness.
public typealias Attributes = [String: AttributeValue]

extension Condition {
    /// Whether a unit with these attributes satisfies the condition.
    public func evaluate(_ attributes: Attributes) -> Bool {
        switch self {
        case .all(let cs): return cs.allSatisfy { $0.evaluate(attributes) }
        case .any(let cs): return cs.contains { $0.evaluate(attributes) }
        case .not(let c): return !c.evaluate(attributes)
        case .attribute(let name, let test): return test.evaluate(attributes[name])
        }
    }
}

extension AttributeTest {
    public func evaluate(_ actual: AttributeValue?) -> Bool {
        switch self {
        case .equals(let v): return actual == v
        case .notEquals(let v): return actual != v
        case .isIn(let vs): return actual.map { vs.contains($0) } ?? false
        case .notIn(let vs): return !(actual.map { vs.contains($0) } ?? false)
        case .exists(let b): return (actual != nil) == b
        case .compare(let op, let v): return AttributeTest.compare(actual, op, v)
        case .version(let op, let v):
            let a = VersionString.padded(actual)
            let b = VersionString.padded(.string(v))
            switch op {
            case .veq: return a == b
            case .vne: return a != b
            case .vgt: return VersionString.less(b, a)
            case .vgte: return !VersionString.less(a, b)
            case .vlt: return VersionString.less(a, b)
            case .vlte: return !VersionString.less(b, a)
            }
        case .regex(let regex):
            guard case .string(let s)? = actual else { return false }
            return regex.matches(s)
        case .not(let tests): return !tests.allSatisfy { $0.evaluate(actual) }
        }
    }

    static func compare(_ actual: AttributeValue?, _ op: Ordering, _ expected: AttributeValue) -> Bool {
        let order: Int
        switch (actual, expected) {
        case (.number(let a)?, .number(let b)): order = a < b ? -1 : (a > b ? 1 : 0)
        case (.string(let a)?, .string(let b)): order = UTF16Order.compare(a, b)
        default: return false
        }
        switch op {
        case .gt: return order > 0
        case .gte: return order >= 0
        case .lt: return order < 0
        case .lte: return order <= 0
        }
    }
}

/// String order by UTF-16 code units, as JavaScript compares strings.
public enum UTF16Order {
    public static func compare(_ a: String, _ b: String) -> Int {
        var ia = a.utf16.makeIterator()
        var ib = b.utf16.makeIterator()
        while true {
            switch (ia.next(), ib.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let x?, let y?): if x != y { return x < y ? -1 : 1 }
            }
        }
    }
    public static func less(_ a: String, _ b: String) -> Bool { compare(a, b) < 0 }
}

/// GrowthBook's `paddedVersionString`: strip a leading `v` and `+build`, split on `-` and `.`, add `~` to
/// three-part versions (so a release sorts after its pre-releases), left-pad numeric parts to 5 with spaces.
public enum VersionString {
    public static func padded(_ value: AttributeValue?) -> String {
        switch value {
        case .string(let s)? where !s.isEmpty: return padded(text: s)
        case .number(let d)?: return padded(text: JSON.number(d).serialized())
        default: return padded(text: "0")
        }
    }

    /// Byte-level implementation (this runs in the inner loop of conflict detection).
    static func padded(text: String) -> String {
        var bytes = Array(text.utf8)
        if bytes.first == UInt8(ascii: "v") { bytes.removeFirst() }
        if let plus = bytes.firstIndex(of: UInt8(ascii: "+")) { bytes.removeSubrange(plus...) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        var parts = 0
        var partStart = 0
        func emit(_ part: ArraySlice<UInt8>) {
            if parts > 0 { out.append(UInt8(ascii: "-")) }
            if !part.isEmpty && part.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) && part.count < 5 {
                out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 5 - part.count))
            }
            out.append(contentsOf: part)
            parts += 1
        }
        for i in 0...bytes.count where i == bytes.count || bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: ".") {
            emit(bytes[partStart..<i])
            partStart = i + 1
        }
        if parts == 3 { out.append(contentsOf: Array("-~".utf8)) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func less(_ a: String, _ b: String) -> Bool { UTF16Order.less(a, b) }

    /// Accepts what a release pipeline would write: `1`, `5.1.0`, `v2.0.0-rc.1+build5`.
    public static func isValid(_ s: String) -> Bool {
        var body = Substring(s)
        if body.hasPrefix("v") { body = body.dropFirst() }
        guard let first = body.first, first.isNumber, body.count <= 64 else { return false }
        return body.allSatisfy { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "+" }
    }
}
