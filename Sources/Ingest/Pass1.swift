import POSIX
import Foundation
import Synchronization
import JSONCore
import Registry

/// What every pass-1 worker shares: read-only after the header.
final class Pass1Shared: @unchecked Sendable {
    let columns: [Ingestor.Column]
    let metrics: [Ingestor.MetricSlot]
    let valueCount: Int
    let usedSlots: [Int]
    let computedArms: [Ingestor.ComputedArm]
    let variants: [String]
    let format: String
    let dir: URL
    let ingestor: Ingestor
    /// Day indexes (``CalendarDay``) of the schedule, first and last day included; rows outside are not counted.
    let scheduleDays: ClosedRange<Int32>?

    init(ingestor: Ingestor, format: String, dir: URL) {
        let header = ingestor.headerState()
        columns = header.columns; metrics = header.metrics; valueCount = header.valueCount; usedSlots = header.usedSlots
        computedArms = header.computedArms
        variants = ingestor.variantKeys
        self.format = format
        self.dir = dir
        self.ingestor = ingestor
        scheduleDays = ingestor.scheduleDays
    }
}

/// One pass-1 worker's findings; line numbers are relative to the worker's first line.
struct Pass1Outcome: @unchecked Sendable {
    struct LocalProblem { var line: Int; var kind: String; var render: (Int) -> String }
    var problems: [LocalProblem]
    var problemCounts: [String: Int]
    var rowsRead: Int
    var rowsRejected: Int
    var lines: Int
    /// Bit i set: day index i (``CalendarDay``) occurs; empty when the file has no day column.
    var daysSeen: [UInt64]
    var jsonlHeader: HeaderState?
    /// Rows dated outside the schedule (not counted), with their first and last day index.
    var outsideSchedule: Int
    var outsideDays: ClosedRange<Int32>?
}

/// A pass-1 worker's buffers, allocated once: a write buffer per partition, and the current row's
/// field bounds and values. Raw memory keeps the per-row work free of copy-on-write checks.
final class WorkerMemory {
    static let spillBytes = 1 << 17
    let spill: UnsafeMutableRawPointer
    let filled: UnsafeMutablePointer<Int>
    var starts: UnsafeMutablePointer<Int>
    var ends: UnsafeMutablePointer<Int>
    var fieldCapacity: Int
    var fields = 0
    var values: UnsafeMutablePointer<Double>
    var valueCount: Int
    /// Spill file of each partition, opened on first use; closed when the worker's memory goes, on any path.
    var files = [Int32](repeating: -1, count: Ingestor.partitions)

    init(valueCount: Int) {
        spill = .allocate(byteCount: Ingestor.partitions * Self.spillBytes, alignment: 16)
        filled = .allocate(capacity: Ingestor.partitions)
        filled.initialize(repeating: 0, count: Ingestor.partitions)
        fieldCapacity = 64
        starts = .allocate(capacity: fieldCapacity)
        ends = .allocate(capacity: fieldCapacity)
        self.valueCount = valueCount
        values = .allocate(capacity: max(valueCount, 1))
    }

    func resizeValues(_ count: Int) {
        values.deallocate()
        valueCount = count
        values = .allocate(capacity: max(count, 1))
    }

    @inline(__always) func addField(_ start: Int, _ end: Int) {
        if fields == fieldCapacity {
            let bigger = fieldCapacity * 2
            let s = UnsafeMutablePointer<Int>.allocate(capacity: bigger), e = UnsafeMutablePointer<Int>.allocate(capacity: bigger)
            s.update(from: starts, count: fields); e.update(from: ends, count: fields)
            starts.deallocate(); ends.deallocate()
            starts = s; ends = e; fieldCapacity = bigger
        }
        starts[fields] = start
        ends[fields] = end
        fields += 1
    }

    deinit {
        for fd in files where fd >= 0 { close(fd) }
        spill.deallocate(); filled.deallocate(); starts.deallocate(); ends.deallocate(); values.deallocate()
    }
}

/// Reads one byte range of the file, validates each row and spills records by unit fingerprint.
struct Pass1Worker {

    let shared: Pass1Shared
    let index: Int
    var columns: [Ingestor.Column]
    var metrics: [Ingestor.MetricSlot]
    var valueCount: Int
    var usedSlots: [Int]
    var computedArms: [Ingestor.ComputedArm]
    /// `computedArms` as the row loop reads them, in this worker's own storage.
    var armPlans: [Ingestor.ComputedArm.Plan]
    /// Per computed arm: whether its targeting holds, by fingerprint of the row's attribute values (files repeat a few
    /// countries and platforms millions of times; the condition is evaluated once per combination).
    var eligibility: [[UInt64: Bool]] = []
    var jsonlHeader: HeaderState?
    var jsonlKeys: [String] = []
    var problems: [Pass1Outcome.LocalProblem] = []
    var problemCounts: [String: Int] = [:]
    var rowsRead = 0, rowsRejected = 0, line = 0
    var daysSeen: [UInt64]
    var outsideSchedule = 0
    var outsideDays: ClosedRange<Int32>?
    let memory: WorkerMemory
    var scratch: [UInt8] = []
    /// Per-row lookups as plain values, to this worker (see ``Accumulators/fold``).
    var types: [MetricType]
    let isJSONL: Bool
    var variantBytes: [UInt8] = []
    var variantRanges: [Range<Int>] = []

    /// Per dimension: the numbers of the values this worker has seen (the shared table is asked once per value).
    var dimensionNumbers: [[UInt64: Int]] = []

    init(shared: Pass1Shared, index: Int) {
        self.shared = shared
        self.index = index
        // Copies of their own (map makes new storage): the row loop must not share reference counts with the
        // other workers.
        columns = shared.columns.map { $0 }; metrics = shared.metrics; valueCount = shared.valueCount; usedSlots = shared.usedSlots.map { $0 }
        computedArms = shared.computedArms
        armPlans = shared.computedArms.map(\.plan)
        types = metrics.map(\.type)
        isJSONL = shared.format == "jsonl"
        for v in shared.variants {
            let start = variantBytes.count
            variantBytes.append(contentsOf: Array(v.utf8))
            variantRanges.append(start..<variantBytes.count)
        }
        memory = WorkerMemory(valueCount: shared.valueCount)
        daysSeen = []
        dimensionNumbers = Array(repeating: [:], count: shared.ingestor.dimensionNames.count)
    }

    mutating func reject(_ kind: String, _ render: @escaping (Int) -> String) {
        rowsRejected += 1
        problemCounts[kind, default: 0] += 1
        if problems.count < 100 { problems.append(.init(line: line, kind: kind, render: render)) }
    }

    /// Where a worker reads: a byte range of a regular file, or a whole stream (after `prefix`, already read).
    enum Source {
        case file(fd: Int32, range: Range<Int>)
        case stream(fd: Int32, prefix: [UInt8])
    }

    /// A row longer than this is rejected and skipped, so a file without newlines cannot exhaust memory.
    static let maxLineBytes = 1 << 20

    mutating func run(_ source: Source, progress: (_ bytes: Int, _ rows: Int) -> Void) throws {
        var buffer = [UInt8](repeating: 0, count: Self.maxLineBytes + (1 << 16))
        var filled = 0
        var offset = 0, end = Int.max
        let fd: Int32, streaming: Bool
        switch source {
        case .file(let f, let range): fd = f; offset = range.lowerBound; end = range.upperBound; streaming = false
        case .stream(let f, let prefix):
            fd = f; streaming = true
            buffer.replaceSubrange(0..<prefix.count, with: prefix)
            filled = prefix.count
        }
        var eof = offset >= end
        var skipping = false      // inside a row longer than maxLineBytes
        var skipped = 0           // bytes of that row dropped so far
        var reportedRows = 0
        while true {
            var n = 0
            if !eof && filled < buffer.count {
                if shared.ingestor.cancelled() { throw Ingestor.cancellation }
                n = try buffer.withUnsafeMutableBytes { b in
                    streaming ? try shared.ingestor.readStream(fd, b.baseAddress! + filled, b.count - filled)
                              : SystemCall.retrying { pread(fd, b.baseAddress! + filled, min(b.count - filled, end - offset), off_t(offset)) }
                }
                guard n >= 0 else { throw Ingestor.ioError("read failed at byte \(offset) of", path: shared.ingestor.inputPath) }
                offset += n
                filled += n
                if n == 0 || offset >= end { eof = true }   // a file that shrank while read ends early
            }
            let atEnd = eof
            let consumed = try buffer.withUnsafeBufferPointer { all -> Int in
                var start = 0
                let base = all.baseAddress!
                while start < filled {
                    guard let hit = memchr(base + start, 0x0A, filled - start) else {
                        guard atEnd else { return start }
                        if skipping { skipping = false } else { try consume(UnsafeBufferPointer(start: base + start, count: filled - start)) }
                        return filled
                    }
                    let nl = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    if skipping { skipping = false } else { try consume(UnsafeBufferPointer(start: base + start, count: nl - start)) }
                    start = nl + 1
                }
                return start
            }
            if consumed > 0 {
                buffer.withUnsafeMutableBytes { b in b.baseAddress!.copyMemory(from: b.baseAddress! + consumed, byteCount: filled - consumed) }
                filled -= consumed
            } else if filled == buffer.count {
                // No newline in a full buffer: reject the row once and drop its bytes up to its newline.
                if !skipping { tooLong(); skipping = true; skipped = 0 }
                skipped += filled
                filled = 0
                // A regular file ends; a stream without newlines (/dev/zero) would not.
                if streaming && skipped > Ingestor.maxBytesWithoutNewline {
                    throw IngestError(.invalidInput,
                                   message: "\(shared.ingestor.streamPath ?? "the file") has no newline in \(Ingestor.maxBytesWithoutNewline >> 20) MiB after line \(line): not a file of rows; nothing was written",
                                   data: ["reason": "invalid_input", "field": "path", "line": JSON(line)])
                }
            }
            progress(n, rowsRead - reportedRows)
            reportedRows = rowsRead
            if atEnd && filled == 0 { break }
        }
    }

    /// One line of the range: a row, or a rejection when it is longer than ``maxLineBytes``.
    mutating func consume(_ raw: UnsafeBufferPointer<UInt8>) throws {
        let length = raw.count - (raw.last == 0x0D ? 1 : 0)
        if length > Self.maxLineBytes { tooLong() } else { try handle(raw) }
    }

    mutating func tooLong() {
        line += 1
        rowsRead += 1
        reject("malformed_row") { "line \($0) is longer than 1 MiB" }
    }

    mutating func handle(_ raw: UnsafeBufferPointer<UInt8>) throws {
        line += 1
        var line = raw
        if let last = line.last, last == 0x0D { line = UnsafeBufferPointer(rebasing: line.dropLast()) }
        if line.isEmpty { return }
        rowsRead += 1
        memory.fields = 0
        let fieldBase: UnsafeBufferPointer<UInt8>
        if isJSONL {
            guard case .object(let o)? = try? JSONParser.parse(line) else {
                reject("malformed_row") { "line \($0) is not a JSON object" }; return
            }
            if jsonlHeader == nil {
                jsonlKeys = o.keys.sorted()
                let header = try shared.ingestor.readJSONLHeader(jsonlKeys, line: self.line)
                jsonlHeader = header
                columns = header.columns; metrics = header.metrics; valueCount = header.valueCount; usedSlots = header.usedSlots
                computedArms = header.computedArms
                armPlans = header.computedArms.map(\.plan)
                types = metrics.map(\.type)
                memory.resizeValues(valueCount)
            }
            if let extra = o.keys.first(where: { !jsonlKeys.contains($0) }) {
                reject("malformed_row") { "line \($0) has field \"\(extra)\" not in the first row" }; return
            }
            scratch.removeAll(keepingCapacity: true)
            for k in jsonlKeys {
                let start = scratch.count
                switch o[k] {
                case .string(let s)?: scratch.append(contentsOf: s.utf8)
                case .number(let d)?: scratch.append(contentsOf: JSON.number(d).serialized().utf8)
                case .bool(let b)?: scratch.append(contentsOf: (b ? "1" : "0").utf8)
                default: break
                }
                memory.addField(start, scratch.count)
            }
            return try scratch.withUnsafeBufferPointer { try row($0) }
        } else if memchr(line.baseAddress!, Int32(UInt8(ascii: "\"")), line.count) != nil {
            scratch.removeAll(keepingCapacity: true)
            for field in Ingestor.splitCSV(String(decoding: line, as: UTF8.self)) {
                let start = scratch.count
                scratch.append(contentsOf: field.utf8)
                memory.addField(start, scratch.count)
            }
            return try scratch.withUnsafeBufferPointer { try row($0) }
        } else {
            var s = 0
            for i in 0..<line.count where line[i] == UInt8(ascii: ",") {
                memory.addField(s, i); s = i + 1
            }
            memory.addField(s, line.count)
            fieldBase = line
        }
        try row(fieldBase)
    }

    /// Validates one row whose fields are `starts`/`ends` in `base`, and spills it.
    mutating func row(_ base: UnsafeBufferPointer<UInt8>) throws {
        func text(_ f: UnsafeBufferPointer<UInt8>, _ limit: Int = 60) -> String { String(decoding: f.prefix(limit), as: UTF8.self) }
        let values = memory.values, starts = memory.starts, ends = memory.ends
        guard memory.fields == columns.count else {
            let got = memory.fields, want = columns.count
            reject("malformed_row") { "line \($0) has \(got) columns, the header has \(want)" }
            return
        }
        var unit = UnsafeBufferPointer<UInt8>(start: nil, count: 0), variant = -1, day: Int32 = 0, hasDay = false
        for i in 0..<valueCount { values[i] = .nan }
        for (i, column) in columns.enumerated() {
            let f = UnsafeBufferPointer(rebasing: base[starts[i]..<ends[i]])
            switch column {
            case .unit: unit = f
            case .variant:
                guard let v = variantIndex(f) else {
                    let name = text(f), known = shared.variants.joined(separator: ", ")
                    reject("unknown_variant") { "line \($0): variant \"\(name)\" is not one of \(known)" }
                    return
                }
                variant = v
            case .day:
                guard let d = CalendarDay.parse(f) else {
                    let shown = text(f, 40)
                    reject("malformed_row") { "line \($0): day \"\(shown)\" is not YYYY-MM-DD" }
                    return
                }
                day = d; hasDay = true
            case .attribute: continue
            case .dimension(let d):
                if f.isEmpty { continue }
                let h = Ingestor.fingerprint(f)
                let n: Int
                if let known = dimensionNumbers[d][h] { n = known } else {
                    n = shared.ingestor.dimensionValues.number(d, hash: h, text: f)
                    dimensionNumbers[d][h] = n
                }
                values[metrics.count * 4 + d] = Double(n)
            case .value(let m, let role):
                if m < 0 || f.isEmpty { continue }
                guard let x = Ingestor.number(f), x.isFinite else {
                    let name = metrics[m].name, shown = text(f, 40)
                    reject("malformed_row") { "line \($0): \(name) value \"\(shown)\" is not a number" }
                    return
                }
                // Sums of squares and products must stay finite; 1e154 squared already is not.
                guard abs(x) < Ingestor.maxValueMagnitude else {
                    let name = metrics[m].name, shown = text(f, 40)
                    reject("value_out_of_range") { "line \($0): \(name) value \(shown) is too large (its sums of squares would overflow); values must be below 1e150 in magnitude" }
                    return
                }
                switch (types[m], role) {
                case (.binomial, .value) where x != 0 && x != 1:
                    let name = metrics[m].name, shown = text(f)
                    reject("malformed_row") { "line \($0): \(name) is binomial and must be 0 or 1, got \(shown)" }
                    return
                case (.nps, .value) where x < 0 || x > 10 || x.rounded() != x:
                    let name = metrics[m].name, shown = text(f)
                    reject("malformed_row") { "line \($0): \(name) is an NPS score and must be an integer 0-10, got \(shown)" }
                    return
                default: break
                }
                values[m * 4 + role.rawValue] = x
            }
        }
        guard !unit.isEmpty else { reject("malformed_row") { "line \($0): unit_id is empty" }; return }
        for a in armPlans.indices {
            let plan = armPlans[a]
            let slot = metrics.count * 4 + plan.dimension
            // Targeting is evaluated on the row's attribute columns, only for units B could otherwise assign.
            let outcome = plan.raw.outcome(bytes: unit) { eligible(a, base) }
            switch outcome {
            case .variant(let v)?: values[slot] = Double(v + 1)
            case .heldOut?, .outside?, .notTargeted?: values[slot] = Double(plan.notAssigned)
            case nil:   // not ASCII: hashed from the decoded string
                if case .variant(let v) = computedArms[a].assigner.outcome(bytes: unit, eligible: { _ in eligible(a, base) }) {
                    values[slot] = Double(v + 1)
                } else { values[slot] = Double(plan.notAssigned) }
            }
        }
        for m in 0..<types.count where types[m] == .ratio {
            if values[m * 4 + 2].isNaN != values[m * 4 + 3].isNaN {
                let name = metrics[m].name
                reject("malformed_row") { "line \($0): \(name) needs both numerator and denominator" }
                return
            }
        }
        if hasDay, let window = shared.scheduleDays, !window.contains(day) {
            // Dated outside the schedule: not counted (or, with strict dates, a problem of the file).
            if shared.ingestor.strictDates {
                let shown = CalendarDay.format(Int(day)), lo = CalendarDay.format(Int(window.lowerBound)), hi = CalendarDay.format(Int(window.upperBound))
                reject("outside_schedule") { "line \($0): day \(shown) is outside the schedule (\(lo) to \(hi))" }
                return
            }
            outsideSchedule += 1
            outsideDays = outsideDays.map { min($0.lowerBound, day)...max($0.upperBound, day) } ?? day...day
            return
        }
        if hasDay {
            if daysSeen.isEmpty { daysSeen = [UInt64](repeating: 0, count: CalendarDay.span / 64 + 1) }
            daysSeen[Int(day) / 64] |= 1 << UInt64(day % 64)
        }
        // Spill: fingerprint, variant, day, values.
        let fp = Ingestor.fingerprint(unit)
        let p = Int(fp >> 57)
        if memory.filled[p] + SpillRecord.maxSize(usedSlots.count) > WorkerMemory.spillBytes { try flush(p) }
        memory.filled[p] += SpillRecord.write(fp: fp, variant: variant, day: day, values: values, slots: usedSlots,
                                              to: memory.spill + p * WorkerMemory.spillBytes + memory.filled[p])
    }

    /// Whether the row's attributes satisfy the targeting of computed arm `a`'s experiment.
    mutating func eligible(_ a: Int, _ base: UnsafeBufferPointer<UInt8>) -> Bool {
        let arm = computedArms[a]
        if eligibility.count < computedArms.count { eligibility = Array(repeating: [:], count: computedArms.count) }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for (_, column) in arm.attributes {
            for b in UnsafeBufferPointer(rebasing: base[memory.starts[column]..<memory.ends[column]]) { h ^= UInt64(b); h = h &* 0x0000_0100_0000_01b3 }
            h ^= 0xFF; h = h &* 0x0000_0100_0000_01b3   // a byte no UTF-8 text holds: fields cannot run into each other
        }
        if let known = eligibility[a][h] { return known }
        var attributes: Attributes = [:]
        for (name, column) in arm.attributes {
            let f = UnsafeBufferPointer(rebasing: base[memory.starts[column]..<memory.ends[column]])
            if f.isEmpty { continue }
            attributes[name] = Ingestor.number(f).map(JSValue.number) ?? .string(String(decoding: f, as: UTF8.self))
        }
        let holds = arm.assigner.subject.targeting.evaluate(attributes)
        if eligibility[a].count < 65_536 { eligibility[a][h] = holds }
        return holds
    }

    func variantIndex(_ f: UnsafeBufferPointer<UInt8>) -> Int? {
        variantBytes.withUnsafeBufferPointer { all in
            for (v, r) in variantRanges.enumerated() where r.count == f.count {
                if f.isEmpty || memcmp(all.baseAddress! + r.lowerBound, f.baseAddress!, r.count) == 0 { return v }
            }
            return nil
        }
    }

    mutating func flush(_ p: Int) throws {
        if memory.files[p] < 0 {
            let path = shared.dir.appendingPathComponent("w\(index)p\(p)").path
            memory.files[p] = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard memory.files[p] >= 0 else { throw Ingestor.ioError("cannot write a spill file", path: path) }
        }
        let fd = memory.files[p]
        let b = memory.spill + p * WorkerMemory.spillBytes
        guard SystemCall.writeAll(fd, b, memory.filled[p]) else {
            throw Ingestor.ioError("cannot write a spill file", path: shared.dir.appendingPathComponent("w\(index)p\(p)").path)
        }
        memory.filled[p] = 0
    }

    mutating func finish() throws -> Pass1Outcome {
        for p in 0..<Ingestor.partitions where memory.filled[p] > 0 { try flush(p) }
        for p in memory.files.indices where memory.files[p] >= 0 { close(memory.files[p]); memory.files[p] = -1 }
        return Pass1Outcome(problems: problems, problemCounts: problemCounts, rowsRead: rowsRead, rowsRejected: rowsRejected,
                            lines: line, daysSeen: daysSeen, jsonlHeader: jsonlHeader, outsideSchedule: outsideSchedule, outsideDays: outsideDays)
    }
}
