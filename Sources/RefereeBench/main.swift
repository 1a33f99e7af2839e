import Foundation
import Registry
import Synthetic
import Statistics

/// Release-mode benchmarks. Run through `Scripts/bench`, which adds the peers and writes BENCHMARKS.md.
/// Prints one human line per figure and a `RESULT {json}` line for the script.

StatisticsRuntime.initialize()

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func report(_ name: String, _ value: Double, _ unit: String, _ extra: [String: Any] = [:]) {
    var o: [String: Any] = ["name": name, "value": value, "unit": unit]
    for (k, v) in extra { o[k] = v }
    let data = try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
    print(String(format: "%-58@ %14.3f %@", name as NSString, value, unit as NSString))
    print("RESULT " + String(decoding: data, as: UTF8.self))
}

func percentile(_ xs: [Double], _ p: Double) -> Double {
    let s = xs.sorted()
    return s[min(s.count - 1, Int(Double(s.count - 1) * p))]
}

let only = CommandLine.arguments.dropFirst().first

// MARK: conflicts
if only == nil || only == "conflicts" || only == "conflicts-small" {
    for n in only == "conflicts-small" ? [10_000] : [10_000, 30_000, 100_000] {
        let span = n * 365 / 10_000  // 10,000 experiments a year: about 800 live at once, as in a large organisation
        let registry = randomRegistry(count: n, layers: 200, parameters: 2000, metrics: 300, seed: 1, spanDays: span)
        var t = now()
        let index = ConflictIndex(registry)
        report("conflicts.index_build n=\(n)", (now() - t) * 1000, "ms")
        let probes = randomRegistry(count: 2000, layers: 200, parameters: 2000, metrics: 300, seed: 99, spanDays: span).map { s -> ConflictSubject in
            var s = s
            s.key = "probe-" + s.key
            s.state = .draft
            s.buckets = []
            return s
        }
        var times: [Double] = []
        var findings = 0
        for p in probes {
            t = now()
            findings += index.check(p).count
            times.append(now() - t)
        }
        report("conflicts.check median n=\(n)", percentile(times, 0.5) * 1e6, "us", ["p99_us": percentile(times, 0.99) * 1e6, "findings_per_check": Double(findings) / Double(probes.count)])
        t = now()
        let all = index.scan()
        report("conflicts.scan n=\(n)", (now() - t) * 1000, "ms", ["findings": all.count])
    }
}

if only == "scan-profile" {
    let registry = randomRegistry(count: 100_000, layers: 200, parameters: 2000, metrics: 300, seed: 1, spanDays: 3650)
    let index = ConflictIndex(registry)
    let t = now()
    let all = index.scan()
    report("conflicts.scan n=100000", (now() - t) * 1000, "ms", ["findings": all.count])
}

// MARK: assignment
if only == nil || only == "assign" {
    var subjects = randomRegistry(count: 8, layers: 1, parameters: 100, metrics: 10, seed: 5)
    var offset = 0
    for i in subjects.indices {
        subjects[i].state = .running
        subjects[i].targeting = .always
        subjects[i].variantKeys = ["control", "b", "c"]
        subjects[i].variantWeights = [0.34, 0.33, 0.33]
        let needed = 1200
        subjects[i].buckets = [offset..<(offset + needed)]
        offset += needed
    }
    var owner = [Int32](repeating: -1, count: GrowthBookHash.buckets)
    for (i, s) in subjects.enumerated() { for r in s.buckets { for b in r { owner[b] = Int32(i) } } }
    let ranges = subjects.map { GrowthBookHash.ranges(weights: $0.variantWeights) }
    let units = (0..<5_000_000).map { "user-\($0 &* 2654435761 % 1_000_000_007)" }
    var counts = [Int](repeating: 0, count: subjects.count * 3 + 1)
    let t = now()
    for u in units {
        let bucket = GrowthBookHash.bucket(seed: "layer-0", value: u)
        let i = Int(owner[bucket])
        if i >= 0, let v = GrowthBookHash.chooseVariation(GrowthBookHash.hashV2(seed: subjects[i].seed, value: u), ranges[i]) {
            counts[i * 3 + v] += 1
        } else {
            counts[counts.count - 1] += 1
        }
    }
    let elapsed = now() - t
    report("assign.bulk units/s (one core)", Double(units.count) / elapsed, "units/s", ["unassigned_share": Double(counts.last!) / Double(units.count)])
}
