public import JSONCore

/// A JSON value as GrowthBook's JavaScript SDK sees it when it evaluates targeting: the attributes of a unit,
/// the operands of a condition. Hashable (conditions are deduplicated and cached by value), and with the
/// JavaScript coercions that the condition language relies on (`value + ""`, `value * 1`, `!!value`, `<`).
///
/// Objects are unordered (as JSON objects are): JavaScript compares objects for equality by
/// `JSON.stringify`, which also sees the order of members; Referee compares members regardless of order.
public indirect enum JSValue: Hashable, Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSValue])
    case object([String: JSValue])

    public init(_ json: JSON) {
        switch json {
        case .null, .raw: self = .null
        case .bool(let b): self = .bool(b)
        case .number(let d): self = .number(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(JSValue.init))
        case .object(let o): self = .object(o.mapValues(JSValue.init))
        }
    }

    public var json: JSON {
        switch self {
        case .null: .null
        case .bool(let b): .bool(b)
        case .number(let d): .number(d)
        case .string(let s): .string(s)
        case .array(let a): .array(a.map(\.json))
        case .object(let o): .object(o.mapValues(\.json))
        }
    }

    public var description: String { json.serialized() }

    public var isNull: Bool { self == .null }
    var isArray: Bool { if case .array = self { true } else { false } }

    /// `typeof`, as GrowthBook's `getType` names it ("null", "array", "object", "string", "number", "boolean").
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    // MARK: - JavaScript coercions

    /// `!!value`.
    public var truthy: Bool {
        switch self {
        case .null: false
        case .bool(let b): b
        case .number(let d): d != 0 && !d.isNaN
        case .string(let s): !s.isEmpty
        case .array, .object: true
        }
    }

    /// `String(value)` (and `value + ""`): arrays join their elements with commas (null elements as empty).
    public var jsString: String {
        switch self {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .number(let d): JSNumber.string(d)
        case .string(let s): s
        case .array(let a): a.map { $0 == .null ? "" : $0.jsString }.joined(separator: ",")
        case .object: "[object Object]"
        }
    }

    /// `ToPrimitive(value, number)`: arrays and objects become their string form.
    var primitive: JSValue {
        switch self {
        case .array, .object: .string(jsString)
        default: self
        }
    }

    /// `value * 1` (`ToNumber`); NaN when the value is not numeric.
    public var jsNumber: Double {
        switch self {
        case .null: 0
        case .bool(let b): b ? 1 : 0
        case .number(let d): d
        case .string(let s): JSNumber.parse(s)
        case .array, .object: JSNumber.parse(jsString)
        }
    }

    /// `a === b`: same type and value for scalars; an array or an object is only identical to itself, and an
    /// attribute is never the same object as an operand.
    static func strictlyEqual(_ a: JSValue, _ b: JSValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.bool(x), .bool(y)): x == y
        case let (.number(x), .number(y)): x == y
        case let (.string(x), .string(y)): sameText(x, y)
        default: false
        }
    }

    /// JavaScript's string equality: the same code units. (Swift's `==` also equates canonically equivalent text,
    /// "é" and "e\u{301}", which JavaScript tells apart.)
    @inline(__always)
    public static func sameText(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && a.utf8.elementsEqual(b.utf8)
    }

    /// The same JSON value, strings compared by code units (what `JSON.stringify(a) === JSON.stringify(b)` decides,
    /// members in any order).
    public static func sameJSON(_ a: JSValue, _ b: JSValue) -> Bool {
        switch (a, b) {
        case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { sameJSON($0, $1) }
        case let (.object(x), .object(y)):
            guard x.count == y.count else { return false }
            return x.allSatisfy { key, value in y.contains { sameText($0.key, key) && sameJSON(value, $0.value) } }
        default: return strictlyEqual(a, b)
        }
    }

    /// JavaScript's relational comparison `a < b` (with `orEqual`, `a <= b`): strings compare by UTF-16 code
    /// units, anything else as numbers, and a NaN makes every comparison false.
    static func less(_ a: JSValue, _ b: JSValue, orEqual: Bool) -> Bool {
        let pa = a.primitive, pb = b.primitive
        if case .string(let x) = pa, case .string(let y) = pb {
            let order = UTF16Order.compare(x, y)
            return orEqual ? order <= 0 : order < 0
        }
        let x = pa.jsNumber, y = pb.jsNumber
        if x.isNaN || y.isNaN { return false }
        return orEqual ? x <= y : x < y
    }

    /// GrowthBook's `getPath`: the value at a dotted path, or null when any step is not there. Arrays are
    /// reached by index and have a `length`, as JavaScript's `in` sees them.
    public func value(atPath path: String) -> JSValue {
        var current = self
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            switch current {
            case .object(let o):
                guard let next = o[String(part)] else { return .null }
                current = next
            case .array(let a):
                if part == "length" { current = .number(Double(a.count)); continue }
                guard let i = JSNumber.arrayIndex(part), i < a.count else { return .null }
                current = a[i]
            default:
                return .null
            }
        }
        return current
    }
}

/// JavaScript's conversions between numbers and strings.
public enum JSNumber {
    /// `Number::toString`: the shortest digits that round-trip, laid out as JavaScript does (`1e+21`, `1e-7`,
    /// `0.000001`, `123`).
    public static func string(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
        if d == 0 { return "0" }
        if d < 0 { return "-" + string(-d) }
        // Swift's description gives the shortest round-trip digits; take them and their decimal exponent.
        let text = "\(d)"
        var digits = ""
        var exponent = 0
        var mantissa = Substring(text)
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            mantissa = text[..<e]
        }
        var pointOffset = mantissa.count
        if let dot = mantissa.firstIndex(of: ".") {
            pointOffset = mantissa.distance(from: mantissa.startIndex, to: dot)
            digits = String(mantissa[..<dot]) + String(mantissa[mantissa.index(after: dot)...])
        } else {
            digits = String(mantissa)
        }
        // value = 0.d1d2…dk × 10^n
        var n = pointOffset + exponent
        while digits.hasPrefix("0") && digits.count > 1 { digits.removeFirst(); n -= 1 }
        while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
        let k = digits.count
        if k <= n && n <= 21 { return digits + String(repeating: "0", count: n - k) }
        if 0 < n && n <= 21 { return String(digits.prefix(n)) + "." + String(digits.dropFirst(n)) }
        if -6 < n && n <= 0 { return "0." + String(repeating: "0", count: -n) + digits }
        let e = n - 1
        let sign = e < 0 ? "-" : "+"
        let body = k == 1 ? digits : String(digits.prefix(1)) + "." + String(digits.dropFirst())
        return body + "e" + sign + String(abs(e))
    }

    /// `StringToNumber`: whitespace trimmed, empty is 0, decimal literals with sign and exponent, `Infinity`,
    /// and `0x`/`0o`/`0b` integers; anything else is NaN.
    public static func parse(_ s: String) -> Double {
        // Text that starts with a letter other than "I" (Infinity) is not a number: most attribute text, at once.
        if let first = s.utf8.first, (first | 0x20) >= UInt8(ascii: "a"), (first | 0x20) <= UInt8(ascii: "z"), first != UInt8(ascii: "I") {
            return .nan
        }
        var scalars = Substring(s).unicodeScalars
        while let f = scalars.first, isSpace(f) { scalars.removeFirst() }
        while let l = scalars.last, isSpace(l) { scalars.removeLast() }
        let body = Substring(scalars)
        if body.isEmpty { return 0 }
        if let d = plainDecimal(body.utf8) { return d }
        switch body {
        case "Infinity", "+Infinity": return .infinity
        case "-Infinity": return -.infinity
        default: return radixInteger(body) ?? .nan
        }
    }

    /// `[+-]digits[.digits][e[+-]digits]` (or `.digits…`) with nothing around it, read by strtod (the grammar is
    /// checked first, so strtod's extras, hex floats, "nan" and "inf", cannot reach it); nil for anything else.
    static func plainDecimal(_ u: Substring.UTF8View) -> Double? {
        var i = u.startIndex
        func digits() -> Int {
            var n = 0
            while i < u.endIndex, u[i] >= UInt8(ascii: "0"), u[i] <= UInt8(ascii: "9") { n += 1; i = u.index(after: i) }
            return n
        }
        if i < u.endIndex, u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-") { i = u.index(after: i) }
        var n = digits()
        if i < u.endIndex, u[i] == UInt8(ascii: ".") { i = u.index(after: i); n += digits() }
        guard n > 0 else { return nil }
        if i < u.endIndex, u[i] == UInt8(ascii: "e") || u[i] == UInt8(ascii: "E") {
            i = u.index(after: i)
            if i < u.endIndex, u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-") { i = u.index(after: i) }
            guard digits() > 0 else { return nil }
        }
        guard i == u.endIndex else { return nil }
        return Double(Substring(u))
    }

    /// `0x…`, `0o…`, `0b…` without a sign, ASCII digits only; exact up to 64 bits, then rounded once.
    static func radixInteger(_ body: Substring) -> Double? {
        guard body.count > 2, body.first == "0", let radix = ["x": 16, "X": 16, "o": 8, "O": 8, "b": 2, "B": 2][body.dropFirst().first!] else { return nil }
        var exact: UInt64 = 0
        var value = 0.0
        var overflow = false
        for ch in body.dropFirst(2) {
            guard ch.isASCII, let v = ch.hexDigitValue, v < radix else { return nil }
            if !overflow {
                let (m, o1) = exact.multipliedReportingOverflow(by: UInt64(radix))
                let (sum, o2) = m.addingReportingOverflow(UInt64(v))
                if o1 || o2 { overflow = true; value = Double(exact) } else { exact = sum }
            }
            if overflow { value = value * Double(radix) + Double(v) }
        }
        return overflow ? value : Double(exact)
    }

    /// A canonical array index ("0", "12"; not "01", "-1" or "1.0").
    static func arrayIndex(_ s: Substring) -> Int? {
        guard !s.isEmpty, s.count <= 9, s.allSatisfy({ $0.isASCII && $0.isNumber }), s == "0" || s.first != "0" else { return nil }
        return Int(s)
    }

    /// JavaScript's WhiteSpace and LineTerminator, which `Number()` trims.
    static func isSpace(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF: true
        case 0x2000...0x200A: true
        default: false
        }
    }
}
