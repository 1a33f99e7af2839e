extension JSON {
    /// Applies an RFC 7386 JSON Merge Patch: objects merge recursively, `null` removes a member,
    /// anything else replaces the target.
    public func merging(patch: JSON) -> JSON {
        guard case .object(let patchMembers) = patch else { return patch }
        var result = objectValue ?? [:]
        for (key, value) in patchMembers {
            if value == .null {
                result.removeValue(forKey: key)
            } else {
                result[key] = (result[key] ?? .null).merging(patch: value)
            }
        }
        return .object(result)
    }

    /// Dotted paths of every leaf a merge patch touches (`design.alpha`, `variants`).
    public static func touchedPaths(ofPatch patch: JSON, prefix: String = "") -> [String] {
        guard case .object(let members) = patch else { return [prefix] }
        return members.keys.sorted().flatMap { key -> [String] in
            let path = prefix.isEmpty ? key : "\(prefix).\(key)"
            // An object adds or changes what is under it; an empty one still touches its own path.
            if case .object(let inner) = members[key]! { return inner.isEmpty ? [path] : touchedPaths(ofPatch: members[key]!, prefix: path) }
            return [path]
        }
    }
}

extension JSON {
    /// The JSON Merge Patch (RFC 7386) that turns `self` into `target`: `self.merging(patch: p) == target`
    /// for objects (arrays and scalars are replaced whole; a member that becomes null cannot be expressed).
    public func mergePatch(to target: JSON) -> JSON {
        guard case .object(let from) = self, case .object(let to) = target else { return target }
        var patch: [String: JSON] = [:]
        for (k, v) in to where from[k] != v { patch[k] = from[k].map { $0.mergePatch(to: v) } ?? v }
        for k in from.keys where to[k] == nil { patch[k] = .null }
        return .object(patch)
    }
}
