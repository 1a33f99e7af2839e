public import JSONCore

/// One clause of a condition, evaluated: what `targeting.eval` shows a product manager who asks why a unit is (not)
/// in an audience.
public struct TraceEntry: Sendable, Equatable {
    /// Where the clause is in the condition (`targeting.$or[1].country.$in`).
    public var clause: String
    /// The attribute path it reads (nil for `$and`, `$or`, `$nor`, `$not` of conditions).
    public var attribute: String?
    /// The value found there (null when missing); for an element of an array, the element.
    public var value: JSValue?
    public var holds: Bool
    /// How the SDK compared, when it is not plain equality (`compared as numbers`, `"8" + "" is "8"`).
    public var note: String?

    public var json: JSON {
        var o: [String: JSON] = ["clause": .string(clause), "holds": .bool(holds)]
        if let attribute { o["attribute"] = .string(attribute) }
        if let value { o["value"] = value.json }
        if let note { o["note"] = .string(note) }
        return .object(o)
    }
}

extension Condition {
    /// Evaluates every clause (no short cut, so each one is explained) and returns the result with the trace.
    /// The result always equals ``evaluate(_:)``.
    public func trace(_ attributes: Attributes, path: String = "targeting") -> (Bool, [TraceEntry]) {
        var out: [TraceEntry] = []
        let result = trace(on: .object(attributes), path: path, into: &out)
        return (result, out)
    }

    func trace(on obj: JSValue, path: String, into out: inout [TraceEntry]) -> Bool {
        func children(_ cs: [Condition], _ key: String) -> [Bool] {
            cs.enumerated().map { i, c in c.trace(on: obj, path: "\(path).\(key)[\(i)]", into: &out) }
        }
        switch self {
        case .object(let cs):
            var all = true
            for c in cs where !c.trace(on: obj, path: path, into: &out) { all = false }
            return all
        case .and(let cs):
            let r = children(cs, "$and").allSatisfy { $0 }
            out.append(TraceEntry(clause: "\(path).$and", holds: r, note: cs.isEmpty ? "an empty $and holds" : nil))
            return r
        case .or(let cs):
            let rs = children(cs, "$or")
            let r = rs.isEmpty || rs.contains(true)
            out.append(TraceEntry(clause: "\(path).$or", holds: r, note: cs.isEmpty ? "an empty $or holds (as in GrowthBook)" : nil))
            return r
        case .nor(let cs):
            let rs = children(cs, "$nor")
            let r = !(rs.isEmpty || rs.contains(true))
            out.append(TraceEntry(clause: "\(path).$nor", holds: r, note: cs.isEmpty ? "an empty $nor fails (as in GrowthBook)" : nil))
            return r
        case .not(let c):
            let inner = c.trace(on: obj, path: "\(path).$not", into: &out)
            out.append(TraceEntry(clause: "\(path).$not", holds: !inner))
            return !inner
        case .path(let p, let test):
            let value = obj.value(atPath: p)
            return test.trace(value, attribute: p, path: "\(path).\(p)", into: &out)
        }
    }
}

extension ValueCondition {
    func trace(_ value: JSValue, attribute: String, path: String, into out: inout [TraceEntry]) -> Bool {
        let holds = evaluate(value)
        switch self {
        case .operators(let ops):
            var all = true
            for op in ops {
                let opPath = "\(path).\(op.name)"
                let r: Bool
                switch op {
                case .not(let inner):
                    var nested: [TraceEntry] = []
                    r = !inner.trace(value, attribute: attribute, path: opPath, into: &nested)
                    out += nested
                default:
                    r = op.evaluate(value)
                }
                out.append(TraceEntry(clause: opPath, attribute: attribute, value: value, holds: r, note: op.note(value)))
                if !r { all = false }
            }
            return all
        default:
            out.append(TraceEntry(clause: path, attribute: attribute, value: value, holds: holds, note: note(value)))
            return holds
        }
    }

    func note(_ value: JSValue) -> String? {
        switch self {
        case .string(let s, let insensitive):
            if value == .null { return "missing; null + \"\" is \"null\"" }
            if case .string = value { return insensitive ? "compared ignoring case" : nil }
            return "\(value) + \"\" is \(JSValue.string(value.jsString)), compared with \(JSValue.string(s))"
        case .number(let d):
            if case .number = value { return nil }
            return "\(value) * 1 is \(JSNumber.string(value.jsNumber)), compared with \(JSNumber.string(d))"
        case .bool: return value == .null ? "missing (null) never equals a boolean" : "truthiness of \(value)"
        case .null: return value == .null ? "missing or null" : nil
        case .equals: return "the same JSON value (members in any order)"
        case .operators: return nil
        }
    }
}

extension Operator {
    func note(_ value: JSValue) -> String? {
        switch self {
        case .compare(_, let operand):
            if value == .null { return "missing is null, which JavaScript compares as 0" }
            if case .string = value.primitive, case .string = operand.primitive { return "compared as text (UTF-16 code units)" }
            let n = value.jsNumber
            return n.isNaN ? "\(value) is not a number: every comparison is false" : "compared as numbers (\(JSNumber.string(n)))"
        case .version(_, let operand): return "versions \"\(VersionString.padded(value))\" and \"\(VersionString.padded(operand))\""
        case .isIn, .notIn, .inGroup, .notInGroup:
            if case .array = value { return "an array holds when one of its elements is in the list" }
            return nil
        case .alwaysFalse(let op): return "\(op) with an operand that is not an array is false (as in GrowthBook)"
        case .exists: return value == .null ? "missing" : nil
        case .size(_): if case .array(let a) = value { return "length \(a.count)" }; return "not an array"
        case .elemMatch, .all: if case .array = value { return nil }; return "not an array"
        case .regex: if case .string = value { return nil }; return "matched against \(JSValue.string(value.jsString))"
        case .type: return "type \(value.typeName)"
        case .eq, .ne:
            if case .array = value { return "an array is never identical (===) to a value" }
            if case .object = value { return "an object is never identical (===) to a value" }
            return nil
        case .not: return nil
        }
    }
}
