import POSIX
import Foundation
import Registry
import Synthetic
import Statistics
import JSONCore
import Service
import RPC
import Store

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


// MARK: targeting against GrowthBook's Python SDK (pairs from Scripts/reference/targeting_differential.py)
if only == "differential", CommandLine.arguments.count > 2 {
    var pairs = 0, disagreements = 0
    let t = now()
    for path in CommandLine.arguments.dropFirst(2) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { print("cannot read \(path)"); continue }
        for line in text.split(separator: "\n") {
            guard let json = try? JSONParser.parse(String(line)) else { disagreements += 1; continue }
            pairs += 1
            let groups = (json["saved_groups"]?.objectValue ?? [:]).mapValues { ($0.arrayValue ?? []).map(JSValue.init) }
            guard case .success(let c) = Condition.parse(json["condition"] ?? .null, groups: Set(groups.keys)) else { disagreements += 1; continue }
            let attributes = (json["attributes"]?.objectValue ?? [:]).mapValues(JSValue.init)
            if c.bindingGroups(groups).evaluate(attributes) != json["expected"]?.boolValue {
                disagreements += 1
                if disagreements <= 5 { print("disagreement: \(line.prefix(300))") }
            }
        }
    }
    report("targeting differential vs growthbook 4.0.0 (Python SDK)", Double(disagreements), "disagreements", ["pairs": pairs, "pairs_per_s": Double(pairs) / (now() - t)])
}

// MARK: one pair that reaches the satisfiability budget (7 pigeons in 6 holes)
if only == "budget" {
    var clauses: [JSON] = []
    for i in 0..<7 { clauses.append(["$or": .array((0..<6).map { ["p\(i)h\($0)": true] })]) }
    for h in 0..<6 { for i in 0..<7 { for k in (i + 1)..<7 { clauses.append(["$not": ["p\(i)h\(h)": true, "p\(k)h\(h)": true]]) } } }
    let hard = try! Condition.parse(["$and": .array(clauses)], limits: TargetingLimits(maxNodes: 5000)).get()
    let regex = try! Condition.parse(["email": ["$regex": "^(a+)+$"]]).get()
    var times: [Double] = []
    for _ in 0..<10 {
        let t = now()
        _ = Satisfiability.witness([hard, regex])
        times.append(now() - t)
    }
    report("satisfiability budget pair (pigeonhole 7x6 and a regex)", percentile(times, 0.5) * 1000, "ms", ["max_ms": (times.max() ?? 0) * 1000])
}

// MARK: quantile sketches: insert speed, rank error on 10 million values in adversarial orders, comparison from sketches
if only == nil || only == "sketch" {
    let n = 10_000_000
    var rng = SystemRandomNumberGenerator()
    for order in ["sorted", "reversed", "ties", "random"] {
        let values: [Double] = switch order {
        case "sorted": (0..<n).map(Double.init)
        case "reversed": (0..<n).reversed().map(Double.init)
        case "ties": (0..<n).map { Double($0 % 7) }
        default: (0..<n).map { _ in Double.random(in: 0..<1, using: &rng) }
        }
        var sketch = QuantileSketch()
        let t = now()
        for v in values { sketch.insert(v) }
        let seconds = now() - t
        let sorted = values.sorted(), view = sketch.view()
        var worst = 0.0
        for q in (1...999).map({ Double($0) / 1000 }) {
            let x = view.quantile(q)
            var lo = 0, hi = n
            while lo < hi { let m = (lo + hi) / 2; if sorted[m] < x { lo = m + 1 } else { hi = m } }
            var lo2 = lo, hi2 = n
            while lo2 < hi2 { let m = (lo2 + hi2) / 2; if sorted[m] <= x { lo2 = m + 1 } else { hi2 = m } }
            let target = q * Double(n - 1)
            worst = max(worst, target < Double(lo) ? Double(lo) - target : max(0, target - Double(lo2 - 1)))
        }
        report("quantile sketch 10M values (\(order)): worst rank error / n", worst / Double(n) * 100, "%",
               ["bound_percent": sketch.rankErrorBound / Double(n) * 100, "within_bound": worst <= sketch.rankErrorBound,
                "inserts_per_s": Double(n) / seconds, "retained": sketch.retained])
    }
    // A comparison from two compacted sketches (1M values each): the arms' views, quantiles and the test.
    var a = QuantileSketch(), b = QuantileSketch(seed: 9)
    for _ in 0..<1_000_000 { a.insert(exp(Double.random(in: -2...2, using: &rng))); b.insert(1.05 * exp(Double.random(in: -2...2, using: &rng))) }
    let views = (a.view(), b.view())
    var times: [Double] = []
    for _ in 0..<2000 {
        let t = now()
        _ = try? Quantiles.compare(control: Quantiles.arm(views.0, q: 0.9), treatment: Quantiles.arm(views.1, q: 0.9))
        times.append(now() - t)
    }
    var withViews: [Double] = []
    for _ in 0..<500 {
        let t = now()
        _ = try? Quantiles.compare(control: Quantiles.arm(a.view(), q: 0.9), treatment: Quantiles.arm(b.view(), q: 0.9))
        withViews.append(now() - t)
    }
    report("quantile comparison from sketches (q=0.9, 1M units per arm)", percentile(times, 0.5) * 1e6, "us",
           ["p99_us": percentile(times, 0.99) * 1e6, "including_views_median_us": percentile(withViews, 0.5) * 1e6, "retained": a.retained])
}

// MARK: the scan alone at 100,000 experiments, best of three (for comparing builds)
if only == "scan" {
    let registry = randomRegistry(count: 100_000, layers: 200, parameters: 2000, metrics: 300, seed: 1, spanDays: 100_000 * 365 / 10_000)
    let index = ConflictIndex(registry)
    var best = Double.infinity
    var found = 0
    for _ in 0..<3 {
        let t = now()
        found = index.scan().count
        best = min(best, now() - t)
    }
    report("conflicts.scan n=100000 best of 3", best * 1000, "ms", ["findings": found])
}

// MARK: conflicts
if only == nil || only == "conflicts" {
    for n in [10_000, 30_000, 100_000] {
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

// MARK: statistics
if only == nil || only == "stats" {
    // The same synthetic comparisons the Python peers use: seeded, Welch, absolute.
    var rng = SplitMix(seed: 11)
    func uniform() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
    let count = 2_000_000
    var arms: [ComparisonArms] = []
    arms.reserveCapacity(1000)
    for _ in 0..<1000 {
        let n1 = 1000 + uniform() * 9000, n2 = 1000 + uniform() * 9000
        arms.append(.continuous(control: .moments(n: n1.rounded(), mean: 10 + uniform(), variance: 4 + uniform()),
                                treatment: .moments(n: n2.rounded(), mean: 10 + uniform(), variance: 4 + uniform())))
    }
    var sink = 0.0
    let t = now()
    for i in 0..<count {
        let r = try! ABTest.compare(arms[i % arms.count])
        sink += r.pValue ?? 0
    }
    let elapsed = now() - t
    report("stats.compare in-process (Welch, absolute)", Double(count) / elapsed, "comparisons/s", ["checksum": sink])
}

/// The `referee` binary built beside this one.
let refereeBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("referee").path

/// Pipes `lines` into a fresh daemon on `store` from a writer thread and reads every response: seconds until the last,
/// seconds until the first (the daemon's start-up and first request), responses, and how many were errors. The client
/// must cost far less than the daemon: raw writes from one thread, raw reads and memchr here (replies have sorted keys,
/// so an error reply is a line that starts `{"error"`).
@Sendable func pump(_ lines: [String], store: String) -> (seconds: Double, first: Double, responses: Int, errors: Int) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: refereeBinary)
    process.arguments = ["serve", "--store", store, "--actor", "bench", "--max-line-bytes", "\(64 << 20)"]
    let input = Pipe(), output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try! process.run()
    let payload = Array((lines.joined(separator: "\n") + "\n").utf8)
    let inFD = input.fileHandleForWriting.fileDescriptor, outFD = output.fileHandleForReading.fileDescriptor
    let t = now()
    Thread {
        payload.withUnsafeBufferPointer { buf in _ = SystemCall.writeAll(inFD, buf.baseAddress!, buf.count) }
        try? input.fileHandleForWriting.close()
    }.start()
    var responses = 0, errors = 0, first = 0.0
    let errorStart = Array(#"{"error""#.utf8)
    var lineStart: [UInt8] = []   // the first bytes of the line being read, up to errorStart's length
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = chunk.withUnsafeMutableBytes { b in SystemCall.retrying { read(outFD, b.baseAddress!, b.count) } }
        if n <= 0 { break }
        var i = 0
        while i < n {
            if lineStart.count < errorStart.count {
                let take = min(errorStart.count - lineStart.count, n - i)
                lineStart += chunk[i..<(i + take)]
            }
            let newline = chunk.withUnsafeBytes { b in memchr(b.baseAddress! + i, 0x0A, n - i) }
            guard let newline else { break }
            let end = chunk.withUnsafeBytes { b in UnsafeRawPointer(newline) - b.baseAddress! }
            if responses == 0 { first = now() - t }
            responses += 1
            if lineStart.starts(with: errorStart) { errors += 1 }
            lineStart.removeAll(keepingCapacity: true)
            i = end + 1
        }
    }
    let elapsed = now() - t
    process.waitUntilExit()
    return (elapsed, first, responses, errors)
}

// MARK: control interface through the real daemon
if only == nil || only == "daemon" {
    let binary = refereeBinary
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("referee-bench-\(getpid())")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }


    // stats.compare_batch: 200 batches of 1000 Welch comparisons.
    var rng = SplitMix(seed: 11)
    func uniform() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
    var batchLines: [String] = []
    for b in 0..<200 {
        var items: [String] = []
        for _ in 0..<1000 {
            items.append(#"{"metric":"continuous","control":{"n":\#(Int(1000 + uniform() * 9000)),"mean":\#(10 + uniform()),"variance":\#(4 + uniform())},"treatment":{"n":\#(Int(1000 + uniform() * 9000)),"mean":\#(10 + uniform()),"variance":\#(4 + uniform())}}"#)
        }
        batchLines.append(#"{"jsonrpc":"2.0","id":\#(b),"method":"stats.compare_batch","params":{"comparisons":[\#(items.joined(separator: ","))]}}"#)
    }
    // The machine is shared and noisy: three runs each, the best reported and all of them listed.
    let batchRuns = (0..<3).map { _ in pump(batchLines, store: dir.appendingPathComponent("stats.sqlite").path) }
    report("daemon stats.compare_batch (stdin/stdout)", 200_000 / batchRuns.map(\.seconds).min()!, "comparisons/s",
           ["responses": batchRuns[0].responses, "runs": batchRuns.map { (200_000 / $0.seconds).rounded() }])

    // experiment.get: register one experiment, then 100,000 pipelined gets.
    let example = try! String(contentsOfFile: "Protocols/examples/checkout-green-button.json", encoding: .utf8)
        .replacingOccurrences(of: "\n", with: " ")
    let store = dir.appendingPathComponent("get.sqlite").path
    _ = pump([#"{"jsonrpc":"2.0","id":0,"method":"experiment.register","params":{"experiment":\#(example)}}"#], store: store)
    let gets = (1...100_000).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"experiment.get","params":{"key":"checkout-green-button"}}"# }
    let getRuns = (0..<3).map { _ in pump(gets, store: store) }
    report("daemon experiment.get pipelined (stdin/stdout)", Double(getRuns[0].responses) / getRuns.map(\.seconds).min()!, "requests/s",
           ["responses": getRuns[0].responses, "runs": getRuns.map { (Double($0.responses) / $0.seconds).rounded() }])

    // experiment.check of a new proposal against the store, pipelined.
    let probe = example.replacingOccurrences(of: "checkout-green-button", with: "probe")
    let checks = (1...20_000).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"experiment.check","params":{"experiment":\#(probe)}}"# }
    let checked = pump(checks, store: store)
    report("daemon experiment.check pipelined (stdin/stdout)", Double(checked.responses) / checked.seconds, "requests/s", ["responses": checked.responses])

    // Latency: one request at a time.
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["serve", "--store", store, "--actor", "bench"]
    let input = Pipe(), output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try! process.run()
    var pending = Data()
    let handle = output.fileHandleForReading
    for (method, line, count) in [("experiment.get", gets[0], 20_000), ("experiment.check", checks[0], 5_000)] {
        var latencies: [Double] = []
        let request = Data((line + "\n").utf8)
        for _ in 0..<count {
            let t = now()
            input.fileHandleForWriting.write(request)
            while !pending.contains(0x0A) { pending.append(handle.availableData) }
            pending.removeSubrange(...pending.firstIndex(of: 0x0A)!)
            latencies.append(now() - t)
        }
        report("daemon \(method) latency p50 (stdin/stdout)", percentile(latencies, 0.5) * 1e6, "us", ["p99_us": percentile(latencies, 0.99) * 1e6])
    }
    try? input.fileHandleForWriting.close()
    process.waitUntilExit()
}

/// Eight clients on the socket at `path`, each sending `line` `perClient` times, `window` requests in one write and then
/// their replies: requests per second over all of them, and the latency of every window (of every request when
/// `window` is 1).
func socketClients(_ path: String, _ line: [UInt8], perClient: Int, window: Int = 1) -> (rate: Double, latencies: [Double]) {
    nonisolated(unsafe) var latencies = [[Double]](repeating: [], count: 8)
    let group = DispatchGroup()
    let t = now()
    for c in 0..<8 {
        group.enter()
        Thread {
            let client = try! SocketClient(path: path)
            var lat: [Double] = []
            lat.reserveCapacity(perClient)
            let burst = [UInt8]((0..<window).map { _ in line }.joined())
            for _ in 0..<(perClient / window) {
                let s = now()
                try! client.send(burst)
                if window == 1 { _ = try! client.readLine() } else { try! client.skipLines(window) }
                lat.append(now() - s)
            }
            latencies[c] = lat
            group.leave()
        }.start()
    }
    group.wait()
    let all = latencies.flatMap { $0 }
    return (Double(all.count * window) / (now() - t), all)
}

// MARK: shared-service socket, 8 clients
if only == nil || only == "socket" {
    let binary = refereeBinary
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("referee-bench-socket-\(getpid())")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let store = dir.appendingPathComponent("s.sqlite").path, socketPath = dir.appendingPathComponent("r.sock").path
    let example = try! String(contentsOfFile: "Protocols/examples/checkout-green-button.json", encoding: .utf8)
    let server = Process()
    server.executableURL = URL(fileURLWithPath: binary)
    server.arguments = ["serve", "--socket", socketPath, "--store", store]
    server.standardError = FileHandle.nullDevice
    try! server.run()
    for _ in 0..<200 where !FileManager.default.fileExists(atPath: socketPath) { usleep(20_000) }
    do {
        let client = try! SocketClient(path: socketPath)
        try! client.send(Array(#"{"jsonrpc":"2.0","id":0,"method":"experiment.register","params":{"experiment":\#(example.replacingOccurrences(of: "\n", with: " "))}}"#.utf8) + [0x0A])
        _ = try! client.readLine()
    }
    let checkDoc = example.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "checkout-green-button", with: "probe")
    for (method, line) in [("experiment.get", #"{"jsonrpc":"2.0","id":1,"method":"experiment.get","params":{"key":"checkout-green-button"}}"#),
                           ("experiment.check", #"{"jsonrpc":"2.0","id":1,"method":"experiment.check","params":{"experiment":\#(checkDoc)}}"#)] {
        let bytes = Array(line.utf8) + [0x0A]
        let perClient = method == "experiment.get" ? 5000 : 1000
        let (rate, all) = socketClients(socketPath, bytes, perClient: perClient)
        report("socket \(method), 8 clients", rate, "requests/s",
               ["p50_us": percentile(all, 0.5) * 1e6, "p99_us": percentile(all, 0.99) * 1e6])
    }
    server.terminate()
    server.waitUntilExit()
}

// MARK: the registry on SQLite and on PostgreSQL, side by side
// `Scripts/bench` starts a throwaway local PostgreSQL and passes REFEREE_BENCH_POSTGRES (a URL with `DB` for the
// database's name) and empty databases named store_get, store_reg1 and store_reg4; without it only SQLite runs.
if only == nil || only == "stores" {
    let binary = refereeBinary
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("referee-bench-stores-\(getpid())")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let example = try! String(contentsOfFile: "Protocols/examples/checkout-green-button.json", encoding: .utf8).replacingOccurrences(of: "\n", with: " ")
    /// A draft in a layer and a cohort of its own: it changes the same parameter and moves the same metric as every
    /// other, but their audiences are disjoint, so it conflicts with none (every registration still checks them all).
    func registration(_ id: Int, _ key: String) -> String {
        let doc = example.replacingOccurrences(of: "checkout-green-button", with: key)
            .replacingOccurrences(of: "\"layer\": \"checkout\"", with: "\"layer\": \"layer-\(key)\"")
            .replacingOccurrences(of: "\"platform\": \"ios\"", with: "\"platform\": \"ios\", \"cohort\": \"\(key)\"")
        return #"{"jsonrpc":"2.0","id":\#(id),"method":"experiment.register","params":{"experiment":\#(doc)}}"#
    }
    let get = #"{"jsonrpc":"2.0","id":1,"method":"experiment.get","params":{"key":"checkout-green-button"}}"#

    /// `pump`'s run of `lines` on a fresh daemon; errors are reported (the figures assume none).
    @Sendable func pumped(_ lines: [String], store: String) -> (seconds: Double, first: Double, responses: Int, errors: Int) {
        let run = pump(lines, store: store)
        if run.errors > 0 { FileHandle.standardError.write(Data("stores: \(run.errors) requests answered with an error on \(store.prefix(12))…\n".utf8)) }
        return run
    }

    var stores: [(name: String, url: (String) -> String)] = [("sqlite", { dir.appendingPathComponent("\($0).sqlite").path })]
    if let pg = ProcessInfo.processInfo.environment["REFEREE_BENCH_POSTGRES"] {
        stores.append(("postgresql", { pg.replacingOccurrences(of: "/DB?", with: "/store_\($0)?") }))
    }
    // The same server through its Unix socket (`?host=DIR`), databases socket_get, socket_reg1 and socket_reg4.
    if let pg = ProcessInfo.processInfo.environment["REFEREE_BENCH_POSTGRES_SOCKET"] {
        stores.append(("postgresql-socket", { pg.replacingOccurrences(of: "/DB?", with: "/socket_\($0)?") }))
    }
    var figures: [String: Double] = [:]
    for (name, url) in stores {
        // Registrations: 500 from one daemon; 4 × 250 from four daemons at once (each a durable commit).
        let one = pumped((0..<500).map { registration($0, "one-\($0)") }, store: url("reg1"))
        figures["\(name) register 1"] = 500 / one.seconds
        let group = DispatchGroup()
        let t = now()
        for d in 0..<4 {
            group.enter()
            let lines = (0..<250).map { registration($0, "d\(d)-\($0)") }, target = url("reg4")
            Thread { _ = pumped(lines, store: target); group.leave() }.start()
        }
        group.wait()
        figures["\(name) register 4"] = 1000 / (now() - t)
        // The headline includes the daemon's start-up and the new database's migration; after its first reply, the rate
        // of the other 499 is the running daemon's.
        report("\(name): experiment.register, 1 daemon (stdin/stdout)", figures["\(name) register 1"]!, "requests/s",
               ["requests": 500, "first_reply_ms": one.first * 1000, "after_first_reply_per_s": 499 / (one.seconds - one.first)])
        report("\(name): experiment.register, 4 daemons at once", figures["\(name) register 4"]!, "requests/s", ["requests": 1000])
        // Gets: 100,000 pipelined, best of three; then one at a time for latency.
        _ = pumped([registration(0, "checkout-green-button")], store: url("get"))
        let runs = (0..<3).map { _ in 100_000 / pumped(Array(repeating: get, count: 100_000), store: url("get")).seconds }
        figures["\(name) get"] = runs.max()!
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--store", url("get"), "--actor", "bench"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try! process.run()
        var pending = Data(), latencies: [Double] = []
        let request = Data((get + "\n").utf8)
        for _ in 0..<5000 {
            let s = now()
            input.fileHandleForWriting.write(request)
            while !pending.contains(0x0A) { pending.append(output.fileHandleForReading.availableData) }
            pending.removeSubrange(...pending.firstIndex(of: 0x0A)!)
            latencies.append(now() - s)
        }
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        report("\(name): experiment.get pipelined (stdin/stdout)", figures["\(name) get"]!, "requests/s",
               ["runs": runs.map { $0.rounded() }, "one_at_a_time_p50_us": percentile(latencies, 0.5) * 1e6, "one_at_a_time_p99_us": percentile(latencies, 0.99) * 1e6])
        // Over the socket, 8 clients, one request at a time each.
        let socketPath = dir.appendingPathComponent("\(name).sock").path
        // A shared service refuses a store file others can read (the stdio daemons above made it 0644).
        for suffix in ["", "-wal", "-shm"] { chmod(url("get") + suffix, 0o600) }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: binary)
        server.arguments = ["serve", "--socket", socketPath, "--store", url("get")]
        server.standardError = FileHandle.nullDevice
        try! server.run()
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: socketPath) { usleep(20_000) }
        guard FileManager.default.fileExists(atPath: socketPath) else {
            FileHandle.standardError.write(Data("stores: the \(name) socket server did not start; its socket figure is missing\n".utf8))
            server.terminate()
            continue
        }
        let bytes = Array(get.utf8) + [0x0A]
        let (rate, all) = socketClients(socketPath, bytes, perClient: 5000)
        figures["\(name) socket"] = rate
        report("\(name): socket experiment.get, 8 clients", figures["\(name) socket"]!, "requests/s",
               ["p50_us": percentile(all, 0.5) * 1e6, "p99_us": percentile(all, 0.99) * 1e6])
        // The same clients with 100 requests in flight each, as the pipelined stdin figure.
        let pipelined = socketClients(socketPath, bytes, perClient: 50_000, window: 100)
        figures["\(name) socket pipelined"] = pipelined.rate
        report("\(name): socket experiment.get pipelined, 8 clients x 100 in flight", pipelined.rate, "requests/s",
               ["window_p50_us": percentile(pipelined.latencies, 0.5) * 1e6, "window_p99_us": percentile(pipelined.latencies, 0.99) * 1e6])
        server.terminate()
        server.waitUntilExit()
    }
    for pg in ["postgresql", "postgresql-socket"] {
        for what in ["register 1", "register 4", "get", "socket", "socket pipelined"] where figures["\(pg) \(what)"] != nil && figures["sqlite \(what)"] != nil {
            report("\(pg) / sqlite: \(what)", figures["\(pg) \(what)"]! / figures["sqlite \(what)"]!, "ratio")
        }
    }
}

// MARK: results.summary at 5 variants x 30 metrics x 90 days
if only == nil || only == "summary" {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("referee-bench-summary-\(getpid())")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    // A catalog of 30 metrics and a 90-day protocol, next to the shipped ones.
    for name in ["standard.json", "sequential.json"] {
        try! FileManager.default.copyItem(atPath: "Protocols/\(name)", toPath: dir.appendingPathComponent(name).path)
    }
    var metrics: [String: JSON] = [:]
    let names = (0..<30).map { "m\($0)" }
    for (i, n) in names.enumerated() { metrics[n] = ["type": i % 2 == 0 ? "binomial" : "continuous", "direction": "increase"] }
    metrics["crash_rate"] = ["type": "binomial", "direction": "decrease", "non_inferiority_margin": 0.001]
    try! JSON.object(["metrics": .object(metrics)]).pretty().write(toFile: dir.appendingPathComponent("metrics.json").path, atomically: true, encoding: .utf8)
    var long = try! String(contentsOfFile: "Protocols/standard.json", encoding: .utf8)
    long = long.replacingOccurrences(of: "\"name\": \"standard\"", with: "\"name\": \"long\"").replacingOccurrences(of: "\"max\": 56", with: "\"max\": 120")
    try! long.write(toFile: dir.appendingPathComponent("long.json").path, atomically: true, encoding: .utf8)
    // A clock inside the schedule: results are recorded for experiments that have run.
    let service = RefereeService(store: try! Store(path: dir.appendingPathComponent("s.sqlite").path),
                                 protocols: try! ProtocolLoader.load(directory: dir.path),
                                 now: { Timestamp(rfc3339: "2026-01-02T00:00:00Z")! })
    let dispatcher = Dispatcher()
    service.install(on: dispatcher)
    let ctx = RPCContext(principal: "bench")
    func call(_ method: String, _ params: JSON, as principal: String? = nil) -> JSON {
        dispatcher.handle(message: ["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": params],
                          context: principal.map { RPCContext(principal: $0) } ?? ctx)!
    }
    let variants: [JSON] = (0..<5).map { ["key": .string("v\($0)"), "weight": 0.2, "control": $0 == 0 ? true : nil] }
    let doc: JSON = ["key": "big", "name": "Big", "owner": "pm", "hypothesis": "h", "protocol": "long", "layer": "l", "parameters": ["p"],
                     "unit": "user_id", "variants": .array(variants.map { v in .object(v.objectValue!.filter { $0.value != .null }) }),
                     "schedule": ["start": "2026-01-01T00:00:00Z", "end": "2026-04-01T00:00:00Z"],
                     "metrics": ["primary": "m0", "secondary": .array(names.dropFirst().map { .string($0) }), "guardrails": ["crash_rate"]],
                     "design": ["mde": ["relative": 0.05], "baseline": ["rate": 0.1], "expected_daily_units": 100000],
                     "dimensions": ["country", "platform"]]
    let reg = call("experiment.register", ["experiment": doc])
    if reg["error"] != nil { print("summary benchmark setup failed: \(reg.serialized())") }
    for (version, state, principal) in [(1, "review", "bench"), (2, "approved", "bench.approver"), (3, "running", "bench")] {
        let moved = call("experiment.transition", ["key": "big", "version": JSON(version), "to": .string(state)], as: principal)
        if moved["error"] != nil { print("summary benchmark setup failed: \(moved.serialized().prefix(300))") }
    }
    var rng = SplitMix(seed: 3)
    for day in 0..<90 {
        let date = Timestamp(rfc3339: "2026-01-01")!.adding(days: Double(day)).day
        for (i, m) in (names + ["crash_rate"]).enumerated() {
            for v in 0..<5 {
                let stats: JSON = i % 2 == 0 || m == "crash_rate"
                    ? ["n": 1000, "successes": .number(Double(90 + rng.next() % 20))]
                    : ["n": 1000, "sum": .number(Double(10_000 + rng.next() % 500)), "sum_squares": .number(Double(1_000_000 + rng.next() % 50_000))]
                _ = call("results.record", ["key": "big", "metric": .string(m), "variant": .string("v\(v)"), "day": .string(date), "stats": stats])
            }
        }
    }
    // Segments as ingestion stores them: country with 50 values, platform with 20, every metric, arm and day.
    let setup = now()
    try! service.store.write { tx in
        for (dimension, count) in [("country", 50), ("platform", 20)] {
            for value in 0..<count {
                for day in 0..<90 {
                    let date = Timestamp(rfc3339: "2026-01-01")!.adding(days: Double(day)).day
                    for (i, m) in (names + ["crash_rate", "__exposures"]).enumerated() {
                        for v in 0..<5 {
                            let n = Double(20 + rng.next() % 5)
                            let a: Aggregate = m == "__exposures" ? .exposures(n: n)
                                : (i % 2 == 0 || m == "crash_rate" ? .binomial(n: n, successes: Double(rng.next() % 4))
                                                                   : .continuous(n: n, sum: Double(200 + rng.next() % 20), sumSquares: Double(20_000 + rng.next() % 500)))
                            try tx.upsertResult(key: "big", metric: m, variant: "v\(v)", day: date, segment: "\(dimension)=c\(value)", stats: a.storageText,
                                                source: "bench", at: "2026-01-02T00:00:00Z")
                        }
                    }
                }
            }
        }
    }
    // As ingestion does after writing a file's sums.
    try! service.store.write { tx in try tx.refreshTotals(key: "big") }
    print("(segments set up in \(Int((now() - setup) * 1000)) ms)")
    var times: [Double] = []
    for _ in 0..<20 {
        let t = now()
        let s = call("results.summary", ["key": "big", "as_of": "2026-04-02T00:00:00Z"])
        times.append(now() - t)
        if s["error"] != nil { print("summary failed: \(s.serialized().prefix(300))"); break }
    }
    report("results.summary 5 variants x 31 metrics x 90 days, 2 dimensions stored", percentile(times, 0.5) * 1000, "ms", ["max_ms": (times.max() ?? 0) * 1000])
    for (label, params) in [("results.segments 50 values, primary metric", ["key": "big", "dimension": "country", "metric": "m0", "as_of": "2026-04-02T00:00:00Z"] as JSON),
                            ("results.segments 50 values, all 31 metrics", ["key": "big", "dimension": "country", "as_of": "2026-04-02T00:00:00Z"] as JSON)] {
        var segmentTimes: [Double] = []
        for _ in 0..<10 {
            let t = now()
            let s = call("results.segments", params)
            segmentTimes.append(now() - t)
            if s["error"] != nil { print("segments failed: \(s.serialized().prefix(300))"); break }
        }
        report(label + " x 5 variants x 90 days", percentile(segmentTimes, 0.5) * 1000, "ms", ["max_ms": (segmentTimes.max() ?? 0) * 1000])
    }

    // results.interactions: an experiment whose 31 metrics are its primary and guardrails, crossed with 5 running
    // experiments of other layers, its cells stored as ingestion stores them (3 arms of each B, every metric, arm and day).
    let wide = doc.merging(patch: ["key": "wide", "layer": "wide", "parameters": ["wide.p"], "dimensions": .null,
                                   "metrics": ["primary": "m0", "secondary": [], "guardrails": .array((names.dropFirst() + ["crash_rate"]).map { .string($0) })]])
    var crossedKeys: [String] = []
    for (k, d) in [("wide", wide)] + (0..<5).map({ k in ("b\(k)", doc.merging(patch: ["key": .string("b\(k)"), "layer": .string("layer-b\(k)"), "parameters": [.string("b\(k).p")], "dimensions": .null,
                                                                                "variants": [["key": "control", "weight": 0.5, "control": true], ["key": "treatment", "weight": 0.5]]])) }) {
        let r = call("experiment.register", ["experiment": d])
        if r["error"] != nil { print("interactions benchmark setup failed: \(r.serialized().prefix(300))") }
        for (version, state, principal) in [(1, "review", "bench"), (2, "approved", "bench.approver"), (3, "running", "bench")] {
            let moved = call("experiment.transition", ["key": .string(k), "version": JSON(version), "to": .string(state)], as: principal)
            if moved["error"] != nil { print("interactions benchmark setup failed: \(moved.serialized().prefix(300))") }
        }
        if k != "wide" { crossedKeys.append(k) }
    }
    try! service.store.write { tx in
        for b in crossedKeys {
            for arm in ["control", "treatment", "(not assigned)"] {
                for day in 0..<90 {
                    let date = Timestamp(rfc3339: "2026-01-01")!.adding(days: Double(day)).day
                    for (i, m) in (names + ["crash_rate", "__exposures"]).enumerated() {
                        for v in 0..<5 {
                            let n = Double(100 + rng.next() % 5)
                            let a: Aggregate = m == "__exposures" ? .exposures(n: n)
                                : (i % 2 == 0 || m == "crash_rate" ? .binomial(n: n, successes: Double(10 + rng.next() % 4))
                                                                   : .continuous(n: n, sum: Double(1000 + rng.next() % 20), sumSquares: Double(100_000 + rng.next() % 500)))
                            try tx.upsertResult(key: "wide", metric: m, variant: "v\(v)", day: date, segment: "arm:\(b)=\(arm)", stats: a.storageText,
                                                source: "bench", at: "2026-01-02T00:00:00Z")
                        }
                    }
                }
            }
        }
        try tx.refreshTotals(key: "wide")
    }
    var interactionTimes: [Double] = []
    var tests = 0
    for _ in 0..<10 {
        let t = now()
        let r = call("results.interactions", ["key": "wide", "as_of": "2026-04-02T00:00:00Z"])
        interactionTimes.append(now() - t)
        if r["error"] != nil { print("interactions failed: \(r.serialized().prefix(300))"); break }
        tests = r["result"]?["tests"]?.intValue ?? 0
    }
    report("results.interactions 5 overlapping experiments x 31 metrics x 5 variants x 90 days", percentile(interactionTimes, 0.5) * 1000, "ms",
           ["max_ms": (interactionTimes.max() ?? 0) * 1000, "tests": tests])
}
