/// Number and text formatting shared by the Markdown and HTML renderers. Pure Swift, no Foundation,
/// so output is identical on every platform and locale.
enum Fmt {
    static let minus = "\u{2212}"  // typographic minus: readable, and never mistaken for a hyphen

    /// `x` rounded to `decimals` places, e.g. fixed(0.12345, 2) == "0.12"; thousands grouped.
    /// Non-finite and astronomically large values fall back to a compact exponent form.
    static func fixed(_ x: Double, _ decimals: Int, signed: Bool = false, group: Bool = true) -> String {
        guard x.isFinite else { return x.isNaN ? "n/a" : (x > 0 ? "∞" : "\(minus)∞") }
        if abs(x) >= 1e9 { return exponent(x, signed: signed) }  // 1.00e12 reads better than 13 digits
        let d = max(0, min(decimals, 12))
        var scale = 1.0
        for _ in 0..<d { scale *= 10 }
        let scaled = (abs(x) * scale).rounded()
        guard scaled < 9.0e15 else { return exponent(x, signed: signed) }
        let n = UInt64(scaled)
        let whole = n / UInt64(scale)
        let frac = n % UInt64(scale)
        var intPart = String(whole)
        if group && intPart.count > 4 {  // 1234 stays, 12,345 groups
            var out = ""
            for (i, ch) in intPart.reversed().enumerated() {
                if i > 0 && i % 3 == 0 { out.append(",") }
                out.append(ch)
            }
            intPart = String(out.reversed())
        }
        var s = intPart
        if d > 0 {
            let f = String(frac)
            s += "." + String(repeating: "0", count: d - f.count) + f
        }
        if n == 0 { return s }  // never "-0.00" nor "+0.00"
        if x < 0 { return minus + s }
        return signed ? "+" + s : s
    }

    /// Decimal places that give `digits` significant digits to `magnitude` (never negative).
    static func decimals(forMagnitude magnitude: Double, digits: Int = 3) -> Int {
        let m = abs(magnitude)
        guard m.isFinite, m > 0 else { return digits - 1 }
        var exp = 0  // floor(log10(m)) without Foundation
        var v = m
        while v >= 10 { v /= 10; exp += 1 }
        while v < 1 { v *= 10; exp -= 1 }
        // 9.996 rounds up to 10.0 at three digits: one decimal fewer reads right.
        var scale = 1.0
        let dec = digits - 1 - exp
        if dec >= 0 { for _ in 0..<dec { scale *= 10 } }
        if dec >= 0, (m * scale).rounded() >= pow10(digits) { return max(0, dec - 1) }
        return max(0, dec)
    }

    private static func pow10(_ n: Int) -> Double {
        var r = 1.0
        for _ in 0..<n { r *= 10 }
        return r
    }

    /// Three significant digits (more for integers, which are never truncated): 0.1234 → "0.123", 12345.6 → "12,346".
    static func sig(_ x: Double, digits: Int = 3, signed: Bool = false) -> String {
        fixed(x, decimals(forMagnitude: x, digits: digits), signed: signed)
    }

    static func exponent(_ x: Double, signed: Bool) -> String {
        var m = abs(x)
        var e = 0
        while m >= 10 { m /= 10; e += 1 }
        while m < 1 && m > 0 { m *= 10; e -= 1 }
        let body = fixed(m, 2, group: false) + "e" + (e < 0 ? minus : "") + String(abs(e))
        return x < 0 ? minus + body : (signed ? "+" + body : body)
    }

    /// An integer count with grouping: 10050 → "10,050".
    static func count(_ x: Double) -> String { fixed(x, 0) }

    /// A share as a percentage with three significant digits: 0.498 → "49.8%".
    static func percent(_ x: Double, signed: Bool = false) -> String {
        sig(x * 100, signed: signed) + "%"
    }

    /// Up to three significant digits without trailing zeros, for parameters and statistics:
    /// 0.05 → "0.05", 2 → "2", 0.4 → "0.4", 0.0001 → "0.0001".
    /// 0.5 → "median", 0.9 → "90th percentile", 0.999 → "99.9th percentile".
    static func percentileName(_ q: Double) -> String {
        if q == 0.5 { return "median" }
        let percent = plain((q * 100 * 1e6).rounded() / 1e6)
        let whole = percent.contains(".") ? Int(percent.split(separator: ".").last!.last!.wholeNumberValue ?? 0) : (Int(percent) ?? 0)
        let teen = !percent.contains(".") && (Int(percent) ?? 0) % 100 / 10 == 1
        let suffix = teen ? "th" : [1: "st", 2: "nd", 3: "rd"][whole % 10] ?? "th"
        return "\(percent)\(suffix) percentile"
    }

    static func plain(_ x: Double) -> String {
        var s = sig(x)
        guard s.contains("."), !s.contains("e") else { return s }
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    /// p-values: up to three significant digits, floored at "< 0.0001" and capped at "> 0.999".
    static func pValue(_ p: Double) -> String {
        guard p.isFinite else { return "n/a" }
        if p < 0.0001 { return "< 0.0001" }
        if p > 0.999 { return "> 0.999" }
        return plain(p)
    }

    /// "p = 0.52", or "p < 0.0001" at the floor.
    static func pEquals(_ p: Double) -> String {
        let v = pValue(p)
        return v.hasPrefix("<") || v.hasPrefix(">") ? "p " + v : "p = " + v
    }

    /// The confidence level implied by alpha: 0.05 → "95%", 0.1 → "90%", 0.01 → "99%".
    static func confidence(alpha: Double?) -> String? {
        guard let a = alpha, a > 0, a < 1 else { return nil }
        let level = (1 - a) * 100
        let d = (level * 10).rounded() == (level.rounded() * 10) ? 0 : 1
        return fixed(level, d) + "%"
    }

    /// A delta and its interval with shared decimals (3 significant digits on the largest of them),
    /// in a unit: ("+1.80", "+0.90", "+2.70").
    /// `decimals` fixes the places (one rule for a whole column, see ``ColumnDecimals``).
    static func deltaTriple(_ estimate: Double?, _ ci: (Double, Double)?, scale: Double, decimals fixedDecimals: Int? = nil) -> (String, String?, String?) {
        let dec = fixedDecimals ?? decimals(forMagnitude: tripleMagnitude(estimate, ci, scale: scale))
        let est = estimate.map { fixed($0 * scale, dec, signed: true) } ?? "n/a"
        return (est, ci.map { fixed($0.0 * scale, dec, signed: true) }, ci.map { fixed($0.1 * scale, dec, signed: true) })
    }

    /// The largest finite magnitude of an estimate and its interval, scaled.
    static func tripleMagnitude(_ estimate: Double?, _ ci: (Double, Double)?, scale: Double) -> Double {
        var magnitude = 0.0
        for v in [estimate, ci?.0, ci?.1].compactMap({ $0 }) where v.isFinite { magnitude = max(magnitude, abs(v * scale)) }
        return magnitude
    }

    // MARK: - Escaping

    /// HTML/XML text and attribute escaping; the output is valid in both HTML5 and XML (SVG).
    static func html(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters other than tab/newline are not allowed in XML 1.0: drop them.
                if ch.value < 0x20 && ch != "\t" && ch != "\n" && ch != "\r" { continue }
                if ch.value == 0xFFFE || ch.value == 0xFFFF { continue }
                out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// Markdown inline text: neutralises emphasis, links, code, HTML and table pipes; one line.
    static func markdown(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "\\", "`", "*", "_", "[", "]", "|", "#", "~": out += "\\" + String(ch)
            // Backslash escapes, not entities: the raw Markdown reads as text, and no tag can form.
            case "<", ">", "&": out += "\\" + String(ch)
            case "\n", "\r", "\r\n": out += " "
            default: out.append(ch)
            }
        }
        return out
    }

    /// An identifier as a Markdown code span (safe inside tables). Identifiers with markup characters
    /// are shown as escaped text instead, so the raw Markdown never carries a tag.
    static func code(_ s: String) -> String {
        if s.contains(where: { $0 == "<" || $0 == ">" || $0 == "&" }) { return markdown(s) }
        var body = ""
        for ch in s {
            switch ch {
            case "`": body += "'"
            case "|": body += "\\|"
            case "\n", "\r", "\r\n": body += " "
            default: body.append(ch)
            }
        }
        return "`" + body + "`"
    }

    /// Shortens a string for a chart label (SVG has no automatic text wrapping).
    static func truncate(_ s: String, _ max: Int) -> String {
        s.count <= max ? s : String(s.prefix(max - 1)) + "…"
    }
}

/// One number of decimal places per table column, so that values in a column line up and read alike:
/// the places that give every row at least three significant digits (each row's estimate-and-interval
/// magnitude), capped at ``cap`` so one tiny value cannot stretch the whole column.
struct ColumnDecimals {
    static let cap = 4
    private(set) var places = 0
    private var seen = false

    init() {}

    init(magnitudes: [Double]) {
        for m in magnitudes { add(m) }
    }

    mutating func add(_ magnitude: Double) {
        guard magnitude.isFinite, magnitude > 0 else { return }
        places = max(seen ? places : 0, min(Self.cap, Fmt.decimals(forMagnitude: magnitude)))
        seen = true
    }

    /// The places, or the usual three-digit default when the column holds no nonzero number.
    var value: Int { seen ? places : 2 }
}
