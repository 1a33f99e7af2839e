/// Regular expressions matched in time linear in the input, for `$regex` targeting.
///
/// GrowthBook's SDKs evaluate `$regex` with JavaScript's `RegExp(pattern).test(value)`, a backtracking
/// engine: a pattern such as `^(a+)+$` takes exponential time on `"aaaa…!"`. Since `assign` needs no role,
/// such a pattern would let anyone hold the daemon. Referee accepts the ECMAScript syntax that a finite
/// automaton can match (everything but backreferences and lookaround) and matches it with a Thompson NFA
/// simulation (Pike VM): at most one thread per program instruction per input position, so the time is
/// O(pattern size × input length) whatever the pattern. Refused at registration, with a violation naming
/// the path: backreferences (`\1`, `\k<name>`), lookahead and lookbehind (`(?=`, `(?!`, `(?<=`, `(?<!`),
/// and patterns that expand to more than ``maxProgramSize`` instructions (large counted repetitions).
///
/// Semantics follow JavaScript without flags (or with `i` for `$regexi`): the value is matched as UTF-16
/// code units; `.` matches any unit but line terminators; `^` and `$` are the start and end of the value;
/// `\d \w \s` and `\b` are JavaScript's; a match anywhere in the value counts (`test`).
public struct LinearRegex: Sendable, Hashable {
    public let pattern: String
    public let caseInsensitive: Bool
    private let program: [Instruction]
    private let anchoredStart: Bool

    /// The most instructions a compiled pattern may have (bounds the cost per input unit).
    public static let maxProgramSize = 20_000

    public enum CompileError: Error, Equatable, Sendable, CustomStringConvertible {
        /// The pattern is not a regular expression (JavaScript would throw too).
        case syntax(String)
        /// The pattern needs a feature only backtracking can match.
        case notLinear(String)
        case tooLarge(Int)

        public var isSyntax: Bool { if case .syntax = self { true } else { false } }

        public var description: String {
            switch self {
            case .syntax(let why): "$regex pattern does not compile: \(why)"
            case .notLinear(let feature): "$regex pattern uses \(feature), which cannot be matched in linear time; Referee accepts ECMAScript regular expressions without backreferences and lookaround"
            case .tooLarge(let n): "$regex pattern expands to \(n) instructions, more than the limit of \(LinearRegex.maxProgramSize); use smaller repetition counts"
            }
        }
    }

    public init(_ pattern: String, caseInsensitive: Bool = false) throws(CompileError) {
        self.pattern = pattern
        self.caseInsensitive = caseInsensitive
        var parser = Parser(units: Array(pattern.utf16))
        let node = try parser.parseAll()
        var compiler = Compiler(caseInsensitive: caseInsensitive)
        try compiler.emit(node)
        compiler.program.append(.match)
        program = compiler.program
        anchoredStart = node.startsAnchored
    }

    public static func == (a: LinearRegex, b: LinearRegex) -> Bool { a.pattern == b.pattern && a.caseInsensitive == b.caseInsensitive }
    public func hash(into h: inout Hasher) { h.combine(pattern); h.combine(caseInsensitive) }

    /// JavaScript's `RegExp.prototype.test`: a match anywhere in `text`.
    public func matches(_ text: String) -> Bool {
        let input = Array(text.utf16)
        let n = program.count
        var current = ThreadList(capacity: n), next = ThreadList(capacity: n)
        var stack: [Int] = []
        stack.reserveCapacity(16)
        var position = 0
        while true {
            // A new thread starts at every position (an unanchored search) until the pattern is anchored.
            if position == 0 || !anchoredStart {
                if add(0, at: position, input, &current, &stack) { return true }
            }
            if current.count == 0 && (anchoredStart || position >= input.count) { return false }
            if position >= input.count { return false }
            let unit = input[position]
            next.clear()
            for i in 0..<current.count {
                let pc = current.dense[i]
                guard case .unit(let matcher) = program[pc], matcher.matches(unit, caseInsensitive: caseInsensitive) else { continue }
                if add(pc + 1, at: position + 1, input, &next, &stack) { return true }
            }
            swap(&current, &next)
            position += 1
        }
    }

    /// A short string the pattern matches (found breadth-first over the program), or nil when none is found
    /// within a small search; used to build witnesses for `$regex` targeting. Word boundaries are not followed.
    public func example() -> String? {
        struct State: Hashable { var pc: Int; var empty: Bool; var ended: Bool }
        var queue: [(State, [UInt16])] = [(State(pc: 0, empty: true, ended: false), [])]
        var seen = Set<State>()
        var head = 0
        while head < queue.count, head < 20_000 {
            let (state, text) = queue[head]
            head += 1
            guard seen.insert(state).inserted else { continue }
            switch program[state.pc] {
            case .match: return String(decoding: text, as: UTF16.self)
            case .jump(let to): queue.append((State(pc: to, empty: state.empty, ended: state.ended), text))
            case .split(let a, let b):
                queue.append((State(pc: a, empty: state.empty, ended: state.ended), text))
                queue.append((State(pc: b, empty: state.empty, ended: state.ended), text))
            case .assertStart: if state.empty { queue.append((State(pc: state.pc + 1, empty: true, ended: state.ended), text)) }
            case .assertEnd: queue.append((State(pc: state.pc + 1, empty: state.empty, ended: true), text))
            case .wordBoundary: break
            case .unit(let matcher):
                guard !state.ended, let u = matcher.example(caseInsensitive: caseInsensitive) else { continue }
                queue.append((State(pc: state.pc + 1, empty: false, ended: false), text + [u]))
            }
        }
        return nil
    }

    /// Adds the thread at `pc` and every thread reachable without consuming input; true on a match.
    private func add(_ start: Int, at position: Int, _ input: [UInt16], _ list: inout ThreadList, _ stack: inout [Int]) -> Bool {
        stack.append(start)
        while let pc = stack.popLast() {
            guard list.insert(pc) else { continue }
            switch program[pc] {
            case .match: stack.removeAll(keepingCapacity: true); return true
            case .jump(let to): stack.append(to)
            case .split(let a, let b): stack.append(b); stack.append(a)
            case .assertStart: if position == 0 { stack.append(pc + 1) }
            case .assertEnd: if position == input.count { stack.append(pc + 1) }
            case .wordBoundary(let wanted):
                let before = position > 0 && Matcher.isWord(input[position - 1])
                let after = position < input.count && Matcher.isWord(input[position])
                if (before != after) == wanted { stack.append(pc + 1) }
            case .unit: break
            }
        }
        return false
    }

    enum Instruction: Sendable {
        case unit(Matcher)
        case split(Int, Int)
        case jump(Int)
        case assertStart, assertEnd
        case wordBoundary(Bool)
        case match
    }

    /// A sparse set of program counters (Briggs–Torczon): O(1) insert, membership and clear.
    struct ThreadList {
        var dense: [Int]
        var sparse: [Int]
        var count = 0
        init(capacity: Int) {
            dense = [Int](repeating: 0, count: capacity)
            sparse = [Int](repeating: 0, count: capacity)
        }
        mutating func insert(_ pc: Int) -> Bool {
            let i = sparse[pc]
            if i < count && dense[i] == pc { return false }
            sparse[pc] = count
            dense[count] = pc
            count += 1
            return true
        }
        mutating func clear() { count = 0 }
    }
}

/// What one input unit is tested against.
enum Matcher: Sendable, Hashable {
    case unit(UInt16)
    case any                                   // `.`: all but line terminators
    case set([ClosedRange<UInt16>], negated: Bool)

    /// A unit this matcher accepts (a readable one when possible).
    func example(caseInsensitive: Bool) -> UInt16? {
        switch self {
        case .unit(let u): return u
        case .any: return 0x61
        case .set:
            for c in Array("aA0z_ ~.-".utf16) + [0x100, 0x3000] where matches(c, caseInsensitive: caseInsensitive) { return c }
            for c in UInt16(0x20)...UInt16(0x7E) where matches(c, caseInsensitive: caseInsensitive) { return c }
            return nil
        }
    }

    /// ECMAScript's CharacterSetMatcher: with the `i` flag, a unit matches when some member of the set has
    /// the same canonical form (Canonicalize, non-Unicode mode); an inverted set when none has.
    func matches(_ c: UInt16, caseInsensitive: Bool) -> Bool {
        switch self {
        case .any: return !(c == 0x0A || c == 0x0D || c == 0x2028 || c == 0x2029)
        case .unit(let u):
            return u == c || (caseInsensitive && Self.canonical(u) == Self.canonical(c))
        case .set(let ranges, let negated):
            // Ranges are sorted and merged at compile time: a binary search.
            func member(_ x: UInt16) -> Bool {
                var lo = 0, hi = ranges.count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if ranges[mid].upperBound < x { lo = mid + 1 } else { hi = mid }
                }
                return lo < ranges.count && ranges[lo].contains(x)
            }
            var found = member(c)
            if !found && caseInsensitive {
                let target = Self.canonical(c)
                found = Self.sameCanonical(c, target).contains(where: member)
            }
            return found != negated
        }
    }

    /// JavaScript's Canonicalize without the `u` flag: `toUpperCase` when that gives one code unit, except
    /// that nothing outside ASCII becomes ASCII.
    static func canonical(_ c: UInt16) -> UInt16 {
        guard c >= 0x61 else { return c }
        if c <= 0x7A { return c - 0x20 }
        guard c >= 0x80, let scalar = Unicode.Scalar(UInt32(c)) else { return c }
        let upper = Array(String(Character(scalar)).uppercased().utf16)
        guard upper.count == 1, upper[0] >= 0x80 else { return c }
        return upper[0]
    }

    /// Units whose canonical form is `target` (besides `c` itself): the target and its lower-case forms.
    static func sameCanonical(_ c: UInt16, _ target: UInt16) -> [UInt16] {
        var out: [UInt16] = [target]
        if let scalar = Unicode.Scalar(UInt32(target)) {
            let lower = Array(String(Character(scalar)).lowercased().utf16)
            if lower.count == 1 { out.append(lower[0]) }
        }
        if let scalar = Unicode.Scalar(UInt32(c)) {
            let lower = Array(String(Character(scalar)).lowercased().utf16)
            if lower.count == 1 { out.append(lower[0]) }
        }
        return out.filter { $0 != c && canonical($0) == target }
    }

    static func isWord(_ c: UInt16) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
    }

    static let digit: [ClosedRange<UInt16>] = [0x30...0x39]
    static let word: [ClosedRange<UInt16>] = [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]
    static let space: [ClosedRange<UInt16>] = [0x09...0x0D, 0x20...0x20, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A,
                                                0x2028...0x2029, 0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF]

    /// Sorted, non-overlapping, non-adjacent ranges covering the same units.
    static func merged(_ ranges: [ClosedRange<UInt16>]) -> [ClosedRange<UInt16>] {
        var out: [ClosedRange<UInt16>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, UInt32(r.lowerBound) <= UInt32(last.upperBound) + 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    /// The complement of sorted, possibly overlapping ranges.
    static func complement(_ ranges: [ClosedRange<UInt16>]) -> [ClosedRange<UInt16>] {
        var out: [ClosedRange<UInt16>] = []
        var next: UInt32 = 0
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if UInt32(r.lowerBound) > next { out.append(UInt16(next)...(r.lowerBound - 1)) }
            next = max(next, UInt32(r.upperBound) + 1)
        }
        if next <= 0xFFFF { out.append(UInt16(next)...0xFFFF) }
        return out
    }
}

/// The pattern's syntax tree.
indirect enum RegexNode: Sendable {
    case empty
    case unit(Matcher)
    case sequence([RegexNode])
    case alternation([RegexNode])
    case repetition(RegexNode, min: Int, max: Int?)
    case start, end
    case wordBoundary(Bool)

    var startsAnchored: Bool {
        switch self {
        case .start: true
        case .sequence(let items): items.first?.startsAnchored ?? false
        case .alternation(let items): !items.isEmpty && items.allSatisfy(\.startsAnchored)
        default: false
        }
    }
}

/// ECMAScript pattern syntax (without the `u` flag), recursive descent.
private struct Parser {
    let units: [UInt16]
    var index = 0
    var depth = 0

    init(units: [UInt16]) { self.units = units }

    private var atEnd: Bool { index >= units.count }
    private func peek(_ offset: Int = 0) -> UInt16? { index + offset < units.count ? units[index + offset] : nil }
    private static func ascii(_ c: Character) -> UInt16 { UInt16(c.asciiValue!) }

    mutating func parseAll() throws(LinearRegex.CompileError) -> RegexNode {
        let node = try parseAlternation()
        guard atEnd else { throw .syntax("unmatched ) at position \(index)") }
        return node
    }

    mutating func parseAlternation() throws(LinearRegex.CompileError) -> RegexNode {
        var branches = [try parseSequence()]
        while peek() == Self.ascii("|") {
            index += 1
            branches.append(try parseSequence())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    mutating func parseSequence() throws(LinearRegex.CompileError) -> RegexNode {
        var items: [RegexNode] = []
        while let c = peek(), c != Self.ascii("|"), c != Self.ascii(")") {
            let isGroup = c == Self.ascii("(")
            var atom = try parseAtom()
            if let (min, max) = try parseQuantifier() {
                // An assertion cannot be repeated, but a group holding one can (Annex B).
                switch atom {
                case .start, .end, .wordBoundary: if !isGroup { throw .syntax("nothing to repeat at position \(index)") }
                default: break
                }
                atom = .repetition(atom, min: min, max: max)
            }
            items.append(atom)
        }
        return items.count == 1 ? items[0] : (items.isEmpty ? .empty : .sequence(items))
    }

    /// `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`, each maybe lazy (`?`): laziness does not change whether it matches.
    mutating func parseQuantifier() throws(LinearRegex.CompileError) -> (Int, Int?)? {
        guard let c = peek() else { return nil }
        var result: (Int, Int?)
        switch c {
        case Self.ascii("*"): index += 1; result = (0, nil)
        case Self.ascii("+"): index += 1; result = (1, nil)
        case Self.ascii("?"): index += 1; result = (0, 1)
        case Self.ascii("{"):
            guard let braced = bracedQuantifier() else { return nil }   // Annex B: a literal `{`
            result = braced
        default: return nil
        }
        if peek() == Self.ascii("?") { index += 1 }
        if let c = peek(), c == Self.ascii("*") || c == Self.ascii("+") || c == Self.ascii("?") || (c == Self.ascii("{") && lookaheadBraced()) {
            throw .syntax("nothing to repeat at position \(index)")
        }
        if let max = result.1, max < result.0 { throw .syntax("numbers out of order in {\(result.0),\(max)} quantifier") }
        return result
    }

    private func lookaheadBraced() -> Bool { var copy = self; return copy.bracedQuantifier() != nil }

    private mutating func bracedQuantifier() -> (Int, Int?)? {
        let save = index
        index += 1
        func number() -> Int? {
            var n: Int?
            while let c = peek(), c >= 0x30, c <= 0x39 {
                n = min((n ?? 0) * 10 + Int(c - 0x30), 1_000_000)
                index += 1
            }
            return n
        }
        guard let low = number() else { index = save; return nil }
        var high: Int? = low
        if peek() == Self.ascii(",") {
            index += 1
            high = number()
        }
        guard peek() == Self.ascii("}") else { index = save; return nil }
        index += 1
        return (low, high)
    }

    mutating func parseAtom() throws(LinearRegex.CompileError) -> RegexNode {
        let c = units[index]
        index += 1
        switch c {
        case Self.ascii("^"): return .start
        case Self.ascii("$"): return .end
        case Self.ascii("."): return .unit(.any)
        case Self.ascii("("):
            depth += 1
            guard depth <= 200 else { throw .tooLarge(LinearRegex.maxProgramSize + 1) }
            if peek() == Self.ascii("?") {
                switch peek(1) {
                case Self.ascii(":"): index += 2
                case Self.ascii("="): throw .notLinear("lookahead (?=")
                case Self.ascii("!"): throw .notLinear("negative lookahead (?!")
                case Self.ascii("<"):
                    if peek(2) == Self.ascii("=") { throw .notLinear("lookbehind (?<=") }
                    if peek(2) == Self.ascii("!") { throw .notLinear("negative lookbehind (?<!") }
                    // A named group `(?<name>…)`: captures do not matter for a yes/no match.
                    index += 2
                    while let u = peek(), u != Self.ascii(">") {
                        guard Matcher.isWord(u) || u == Self.ascii("$") else { throw .syntax("invalid group name") }
                        index += 1
                    }
                    guard peek() == Self.ascii(">") else { throw .syntax("unterminated group name") }
                    index += 1
                default: throw .syntax("invalid group at position \(index - 1)")
                }
            }
            let inner = try parseAlternation()
            guard peek() == Self.ascii(")") else { throw .syntax("missing )") }
            index += 1
            depth -= 1
            return inner
        case Self.ascii(")"): throw .syntax("unmatched )")
        case Self.ascii("["): return .unit(try parseClass())
        case Self.ascii("*"), Self.ascii("+"), Self.ascii("?"): throw .syntax("nothing to repeat at position \(index - 1)")
        case Self.ascii("{"):
            index -= 1
            if lookaheadBraced() { throw .syntax("nothing to repeat at position \(index)") }
            index += 1
            return .unit(.unit(c))
        case Self.ascii("\\"): return try parseEscape()
        default: return .unit(.unit(c))
        }
    }

    mutating func parseEscape() throws(LinearRegex.CompileError) -> RegexNode {
        guard let c = peek() else { throw .syntax("\\ at end of pattern") }
        index += 1
        switch c {
        case Self.ascii("b"): return .wordBoundary(true)
        case Self.ascii("B"): return .wordBoundary(false)
        case Self.ascii("1")...Self.ascii("9"): throw .notLinear("a backreference \\\(Character(Unicode.Scalar(UInt8(c))))")
        case Self.ascii("k") where peek() == Self.ascii("<"): throw .notLinear("a named backreference \\k<…>")
        default:
            index -= 1
            return .unit(try parseClassEscapeOrUnit(inClass: false))
        }
    }

    /// An escape that stands for one unit or a class (`\d`, `\x41`, `\.`), in or out of brackets.
    mutating func parseClassEscapeOrUnit(inClass: Bool) throws(LinearRegex.CompileError) -> Matcher {
        let c = units[index]
        index += 1
        switch c {
        case Self.ascii("d"): return .set(Matcher.digit, negated: false)
        case Self.ascii("D"): return .set(Matcher.digit, negated: true)
        case Self.ascii("w"): return .set(Matcher.word, negated: false)
        case Self.ascii("W"): return .set(Matcher.word, negated: true)
        case Self.ascii("s"): return .set(Matcher.space, negated: false)
        case Self.ascii("S"): return .set(Matcher.space, negated: true)
        case Self.ascii("t"): return .unit(0x09)
        case Self.ascii("n"): return .unit(0x0A)
        case Self.ascii("v"): return .unit(0x0B)
        case Self.ascii("f"): return .unit(0x0C)
        case Self.ascii("r"): return .unit(0x0D)
        case Self.ascii("b") where inClass: return .unit(0x08)
        case Self.ascii("0") where !(peek().map { $0 >= 0x30 && $0 <= 0x39 } ?? false): return .unit(0)
        case Self.ascii("x"):
            if let v = hex(2) { return .unit(v) }
            return .unit(c)
        case Self.ascii("u"):
            if let v = hex(4) { return .unit(v) }
            return .unit(c)
        case Self.ascii("c"):
            if let l = peek(), (l >= 0x41 && l <= 0x5A) || (l >= 0x61 && l <= 0x7A) { index += 1; return .unit(l % 32) }
            index -= 1
            return .unit(Self.ascii("\\"))
        case Self.ascii("1")...Self.ascii("7") where inClass:
            // Annex B: in a class, \1 to \7 are octal escapes (\8 and \9 are the digits).
            return .unit(c - 0x30)
        default:
            // Identity escape (`\.`, `\/`, `\-`, and in Annex B any other character).
            return .unit(c)
        }
    }

    private mutating func hex(_ digits: Int) -> UInt16? {
        guard index + digits <= units.count else { return nil }
        var v: UInt16 = 0
        for i in 0..<digits {
            let u = units[index + i]
            let d: UInt16
            switch u {
            case 0x30...0x39: d = u - 0x30
            case 0x41...0x46: d = u - 0x41 + 10
            case 0x61...0x66: d = u - 0x61 + 10
            default: return nil
            }
            v = v * 16 + d
        }
        index += digits
        return v
    }

    mutating func classMember() throws(LinearRegex.CompileError) -> Matcher {
        let c = units[index]
        index += 1
        if c == Self.ascii("\\") {
            guard !atEnd else { throw .syntax("\\ at end of pattern") }
            return try parseClassEscapeOrUnit(inClass: true)
        }
        return .unit(c)
    }

    mutating func parseClass() throws(LinearRegex.CompileError) -> Matcher {
        var negated = false
        if peek() == Self.ascii("^") { negated = true; index += 1 }
        var ranges: [ClosedRange<UInt16>] = []
        func classItem(_ m: Matcher) -> (UInt16?, [ClosedRange<UInt16>]) {
            switch m {
            case .unit(let u): return (u, [u...u])
            case .set(let rs, let neg): return (nil, neg ? Matcher.complement(rs) : rs)
            case .any: return (nil, [0...0xFFFF])
            }
        }
        while true {
            guard let c = peek() else { throw .syntax("missing ] of a character class") }
            if c == Self.ascii("]") { index += 1; break }
            let (low, lowRanges) = classItem(try classMember())
            if peek() == Self.ascii("-"), let after = peek(1), after != Self.ascii("]") {
                index += 1
                let (high, highRanges) = classItem(try classMember())
                if let low, let high {
                    guard low <= high else { throw .syntax("range out of order in character class") }
                    ranges.append(low...high)
                } else {
                    // Annex B: `[\d-z]` is the class, a `-` and the other side.
                    ranges += lowRanges + [0x2D...0x2D] + highRanges
                }
            } else {
                ranges += lowRanges
            }
        }
        return .set(Matcher.merged(ranges), negated: negated)
    }
}

/// Emits Pike VM instructions for a syntax tree.
private struct Compiler {
    let caseInsensitive: Bool
    var program: [LinearRegex.Instruction] = []
    /// Instructions plus the ranges their classes hold: what one input unit can cost.
    var weight = 0
    /// Calls of `emit`: repetitions of parts that emit nothing must not run for ever either.
    var work = 0

    init(caseInsensitive: Bool) { self.caseInsensitive = caseInsensitive }

    mutating func emit(_ node: RegexNode) throws(LinearRegex.CompileError) {
        work += 1
        guard program.count <= LinearRegex.maxProgramSize, weight <= LinearRegex.maxProgramSize, work <= 10 * LinearRegex.maxProgramSize else {
            throw .tooLarge(max(program.count, weight))
        }
        switch node {
        case .empty: break
        case .unit(let m):
            program.append(.unit(m))
            weight += 1
            if case .set(let ranges, _) = m { weight += ranges.count / 8 }
        case .start: program.append(.assertStart)
        case .end: program.append(.assertEnd)
        case .wordBoundary(let b): program.append(.wordBoundary(b))
        case .sequence(let items): for item in items { try emit(item) }
        case .alternation(let branches):
            var jumps: [Int] = []
            for (i, branch) in branches.enumerated() {
                if i < branches.count - 1 {
                    let split = program.count
                    program.append(.split(split + 1, -1))
                    try emit(branch)
                    jumps.append(program.count)
                    program.append(.jump(-1))
                    program[split] = .split(split + 1, program.count)
                } else {
                    try emit(branch)
                }
            }
            for j in jumps { program[j] = .jump(program.count) }
        case .repetition(let inner, let min, let max):
            // A part that emits nothing (an empty group, x{0}) is the same however often it repeats.
            let before = program.count
            try emit(inner)
            if program.count == before { return }
            program.removeSubrange(before...)
            for _ in 0..<min { try emit(inner) }
            if let max {
                // (inner (inner (…)?)?)? for the optional copies.
                var splits: [Int] = []
                for _ in min..<max {
                    splits.append(program.count)
                    program.append(.split(program.count + 1, -1))
                    try emit(inner)
                }
                for s in splits { program[s] = .split(s + 1, program.count) }
            } else {
                let loop = program.count
                program.append(.split(loop + 1, -1))
                try emit(inner)
                program.append(.jump(loop))
                program[loop] = .split(loop + 1, program.count)
            }
        }
        guard program.count <= LinearRegex.maxProgramSize else { throw .tooLarge(program.count) }
    }
}
