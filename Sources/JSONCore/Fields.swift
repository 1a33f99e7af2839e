/// A parameter that is missing or has the wrong shape; `path` is the dotted field path.
public struct FieldError: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    /// The value has the right shape but a magnitude the method cannot take (a count beyond 2^53, a sum
    /// that overflows): degenerate input (1009) rather than invalid params.
    public var outOfRange: Bool
    public init(path: String, message: String, outOfRange: Bool = false) {
        self.path = path
        self.message = message
        self.outOfRange = outOfRange
    }
    public var description: String { "\(path): \(message)" }
}

/// Typed access to a JSON object's members, reporting the full field path on failure.
///
/// ```swift
/// let p = try Fields(params, path: "")
/// let key = try p.string("key")          // FieldError(path: "key", message: "is required")
/// let alpha = try p.optionalDouble("alpha") ?? 0.05
/// ```
public struct Fields: Sendable {
    public let members: [String: JSON]
    public let path: String

    public init(_ value: JSON?, path: String = "") throws(FieldError) {
        switch value {
        case .object(let o)?: members = o
        case nil, .null?: members = [:]
        case let other?: throw FieldError(path: path.isEmpty ? "params" : path, message: "must be an object, got \(other.typeName)")
        }
        self.path = path
    }

    public func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func has(_ key: String) -> Bool { members[key].map { !$0.isNull } ?? false }

    public func value(_ key: String) throws(FieldError) -> JSON {
        guard let v = members[key], !v.isNull else { throw FieldError(path: fieldPath(key), message: "is required") }
        return v
    }

    public func string(_ key: String) throws(FieldError) -> String {
        let v = try value(key)
        guard let s = v.stringValue else { throw typeError(key, "a string", v) }
        return s
    }

    /// The member when present and not null (one lookup; the optional accessors build on it).
    private func present(_ key: String) -> JSON? {
        guard let v = members[key], !v.isNull else { return nil }
        return v
    }

    public func optionalString(_ key: String) throws(FieldError) -> String? {
        guard let v = present(key) else { return nil }
        guard let s = v.stringValue else { throw typeError(key, "a string", v) }
        return s
    }

    public func double(_ key: String) throws(FieldError) -> Double {
        let v = try value(key)
        guard let d = v.doubleValue else { throw typeError(key, "a number", v) }
        return d
    }

    public func optionalDouble(_ key: String) throws(FieldError) -> Double? {
        guard let v = present(key) else { return nil }
        guard let d = v.doubleValue else { throw typeError(key, "a number", v) }
        return d
    }

    public func int(_ key: String) throws(FieldError) -> Int {
        let v = try value(key)
        guard let i = v.intValue else { throw typeError(key, "an integer", v) }
        return i
    }

    public func optionalInt(_ key: String) throws(FieldError) -> Int? {
        guard has(key) else { return nil }
        return try int(key)
    }

    public func bool(_ key: String) throws(FieldError) -> Bool {
        let v = try value(key)
        guard let b = v.boolValue else { throw typeError(key, "a boolean", v) }
        return b
    }

    public func optionalBool(_ key: String) throws(FieldError) -> Bool? {
        guard has(key) else { return nil }
        return try bool(key)
    }

    public func object(_ key: String) throws(FieldError) -> Fields {
        try Fields(try value(key), path: fieldPath(key))
    }

    public func optionalObject(_ key: String) throws(FieldError) -> Fields? {
        guard has(key) else { return nil }
        return try object(key)
    }

    public func array(_ key: String) throws(FieldError) -> [JSON] {
        let v = try value(key)
        guard let a = v.arrayValue else { throw typeError(key, "an array", v) }
        return a
    }

    public func doubles(_ key: String) throws(FieldError) -> [Double] {
        var out: [Double] = []
        for (i, v) in try array(key).enumerated() {
            guard let d = v.doubleValue else { throw FieldError(path: "\(fieldPath(key))[\(i)]", message: "must be a number, got \(v.typeName)") }
            out.append(d)
        }
        return out
    }

    public func strings(_ key: String) throws(FieldError) -> [String] {
        var out: [String] = []
        for (i, v) in try array(key).enumerated() {
            guard let s = v.stringValue else { throw FieldError(path: "\(fieldPath(key))[\(i)]", message: "must be a string, got \(v.typeName)") }
            out.append(s)
        }
        return out
    }

    /// A string restricted to a fixed set of choices.
    public func choice(_ key: String, _ choices: [String], default fallback: String? = nil) throws(FieldError) -> String {
        guard let v = present(key) else {
            if let fallback { return fallback }
            throw FieldError(path: fieldPath(key), message: "is required; one of \(choices.joined(separator: ", "))")
        }
        guard let s = v.stringValue else { throw typeError(key, "a string", v) }
        guard choices.contains(s) else {
            throw FieldError(path: fieldPath(key), message: "\"\(s)\" is not one of \(choices.joined(separator: ", "))")
        }
        return s
    }

    /// Rejects members not in `allowed`, so typos are reported rather than ignored.
    public func rejectUnknown(_ allowed: Set<String>) throws(FieldError) {
        // Few members and few allowed names: comparing strings is cheaper than hashing them.
        guard members.keys.contains(where: { key in !allowed.contains(where: { $0 == key }) }) else { return }
        if let unknown = members.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw FieldError(path: fieldPath(unknown), message: "is not a known field; expected one of \(allowed.sorted().joined(separator: ", "))")
        }
    }

    private func typeError(_ key: String, _ expected: String, _ got: JSON) -> FieldError {
        FieldError(path: fieldPath(key), message: "must be \(expected), got \(got.typeName)")
    }
}
