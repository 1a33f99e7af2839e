/// A mergeable quantile sketch: KLL (Karnin, Lang and Liberty, "Optimal quantile approximation in streams", 2016),
/// exact while it holds at most `k` values.
///
/// Values enter level 0 with weight 1; level h holds values of weight 2^h. When the levels hold more than their
/// capacities (k at the top level, shrinking by 2/3 a level down, at least 2), the lowest full level is sorted and
/// every other value (odd or even positions, by a coin) moves up a level with twice the weight. A compaction changes
/// the rank of any point by 0 or ±2^h, with mean zero, so the rank error of any query is a sum of independent
/// bounded steps: the sketch keeps `rankVariance` = Σ (2^h)² over its compactions, and by Hoeffding's inequality the
/// rank of an estimate is off by more than 5·√rankVariance with probability below 1e-5 (`rankErrorBound`). Merging
/// two sketches adds their levels, counts and variances and compacts again: sketches of days and segments merge into
/// the sketch of their union with the same kind of bound.
///
/// The coin is a SplitMix64 stream seeded by the sketch, so the same values in the same order give the same sketch.
public struct QuantileSketch: Sendable, Equatable {
    /// The top level's capacity; the sketch is exact up to this many values.
    public let k: Int
    /// Level h: values of weight 2^h. Levels above 0 are sorted; level 0 is sorted when `sorted0` is set.
    public private(set) var levels: [[Double]]
    /// Values inserted (the sum of the weights).
    public private(set) var count: Double
    public private(set) var minimum: Double
    public private(set) var maximum: Double
    /// Σ (2^h)² over compactions: a bound on the variance of any rank's error, in units².
    public private(set) var rankVariance: Double
    var coin: UInt64
    var sorted0 = true
    /// Values retained, and what the levels may hold before a compaction (kept in step with `levels`).
    var size = 0
    var capacityTotal: Int

    public static let defaultK = 1024
    /// The capacity shrinks by this factor from one level to the one below (KLL's c).
    static let shrink = 2.0 / 3.0

    public init(k: Int = QuantileSketch.defaultK, seed: UInt64 = 0x5EED_0F_5CE7C4) {
        precondition(k >= 8)
        self.k = k
        levels = [[]]
        count = 0
        minimum = .infinity
        maximum = -.infinity
        rankVariance = 0
        coin = seed
        capacityTotal = k
        levels[0].reserveCapacity(min(k, 64))
    }

    public var isEmpty: Bool { count == 0 }
    /// Whether every inserted value is kept with weight 1 (no compaction happened).
    public var isExact: Bool { rankVariance == 0 }
    /// Values retained.
    public var retained: Int { size }

    /// The largest rank error (in units) expected of a query: 5·√rankVariance, exceeded with probability below 1e-5
    /// (two-sided Hoeffding bound 2·exp(−12.5)); 0 while exact.
    public var rankErrorBound: Double { 5 * rankVariance.squareRoot() }

    /// Capacity of level `h` when there are `height` levels.
    @inline(__always) func capacity(_ h: Int, height: Int) -> Int {
        var c = Double(k)
        for _ in 0..<(height - 1 - h) { c *= Self.shrink }
        return max(2, Int(c.rounded(.up)))
    }

    static func totalCapacity(k: Int, height: Int) -> Int {
        var total = 0, c = Double(k)
        for _ in 0..<height { total += max(2, Int(c.rounded(.up))); c *= shrink }
        return total
    }

    public mutating func insert(_ x: Double) {
        guard !x.isNaN else { return }
        levels[0].append(x)
        sorted0 = false
        count += 1
        size += 1
        if x < minimum { minimum = x }
        if x > maximum { maximum = x }
        if size > capacityTotal { compress() }
    }

    /// Adds every value of `other` (the union's sketch).
    public mutating func merge(_ other: QuantileSketch) {
        guard !other.isEmpty else { return }
        if isEmpty && k == other.k { let seed = coin; self = other; coin = seed ^ other.coin; return }
        while levels.count < other.levels.count { levels.append([]) }
        capacityTotal = Self.totalCapacity(k: k, height: levels.count)
        size += other.size
        for (h, values) in other.levels.enumerated() where !values.isEmpty {
            if h == 0 {
                levels[0] += values
                sorted0 = false
            } else {
                levels[h] = Self.mergeSorted(levels[h], values)
            }
        }
        count += other.count
        minimum = min(minimum, other.minimum)
        maximum = max(maximum, other.maximum)
        rankVariance += other.rankVariance
        compress()
    }

    /// Compacts the lowest full level until the levels fit their capacities.
    /// (Some level is over its capacity whenever the levels together are.)
    mutating func compress() {
        while size > capacityTotal {
            let height = levels.count
            guard let h = (0..<height).first(where: { levels[$0].count >= capacity($0, height: height) }) else { return }
            compact(h)
        }
    }

    /// In place (no allocation once the levels have grown): sort, promote every other value into the sorted level
    /// above by a merge from the back, keep the odd one out.
    mutating func compact(_ h: Int) {
        if h + 1 == levels.count {
            levels.append([])
            capacityTotal = Self.totalCapacity(k: k, height: levels.count)
        }
        var lower: [Double] = [], upper: [Double] = []
        swap(&lower, &levels[h])
        swap(&upper, &levels[h + 1])
        if h == 0 && !sorted0 { lower.sort() }
        coin = coin &+ 0x9E37_79B9_7F4A_7C15
        var z = coin
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let offset = Int(z & 1)
        // An odd value out stays at this level (the largest), so the compacted run is even.
        let count = lower.count, promoted = count / 2
        var i = upper.count - 1, j = promoted - 1, w = upper.count + promoted - 1
        upper.append(contentsOf: repeatElement(0, count: promoted))
        while j >= 0 {
            let x = lower[offset + 2 * j]
            if i >= 0 && upper[i] > x { upper[w] = upper[i]; i -= 1 } else { upper[w] = x; j -= 1 }
            w -= 1
        }
        let odd = count % 2 == 1 ? lower[count - 1] : nil
        lower.removeAll(keepingCapacity: true)
        if let odd { lower.append(odd) }
        size -= count - (odd == nil ? 0 : 1) - promoted
        swap(&lower, &levels[h])
        swap(&upper, &levels[h + 1])
        if h == 0 { sorted0 = true }
        let weight = Double(1 << min(h, 60))
        rankVariance += weight * weight
    }

    static func mergeSorted(_ a: [Double], _ b: [Double]) -> [Double] {
        if a.isEmpty { return b }
        if b.isEmpty { return a }
        var out: [Double] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count && j < b.count {
            if b[j] < a[i] { out.append(b[j]); j += 1 } else { out.append(a[i]); i += 1 }
        }
        out += a[i...]
        out += b[j...]
        return out
    }

    /// The retained values in order with their cumulative weights: every quantile and rank query reads this.
    public func view() -> View {
        // Merges of the sorted levels from the bottom up (the small ones first), between two pairs of buffers.
        var values = [Double](repeating: 0, count: size), weights = [Double](repeating: 0, count: size)
        var spareValues = values, spareWeights = weights
        var filled = 0
        for h in levels.indices where !levels[h].isEmpty {
            let run = h == 0 && !sorted0 ? levels[0].sorted() : levels[h]
            let w = Double(1 << min(h, 60))
            run.withUnsafeBufferPointer { r in
                values.withUnsafeBufferPointer { v in weights.withUnsafeBufferPointer { wt in
                    spareValues.withUnsafeMutableBufferPointer { nv in spareWeights.withUnsafeMutableBufferPointer { nw in
                        var i = 0, j = 0, o = 0
                        while i < filled && j < r.count {
                            if r[j] < v[i] { nv[o] = r[j]; nw[o] = w; j += 1 } else { nv[o] = v[i]; nw[o] = wt[i]; i += 1 }
                            o += 1
                        }
                        while i < filled { nv[o] = v[i]; nw[o] = wt[i]; i += 1; o += 1 }
                        while j < r.count { nv[o] = r[j]; nw[o] = w; j += 1; o += 1 }
                    } }
                } }
            }
            filled += run.count
            swap(&values, &spareValues); swap(&weights, &spareWeights)
        }
        var total = 0.0
        for i in weights.indices { total += weights[i]; weights[i] = total }
        return View(values: values, cumulative: weights, count: count, rankVariance: rankVariance)
    }

    /// The sorted retained values and their cumulative weights.
    public struct View: Sendable, Equatable {
        public let values: [Double]
        /// Weight of the values up to and including each one.
        public let cumulative: [Double]
        public let count: Double
        public let rankVariance: Double

        /// The value at position j (0-based) of the values expanded by weight.
        @inline(__always) func at(_ j: Double) -> Double {
            var lo = 0, hi = cumulative.count - 1
            while lo < hi {
                let mid = (lo + hi) >> 1
                if cumulative[mid] > j { hi = mid } else { lo = mid + 1 }
            }
            return values[lo]
        }

        /// The q-quantile, linear between order statistics (NumPy's default, Hyndman and Fan's type 7) over the values
        /// expanded by weight: exactly NumPy's answer while the sketch is exact.
        public func quantile(_ q: Double) -> Double {
            precondition(!values.isEmpty)
            let total = cumulative.last!
            let h = (total - 1) * min(max(q, 0), 1)
            let lo = h.rounded(.down)
            let a = at(lo), b = at(min(lo + 1, total - 1))
            return a + (h - lo) * (b - a)
        }

        /// How many values are below `x` and how many are at most `x` (estimates unless exact).
        public func rank(_ x: Double) -> (below: Double, atMost: Double) {
            var lo = 0, hi = values.count
            while lo < hi { let mid = (lo + hi) >> 1; if values[mid] < x { lo = mid + 1 } else { hi = mid } }
            let below = lo == 0 ? 0 : cumulative[lo - 1]
            var lo2 = lo, hi2 = values.count
            while lo2 < hi2 { let mid = (lo2 + hi2) >> 1; if values[mid] <= x { lo2 = mid + 1 } else { hi2 = mid } }
            let atMost = lo2 == 0 ? 0 : cumulative[lo2 - 1]
            return (below, atMost)
        }
    }

    // MARK: storage

    /// Compact text: `k,count,min,max,rankVariance,coin` then one base64 run of little-endian doubles per level, all
    /// separated by `;` (levels may be empty).
    public var storageText: String {
        var levels = self.levels
        if !sorted0 { levels[0].sort() }
        func number(_ x: Double) -> String { x.isFinite ? "\(x)" : (x > 0 ? "inf" : "-inf") }
        var out = "\(k),\(number(count)),\(number(minimum)),\(number(maximum)),\(number(rankVariance)),\(coin)"
        for level in levels { out += ";"; out += Base64.encode(level) }
        return out
    }

    /// Reads ``storageText``; nil for anything else.
    public init?(storage text: Substring) {
        let parts = text.split(separator: ";", omittingEmptySubsequences: false)
        guard parts.count >= 2 else { return nil }
        let head = parts[0].split(separator: ",")
        func number(_ s: Substring) -> Double? { s == "inf" ? .infinity : s == "-inf" ? -.infinity : Double(s) }
        guard head.count == 6, let k = Int(head[0]), k >= 8, k <= 1 << 20, let n = number(head[1]), let lo = number(head[2]),
              let hi = number(head[3]), let variance = number(head[4]), let coin = UInt64(head[5]) else { return nil }
        var levels: [[Double]] = []
        var weight = 0.0
        for (h, p) in parts.dropFirst().enumerated() {
            guard let level = Base64.decode(p), h < 61 else { return nil }
            if h > 0 && zip(level, level.dropFirst()).contains(where: { $0.0 > $0.1 }) { return nil }
            guard level.allSatisfy({ $0.isFinite }) else { return nil }
            weight += Double(level.count) * Double(1 << h)
            levels.append(level)
        }
        guard weight == n, variance >= 0, variance.isFinite, n == 0 || lo <= hi else { return nil }
        self.k = k
        self.levels = levels
        count = n
        minimum = lo
        maximum = hi
        rankVariance = variance
        self.coin = coin
        size = levels.reduce(0) { $0 + $1.count }
        capacityTotal = Self.totalCapacity(k: k, height: levels.count)
        sorted0 = zip(levels[0], levels[0].dropFirst()).allSatisfy { $0.0 <= $0.1 }
    }
}

/// Standard base64 of little-endian doubles (the sketch's storage form).
enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let reverse: [Int16] = {
        var r = [Int16](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { r[Int(c)] = Int16(i) }
        return r
    }()

    static func encode(_ values: [Double]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 8)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let n = Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            out += [alphabet[n >> 18], alphabet[(n >> 12) & 63], alphabet[(n >> 6) & 63], alphabet[n & 63]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = Int(bytes[i]) << 16
            out += [alphabet[n >> 18], alphabet[(n >> 12) & 63], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let n = Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8
            out += [alphabet[n >> 18], alphabet[(n >> 12) & 63], alphabet[(n >> 6) & 63], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: Substring) -> [Double]? {
        let chars = Array(text.utf8)
        guard chars.count % 4 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(chars.count / 4 * 3)
        var i = 0
        while i < chars.count {
            var n = 0, pad = 0
            for j in 0..<4 {
                let c = chars[i + j]
                if c == UInt8(ascii: "=") && i + 4 == chars.count && j >= 2 { pad += 1; n <<= 6; continue }
                let v = reverse[Int(c)]
                guard v >= 0, pad == 0 else { return nil }
                n = n << 6 | Int(v)
            }
            bytes.append(UInt8(n >> 16))
            if pad < 2 { bytes.append(UInt8((n >> 8) & 255)) }
            if pad < 1 { bytes.append(UInt8(n & 255)) }
            i += 4
        }
        guard bytes.count % 8 == 0 else { return nil }
        var out: [Double] = []
        out.reserveCapacity(bytes.count / 8)
        bytes.withUnsafeBytes { raw in
            for k in 0..<(bytes.count / 8) {
                out.append(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: k * 8, as: UInt64.self))))
            }
        }
        return out
    }
}
