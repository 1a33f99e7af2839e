/// Bucket allocation within a layer of ``GrowthBookHash/buckets`` buckets.
public enum Allocation {
    /// Normalises ranges: sorted, merged, empty ones dropped.
    public static func normalize(_ ranges: [Range<Int>]) -> [Range<Int>] {
        var sorted = ranges.filter { !$0.isEmpty }.sorted { $0.lowerBound < $1.lowerBound }
        var out: [Range<Int>] = []
        for r in sorted {
            if let last = out.last, r.lowerBound <= last.upperBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        sorted.removeAll()
        return out
    }

    public static func count(_ ranges: [Range<Int>]) -> Int { ranges.reduce(0) { $0 + $1.count } }

    /// The buckets of `0..<total` not covered by `taken`.
    public static func free(taken: [Range<Int>], total: Int = GrowthBookHash.buckets) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var cursor = 0
        for r in normalize(taken) {
            if r.lowerBound > cursor { out.append(cursor..<min(r.lowerBound, total)) }
            cursor = max(cursor, r.upperBound)
        }
        if cursor < total { out.append(cursor..<total) }
        return out
    }

    /// Size of the intersection of two normalised range lists.
    public static func intersectionCount(_ a: [Range<Int>], _ b: [Range<Int>]) -> Int {
        var i = 0, j = 0, n = 0
        while i < a.count && j < b.count {
            let lo = max(a[i].lowerBound, b[j].lowerBound), hi = min(a[i].upperBound, b[j].upperBound)
            if hi > lo { n += hi - lo }
            if a[i].upperBound < b[j].upperBound { i += 1 } else { j += 1 }
        }
        return n
    }

    /// Picks `needed` buckets from `free`, deterministically and with little fragmentation:
    /// the smallest free range that fits takes it whole (best fit, from its low end); otherwise the
    /// largest ranges are used first. Returns nil when there are not enough free buckets.
    public static func take(_ needed: Int, from free: [Range<Int>]) -> [Range<Int>]? {
        guard needed > 0 else { return [] }
        guard count(free) >= needed else { return nil }
        if let fit = free.filter({ $0.count >= needed }).min(by: { ($0.count, $0.lowerBound) < ($1.count, $1.lowerBound) }) {
            return [fit.lowerBound..<(fit.lowerBound + needed)]
        }
        var remaining = needed
        var chosen: [Range<Int>] = []
        for r in free.sorted(by: { ($0.count, -$0.lowerBound) > ($1.count, -$1.lowerBound) }) where remaining > 0 {
            let n = min(r.count, remaining)
            chosen.append(r.lowerBound..<(r.lowerBound + n))
            remaining -= n
        }
        return normalize(chosen)
    }

    /// Re-sizes a holding: keeps as many current buckets as are still free, then takes more (or trims
    /// from the high end) to reach `needed`. Nil when the layer cannot supply them.
    public static func reallocate(current: [Range<Int>], needed: Int, free: [Range<Int>]) -> [Range<Int>]? {
        let available = normalize(free)
        var kept: [Range<Int>] = []
        var remaining = needed
        for r in normalize(current) where remaining > 0 {
            for f in available {
                let lo = max(r.lowerBound, f.lowerBound), hi = min(r.upperBound, f.upperBound)
                guard hi > lo, remaining > 0 else { continue }
                let n = min(hi - lo, remaining)
                kept.append(lo..<(lo + n))
                remaining -= n
            }
        }
        guard remaining > 0 else { return normalize(kept) }
        let rest = Allocation.free(taken: kept + Allocation.free(taken: available))
        guard let extra = take(remaining, from: rest) else { return nil }
        return normalize(kept + extra)
    }

    /// Buckets an experiment of the given traffic share needs: `round(traffic × 10000)`.
    public static func bucketsNeeded(traffic: Double) -> Int {
        Int((traffic * Double(GrowthBookHash.buckets)).rounded())
    }
}
