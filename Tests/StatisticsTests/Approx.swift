/// Approximate comparison in the spirit of swift-numerics `isApproximatelyEqual(to:relativeTolerance:)`,
/// with an absolute floor for values near zero.
func close(_ a: Double, _ b: Double, rel: Double, abs absTol: Double = 0) -> Bool {
    if a == b { return true }
    guard a.isFinite, b.isFinite else { return false }
    let diff = abs(a - b)
    return diff <= absTol || diff <= rel * max(abs(a), abs(b))
}

/// `a` agrees with a value printed with `decimals` digits after the point (half a unit in the last place).
func matchesPrinted(_ a: Double, _ printed: Double, decimals: Int) -> Bool {
    var unit = 1.0
    for _ in 0..<decimals { unit /= 10 }
    return abs(a - printed) <= unit / 2 * (1 + 1e-9)
}
