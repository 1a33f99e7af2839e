import Foundation
import RPC
import Registry
import Store
import JSONCore
import Statistics

/// Streams unit-level rows (CSV or JSON lines) into additive aggregates with bounded memory.
///
/// Pass 1 reads the file once, validates every row and spills compact fixed-size records into 64 partition
/// files by a 64-bit fingerprint of the unit id. Pass 2 loads one partition at a time, groups rows by unit,
/// excludes units seen in more than one variant, folds each unit's rows (sums; 0/1 metrics take the maximum;
/// the first day is the unit's exposure day) and adds them to per-metric, per-variant, per-day aggregates.
/// Memory is one partition (about 1/64 of the file's records), whatever the file size.
final class Ingestor {
    struct Problem { var line: Int; var kind: String; var message: String }

    enum Column { case unit, variant, day, value(metric: Int, role: ValueRole) }
    enum ValueRole: Int { case value = 0, pre = 1, numerator = 2, denominator = 3 }

    struct MetricSlot { var name: String; var type: MetricType; var hasPre = false }

    let context: ResultsContext
    let allowPartial: Bool
    let progress: ((_ bytes: Int, _ rows: Int) -> Void)?
    private(set) var problems: [Problem] = []
    private(set) var problemCounts: [String: Int] = [:]
    private(set) var rowsRead = 0
    private(set) var rowsRejected = 0
    private(set) var unitsExcluded = 0
    private(set) var unitsLoaded = 0

    private var columns: [Column] = []
    private var metrics: [MetricSlot] = []
    private var valueCount = 0             // value slots in memory: 4 per metric (value, pre, numerator, denominator)
    /// The slots the file's columns fill, in record order: only these are spilled, so records stay small.
    private var usedSlots: [Int] = []
    /// Record position of each slot, or -1 when no column fills it.
    private var recordPosition: [Int] = []
    private var days: [String] = []
    private var dayIndex: [String: UInt16] = [:]
    private let variants: [String]

    init(context: ResultsContext, allowPartial: Bool, progress: ((Int, Int) -> Void)? = nil) {
        self.context = context
        self.allowPartial = allowPartial
        self.progress = progress
        self.variants = context.doc.variants.map(\.key)
    }

    func problem(_ line: Int, _ kind: String, _ message: String) {
        problemCounts[kind, default: 0] += 1
        if problems.count < 100 { problems.append(Problem(line: line, kind: kind, message: message)) }
    }

    /// Aggregates keyed by metric, variant and day ('' when the file has no day column).
    typealias Totals = [String: [String: [String: Aggregate]]]

    func run(path: String, format: String) throws -> Totals {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw RPCError.invalidParams(path: "path", "cannot open \(path) for reading")
        }
        defer { try? handle.close() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("referee-ingest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let partitions = 64
        var spills = (0..<partitions).map { _ in [UInt8]() }
        let files: [FileHandle] = try (0..<partitions).map { i in
            let url = dir.appendingPathComponent("p\(i)")
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
            return try FileHandle(forWritingTo: url)
        }

        // Pass 1: read, validate, spill.
        var lineNumber = 0
        var bytesDone = 0
        var pending = [UInt8]()
        var headerDone = false
        var jsonlKeys: [String] = []
        var fields: [ArraySlice<UInt8>] = []
        var values = [Double](repeating: .nan, count: 0)
        let variantBytes = variants.map { Array($0.utf8) }
        var lastDayBytes: [UInt8] = []
        var lastDay: UInt16 = 0
        func text(_ f: ArraySlice<UInt8>, _ limit: Int = 60) -> String { String(decoding: f.prefix(limit), as: UTF8.self) }
        func handleLine(_ raw: ArraySlice<UInt8>) throws {
            lineNumber += 1
            var line = raw
            if line.last == 0x0D { line = line.dropLast() }
            if !headerDone && format == "csv" {
                try readHeader(splitCSV(String(decoding: line, as: UTF8.self)), line: lineNumber)
                headerDone = true
                values = [Double](repeating: .nan, count: valueCount)
                return
            }
            if line.isEmpty { return }
            rowsRead += 1
            if format == "jsonl" {
                guard case .object(let o)? = try? JSONParser.parse(Array(line)) else {
                    rowsRejected += 1; problem(lineNumber, "malformed_row", "line \(lineNumber) is not a JSON object"); return
                }
                if !headerDone {
                    jsonlKeys = o.keys.sorted()
                    try readHeader(jsonlKeys, line: lineNumber)
                    headerDone = true
                    values = [Double](repeating: .nan, count: valueCount)
                }
                fields = jsonlKeys.map { k in
                    switch o[k] {
                    case .string(let s)?: ArraySlice(Array(s.utf8))
                    case .number(let d)?: ArraySlice(Array(JSON.number(d).serialized().utf8))
                    case .bool(let b)?: ArraySlice(Array((b ? "1" : "0").utf8))
                    default: []
                    }
                }
                if let extra = o.keys.first(where: { !jsonlKeys.contains($0) }) {
                    rowsRejected += 1; problem(lineNumber, "malformed_row", "line \(lineNumber) has field \"\(extra)\" not in the first row"); return
                }
            } else if line.contains(UInt8(ascii: "\"")) {
                fields = splitCSV(String(decoding: line, as: UTF8.self)).map { ArraySlice(Array($0.utf8)) }
            } else {
                fields = line.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            }
            guard fields.count == columns.count else {
                rowsRejected += 1
                problem(lineNumber, "malformed_row", "line \(lineNumber) has \(fields.count) columns, the header has \(columns.count)")
                return
            }
            var unit: ArraySlice<UInt8> = [], variant = -1, day: UInt16 = 0
            for i in values.indices { values[i] = .nan }
            for (i, column) in columns.enumerated() {
                let f = fields[i]
                switch column {
                case .unit: unit = f
                case .variant:
                    guard let v = variantBytes.firstIndex(where: { $0.elementsEqual(f) }) else {
                        rowsRejected += 1
                        problem(lineNumber, "unknown_variant", "line \(lineNumber): variant \"\(text(f))\" is not one of \(variants.joined(separator: ", "))")
                        return
                    }
                    variant = v
                case .day:
                    if !lastDayBytes.isEmpty && lastDayBytes.elementsEqual(f) { day = lastDay; continue }
                    let d = String(decoding: f, as: UTF8.self)
                    if let idx = dayIndex[d] { day = idx } else {
                        guard d.utf8.count == 10, Timestamp(rfc3339: d) != nil, days.count < 65_000 else {
                            rowsRejected += 1; problem(lineNumber, "malformed_row", "line \(lineNumber): day \"\(d.prefix(40))\" is not YYYY-MM-DD"); return
                        }
                        day = UInt16(days.count); dayIndex[d] = day; days.append(d)
                    }
                    lastDayBytes = Array(f); lastDay = day
                case .value(let m, let role):
                    if m < 0 || f.isEmpty { continue }
                    guard let x = Ingestor.number(f), x.isFinite else {
                        rowsRejected += 1; problem(lineNumber, "malformed_row", "line \(lineNumber): \(metrics[m].name) value \"\(text(f, 40))\" is not a number"); return
                    }
                    switch (metrics[m].type, role) {
                    case (.binomial, .value) where x != 0 && x != 1:
                        rowsRejected += 1; problem(lineNumber, "malformed_row", "line \(lineNumber): \(metrics[m].name) is binomial and must be 0 or 1, got \(text(f))"); return
                    case (.nps, .value) where x < 0 || x > 10 || x.rounded() != x:
                        rowsRejected += 1; problem(lineNumber, "malformed_row", "line \(lineNumber): \(metrics[m].name) is an NPS score and must be an integer 0-10, got \(text(f))"); return
                    default: break
                    }
                    values[m * 4 + role.rawValue] = x
                }
            }
            guard !unit.isEmpty else { rowsRejected += 1; problem(lineNumber, "malformed_row", "line \(lineNumber): unit_id is empty"); return }
            for (m, slot) in metrics.enumerated() where slot.type == .ratio {
                if values[m * 4 + 2].isNaN != values[m * 4 + 3].isNaN {
                    rowsRejected += 1; problem(lineNumber, "malformed_row", "line \(lineNumber): \(slot.name) needs both numerator and denominator"); return
                }
            }
            // Spill: fingerprint, variant, day, values.
            let fp = Ingestor.fingerprint(unit)
            let p = Int(fp >> 58)
            withUnsafeBytes(of: fp.littleEndian) { spills[p].append(contentsOf: $0) }
            spills[p].append(UInt8(variant))
            withUnsafeBytes(of: day.littleEndian) { spills[p].append(contentsOf: $0) }
            for k in usedSlots { withUnsafeBytes(of: values[k].bitPattern.littleEndian) { spills[p].append(contentsOf: $0) } }
            if spills[p].count > 1 << 20 { files[p].write(Data(spills[p])); spills[p].removeAll(keepingCapacity: true) }
        }
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            bytesDone += chunk.count
            pending.append(contentsOf: chunk)
            var start = pending.startIndex
            while let nl = pending[start...].firstIndex(of: 0x0A) {
                try handleLine(pending[start..<nl])
                start = nl + 1
            }
            pending.removeSubrange(..<start)
            progress?(bytesDone, rowsRead)
        }
        if !pending.isEmpty { try handleLine(pending[...]) }
        if !headerDone && format == "csv" { throw RPCError.invalidParams(path: "path", "\(path) is empty: expected a header line") }
        for p in 0..<partitions where !spills[p].isEmpty { files[p].write(Data(spills[p])) }
        for f in files { try? f.close() }
        progress?(bytesDone, rowsRead)
        if !problems.isEmpty && !allowPartial { return [:] }

        // Pass 2: per partition, group by unit, exclude multi-variant units, fold and aggregate.
        var totals: Totals = [:]
        var accumulators: [Int: Aggregate] = [:]   // key: ((metric * 256 + variant) * 65536 + day)
        var exposures: [Int: Double] = [:]        // key: variant * 65536 + day
        let recordSize = 11 + 8 * usedSlots.count
        let position = recordPosition
        for p in 0..<partitions {
            let data = try Data(contentsOf: dir.appendingPathComponent("p\(p)"))
            let count = data.count / recordSize
            if count == 0 { continue }
            data.withUnsafeBytes { raw in
                func fp(_ i: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * recordSize, as: UInt64.self)) }
                func variant(_ i: Int) -> Int { Int(raw[i * recordSize + 8]) }
                func day(_ i: Int) -> Int { Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i * recordSize + 9, as: UInt16.self))) }
                func value(_ i: Int, _ k: Int) -> Double {
                    let at = position[k]
                    guard at >= 0 else { return .nan }
                    return Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * recordSize + 11 + 8 * at, as: UInt64.self)))
                }
                let order = (0..<count).sorted { fp($0) < fp($1) }
                var g = 0
                var unitValues = [Double](repeating: .nan, count: valueCount)
                while g < count {
                    var h = g
                    while h + 1 < count && fp(order[h + 1]) == fp(order[g]) { h += 1 }
                    let v0 = variant(order[g])
                    if (g...h).contains(where: { variant(order[$0]) != v0 }) {
                        unitsExcluded += 1
                        g = h + 1
                        continue
                    }
                    // Fold the unit's rows.
                    var firstDay = day(order[g])
                    for k in 0..<valueCount { unitValues[k] = .nan }
                    for r in g...h {
                        let i = order[r]
                        firstDay = min(firstDay, day(i))
                        for (m, slot) in metrics.enumerated() {
                            for role in 0..<4 {
                                let x = value(i, m * 4 + role)
                                guard !x.isNaN else { continue }
                                let k = m * 4 + role
                                if unitValues[k].isNaN { unitValues[k] = x; continue }
                                switch (slot.type, role) {
                                case (.binomial, 0): unitValues[k] = max(unitValues[k], x)
                                case (.nps, 0), (_, 1): unitValues[k] = x       // last score; pre-period is per unit
                                default: unitValues[k] += x
                                }
                            }
                        }
                    }
                    unitsLoaded += 1
                    exposures[v0 * 65536 + firstDay, default: 0] += 1
                    for (m, slot) in metrics.enumerated() {
                        let x = unitValues[m * 4], pre = unitValues[m * 4 + 1], num = unitValues[m * 4 + 2], den = unitValues[m * 4 + 3]
                        let add: Aggregate
                        switch slot.type {
                        case .binomial:
                            guard !x.isNaN else { continue }
                            add = .binomial(n: 1, successes: x)
                        case .continuous:
                            guard !x.isNaN else { continue }
                            if slot.hasPre {
                                let pr = pre.isNaN ? 0 : pre
                                add = .cuped(n: 1, post: .init(sum: x, sumSquares: x * x), pre: .init(sum: pr, sumSquares: pr * pr), postPre: x * pr)
                            } else {
                                add = .continuous(n: 1, sum: x, sumSquares: x * x)
                            }
                        case .ratio:
                            guard !num.isNaN, !den.isNaN else { continue }
                            add = .ratio(n: 1, numerator: .init(sum: num, sumSquares: num * num), denominator: .init(sum: den, sumSquares: den * den), product: num * den)
                        case .nps:
                            guard !x.isNaN else { continue }
                            add = .nps(promoters: x >= 9 ? 1 : 0, passives: x >= 7 && x < 9 ? 1 : 0, detractors: x < 7 ? 1 : 0)
                        }
                        let key = (m * 256 + v0) * 65536 + firstDay
                        accumulators[key] = accumulators[key].flatMap { $0 + add } ?? add
                    }
                    g = h + 1
                }
            }
        }
        let dayName = { (d: Int) in self.days.isEmpty ? "" : self.days[d] }
        for (key, a) in accumulators {
            let m = key / (256 * 65536), v = (key / 65536) % 256, d = key % 65536
            totals[metrics[m].name, default: [:]][variants[v], default: [:]][dayName(d)] = a
        }
        for (key, n) in exposures {
            totals[exposuresMetric, default: [:]][variants[key / 65536], default: [:]][dayName(key % 65536)] = .exposures(n: n)
        }
        return totals
    }

    private func readHeader(_ names: [some StringProtocol], line: Int) throws {
        var seenUnit = false, seenVariant = false
        let known = context.metrics.map(\.name)
        for raw in names {
            let name = String(raw)
            switch name {
            case "unit_id": columns.append(.unit); seenUnit = true
            case "variant": columns.append(.variant); seenVariant = true
            case "day": columns.append(.day)
            default:
                var base = name, role = ValueRole.value
                for (suffix, r) in [(".pre", ValueRole.pre), (".numerator", .numerator), (".denominator", .denominator)] where name.hasSuffix(suffix) {
                    base = String(name.dropLast(suffix.count)); role = r
                }
                guard known.contains(base), let def = context.catalog.metrics[base] else {
                    problem(line, "unknown_metric", "column \"\(name.prefix(60))\" is not a metric of \(context.doc.key) (\(known.joined(separator: ", ")))")
                    columns.append(.value(metric: -1, role: .value))
                    continue
                }
                let wrongRole = (def.type == .ratio) != (role == .numerator || role == .denominator) || (role == .pre && def.type != .continuous)
                if wrongRole {
                    problem(line, "unknown_metric", "column \"\(name)\": \(base) is a \(def.type.rawValue) metric" + (def.type == .ratio ? "; use \(base).numerator and \(base).denominator" : ""))
                    columns.append(.value(metric: -1, role: .value))
                    continue
                }
                let m: Int
                if let existing = metrics.firstIndex(where: { $0.name == base }) { m = existing } else {
                    metrics.append(MetricSlot(name: base, type: def.type)); m = metrics.count - 1
                }
                if role == .pre { metrics[m].hasPre = true }
                columns.append(.value(metric: m, role: role))
            }
        }
        if !seenUnit || !seenVariant {
            throw RPCError.invalidParams(path: "path", "the header (line \(line)) must name unit_id and variant columns")
        }
        // Unknown metric columns (metric -1) are skipped in the records; they were reported above.
        valueCount = metrics.count * 4
        for case .value(let m, let role) in columns where m >= 0 { usedSlots.append(m * 4 + role.rawValue) }
        usedSlots = Array(Set(usedSlots)).sorted()
        recordPosition = [Int](repeating: -1, count: valueCount)
        for (i, k) in usedSlots.enumerated() { recordPosition[k] = i }
    }

    /// Splits one CSV record (RFC 4180 quoting).
    private func splitCSV(_ line: String) -> [Substring] {
        if !line.contains("\"") { return line.split(separator: ",", omittingEmptySubsequences: false) }
        var out: [Substring] = []
        var field = ""
        var quoted = false
        var iterator = line.makeIterator()
        var previousQuote = false
        while let ch = iterator.next() {
            if quoted {
                if ch == "\"" { quoted = false; previousQuote = true } else { field.append(ch) }
            } else if ch == "\"" {
                if previousQuote { field.append("\"") }
                quoted = true; previousQuote = false
            } else if ch == "," {
                out.append(Substring(field)); field = ""; previousQuote = false
            } else {
                field.append(ch); previousQuote = false
            }
        }
        out.append(Substring(field))
        return out
    }

    /// FNV-1a 64 of the unit id: 64 bits keep collisions negligible (about 7e-5 chance of any among 50 million units).
    static func fingerprint(_ s: ArraySlice<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s { h ^= UInt64(b); h = h &* 0x0000_0100_0000_01b3 }
        return h
    }

    private static let powers: [Double] = (0...22).map { e in (0..<e).reduce(1.0) { r, _ in r * 10 } }

    /// A decimal number from bytes: exact fast path for up to 15 significant digits, else the standard parser.
    static func number(_ f: ArraySlice<UInt8>) -> Double? {
        var i = f.startIndex
        var negative = false
        if f[i] == UInt8(ascii: "-") { negative = true; i += 1 } else if f[i] == UInt8(ascii: "+") { i += 1 }
        var mantissa: UInt64 = 0, digits = 0, scale = 0, sawDigit = false
        while i < f.endIndex, f[i] >= 0x30, f[i] <= 0x39 { mantissa = mantissa &* 10 &+ UInt64(f[i] - 0x30); digits += 1; sawDigit = true; i += 1 }
        if i < f.endIndex, f[i] == UInt8(ascii: ".") {
            i += 1
            while i < f.endIndex, f[i] >= 0x30, f[i] <= 0x39 { mantissa = mantissa &* 10 &+ UInt64(f[i] - 0x30); digits += 1; scale -= 1; sawDigit = true; i += 1 }
        }
        if i == f.endIndex, sawDigit, digits <= 15, scale >= -22 {
            let v = scale == 0 ? Double(mantissa) : Double(mantissa) / powers[-scale]
            return negative ? -v : v
        }
        return Double(String(decoding: f, as: UTF8.self))
    }

    var report: JSON {
        ["rows_read": JSON(rowsRead), "rows_rejected": JSON(rowsRejected), "units_loaded": JSON(unitsLoaded),
         "units_in_several_variants": JSON(unitsExcluded),
         "problems": .array(problems.map { ["line": JSON($0.line), "kind": .string($0.kind), "message": .string($0.message)] }),
         "problem_counts": .object(problemCounts.mapValues { JSON($0) })]
    }
}

extension RefereeService {
    /// `results.ingest {key, path, format?, allow_partial?}`: all or nothing unless `allow_partial`.
    public func ingest(key: String, path: String, format: String?, allowPartial: Bool, principal: String,
                       progress: ((Int, Int) -> Void)? = nil) throws -> JSON {
        let c = try resultsContext(key)
        let fmt = format ?? (path.hasSuffix(".jsonl") || path.hasSuffix(".ndjson") ? "jsonl" : "csv")
        guard fmt == "csv" || fmt == "jsonl" else { throw FieldError(path: "format", message: "must be csv or jsonl") }
        let ingestor = Ingestor(context: c, allowPartial: allowPartial, progress: progress)
        let totals = try ingestor.run(path: path, format: fmt)
        var report = ingestor.report.objectValue!
        if !ingestor.problems.isEmpty && !allowPartial {
            report["loaded"] = false
            let first = ingestor.problems.prefix(3).map(\.message).joined(separator: "; ")
            throw RPCError(code: .invalidInput,
                           message: "\(ingestor.problemCounts.values.reduce(0, +)) problem(s) in \(path), nothing written (pass allow_partial to load the valid rows): \(first)",
                           data: .object(report.merging(["reason": "invalid_input"]) { $1 }))
        }
        let at = now().description
        var written = 0
        try store.write { tx in
            for (metric, perVariant) in totals {
                for (variant, perDay) in perVariant {
                    for (day, aggregate) in perDay {
                        try tx.upsertResult(key: key, metric: metric, variant: variant, day: day, segment: "", stats: aggregate.storageText, source: "ingest", at: at)
                        written += 1
                    }
                }
            }
            try tx.appendAudit(at: at, principal: principal, onBehalfOf: nil, method: "results.ingest", key: key, before: .null,
                               after: ["path": .string(path), "rows_read": JSON(ingestor.rowsRead), "units_loaded": JSON(ingestor.unitsLoaded),
                                       "aggregates_written": JSON(written)], reason: nil)
        }
        report["loaded"] = true
        report["aggregates_written"] = JSON(written)
        return .object(report)
    }

    func ingestMethod(_ p: Fields, _ ctx: RPCContext) throws -> JSON {
        try p.rejectUnknown(["key", "path", "format", "allow_partial"])
        if ctx.transport == .socket {
            // The shared service reads files with its own rights: only accept a regular file that the client owns,
            // so a client cannot make the service read what the client itself may not.
            let path = try p.string("path")
            var st = stat()
            guard lstat(path, &st) == 0 else { throw FieldError(path: "path", message: "cannot read \(path)") }
            guard (st.st_mode & S_IFMT) == S_IFREG, let uid = ctx.peerUID, st.st_uid == uid else {
                throw RegistryError.forbidden("over the shared socket, results.ingest reads only regular files owned by the caller (\(ctx.principal)); \(path) is not",
                                              details: ["principal": .string(ctx.principal), "path": .string(path)])
            }
        }
        let format = try p.has("format") ? p.choice("format", ["csv", "jsonl"]) : nil
        return try ingest(key: try p.string("key"), path: try p.string("path"), format: format,
                          allowPartial: try p.optionalBool("allow_partial") ?? false, principal: ctx.principal)
    }
}
