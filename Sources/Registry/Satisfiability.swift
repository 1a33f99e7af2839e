/// A concrete unit that satisfies several targeting conditions at once.
public struct Witness: Sendable, Equatable {
    /// Every attribute the conditions mention; `nil` means the attribute is absent.
    public var attributes: [String: AttributeValue?]
    /// True when a `$regex` test could not be decided: the conditions *can* overlap, but the witness is
    /// only guaranteed to satisfy the other tests.
    public var approximate: Bool
    /// True when the search stopped at ``Satisfiability/searchBudget`` before deciding: the audiences are
    /// reported as overlapping, never as disjoint, and the witness is not checked.
    public var budgetReached = false

    /// The attributes that are present, as `assign` takes them.
    public var presentAttributes: Attributes { attributes.compactMapValues { $0 } }
}

/// Decides whether some unit satisfies all given conditions, exactly, and finds one.
///
/// Each atomic test involves one attribute, so the domain of each attribute splits into finitely many
/// classes that no test can tell apart. The solver builds one representative value per class from the
/// constants the tests name (each constant, values between and beyond them, the other types, absence),
/// keeps one per distinct truth pattern, and searches assignments with three-valued pruning.
/// `$regex` tests are undecided: they count as "may hold" and mark the witness approximate.
public enum Satisfiability {
    /// Partial assignments the search for a witness may try (each costs one evaluation of the formula).
    /// Conditions that are not plain conjunctions can make the search exponential in their attributes; past
    /// this budget the answer is "can overlap" with a note, so a check costs at most about budget × formula
    /// size evaluations (about 50 ms for a 500-condition targeting in a release build on this machine) and is never wrong.
    public static let searchBudget = 5_000

    /// Solutions per attribute for conjunctive conditions, reused across the pairs of one scan.
    public final class Cache {
        var perAttribute: [[AttributeTest]: AttributeValue??] = [:]
        public init() {}
    }

    public static func witness(_ conditions: [Condition], cache: Cache? = nil) -> Witness? {
        if let conjunction = conjunctiveTests(conditions) {
            return witness(conjunction: conjunction, cache: cache ?? Cache())
        }
        return searchWitness(conditions)
    }

    /// The tests per attribute when the conditions are only conjunctions of attribute tests (most targeting), else nil.
    static func conjunctiveTests(_ conditions: [Condition]) -> [String: [AttributeTest]]? {
        var tests: [String: [AttributeTest]] = [:]
        var stack = conditions
        while let c = stack.popLast() {
            switch c {
            case .all(let cs): stack += cs
            case .attribute(let name, let test): tests[name, default: []].append(test)
            case .any, .not: return nil
            }
        }
        return tests
    }

    /// A conjunction is satisfiable iff each attribute's tests are; solve each attribute on its own.
    static func witness(conjunction: [String: [AttributeTest]], cache: Cache) -> Witness? {
        var attributes: [String: AttributeValue?] = [:]
        var approximate = false
        for (name, tests) in conjunction {
            let solution: AttributeValue??
            if let known = cache.perAttribute[tests] {
                solution = known
            } else {
                solution = candidates(for: tests).first { c in tests.allSatisfy { evaluate($0, c) != .no } }
                cache.perAttribute[tests] = .some(solution)
            }
            guard let value = solution else { return nil }
            attributes[name] = .some(value)
            if tests.contains(where: { evaluate($0, value) == .maybe }) { approximate = true }
        }
        return Witness(attributes: attributes, approximate: approximate)
    }

    static func searchWitness(_ conditions: [Condition]) -> Witness? {
        let formula = Condition.all(conditions)
        var tests: [String: [AttributeTest]] = [:]
        collect(formula, into: &tests)
        let names = tests.keys.sorted()
        var domains: [[AttributeValue?]] = names.map { candidates(for: tests[$0]!) }
        // Search first the attributes that every solution must satisfy directly (tests in the top-level
        // conjunction: one wrong value prunes the whole subtree), then the most constrained ones.
        var forced = Set<String>()
        var conjuncts = conditions
        while let c = conjuncts.popLast() {
            switch c {
            case .all(let cs): conjuncts += cs
            case .attribute(let name, _): forced.insert(name)
            default: break
            }
        }
        let rank = names.map { forced.contains($0) ? 0 : 1 }
        let order = names.indices.sorted { (rank[$0], domains[$0].count, names[$0]) < (rank[$1], domains[$1].count, names[$1]) }
        let orderedNames = order.map { names[$0] }
        domains = order.map { domains[$0] }
        var assignment: [String: AttributeValue?] = [:]
        var approximate = false
        var steps = 0
        var exhausted = false
        func search(_ i: Int) -> Bool {
            steps += 1
            if steps > searchBudget { exhausted = true; return true }
            let value = evaluate(formula, assignment)
            if value == .no { return false }
            if i == orderedNames.count {
                approximate = value == .maybe
                return true
            }
            for candidate in domains[i] {
                assignment[orderedNames[i]] = .some(candidate)
                if search(i + 1) { return true }
            }
            assignment[orderedNames[i]] = nil
            return false
        }
        guard search(0) else { return nil }
        if exhausted { return Witness(attributes: assignment, approximate: true, budgetReached: true) }
        return Witness(attributes: assignment, approximate: approximate)
    }

    // MARK: three-valued evaluation

    enum Truth { case yes, no, maybe }

    static func evaluate(_ c: Condition, _ a: [String: AttributeValue?]) -> Truth {
        switch c {
        case .all(let cs):
            var result = Truth.yes
            for child in cs {
                switch evaluate(child, a) {
                case .no: return .no
                case .maybe: result = .maybe
                case .yes: break
                }
            }
            return result
        case .any(let cs):
            var result = Truth.no
            for child in cs {
                switch evaluate(child, a) {
                case .yes: return .yes
                case .maybe: result = .maybe
                case .no: break
                }
            }
            return result
        case .not(let child):
            switch evaluate(child, a) {
            case .yes: return .no
            case .no: return .yes
            case .maybe: return .maybe
            }
        case .attribute(let name, let test):
            guard let assigned = a[name] else { return .maybe }
            return evaluate(test, assigned)
        }
    }

    static func evaluate(_ test: AttributeTest, _ value: AttributeValue?) -> Truth {
        switch test {
        case .regex: return .maybe
        case .not(let tests):
            var all = Truth.yes
            for t in tests {
                switch evaluate(t, value) {
                case .no: return .yes
                case .maybe: all = .maybe
                case .yes: break
                }
            }
            return all == .yes ? .no : .maybe
        default:
            return test.evaluate(value) ? .yes : .no
        }
    }

    static func collect(_ c: Condition, into tests: inout [String: [AttributeTest]]) {
        switch c {
        case .all(let cs), .any(let cs): cs.forEach { collect($0, into: &tests) }
        case .not(let child): collect(child, into: &tests)
        case .attribute(let name, let test): tests[name, default: []].append(test)
        }
    }

    // MARK: candidate values

    static func flatten(_ tests: [AttributeTest]) -> [AttributeTest] {
        tests.flatMap { t -> [AttributeTest] in
            if case .not(let inner) = t { return flatten(inner) }
            return [t]
        }
    }

    /// One representative value per class of values the tests cannot tell apart.
    static func candidates(for tests: [AttributeTest]) -> [AttributeValue?] {
        let atoms = flatten(tests)
        var constants: [AttributeValue] = []
        var versions: [String] = []
        for t in atoms {
            switch t {
            case .equals(let v?), .notEquals(let v?): constants.append(v)
            case .isIn(let vs), .notIn(let vs): constants += vs
            case .compare(_, let v): constants.append(v)
            case .version(_, let v): versions.append(v)
            default: break
            }
        }
        var raw: [AttributeValue?] = constants.map { .some($0) }

        let numbers = Array(Set(constants.compactMap { if case .number(let d) = $0 { d } else { nil } })).sorted()
        if let lo = numbers.first, let hi = numbers.last {
            raw.append(.number(lo - 1))
            raw.append(.number(hi + 1))
            for (a, b) in zip(numbers, numbers.dropFirst()) { raw.append(.number(a + (b - a) / 2)) }
        } else {
            raw.append(.number(0))
        }

        let strings = Array(Set(constants.compactMap { if case .string(let s) = $0 { s } else { nil } })).sorted(by: UTF16Order.less)
        if let lo = strings.first, let hi = strings.last {
            if !lo.isEmpty { raw.append(.string("")) }
            raw.append(.string(between(hi, nil)))
            for (a, b) in zip(strings, strings.dropFirst()) { raw.append(.string(between(a, b))) }
        } else {
            raw.append(.string("other"))
        }

        if !versions.isEmpty {
            raw += ["0", "99999.99999.99999"].map { .string($0) }
            // Numbers compare as versions by their decimal text: cover the integers around each major version.
            for v in versions {
                let major = Double(v.drop(while: { $0 == "v" }).prefix(while: \.isNumber)) ?? 0
                raw += [major - 1, major, major + 1, 0].map { .number($0) }
            }
            for v in versions + strings {
                raw += [v, v + "-0", v + "-~~", v + ".0", v + ".0-0"].map { .some(.string($0)) }
            }
        }
        raw += [.bool(true), .bool(false), nil]

        // Keep the first candidate of each truth pattern (constants come first, so witnesses read naturally).
        var seen = Set<[Bool]>()
        var out: [AttributeValue?] = []
        let decidable = atoms.filter { if case .regex = $0 { false } else { true } }
        for c in raw {
            let signature = decidable.map { $0.evaluate(c) } + (decidable.isEmpty ? [c == nil] : [])
            if seen.insert(signature).inserted { out.append(c) }
        }
        return out
    }

    /// A readable string strictly between `a` and `b` (or above `a` when `b` is nil), if one exists;
    /// `a + "\u{0}"` is the smallest string above `a`, so when it is not below `b` no string is.
    static func between(_ a: String, _ b: String?) -> String {
        for suffix in ["x", "0", " ", "\u{0}"] {
            let c = a + suffix
            if b.map({ UTF16Order.less(c, $0) }) ?? true { return c }
        }
        return a + "\u{0}"
    }
}
