/// A concrete unit that satisfies several targeting conditions at once, or the reason none was proved.
public struct Witness: Sendable, Equatable {
    /// The unit's attributes, as `assign` and `targeting.eval` take them (nested objects and arrays where the
    /// conditions reach into them). When ``undecided`` is nil, every condition holds for them under the evaluator.
    public var attributes: Attributes
    /// Why the conditions are reported as able to overlap without a verified unit (nil for a verified witness):
    /// a part of the language where the search is not exhaustive (see ``Satisfiability``) found no unit.
    public var undecided: String?
    /// True when the search stopped at ``Satisfiability/searchBudget`` before deciding.
    public var budgetReached = false

    public var approximate: Bool { undecided != nil }
}

/// Decides whether some unit satisfies all given conditions, and finds one.
///
/// Every test looks at the value at one path, so the values a path can hold split into finitely many classes
/// that no test of the conditions can tell apart. For each path the solver builds values from the constants the
/// tests name: each constant, numbers between and beyond them (and their text, since JavaScript compares `"8"`
/// with `5` as numbers), strings between them, other types, absence, arrays of the element classes (for `$in`'s
/// intersection, `$all`, `$elemMatch`, `$size`) and objects (for nested paths), keeps one value per distinct
/// truth pattern, and searches assignments with three-valued pruning. A unit it finds is checked with the
/// evaluator, so every witness satisfies the conditions exactly as `assign` decides.
///
/// "Disjoint" is answered only when the classes are complete. They are not, and the answer is "can overlap" with
/// the reason, when a path has a `$regex` (a pattern's language is not reduced to constants); when strings at one
/// path are compared both as text and as numbers or versions, or case-insensitively and by order; when an array
/// is tested both by its elements and as text (`"a,b"`); when `$elemMatch` holds a nested condition; or when the
/// classes are too many to enumerate.
public enum Satisfiability {
    /// Partial assignments the search for a witness may try (each costs one evaluation of the formula).
    /// Past this budget the answer is "can overlap" with a note, so a check costs at most about budget × formula
    /// size evaluations and is never wrong.
    public static let searchBudget = 5_000

    /// Solutions per path for conjunctive conditions, reused across the pairs of one scan; and the conditions of a
    /// scan compiled to interned paths and test lists, so a pair costs a merge of two short sorted arrays.
    public final class Cache {
        var perPath: [[ValueCondition]: PathSolution] = [:]
        var pathIDs: [String: Int32] = [:]
        var pathNames: [String] = []
        var pathPrefixes: [[Int32]] = []
        var testIDs: [[ValueCondition]: Int32] = [:]
        var testLists: [[ValueCondition]] = []
        var pairSolutions: [UInt64: PathSolution] = [:]
        public init() {}

        /// Entries held, to bound a cache that lives across many checks.
        var size: Int { perPath.count + pathNames.count + testLists.count + pairSolutions.count }

        func pathID(_ p: String) -> Int32 {
            if let id = pathIDs[p] { return id }
            let id = Int32(pathNames.count)
            pathIDs[p] = id
            pathNames.append(p)
            pathPrefixes.append([])
            var prefixes: [Int32] = []
            var i = p.utf8.startIndex
            while let dot = p.utf8[i...].firstIndex(of: UInt8(ascii: ".")) {
                prefixes.append(pathID(String(p[..<dot])))
                i = p.utf8.index(after: dot)
            }
            pathPrefixes[Int(id)] = prefixes
            return id
        }

        func testID(_ t: [ValueCondition]) -> Int32 {
            if let id = testIDs[t] { return id }
            let id = Int32(testLists.count)
            testIDs[t] = id
            testLists.append(t)
            return id
        }

        /// A conjunctive condition over unrelated paths as (path, tests) sorted by path; nil for any other.
        public func compile(_ c: Condition) -> Compiled? {
            guard let tests = Satisfiability.conjunctiveTests([c]) else { return nil }
            let entries = tests.map { (pathID($0.key), testID($0.value)) }.sorted { $0.0 < $1.0 }
            return Compiled(paths: entries.map(\.0), tests: entries.map(\.1))
        }
    }

    public struct Compiled: Sendable {
        var paths: [Int32]
        var tests: [Int32]
    }

    /// The witness of two compiled conditions, or `.none` when their paths lead into each other (then use
    /// ``witness(_:cache:)``).
    public static func witness(_ a: Compiled, _ b: Compiled, cache: Cache) -> Witness?? {
        func contains(_ c: Compiled, _ p: Int32) -> Bool {
            var lo = 0, hi = c.paths.count
            while lo < hi { let mid = (lo + hi) / 2; if c.paths[mid] < p { lo = mid + 1 } else { hi = mid } }
            return lo < c.paths.count && c.paths[lo] == p
        }
        for p in a.paths { for q in cache.pathPrefixes[Int(p)] where contains(b, q) { return .none } }
        for p in b.paths { for q in cache.pathPrefixes[Int(p)] where contains(a, q) { return .none } }
        // Kept apart by two constants on a path both test: answered before any path's solution is looked up or any
        // attribute built, and without filling the cache with such pairs (the commonest disjoint pair).
        var i = 0, j = 0
        while i < a.paths.count && j < b.paths.count {
            if a.paths[i] < b.paths[j] { i += 1 } else if b.paths[j] < a.paths[i] { j += 1 } else {
                if a.tests[i] != b.tests[j] && refutedByConstants(cache.testLists[Int(a.tests[i])], cache.testLists[Int(b.tests[j])]) { return .some(nil) }
                i += 1; j += 1
            }
        }
        var values: [(String, JSValue)] = []
        var inexact: [String] = []
        i = 0; j = 0
        while i < a.paths.count || j < b.paths.count {
            let path: Int32, t1: Int32, t2: Int32
            if j >= b.paths.count || (i < a.paths.count && a.paths[i] < b.paths[j]) {
                path = a.paths[i]; t1 = a.tests[i]; t2 = t1; i += 1
            } else if i >= a.paths.count || b.paths[j] < a.paths[i] {
                path = b.paths[j]; t1 = b.tests[j]; t2 = t1; j += 1
            } else {
                path = a.paths[i]; t1 = min(a.tests[i], b.tests[j]); t2 = max(a.tests[i], b.tests[j]); i += 1; j += 1
            }
            let key = UInt64(UInt32(t1)) << 32 | UInt64(UInt32(t2))
            let solution: PathSolution
            if let known = cache.pairSolutions[key] {
                solution = known
            } else {
                let tests = t1 == t2 ? cache.testLists[Int(t1)] : cache.testLists[Int(t1)] + cache.testLists[Int(t2)]
                solution = solve(tests, at: cache.pathNames[Int(path)])
                cache.pairSolutions[key] = solution
            }
            switch solution {
            case .value(let v): values.append((cache.pathNames[Int(path)], v))
            case .none(let reason?): inexact.append(reason)
            case .none(nil): return .some(nil)
            }
        }
        let attributes = build(values)
        if !inexact.isEmpty { return .some(Witness(attributes: attributes, undecided: note(inexact))) }
        return .some(Witness(attributes: attributes, undecided: nil))
    }

    /// One path's tests: a value that satisfies them all, or why none was found.
    static func solve(_ tests: [ValueCondition], at path: String) -> PathSolution {
        if refutedByConstants(tests) { return .none(inexact: nil) }
        // Most pairs share a constant (or, for lists, an array of them): try those before building every class.
        if let v = Candidates.quick(tests).first(where: { v in tests.allSatisfy { $0.evaluate(v) } }) { return .value(v) }
        let domain = Candidates.values(for: tests, at: path)
        if let v = domain.values.first(where: { v in tests.allSatisfy { $0.evaluate(v) } }) { return .value(v) }
        return .none(inexact: domain.inexact)
    }

    /// Two different constants one value must equal: `value + ""` is one string and `value * 1` one number, so
    /// `"a"` and `"b"` (or `1` and `2`) never both hold. Answers at once what building every class would conclude,
    /// for the commonest disjoint pair (cohorts, countries, tenants kept apart by an equality each).
    static func refutedByConstants(_ tests: [ValueCondition], _ more: [ValueCondition] = []) -> Bool {
        var string: String?, number: Double?
        // Both lists in turn, without joining them: scans call this for millions of pairs.
        func refutes(_ list: [ValueCondition]) -> Bool {
            for t in list {
                switch t {
                case .string(let s, insensitive: false):
                    if let known = string, known != s { return true }
                    string = s
                case .number(let d):
                    if d.isNaN { return true }
                    if let known = number, known != d { return true }
                    number = d
                default: continue
                }
            }
            return false
        }
        return refutes(tests) || refutes(more)
    }

    enum PathSolution {
        case value(JSValue)
        case none(inexact: String?)
    }

    public static func witness(_ conditions: [Condition], cache: Cache? = nil) -> Witness? {
        if let conjunction = conjunctiveTests(conditions) {
            return witness(conjunction: conjunction, conditions: conditions, cache: cache ?? Cache())
        }
        return searchWitness(conditions)
    }

    /// The tests per path when the conditions are conjunctions of path tests over paths none of which leads into
    /// another (most targeting), else nil.
    static func conjunctiveTests(_ conditions: [Condition]) -> [String: [ValueCondition]]? {
        var tests: [String: [ValueCondition]] = [:]
        var stack = conditions
        while let c = stack.popLast() {
            switch c {
            case .object(let cs), .and(let cs): stack += cs
            case .path(let p, let v): tests[p, default: []].append(v)
            case .or, .nor, .not: return nil
            }
        }
        // No path may lead into another: look up every proper prefix (ending before a dot) of every dotted path.
        for p in tests.keys {
            var i = p.utf8.startIndex
            while let dot = p.utf8[i...].firstIndex(of: UInt8(ascii: ".")) {
                if tests[String(p[..<dot])] != nil { return nil }
                i = p.utf8.index(after: dot)
            }
        }
        return tests
    }

    /// A conjunction over unrelated paths holds iff each path's tests do: solve each path on its own.
    static func witness(conjunction: [String: [ValueCondition]], conditions: [Condition], cache: Cache) -> Witness? {
        var values: [(String, JSValue)] = []
        var inexact: [String] = []
        for (path, tests) in conjunction {
            let solution: PathSolution
            if let known = cache.perPath[tests] {
                solution = known
            } else {
                solution = solve(tests, at: path)
                cache.perPath[tests] = solution
            }
            switch solution {
            case .value(let v): values.append((path, v))
            case .none(let reason?): inexact.append(reason)
            case .none(nil): return nil
            }
        }
        let attributes = build(values)
        if !inexact.isEmpty { return Witness(attributes: attributes, undecided: note(inexact)) }
        // Each value satisfies every test of its path and no path leads into another, so the conditions hold by
        // construction (the tests check it with the evaluator; the general search verifies every witness).
        return Witness(attributes: attributes, undecided: nil)
    }

    static func note(_ reasons: [String]) -> String {
        "no common unit was found, but the search is not exhaustive here (\(Array(Set(reasons)).sorted().joined(separator: "; "))): the audiences are treated as able to overlap"
    }

    /// The witness, checked by the evaluator (a failure would be a solver bug: answered as "can overlap").
    static func verified(_ attributes: Attributes, _ conditions: [Condition]) -> Witness {
        if conditions.allSatisfy({ $0.evaluate(attributes) }) { return Witness(attributes: attributes, undecided: nil) }
        return Witness(attributes: attributes, undecided: "the unit found does not satisfy every condition under the evaluator: the audiences are treated as able to overlap")
    }

    /// Attributes holding each value at its dotted path (null values are left out: a missing path reads as null).
    static func build(_ values: [(String, JSValue)]) -> Attributes {
        var root: [String: JSValue] = [:]
        for (path, value) in values where value != .null {
            insert(&root, path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)[...], value)
        }
        return root
    }

    static func insert(_ object: inout [String: JSValue], _ parts: ArraySlice<String>, _ value: JSValue) {
        guard let first = parts.first else { return }
        if parts.count == 1 { object[first] = value; return }
        var child: [String: JSValue] = [:]
        if case .object(let existing)? = object[first] { child = existing }
        insert(&child, parts.dropFirst(), value)
        object[first] = .object(child)
    }

    // MARK: - The general search

    /// A path's value in a partial assignment: a concrete value, or an object made of the values of the paths below.
    enum Slot: Equatable {
        case value(JSValue)
        case composed
    }

    static func searchWitness(_ conditions: [Condition]) -> Witness? {
        let formula = Condition.and(conditions)
        var tests: [String: [ValueCondition]] = [:]
        collect(formula, into: &tests)
        let paths = Array(tests.keys)
        let set = Set(paths)
        func parent(_ p: String) -> String? {
            var parts = p.split(separator: ".", omittingEmptySubsequences: false)
            while parts.count > 1 {
                parts.removeLast()
                let q = parts.joined(separator: ".")
                if set.contains(q) { return q }
            }
            return nil
        }
        let parents = Dictionary(uniqueKeysWithValues: paths.map { ($0, parent($0)) })
        var children: [String: [String]] = [:]
        for p in paths { if let q = parents[p]! { children[q, default: []].append(p) } }

        var inexact: [String] = []
        var domains: [String: [Slot]] = [:]
        for p in paths {
            // The tests of the paths below see a concrete value through getPath: include them in the classes.
            let below = paths.filter { $0.hasPrefix(p + ".") }.map { ($0, String($0.dropFirst(p.count + 1)), tests[$0]!) }
            let domain = Candidates.values(for: tests[p]!, at: p, below: below)
            if let r = domain.inexact { inexact.append(r) }
            domains[p] = domain.values.map(Slot.value) + (children[p] == nil ? [] : [.composed])
        }
        // Top-level conjuncts first (one wrong value prunes the whole subtree), parents before children, then the
        // most constrained.
        var forced = Set<String>()
        var conjuncts = conditions
        while let c = conjuncts.popLast() {
            switch c {
            case .object(let cs), .and(let cs): conjuncts += cs
            case .path(let p, _): forced.insert(p)
            default: break
            }
        }
        func depth(_ p: String) -> Int {
            var d = 0
            var q = parents[p]!
            while let r = q { d += 1; q = parents[r]! }
            return d
        }
        let order = paths.sorted { a, b in
            (depth(a), forced.contains(a) ? 0 : 1, domains[a]!.count, a) < (depth(b), forced.contains(b) ? 0 : 1, domains[b]!.count, b)
        }

        var assignment: [String: Slot] = [:]
        /// The value at `p`, when the assignment settles it.
        func value(_ p: String) -> JSValue? {
            if case .value(let v)? = assignment[p] { return v }
            // A concrete ancestor decides its descendants.
            var q = parents[p]!
            while let anc = q {
                if case .value(let v)? = assignment[anc] { return v.value(atPath: String(p.dropFirst(anc.count + 1))) }
                q = parents[anc]!
            }
            guard assignment[p] == .composed else { return nil }
            var members: [(String, JSValue)] = []
            for c in children[p] ?? [] {
                guard let v = value(c) else { return nil }
                members.append((String(c.dropFirst(p.count + 1)), v))
            }
            return .object(build(members))
        }
        /// Whether `p` is decided by a concrete ancestor (then it is not searched).
        func determined(_ p: String) -> Bool {
            var q = parents[p]!
            while let anc = q {
                if case .value? = assignment[anc] { return true }
                q = parents[anc]!
            }
            return false
        }
        // The formula with its paths numbered, and the values of paths that neither lead into nor come from another
        // in an array: one step of the search evaluates the whole formula, so its leaves must be cheap to read.
        let number = Dictionary(uniqueKeysWithValues: paths.enumerated().map { ($1, $0) })
        let simple = paths.map { parents[$0]! == nil && children[$0] == nil }
        var simpleValues = [JSValue?](repeating: nil, count: paths.count)
        indirect enum Node { case all([Node]), any([Node]), nor([Node]), not(Node), leaf(Int, ValueCondition) }
        func compile(_ c: Condition) -> Node {
            switch c {
            case .object(let cs), .and(let cs): return .all(cs.map(compile))
            case .or(let cs): return cs.isEmpty ? .all([]) : .any(cs.map(compile))
            case .nor(let cs): return .nor(cs.map(compile))
            case .not(let inner): return .not(compile(inner))
            case .path(let p, let test): return .leaf(number[p]!, test)
            }
        }
        let compiled = compile(formula)
        let orderNumbers = order.map { number[$0]! }
        let orderDomains = order.map { domains[$0]! }
        func truth(_ n: Node) -> Truth {
            switch n {
            case .all(let ns):
                var r = Truth.yes
                for c in ns { switch truth(c) { case .no: return .no; case .maybe: r = .maybe; case .yes: break } }
                return r
            case .any(let ns):
                var r = Truth.no
                for c in ns { switch truth(c) { case .yes: return .yes; case .maybe: r = .maybe; case .no: break } }
                return r
            case .nor(let ns):
                if ns.isEmpty { return .no }
                var r = Truth.no
                for c in ns { switch truth(c) { case .yes: return .no; case .maybe: r = .maybe; case .no: break } }
                return r == .no ? .yes : .maybe
            case .not(let inner): return truth(inner).negated
            case .leaf(let i, let test):
                let v = simple[i] ? simpleValues[i] : value(paths[i])
                guard let v else { return .maybe }
                return test.evaluate(v) ? .yes : .no
            }
        }
        var steps = 0
        func search(_ i: Int) -> Bool {
            steps += 1
            if steps > searchBudget { return true }
            let t = truth(compiled)
            if t == .no { return false }
            if i == order.count { return t == .yes }
            let k = orderNumbers[i]
            if simple[k] {
                // No path above or below it: its value lives only in the array.
                for slot in orderDomains[i] {
                    if case .value(let v) = slot { simpleValues[k] = v }
                    if search(i + 1) { return true }
                }
                simpleValues[k] = nil
                return false
            }
            let p = order[i]
            if determined(p) { return search(i + 1) }
            for slot in orderDomains[i] {
                assignment[p] = slot
                if search(i + 1) { return true }
            }
            assignment[p] = nil
            return false
        }
        let found = search(0)
        for (k, v) in simpleValues.enumerated() where simple[k] { if let v { assignment[paths[k]] = .value(v) } }
        if steps > searchBudget {
            return Witness(attributes: attributesOf(order, value), undecided: "the search for a common unit reached its budget of \(searchBudget) steps before deciding: the audiences are treated as overlapping; the witness is partial", budgetReached: true)
        }
        if found { return verified(attributesOf(order, value), conditions) }
        if !inexact.isEmpty { return Witness(attributes: [:], undecided: note(inexact)) }
        return nil
    }

    /// The attributes of a (possibly partial) assignment: the settled values of the top paths.
    static func attributesOf(_ paths: [String], _ value: (String) -> JSValue?) -> Attributes {
        let tops = paths.filter { p in !paths.contains { p.hasPrefix($0 + ".") } }
        return build(tops.compactMap { p in value(p).map { (p, $0) } })
    }

    static func collect(_ c: Condition, into tests: inout [String: [ValueCondition]]) {
        switch c {
        case .object(let cs), .and(let cs), .or(let cs), .nor(let cs): cs.forEach { collect($0, into: &tests) }
        case .not(let child): collect(child, into: &tests)
        case .path(let p, let v): tests[p, default: []].append(v)
        }
    }

    enum Truth {
        case yes, no, maybe
        var negated: Truth { self == .yes ? .no : self == .no ? .yes : .maybe }
    }
}

/// The values one path is searched over: one per class of values its tests cannot tell apart.
enum Candidates {
    struct Domain {
        var values: [JSValue]
        /// Why the classes may be incomplete (nil: every class has a value).
        var inexact: String?
    }

    /// A few likely values: the scalar constants the tests name, and the array of every listed value.
    static func quick(_ tests: [ValueCondition]) -> [JSValue] {
        var out: [JSValue] = []
        var listed: [JSValue] = []
        func op(_ o: Operator) {
            switch o {
            case .eq(let v), .compare(_, let v), .version(_, let v): out.append(v)
            case .isIn(let l, _), .inGroup(_, let l): out += l; listed += l
            case .elemMatch(.value(.operators(let inner))): for case .eq(let v) in inner { listed.append(v) }
            case .elemMatch(.value(let v)): if case .string(let s, _) = v { listed.append(.string(s)) }
            case .all(let items, _): for case .string(let s, _) in items { listed.append(.string(s)) }
            default: break
            }
        }
        for t in tests {
            switch t {
            case .string(let s, _): out.append(.string(s))
            case .number(let d): out.append(.number(d))
            case .bool(let b): out.append(.bool(b))
            case .equals(let v): out.append(v)
            case .null: out.append(.null)
            case .operators(let ops): ops.forEach(op)
            }
        }
        // In a canonical order, so the witness does not depend on the order of the tests.
        func canonical(_ vs: [JSValue]) -> [JSValue] {
            var seen = Set<JSValue>()
            return vs.filter { seen.insert($0).inserted }.sorted { $0.description < $1.description }
        }
        out = canonical(out)
        if !listed.isEmpty { out.append(.array(canonical(listed))) }
        return out
    }

    /// `below`: tests of deeper paths (full path, path relative to this one, tests), which see a concrete value
    /// of this path through getPath.
    static func values(for tests: [ValueCondition], at path: String, below: [(String, String, [ValueCondition])] = [], depth: Int = 0) -> Domain {
        var facts = Facts()
        for t in tests { facts.add(t) }
        var raw: [JSValue] = []
        var reasons: [String] = []

        // Scalars.
        raw += [.null, .bool(true), .bool(false)]
        let numbers = facts.numberGrid()
        raw += numbers.map(JSValue.number)
        raw += facts.strings(numbers: numbers).map(JSValue.string)
        raw += facts.constants.sorted { $0.description < $1.description }
        // Objects: the constants, a fresh one, and (with paths below) objects that hold the values those tests need.
        raw.append(.object([:]))
        raw.append(.object(["referee": .number(1)]))
        if !below.isEmpty {
            for (_, relative, deeper) in below where !relative.isEmpty {
                let inner = values(for: deeper, at: relative, depth: depth + 1)
                for v in inner.values.prefix(12) { raw.append(.object(Satisfiability.build([(relative, v)]))) }
            }
            reasons.append("values below \(path) are built from the paths tested")
        }
        // Arrays.
        // Elements reached by position (`tags.1`) are tested like elements.
        let positional = below.filter { JSNumber.arrayIndex($0.1.split(separator: ".").first ?? "") != nil && !$0.1.contains(".") }.flatMap(\.2)
        // `tags.length` reads an array's length, like `$size`.
        let lengthTests = below.filter { $0.1 == "length" }.flatMap(\.2)
        let arrays = facts.arrays(depth: depth, positional: positional, lengthTests: lengthTests, path: path, tests: tests)
        raw += arrays.values
        if let r = arrays.inexact { reasons.append(r) }

        if let r = facts.inexact(path) { reasons.append(r) }

        // One value per truth pattern of the tests (and of the deeper paths' tests, seen through this value).
        var seen = Set<[Bool]>()
        var out: [JSValue] = []
        for v in raw {
            var signature = tests.map { $0.evaluate(v) }
            for (_, relative, deeper) in below { let w = v.value(atPath: relative); signature += deeper.map { $0.evaluate(w) } }
            if tests.isEmpty && below.isEmpty { signature = [v == .null] }
            if seen.insert(signature).inserted { out.append(v) }
        }
        // Below-path objects are not enumerated exhaustively, but the composed slot of the search covers them.
        let exactReasons = reasons.filter { !$0.hasPrefix("values below") }
        return Domain(values: out, inexact: exactReasons.isEmpty ? nil : exactReasons.joined(separator: "; "))
    }

    /// What the tests of one path name and how they look at a value.
    struct Facts {
        var numbers: [Double] = []
        var strings: [String] = []
        var versions: [JSValue] = []
        var constants: [JSValue] = []
        var insensitive = false
        var regex = false
        var textOrder = false
        var numericOrder = false
        var versionOrder = false
        /// Element-level tests (for arrays).
        var memberLists: [([JSValue], Bool)] = []
        var allItems: [ValueCondition] = []
        var elementTests: [ValueCondition] = []
        var elementConditions: [Condition] = []
        var sizeTests: [ValueCondition] = []
        /// Tests that read an array as its text (`value + ""`, `value * 1`, `<`, `$regex`).
        var arrayAsText = false
        /// A text literal with a comma (which the text of an array of several elements always has).
        var commaText = false
        /// Tests that tell a one-element array from its element's text (truthiness, type, identity, structure, versions).
        var arrayDiffersFromText = false

        mutating func scalar(_ v: JSValue) {
            switch v {
            case .number(let d): numbers.append(d)
            case .string(let s):
                strings.append(s)
                let n = JSNumber.parse(s)
                if n.isFinite { numbers.append(n) }
            case .bool, .null: break
            case .array, .object: constants.append(v)
            }
        }

        mutating func add(_ t: ValueCondition) {
            switch t {
            case .string(let s, let i):
                strings.append(s)
                if s.contains(",") { commaText = true }
                let n = JSNumber.parse(s)
                if n.isFinite { numbers.append(n) }
                if i { insensitive = true }
                arrayAsText = true
            case .number(let d):
                numbers.append(d)
                numericOrder = true
                arrayAsText = true
            case .bool: arrayDiffersFromText = true
            case .null: break
            case .equals(let v):
                arrayDiffersFromText = true
                constants.append(v)
                if case .array(let items) = v { items.forEach { scalar($0) } }
            case .operators(let ops):
                for op in ops { add(op) }
            }
        }

        mutating func add(_ op: Operator) {
            switch op {
            case .version(_, let v):
                arrayDiffersFromText = true
                versions.append(v)
                versionOrder = true
                if case .number(let d) = v { numbers.append(d) }
            case .eq(let v), .ne(let v):
                arrayDiffersFromText = true
                scalar(v)
            case .compare(_, let v):
                let p = v.primitive
                if case .string(let s) = p {
                    strings.append(s)
                    textOrder = true
                    let n = JSNumber.parse(s)
                    if n.isFinite { numbers.append(n) }
                } else {
                    let n = p.jsNumber
                    if n.isFinite { numbers.append(n) }
                    numericOrder = true
                }
                arrayAsText = true
            case .type: arrayDiffersFromText = true
            case .exists, .alwaysFalse: break
            case .isIn(let list, let i), .notIn(let list, let i):
                list.forEach { scalar($0) }
                if i { insensitive = true }
                memberLists.append((list, i))
            case .inGroup(_, let list), .notInGroup(_, let list):
                list.forEach { scalar($0) }
                memberLists.append((list, false))
            case .not(let inner): add(inner)
            case .size(let inner): sizeTests.append(inner)
            case .elemMatch(.value(let inner)): elementTests.append(inner)
            case .elemMatch(.condition(let c)): elementConditions.append(c)
            case .all(let items, _): allItems += items
            case .regex(let r):
                regex = true
                arrayAsText = true
                if let sample = r.example() { strings.append(sample) }
            }
        }

        /// Why this path's classes may be incomplete.
        func inexact(_ path: String) -> String? {
            if regex { return "$regex on \(path)" }
            let orders = [textOrder, numericOrder, versionOrder].filter { $0 }.count
            if orders > 1 { return "\(path) is compared in more than one way (as text, as a number, as a version)" }
            if insensitive && (textOrder || versionOrder) { return "\(path) is matched case-insensitively and compared by order" }
            if !elementConditions.isEmpty { return "$elemMatch with a nested condition on \(path)" }
            return nil
        }

        /// Numbers: every constant, and values between and beyond them; 0 and 1 for truthiness.
        func numberGrid() -> [Double] {
            var grid = Set(numbers.filter(\.isFinite))
            var integers: [Double] = []
            for v in versions {
                let text = v.jsString.drop { $0 == "v" }
                if let major = Double(text.prefix { $0.isNumber }) { integers += [major - 1, major, major + 1] }
            }
            let sorted = grid.sorted()
            var out: [Double] = sorted
            if let lo = sorted.first, let hi = sorted.last {
                // Beyond: one below and above (the next double where ±1 is lost, past 2^53; past the largest double
                // only the text "Infinity" is, see ``strings(numbers:)``).
                out += [lo - 1 < lo ? lo - 1 : lo.nextDown, hi + 1 > hi ? hi + 1 : hi.nextUp].filter(\.isFinite)
                for (a, b) in zip(sorted, sorted.dropFirst()) {
                    let mid = a + (b - a) / 2
                    if mid > a && mid < b { out.append(mid) } else if a.nextUp < b { out.append(a.nextUp) }
                }
            }
            out += [0, 1, -1] + integers
            grid = []
            return out.filter { grid.insert($0).inserted }
        }

        /// Strings: the constants (and their case variants), strings between and beyond them, the text of every
        /// candidate number in three spellings, the names JavaScript gives other values, versions around each
        /// version constant.
        func strings(numbers: [Double]) -> [String] {
            // Sorted, so that the values (and the witness) do not depend on the order of the tests.
            var out = Array(Set(strings)).sorted(by: UTF16Order.less)
            if insensitive { out += strings.flatMap { [$0.lowercased(), $0.uppercased()] } }
            let sorted = Array(Set(strings)).sorted(by: UTF16Order.less)
            if let lo = sorted.first, let hi = sorted.last {
                if !lo.isEmpty { out.append("") }
                out.append(between(hi, nil))
                for (a, b) in zip(sorted, sorted.dropFirst()) { out.append(between(a, b)) }
            }
            out += ["", "other", "null", "true", "false", "[object Object]", "Infinity", "-Infinity"]
            for d in numbers { let t = JSNumber.string(d); out += [t, " " + t, t + " "] }
            if !versions.isEmpty {
                out += ["0", "99999.99999.99999"]
                for v in versions.map(\.jsString) + strings {
                    out += [v, v + "-0", v + "-~~", v + ".0", v + ".0-0"]
                }
            }
            return out
        }

        /// Arrays: [] and arrays of the element classes (every subset, with the lengths `$size` needs), or, when
        /// an array is only read as text, one-element arrays of the string candidates.
        /// The longest array the search builds (for `$size` and `length`).
        static let maxLength = 1024

        func arrays(depth: Int, positional: [ValueCondition] = [], lengthTests: [ValueCondition] = [], path: String = "", tests: [ValueCondition] = []) -> Domain {
            let byElements = !memberLists.isEmpty || !allItems.isEmpty || !elementTests.isEmpty || !elementConditions.isEmpty || !sizeTests.isEmpty
                || !positional.isEmpty || !lengthTests.isEmpty
            var out: [JSValue] = [.array([])]
            var reasons: [String] = []
            // A one-element array reads as its element's text; only tests that see the difference need them.
            if arrayAsText && (arrayDiffersFromText || byElements) {
                let texts = strings(numbers: numberGrid())
                out += texts.prefix(256).map { .array([.string($0)]) }
                if texts.count > 256 { reasons.append("too many text values to build one-element arrays of each") }
            }
            out += constants.filter(\.isArray)
            guard byElements else { return Domain(values: out, inexact: nil) }
            // An array of two or more elements reads as text with a comma, which is never a number: then only
            // text literals with a comma, text order and patterns can tell such arrays apart by their text. Without
            // those, the element classes (with what each one-element array's text gives) are complete.
            if arrayAsText && (textOrder || regex || commaText) { reasons.append("an array is tested both by its elements and as text") }
            guard depth < 3 else { return Domain(values: out, inexact: "arrays nested more than three deep") }
            // Element classes.
            var pool: [JSValue] = [.null, .bool(false), .bool(true), .number(0), .number(1), .string(""), .string("other"), .object([:])]
            // The path's own constants as elements: a one-element array reads as its element (`[2] * 1 === 2`).
            if arrayAsText || arrayDiffersFromText {
                let grid = numberGrid()
                let texts = strings(numbers: grid)
                if grid.count + texts.count > 512 { reasons.append("too many values to try as elements") }
                pool += grid.prefix(256).map(JSValue.number) + texts.prefix(256).map(JSValue.string)
            }
            for (list, i) in memberLists.sorted(by: { $0.0.description < $1.0.description }) {
                pool += list
                if i {
                    for case .string(let s) in list { pool += [.string(s.lowercased()), .string(s.uppercased())] }
                }
            }
            let itemTests = allItems + elementTests + positional
            if !positional.isEmpty { reasons.append("elements of \(path) are tested by position") }
            if !itemTests.isEmpty {
                let inner = Candidates.values(for: itemTests, at: "element", depth: depth + 1)
                pool += inner.values
                if let r = inner.inexact { reasons.append(r) }
            }
            for c in elementConditions {
                if let w = Satisfiability.witness([c]), w.undecided == nil { pool.append(.object(w.attributes)) }
                if let w = Satisfiability.witness([.not(c)]), w.undecided == nil { pool.append(.object(w.attributes)) }
            }
            var seen = Set<[Bool]>()
            var classes: [JSValue] = []
            for e in pool {
                var signature: [Bool] = [e.truthy] + (arrayAsText || arrayDiffersFromText ? tests.map { $0.evaluate(.array([e])) } : [])
                for (list, i) in memberLists { signature += list.map { Operator.isIn(e, [$0], insensitive: i) && !e.isArray } }
                signature += allItems.map { $0.evaluate(e) }
                signature += elementTests.map { $0.evaluate(e) }
                signature += positional.map { $0.evaluate(e) }
                signature += elementConditions.map { $0.evaluate(on: e) }
                if seen.insert(signature).inserted { classes.append(e) }
            }
            // Lengths `$size` can tell apart.
            var lengths = Set<Int>([0, 1])
            for t in sizeTests + lengthTests {
                var f = Facts()
                f.add(t)
                for n in f.numberGrid() where n.isFinite && n > -2 {
                    guard n <= Double(Self.maxLength) else { reasons.append("lengths above \(Self.maxLength) are not built"); continue }
                    for l in [n.rounded(.down), n.rounded(.up), n.rounded(.down) - 1, n.rounded(.up) + 1] where l >= 0 && l <= Double(Self.maxLength) { lengths.insert(Int(l)) }
                }
            }
            let limit = 8
            var subsets: [[JSValue]] = []
            if classes.count <= limit {
                for mask in 1..<(1 << classes.count) {
                    subsets.append(classes.indices.filter { mask & (1 << $0) != 0 }.map { classes[$0] })
                }
            } else {
                reasons.append("too many element classes to enumerate")
                for a in classes.indices {
                    subsets.append([classes[a]])
                    for b in classes.indices where b > a { subsets.append([classes[a], classes[b]]) }
                }
            }
            for s in subsets {
                out.append(.array(s))
                if !positional.isEmpty && s.count > 1 { out.append(.array(s.reversed())) }
                for l in lengths.sorted() where l > s.count {
                    out.append(.array(s + Array(repeating: s[0], count: l - s.count)))
                }
            }
            return Domain(values: out, inexact: reasons.isEmpty ? nil : reasons.joined(separator: "; "))
        }
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
