public import JSONCore

/// GrowthBook's targeting language (the `evalCondition` of its JavaScript SDK, `mongrule.ts`, spec 0.8.0), parsed
/// into a tree that keeps the shape of the JSON it came from, so that evaluation, tracing and conflict detection
/// follow the SDK clause by clause.
///
/// A condition is an object whose members all hold: `$and`, `$or`, `$nor` (arrays of conditions), `$not` (a
/// condition), and attribute paths (`country`, `father.age`, `tags.0`) mapped to a value condition. A value
/// condition is a literal (`"US"`: `value + "" === "US"`; `5`: `value * 1 === 5`; `true`: truthiness; `null`;
/// an array or an object: structural equality) or an object of operators that all hold.
///
/// Referee refuses at registration what GrowthBook would evaluate to a silent `false` or cannot run safely: an
/// unknown operator, a `$regex` that does not compile or needs backtracking (``LinearRegex``), a saved group
/// that does not exist, and operands of the wrong kind for `$and`/`$or`/`$nor`/`$not`/`$elemMatch`.
public indirect enum Condition: Hashable, Sendable {
    /// The members of one JSON object (all must hold), in the order of their names.
    case object([Condition])
    case and([Condition])
    /// Holds when any holds; an empty `$or` holds (as in GrowthBook).
    case or([Condition])
    /// Holds when none holds; an empty `$nor` fails.
    case nor([Condition])
    case not(Condition)
    /// `evalConditionValue(test, getPath(attributes, path))`.
    case path(String, ValueCondition)

    public static let always = Condition.object([])
    /// Holds for no unit (an empty `$nor`).
    public static let never = Condition.nor([])
}

/// A test on the value found at one path (GrowthBook's `evalConditionValue`).
public indirect enum ValueCondition: Hashable, Sendable {
    /// `value + "" === s`, or with `insensitive` (inside `$alli`) `String(value).toLowerCase() === s.toLowerCase()`.
    case string(String, insensitive: Bool)
    /// `value * 1 === d`.
    case number(Double)
    /// `value !== null && !!value === b`.
    case bool(Bool)
    /// `value === null` (a missing attribute is null).
    case null
    /// An array or an object that is not made of operators: the same JSON (`JSON.stringify` in the SDK).
    case equals(JSValue)
    /// An object of operators: all hold.
    case operators([Operator])
}

/// One operator of a value condition, with its operand.
public indirect enum Operator: Hashable, Sendable {
    case version(VersionOperator, JSValue)
    case eq(JSValue), ne(JSValue)
    case compare(Ordering, JSValue)
    case exists(Bool)
    /// `$in`/`$nin`/`$ini`/`$nini` with an array operand (an array attribute holds when they intersect).
    case isIn([JSValue], insensitive: Bool)
    case notIn([JSValue], insensitive: Bool)
    /// `$in`, `$nin`, `$all` or `$alli` with an operand that is not an array: false, as in GrowthBook.
    case alwaysFalse(String)
    /// `$inGroup`/`$notInGroup`: the group's values are bound from the registry (``Condition/bindingGroups(_:)``).
    case inGroup(String, [JSValue])
    case notInGroup(String, [JSValue])
    case not(ValueCondition)
    case size(ValueCondition)
    case elemMatch(ElementMatch)
    case all([ValueCondition], insensitive: Bool)
    case regex(LinearRegex)
    case type(String)

    /// The operator's name as written.
    public var name: String {
        switch self {
        case .version(let op, _): op.rawValue
        case .eq: "$eq"
        case .ne: "$ne"
        case .compare(let op, _): op.rawValue
        case .exists: "$exists"
        case .isIn(_, let i): i ? "$ini" : "$in"
        case .notIn(_, let i): i ? "$nini" : "$nin"
        case .alwaysFalse(let op): op
        case .inGroup: "$inGroup"
        case .notInGroup: "$notInGroup"
        case .not: "$not"
        case .size: "$size"
        case .elemMatch: "$elemMatch"
        case .all(_, let i): i ? "$alli" : "$all"
        case .regex(let r): r.caseInsensitive ? "$regexi" : "$regex"
        case .type: "$type"
        }
    }
}

/// `$elemMatch`'s operand: an object of operators tests each element's value; any other object is a condition on
/// each element (as an object of attributes).
public indirect enum ElementMatch: Hashable, Sendable {
    case value(ValueCondition)
    case condition(Condition)
}

/// Comparison operators (JavaScript's `<`, `<=`, `>`, `>=`).
public enum Ordering: String, Sendable, CaseIterable {
    case gt = "$gt", gte = "$gte", lt = "$lt", lte = "$lte"
}

/// Version comparison operators (GrowthBook's padded version strings).
public enum VersionOperator: String, Sendable, CaseIterable {
    case veq = "$veq", vne = "$vne", vgt = "$vgt", vgte = "$vgte", vlt = "$vlt", vlte = "$vlte"
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

/// The operators Referee evaluates, as listed in refusals.
public let targetingOperators = "$eq $ne $lt $lte $gt $gte $veq $vne $vgt $vgte $vlt $vlte $exists $in $nin $ini $nini $all $alli $size $elemMatch $regex $regexi $type $not $inGroup $notInGroup"

// MARK: - Parsing

extension Condition {
    /// Parses a condition; every problem is reported with its path under `basePath`. `groups`, when given, are the
    /// saved groups that exist: a reference to another is a violation.
    public static func parse(_ json: JSON, path basePath: String = "targeting", limits: TargetingLimits = TargetingLimits(),
                             groups: Set<String>? = nil) -> Result<Condition, ParseFailure> {
        var parser = ConditionParser(limits: limits, groups: groups)
        let condition = parser.condition(json, path: basePath, depth: 0)
        if parser.violations.isEmpty, let condition { return .success(condition) }
        return .failure(ParseFailure(violations: parser.violations))
    }

    public struct ParseFailure: Error, Equatable, Sendable {
        public var violations: [Violation]
    }

    /// The saved groups the condition names.
    public var groupNames: Set<String> {
        var out = Set<String>()
        visitOperators { op in
            switch op {
            case .inGroup(let g, _), .notInGroup(let g, _): out.insert(g)
            default: break
            }
        }
        return out
    }

    /// The condition with every `$inGroup`/`$notInGroup` holding the current values of its group (an unknown
    /// group holds no values, as GrowthBook's `savedGroups[name] || []`).
    public func bindingGroups(_ values: [String: [JSValue]]) -> Condition {
        mapOperators { op in
            switch op {
            case .inGroup(let g, _): .inGroup(g, values[g] ?? [])
            case .notInGroup(let g, _): .notInGroup(g, values[g] ?? [])
            default: op
            }
        }
    }

    func visitOperators(_ f: (Operator) -> Void) {
        func value(_ v: ValueCondition) {
            guard case .operators(let ops) = v else { return }
            for op in ops {
                f(op)
                switch op {
                case .not(let inner), .size(let inner): value(inner)
                case .all(let items, _): items.forEach(value)
                case .elemMatch(.value(let inner)): value(inner)
                case .elemMatch(.condition(let c)): c.visitOperators(f)
                default: break
                }
            }
        }
        switch self {
        case .object(let cs), .and(let cs), .or(let cs), .nor(let cs): cs.forEach { $0.visitOperators(f) }
        case .not(let c): c.visitOperators(f)
        case .path(_, let v): value(v)
        }
    }

    func mapOperators(_ f: (Operator) -> Operator) -> Condition {
        func value(_ v: ValueCondition) -> ValueCondition {
            guard case .operators(let ops) = v else { return v }
            return .operators(ops.map { op in
                switch f(op) {
                case .not(let inner): .not(value(inner))
                case .size(let inner): .size(value(inner))
                case .all(let items, let i): .all(items.map(value), insensitive: i)
                case .elemMatch(.value(let inner)): .elemMatch(.value(value(inner)))
                case .elemMatch(.condition(let c)): .elemMatch(.condition(c.mapOperators(f)))
                case let other: other
                }
            })
        }
        switch self {
        case .object(let cs): return .object(cs.map { $0.mapOperators(f) })
        case .and(let cs): return .and(cs.map { $0.mapOperators(f) })
        case .or(let cs): return .or(cs.map { $0.mapOperators(f) })
        case .nor(let cs): return .nor(cs.map { $0.mapOperators(f) })
        case .not(let c): return .not(c.mapOperators(f))
        case .path(let p, let v): return .path(p, value(v))
        }
    }
}

struct ConditionParser {
    let limits: TargetingLimits
    let groups: Set<String>?
    var violations: [Violation] = []
    var nodes = 0

    init(limits: TargetingLimits, groups: Set<String>?) {
        self.limits = limits
        self.groups = groups
    }

    mutating func syntax(_ path: String, _ message: String) {
        violations.append(Violation(path: path, rule: "targeting_syntax", message: message))
    }

    /// Counts a node; false (with a violation) past the limit.
    mutating func count(_ path: String) -> Bool {
        nodes += 1
        if nodes == limits.maxNodes + 1 {
            violations.append(Violation(path: path, rule: "targeting_limit", message: "targeting has more than \(limits.maxNodes) conditions; simplify it"))
        }
        return nodes <= limits.maxNodes
    }

    mutating func deep(_ path: String, _ depth: Int) -> Bool {
        guard depth > limits.maxDepth else { return false }
        violations.append(Violation(path: path, rule: "targeting_limit", message: "targeting nests deeper than \(limits.maxDepth) levels; simplify it"))
        return true
    }

    mutating func condition(_ json: JSON, path: String, depth: Int) -> Condition? {
        if deep(path, depth) { return nil }
        guard case .object(let members) = json else {
            syntax(path, "a condition must be an object, got \(json.typeName)")
            return nil
        }
        var parts: [Condition] = []
        for key in members.keys.sorted() {
            let value = members[key]!
            let childPath = "\(path).\(key)"
            guard count(path) else { return nil }
            switch key {
            case "$and", "$or", "$nor":
                guard case .array(let items) = value else {
                    syntax(childPath, "\(key) takes an array of conditions, got \(value.typeName)")
                    continue
                }
                let children = items.enumerated().compactMap { i, item in condition(item, path: "\(childPath)[\(i)]", depth: depth + 1) }
                parts.append(key == "$and" ? .and(children) : key == "$or" ? .or(children) : .nor(children))
            case "$not":
                if let child = condition(value, path: childPath, depth: depth + 1) { parts.append(.not(child)) }
            default:
                // Any other member is an attribute path, even one that starts with "$" (GrowthBook's vectors test
                // an attribute named "$groups").
                if let test = valueCondition(value, path: childPath, depth: depth + 1) { parts.append(.path(key, test)) }
            }
        }
        return .object(parts)
    }

    static func isOperatorObject(_ o: [String: JSON]) -> Bool {
        !o.isEmpty && o.keys.allSatisfy { $0.hasPrefix("$") }
    }

    mutating func valueCondition(_ json: JSON, path: String, depth: Int, insensitive: Bool = false) -> ValueCondition? {
        if deep(path, depth) { return nil }
        switch json {
        case .null, .raw: return .null
        case .string(let s): return .string(s, insensitive: insensitive)
        case .number(let d): return .number(d)
        case .bool(let b): return .bool(b)
        case .array:
            return .equals(JSValue(json))
        case .object(let ops):
            guard Self.isOperatorObject(ops) else { return .equals(JSValue(json)) }
            var out: [Operator] = []
            for op in ops.keys.sorted() {
                let operand = ops[op]!
                let opPath = "\(path).\(op)"
                guard count(path) else { return nil }
                if let parsed = self.operator(op, operand, path: opPath, depth: depth) { out.append(parsed) }
            }
            return .operators(out)
        }
    }

    mutating func list(_ op: String, _ operand: JSON, path: String) -> [JSValue]? {
        guard case .array(let items) = operand else { return nil }
        if items.count > limits.maxListLength {
            violations.append(Violation(path: path, rule: "targeting_limit", message: "\(op) lists \(items.count) values; the limit is \(limits.maxListLength)"))
        }
        return items.map(JSValue.init)
    }

    mutating func `operator`(_ op: String, _ operand: JSON, path: String, depth: Int) -> Operator? {
        switch op {
        case "$eq": return .eq(JSValue(operand))
        case "$ne": return .ne(JSValue(operand))
        case "$gt", "$gte", "$lt", "$lte": return .compare(Ordering(rawValue: op)!, JSValue(operand))
        case "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte": return .version(VersionOperator(rawValue: op)!, JSValue(operand))
        case "$exists": return .exists(JSValue(operand).truthy)
        case "$in", "$nin", "$ini", "$nini":
            guard let values = list(op, operand, path: path) else { return .alwaysFalse(op) }
            let insensitive = op.hasSuffix("i")
            return op.hasPrefix("$in") ? .isIn(values, insensitive: insensitive) : .notIn(values, insensitive: insensitive)
        case "$inGroup", "$notInGroup":
            guard case .string(let name) = operand else {
                syntax(path, "\(op) takes the name of a saved group, got \(operand.typeName)")
                return nil
            }
            if let groups, !groups.contains(name) {
                violations.append(Violation(path: path, rule: "unknown_group", message: "saved group \"\(name)\" does not exist; define it with groups.put or use one of: \(groups.sorted().prefix(20).joined(separator: ", "))"))
                return nil
            }
            return op == "$inGroup" ? .inGroup(name, []) : .notInGroup(name, [])
        case "$not":
            return valueCondition(operand, path: path, depth: depth + 1).map(Operator.not)
        case "$size":
            return valueCondition(operand, path: path, depth: depth + 1).map(Operator.size)
        case "$elemMatch":
            guard case .object(let o) = operand else {
                syntax(path, "$elemMatch takes an object (operators for each element, or a condition on each element), got \(operand.typeName)")
                return nil
            }
            if Self.isOperatorObject(o) {
                return valueCondition(operand, path: path, depth: depth + 1).map { .elemMatch(.value($0)) }
            }
            return condition(operand, path: path, depth: depth + 1).map { .elemMatch(.condition($0)) }
        case "$all", "$alli":
            guard case .array(let items) = operand else { return .alwaysFalse(op) }
            let insensitive = op == "$alli"
            let tests = items.enumerated().compactMap { i, item in valueCondition(item, path: "\(path)[\(i)]", depth: depth + 1, insensitive: insensitive) }
            return tests.count == items.count ? .all(tests, insensitive: insensitive) : nil
        case "$regex", "$regexi":
            guard case .string(let pattern) = operand else {
                syntax(path, "\(op) takes a pattern string, got \(operand.typeName)")
                return nil
            }
            do {
                return .regex(try LinearRegex(pattern, caseInsensitive: op == "$regexi"))
            } catch {
                violations.append(Violation(path: path, rule: error.isSyntax ? "targeting_syntax" : "regex_not_linear", message: error.description.replacingFirst("$regex", with: op)))
                return nil
            }
        case "$type":
            return .type(operand.stringValue ?? "\u{0}not a type")
        default:
            syntax(path, "unknown operator \(op); supported: \(targetingOperators)")
            return nil
        }
    }
}

extension String {
    func replacingFirst(_ a: String, with b: String) -> String {
        hasPrefix(a) ? b + dropFirst(a.count) : self
    }
}

// MARK: - Evaluation

/// The attributes of one unit: a JSON object (nested objects and arrays allowed).
public typealias Attributes = [String: JSValue]

extension Condition {
    /// Whether a unit with these attributes satisfies the condition, as GrowthBook's JavaScript SDK decides.
    public func evaluate(_ attributes: Attributes) -> Bool { evaluate(on: .object(attributes)) }

    /// `evalCondition(obj, condition)` for any value `obj` (`$elemMatch` evaluates conditions on elements).
    public func evaluate(on obj: JSValue) -> Bool {
        switch self {
        case .object(let cs), .and(let cs): return cs.allSatisfy { $0.evaluate(on: obj) }
        case .or(let cs): return cs.isEmpty || cs.contains { $0.evaluate(on: obj) }
        case .nor(let cs): return !(cs.isEmpty || cs.contains { $0.evaluate(on: obj) })
        case .not(let c): return !c.evaluate(on: obj)
        case .path(let p, let test): return test.evaluate(obj.value(atPath: p))
        }
    }
}

extension ValueCondition {
    public func evaluate(_ value: JSValue) -> Bool {
        switch self {
        case .string(let s, let insensitive):
            return insensitive ? JSValue.sameText(value.jsString.lowercased(), s.lowercased()) : JSValue.sameText(value.jsString, s)
        case .number(let d): return value.jsNumber == d
        case .bool(let b): return value != .null && value.truthy == b
        case .null: return value == .null
        case .equals(let expected): return JSValue.sameJSON(value, expected)
        case .operators(let ops): return ops.allSatisfy { $0.evaluate(value) }
        }
    }
}

extension Operator {
    public func evaluate(_ actual: JSValue) -> Bool {
        switch self {
        case .version(let op, let expected):
            let a = VersionString.padded(actual), b = VersionString.padded(expected)
            switch op {
            case .veq: return JSValue.sameText(a, b)
            case .vne: return !JSValue.sameText(a, b)
            case .vgt: return VersionString.less(b, a)
            case .vgte: return !VersionString.less(a, b)
            case .vlt: return VersionString.less(a, b)
            case .vlte: return !VersionString.less(b, a)
            }
        case .eq(let v): return JSValue.strictlyEqual(actual, v)
        case .ne(let v): return !JSValue.strictlyEqual(actual, v)
        case .compare(let op, let v):
            switch op {
            case .lt: return JSValue.less(actual, v, orEqual: false)
            case .lte: return JSValue.less(actual, v, orEqual: true)
            case .gt: return JSValue.less(v, actual, orEqual: false)
            case .gte: return JSValue.less(v, actual, orEqual: true)
            }
        case .exists(let b): return (actual != .null) == b
        case .isIn(let list, let i): return Operator.isIn(actual, list, insensitive: i)
        case .notIn(let list, let i): return !Operator.isIn(actual, list, insensitive: i)
        case .alwaysFalse: return false
        case .inGroup(_, let list): return Operator.isIn(actual, list, insensitive: false)
        case .notInGroup(_, let list): return !Operator.isIn(actual, list, insensitive: false)
        case .not(let inner): return !inner.evaluate(actual)
        case .size(let inner):
            guard case .array(let a) = actual else { return false }
            return inner.evaluate(.number(Double(a.count)))
        case .elemMatch(let match):
            guard case .array(let a) = actual else { return false }
            return a.contains { element in
                guard element.truthy else { return false }
                switch match {
                case .value(let v): return v.evaluate(element)
                case .condition(let c): return c.evaluate(on: element)
                }
            }
        case .all(let items, _):
            guard case .array(let a) = actual else { return false }
            return items.allSatisfy { item in a.contains { item.evaluate($0) } }
        case .regex(let r): return r.matches(actual.jsString)
        case .type(let name): return actual.typeName == name
        }
    }

    /// GrowthBook's `isIn`: an array attribute holds when some element is in the list (`includes`, strict
    /// equality); `insensitive` folds strings to lower case.
    static func isIn(_ actual: JSValue, _ list: [JSValue], insensitive: Bool) -> Bool {
        func fold(_ v: JSValue) -> JSValue {
            if insensitive, case .string(let s) = v { return .string(s.lowercased()) }
            return v
        }
        func member(_ v: JSValue) -> Bool {
            let f = fold(v)
            return list.contains { JSValue.strictlyEqual(f, fold($0)) }
        }
        if case .array(let elements) = actual { return elements.contains(where: member) }
        return member(actual)
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
    /// GrowthBook's `paddedVersionString(input)`: a number is read as its JavaScript text; anything that is
    /// not a non-empty string counts as "0".
    public static func padded(_ value: JSValue) -> String {
        switch value {
        case .string(let s) where !s.isEmpty: return padded(text: s)
        case .number(let d): return padded(text: JSNumber.string(d))
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

extension Condition {
    /// The top-level attributes the condition reads (`country` for `country` and `country.region`): what a row must
    /// carry to evaluate it.
    public var attributeRoots: Set<String> {
        switch self {
        case .object(let cs), .and(let cs), .or(let cs), .nor(let cs): cs.reduce(into: Set<String>()) { $0.formUnion($1.attributeRoots) }
        case .not(let c): c.attributeRoots
        case .path(let path, _): [String(path.split(separator: ".", omittingEmptySubsequences: false).first ?? "")]
        }
    }
}
