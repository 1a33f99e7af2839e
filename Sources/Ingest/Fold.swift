import Foundation
import Synchronization
import JSONCore
import Registry
import Statistics

/// Where pass 2 finds things in a record and in the accumulators.
struct Layout: Sendable {
    var metrics: [Ingestor.MetricSlot]
    var variants: Int
    var days: Int
    var valueCount: Int
    var recordPosition: [Int]
    /// Value slots per spilled record.
    var slots: Int
    /// Day index of `dense[0]`; `dense[day - dayMin]` is the day's position in the sorted list of days.
    var dayMin: Int
    var dense: [Int32]
    var maxDenseSums: Int
    /// Dimension slots follow the four slots of each metric.
    var dimensions: Int = 0
    /// The dimensions units are placed in: all but crossings whose arms the file cannot give (skipped), which would
    /// only fold every unit into `(missing)`.
    var activeDimensions: [Int] = []
    var metricSlots: Int { metrics.count * 4 }
    /// Values of one dimension a worker keeps segments for; later values go to the overflow segment.
    static let maxSegmentsPerWorker = 1000
}


extension Ingestor.MetricSlot: @unchecked Sendable {}

/// A hash table from unit fingerprint to the unit's records, chained in file order; reused between partitions.
/// A slot keeps fingerprint, first and last record together, so a probe touches one cache line.
struct UnitGrouping {
    struct Slot { var fingerprint: UInt64; var head: Int32; var tail: Int32 }
    var slots: [Slot] = []
    var used: [Int32] = []
    /// Per record: the next record of the same unit, or -1.
    var next: [Int32] = []
    /// Per record: whether it is its unit's first.
    var isHead: [Bool] = []

    /// Chains the records (starting at `starts` in `raw`) of each unit in file order: `isHead` marks each unit's first.
    mutating func chain(_ raw: UnsafeRawBufferPointer, starts: [Int]) {
        let count = starts.count
        var capacity = 16
        while capacity < count + count / 2 { capacity <<= 1 }
        let mask = capacity - 1
        if slots.count != capacity {
            slots = [Slot](repeating: .init(fingerprint: 0, head: -1, tail: -1), count: capacity)
        } else {
            for slot in used { slots[Int(slot)].head = -1 }
        }
        used.removeAll(keepingCapacity: true)
        if next.count < count {
            next = [Int32](repeating: -1, count: count)
            isHead = [Bool](repeating: false, count: count)
        }
        for i in 0..<count {
            let f = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: starts[i], as: UInt64.self))
            var slot = Int(truncatingIfNeeded: (f ^ (f >> 29)) & UInt64(mask))
            while slots[slot].head >= 0 && slots[slot].fingerprint != f { slot = (slot + 1) & mask }
            next[i] = -1
            if slots[slot].head < 0 {
                slots[slot] = .init(fingerprint: f, head: Int32(i), tail: Int32(i))
                used.append(Int32(slot))
                isHead[i] = true
            } else {
                next[Int(slots[slot].tail)] = Int32(i); slots[slot].tail = Int32(i)
                isHead[i] = false
            }
        }
    }

    /// Where each record of a partition starts (records have different lengths).
    static func starts(_ records: [UInt8], slots: Int) -> [Int] {
        var starts: [Int] = []
        records.withUnsafeBytes { raw in
            var r = 0
            while let length = SpillRecord.length(raw, at: r, slots: slots) { starts.append(r); r += length }
        }
        return starts
    }
}

enum FoldRule { case sum, maximum, last, first }

/// Sums per metric, variant and day (six numbers a cell: enough for every aggregate shape) and exposures.
struct Accumulators: Sendable {
    /// Six sums per cell; cell `(m * variants + v) * days + d`, where metric index `metrics.count` holds the
    /// exposures. Dense while every cell fits in 32 MB; beyond (many days, metrics and variants) only the
    /// cells that occur are kept, found through `sparse`.
    var cells: [Double]
    var sparse: [Int: Int]?
    var unitsLoaded = 0
    var unitsExcluded = 0
    /// Per metric: units whose value was above the metric's cap (and was lowered to it).
    var cappedUnits: [Int] = []
    /// Per capped metric: units with a value (what a percentile cap is a quantile of).
    var valueUnits: [Int] = []
    /// Per dimension: the sums of each value's units (one ``SegmentStore`` per dimension, this worker's own).
    var segments: [SegmentStore] = []
    /// Per dimension: units whose value differs between their rows (counted under their earliest row's value).
    var changedUnits: [Int] = []
    /// Quantile metrics: per cell (metric, variant, exposure day), the sketch of its units' values.
    var sketches: [Int: QuantileSketch] = [:]
    /// While folding: the same sketches by cell in an array (a dictionary lookup per unit costs more than the insert);
    /// ``settleSketches()`` moves them into `sketches`.
    var denseSketches: [QuantileSketch] = []

    init(layout: Layout) {
        let count = (layout.metrics.count + 1) * layout.variants * layout.days * 6
        if count <= layout.maxDenseSums {
            cells = [Double](repeating: 0, count: count)
        } else {
            cells = []
            sparse = [:]
        }
        if layout.metrics.contains(where: { $0.type == .quantile }) && count / 6 <= 1 << 16 {
            denseSketches = Array(repeating: QuantileSketch(), count: count / 6)
        }
        if layout.dimensions > 0 {
            segments = (0..<layout.dimensions).map { _ in SegmentStore(width: count) }
            changedUnits = Array(repeating: 0, count: layout.dimensions)
        }
    }

    /// Sums read back from one segment (dense: segments are kept only for layouts that fit).
    init(cells: [Double], sketches: [Int: QuantileSketch] = [:]) {
        self.cells = cells
        self.sketches = sketches
    }

    mutating func settleSketches() {
        for (cell, sketch) in denseSketches.enumerated() where !sketch.isEmpty { sketches[cell, default: QuantileSketch()].merge(sketch) }
        denseSketches = []
    }

    /// Adds another's sketches, cell by cell.
    static func merge(_ other: [Int: QuantileSketch], into sketches: inout [Int: QuantileSketch]) {
        for (cell, sketch) in other { sketches[cell, default: QuantileSketch()].merge(sketch) }
    }

    /// Where the six sums of `cell` start.
    @inline(__always) mutating func offset(_ cell: Int) -> Int {
        guard sparse != nil else { return cell * 6 }
        if let at = sparse![cell] { return at }
        let at = cells.count
        cells.append(contentsOf: repeatElement(0, count: 6))
        sparse![cell] = at
        return at
    }

    /// Every cell that has sums, with where they start.
    var occupied: [(cell: Int, offset: Int)] {
        if let sparse { return sparse.map { ($0.key, $0.value) }.sorted { $0.cell < $1.cell } }
        return (0..<(cells.count / 6)).map { ($0, $0 * 6) }
    }

    mutating func add(_ other: Accumulators) {
        for d in other.segments.indices {
            changedUnits[d] += other.changedUnits[d]
            segments[d].add(other.segments[d])
        }
        if sparse == nil {
            for i in cells.indices { cells[i] += other.cells[i] }
        } else {
            for (cell, from) in other.occupied {
                let to = offset(cell)
                for j in 0..<6 { cells[to + j] += other.cells[from + j] }
            }
        }
        Self.merge(other.sketches, into: &sketches)
        if cappedUnits.count < other.cappedUnits.count { cappedUnits += Array(repeating: 0, count: other.cappedUnits.count - cappedUnits.count) }
        for (m, n) in other.cappedUnits.enumerated() { cappedUnits[m] += n }
        if valueUnits.count < other.valueUnits.count { valueUnits += Array(repeating: 0, count: other.valueUnits.count - valueUnits.count) }
        for (m, n) in other.valueUnits.enumerated() { valueUnits[m] += n }
        unitsLoaded += other.unitsLoaded
        unitsExcluded += other.unitsExcluded
    }

    /// Groups one partition's records by unit and adds every unit that stayed in one variant.
    mutating func fold(_ records: [UInt8], layout: Layout, grouping g: inout UnitGrouping) {
        let starts = UnitGrouping.starts(records, slots: layout.slots)
        let count = starts.count
        guard count > 0 else { return }
        // Plain values only in the loops: copying a slot (it holds a String) would retain shared storage
        // on every record, and both workers retaining the same object serialises them on its reference count.
        let types = layout.metrics.map(\.type), hasPre = layout.metrics.map(\.hasPre)
        // Winsorisation: a capped metric's running value and covariate count at most the cap.
        let caps = layout.metrics.map(\.cap)
        let anyCap = caps.contains { $0 != nil }
        if anyCap && cappedUnits.count < types.count {
            cappedUnits = Array(repeating: 0, count: types.count)
            valueUnits = Array(repeating: 0, count: types.count)
        }
        @inline(__always) func capped(_ v: (Double, Double, Double, Double), _ m: Int) -> (Double, Double, Double, Double) {
            guard let c = caps[m] else { return v }
            return (v.0 > c ? c : v.0, v.1 > c ? c : v.1, v.2, v.3)
        }
        let valueCount = layout.valueCount, position = layout.recordPosition, dense = layout.dense
        let dayMin = layout.dayMin, days = layout.days, variants = layout.variants
        // The value slots a record holds, in record order, and how a unit's rows combine in each.
        var slotKeys: [Int] = [], slotRules: [FoldRule] = []
        let metricSlots = layout.metricSlots, dimensions = layout.dimensions
        let active = layout.activeDimensions.map { $0 }   // this worker's own storage
        // The sums of the unit's segment in each dimension (raw: written for every metric of every row), and its number.
        let unitSegments = UnsafeMutablePointer<UnsafeMutablePointer<Double>>.allocate(capacity: max(dimensions, 1))
        let unitSegmentNumbers = UnsafeMutablePointer<Int>.allocate(capacity: max(dimensions, 1))
        defer { unitSegments.deallocate(); unitSegmentNumbers.deallocate() }
        // Quantile metrics add each unit's final value to a sketch instead of sums; `sources` reads a shared column.
        let quantileMetrics = (0..<types.count).filter { types[$0] == .quantile }
        let sources = layout.metrics.enumerated().map { $0.element.source ?? $0.offset }
        let isQuantile = types.map { $0 == .quantile }
        for k in 0..<valueCount where position[k] >= 0 {
            slotKeys.append(k)
            if k >= metricSlots { slotRules.append(.first); continue }   // a dimension: the earliest row's value
            switch (types[k / 4], k % 4) {
            case (.binomial, 0): slotRules.append(.maximum)
            case (.nps, 0), (_, 1): slotRules.append(.last)     // last score; pre-period is per unit
            default: slotRules.append(.sum)
            }
        }
        precondition(slotKeys.enumerated().allSatisfy { position[$0.element] == $0.offset })
        // Raw buffers in the per-unit loop: arrays here cost a uniqueness check on every write.
        let unitValues = UnsafeMutablePointer<Double>.allocate(capacity: max(valueCount, 1))
        let before = UnsafeMutablePointer<Double>.allocate(capacity: max(valueCount, 1))
        let unitRowsBuffer = UnsafeMutablePointer<Int>.allocate(capacity: count)
        defer { unitValues.deallocate(); before.deallocate(); unitRowsBuffer.deallocate() }
        var changedMark = [Bool](repeating: false, count: layout.dimensions)
        let first = UnsafeMutablePointer<Double>.allocate(capacity: max(layout.dimensions, 1))
        defer { first.deallocate() }
        records.withUnsafeBytes { raw in
            func variant(_ i: Int) -> Int { Int(raw[starts[i] + 8]) }
            func day(_ i: Int) -> Int { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: starts[i] + 9, as: Int32.self))) }
            g.chain(raw, starts: starts)
            // Units in order of their first record: the records are read nearly in sequence.
            for head in 0..<count where g.isHead[head] {
                let v0 = variant(head)
                var firstDay = day(head)
                var i = Int(g.next[head])
                var mixed = false
                while i >= 0 {
                    if variant(i) != v0 { mixed = true; break }
                    firstDay = min(firstDay, day(i))
                    i = Int(g.next[i])
                }
                if mixed { unitsExcluded += 1; continue }
                // The unit's rows by day (file order within a day): a unit counts as of day D with the rows dated
                // before D, so its contribution is added day by day as increments of its running values.
                var rowCount = 0
                i = head
                while i >= 0 { unitRowsBuffer[rowCount] = i; rowCount += 1; i = Int(g.next[i]) }
                var unitRows = UnsafeMutableBufferPointer(start: unitRowsBuffer, count: rowCount)
                if rowCount > 1 { unitRows.sort { (day($0), $0) < (day($1), $1) } }
                for k in 0..<valueCount { unitValues[k] = .nan; before[k] = .nan }
                unitsLoaded += 1
                let exposure = Int(dense[firstDay - dayMin])
                let exposureCell = (types.count * variants + v0) * days + exposure
                cells[offset(exposureCell)] += 1
                // The unit's segment in each dimension: the value on its earliest row that has one. A unit of one
                // row is placed once that row is folded; several rows are read once more here first.
                var placed = active.isEmpty
                if !active.isEmpty && rowCount > 1 {
                    for d in 0..<dimensions { first[d] = .nan }
                    for row in unitRows {
                        var at = starts[row] + SpillRecord.header
                        for j in 0..<slotKeys.count {
                            let (x, next) = SpillRecord.value(raw, at: at)
                            at = next
                            let k = slotKeys[j]
                            guard k >= metricSlots, !x.isNaN else { continue }
                            let d = k - metricSlots
                            if first[d].isNaN { first[d] = x } else if first[d] != x { changedMark[d] = true }
                        }
                    }
                    for d in active {
                        if changedMark[d] { changedUnits[d] += 1; changedMark[d] = false }
                        let number = first[d].isNaN ? 0 : Int(first[d])
                        let sums = segments[d].sums(of: number)
                        unitSegments[d] = sums
                        unitSegmentNumbers[d] = number
                        sums[exposureCell * 6] += 1
                    }
                    placed = true
                }
                var r = 0
                while r < unitRows.count {
                    let rowDay = day(unitRows[r])
                    // Every row of this day, folded into the running values.
                    while r < unitRows.count && day(unitRows[r]) == rowDay {
                        var at = starts[unitRows[r]] + SpillRecord.header
                        for j in 0..<slotKeys.count {
                            let k = slotKeys[j]
                            let (x, next) = SpillRecord.value(raw, at: at)
                            at = next
                            guard !x.isNaN else { continue }
                            if unitValues[k].isNaN { unitValues[k] = x; continue }
                            switch slotRules[j] {
                            case .maximum: unitValues[k] = max(unitValues[k], x)
                            case .last: unitValues[k] = x
                            case .sum: unitValues[k] += x
                            case .first: break
                            }
                        }
                        r += 1
                    }
                    let d = Int(dense[rowDay - dayMin])
                    if !placed {
                        for dim in active {
                            let x = unitValues[metricSlots + dim]
                            let number = x.isNaN ? 0 : Int(x)
                            let sums = segments[dim].sums(of: number)
                            unitSegments[dim] = sums
                            unitSegmentNumbers[dim] = number
                            sums[exposureCell * 6] += 1
                        }
                        placed = true
                    }
                    for m in 0..<types.count where !isQuantile[m] {
                        var now = (unitValues[m * 4], unitValues[m * 4 + 1], unitValues[m * 4 + 2], unitValues[m * 4 + 3])
                        var was = (before[m * 4], before[m * 4 + 1], before[m * 4 + 2], before[m * 4 + 3])
                        if anyCap { now = capped(now, m); was = capped(was, m) }
                        // Decided once for the overall sums and every dimension's.
                        guard Self.changes(types[m], now: now, before: was) else { continue }
                        let cell = (m * variants + v0) * days + d
                        let c = offset(cell)
                        let type = types[m], pre = hasPre[m]
                        cells.withUnsafeMutableBufferPointer { Self.apply($0.baseAddress! + c, type: type, hasPre: pre, now: now, before: was) }
                        for dim in active {
                            Self.apply(unitSegments[dim] + cell * 6, type: type, hasPre: pre, now: now, before: was)
                        }
                    }
                    for k in 0..<valueCount { before[k] = unitValues[k] }
                }
                if anyCap {
                    for m in 0..<types.count where caps[m] != nil && !unitValues[m * 4].isNaN {
                        valueUnits[m] += 1
                        if unitValues[m * 4] > caps[m]! { cappedUnits[m] += 1 }
                    }
                }
                for m in quantileMetrics {
                    let x = unitValues[sources[m] * 4]
                    guard !x.isNaN else { continue }
                    let cell = (m * variants + v0) * days + exposure
                    if denseSketches.isEmpty { sketches[cell, default: QuantileSketch()].insert(x) } else { denseSketches[cell].insert(x) }
                    for dim in active { segments[dim].insert(x, number: unitSegmentNumbers[dim], cell: cell) }
                }
            }
        }
    }

    /// Percentile capping's first sweep: each unit's value of every metric in `metrics` (the sum of its rows, the
    /// value the cap applies to), added to that metric's sketch, all variants together; units seen in several
    /// variants are left out as the fold leaves them out.
    static func unitValues(_ records: [UInt8], layout: Layout, metrics: [Int], grouping g: inout UnitGrouping, into sketches: inout [QuantileSketch]) {
        let starts = UnitGrouping.starts(records, slots: layout.slots)
        guard !starts.isEmpty else { return }
        // For each position in a record, the metric (index into `metrics`) whose value it holds, or -1.
        var metricAt = [Int](repeating: -1, count: layout.slots)
        for (j, m) in metrics.enumerated() where layout.recordPosition[m * 4] >= 0 { metricAt[layout.recordPosition[m * 4]] = j }
        var sums = [Double](repeating: .nan, count: metrics.count)
        records.withUnsafeBytes { raw in
            g.chain(raw, starts: starts)
            for head in 0..<starts.count where g.isHead[head] {
                let v0 = raw[starts[head] + 8]
                var i = Int(g.next[head]), mixed = false
                while i >= 0 { if raw[starts[i] + 8] != v0 { mixed = true; break }; i = Int(g.next[i]) }
                if mixed { continue }
                for j in sums.indices { sums[j] = .nan }
                i = head
                while i >= 0 {
                    var at = starts[i] + SpillRecord.header
                    // Values are spilled in slot order: walk them, keeping the metrics' own.
                    for slot in 0..<layout.slots {
                        let (x, after) = SpillRecord.value(raw, at: at)
                        at = after
                        let j = metricAt[slot]
                        if j >= 0 && !x.isNaN { sums[j] = sums[j].isNaN ? x : sums[j] + x }
                    }
                    i = Int(g.next[i])
                }
                for j in sums.indices where !sums[j].isNaN { sketches[j].insert(sums[j]) }
            }
        }
    }

    /// Whether a unit's values on a day change what it contributes to a metric. What one unit adds to a metric's sums
    /// on one day is its contribution with its running values now, less its contribution the day before (nothing
    /// before its first value): summed over days before D, the increments give exactly the sums of the units'
    /// values as of D, squares and cross products included.
    @inline(__always)
    static func changes(_ type: MetricType, now: (x: Double, pre: Double, num: Double, den: Double),
                        before: (x: Double, pre: Double, num: Double, den: Double)) -> Bool {
        guard type == .ratio ? !now.num.isNaN && !now.den.isNaN : !now.x.isNaN else { return false }
        let wasBefore = type == .ratio ? !before.num.isNaN && !before.den.isNaN : !before.x.isNaN
        return !(wasBefore && same(now.x, before.x) && same(now.pre, before.pre) && same(now.num, before.num) && same(now.den, before.den))
    }

    @inline(__always) static func same(_ a: Double, _ b: Double) -> Bool { a == b || (a.isNaN && b.isNaN) }

    /// The increment once ``changes(_:now:before:)`` said there is one: out with the day before, in with now.
    @inline(__always)
    static func apply(_ p: UnsafeMutablePointer<Double>, type: MetricType, hasPre: Bool,
                      now: (x: Double, pre: Double, num: Double, den: Double),
                      before: (x: Double, pre: Double, num: Double, den: Double)) {
        if type == .ratio ? !before.num.isNaN && !before.den.isNaN : !before.x.isNaN {
            contribute(p, type, hasPre, before.x, before.pre, before.num, before.den, -1)
        }
        contribute(p, type, hasPre, now.x, now.pre, now.num, now.den, 1)
    }

    /// A unit's values added to (sign 1) or taken from (sign −1) the six sums at `p`.
    @inline(__always)
    static func contribute(_ p: UnsafeMutablePointer<Double>, _ type: MetricType, _ hasPre: Bool,
                           _ x: Double, _ pre: Double, _ num: Double, _ den: Double, _ sign: Double) {
        switch type {
        case .binomial:
            p[0] += sign; p[1] += sign * x
        case .continuous:
            p[0] += sign; p[1] += sign * x; p[2] += sign * x * x
            if hasPre {
                let pr = pre.isNaN ? 0 : pre
                p[3] += sign * pr; p[4] += sign * pr * pr; p[5] += sign * x * pr
            }
        case .ratio:
            p[0] += sign; p[1] += sign * num; p[2] += sign * num * num
            p[3] += sign * den; p[4] += sign * den * den; p[5] += sign * num * den
        case .nps:
            p[x >= 9 ? 0 : x >= 7 ? 1 : 2] += sign
        case .quantile:
            break
        }
    }

    func totals(layout: Layout, metricNames: [String], variants: [String], days: [String]) -> Ingestor.Totals {
        var totals: Ingestor.Totals = [:]
        for (cell, c) in occupied {
            let d = cell % layout.days, v = (cell / layout.days) % layout.variants, m = cell / (layout.days * layout.variants)
            let x = cells[c..<(c + 6)].map { $0 }
            guard m < layout.metrics.count else {
                if x[0] > 0 { totals[exposuresMetric, default: [:]][variants[v], default: [:]][days[d]] = .exposures(n: x[0]) }
                continue
            }
            let slot = layout.metrics[m]
            let aggregate: Aggregate
            switch slot.type {
            case .binomial:
                guard x[0] != 0 || x[1] != 0 else { continue }
                aggregate = .binomial(n: x[0], successes: x[1])
            case .continuous where slot.hasPre:
                guard x.contains(where: { $0 != 0 }) else { continue }
                aggregate = .cuped(n: x[0], post: .init(sum: x[1], sumSquares: x[2]), pre: .init(sum: x[3], sumSquares: x[4]), postPre: x[5])
            case .continuous:
                guard x[0] != 0 || x[1] != 0 || x[2] != 0 else { continue }
                aggregate = .continuous(n: x[0], sum: x[1], sumSquares: x[2])
            case .ratio:
                guard x.contains(where: { $0 != 0 }) else { continue }
                aggregate = .ratio(n: x[0], numerator: .init(sum: x[1], sumSquares: x[2]), denominator: .init(sum: x[3], sumSquares: x[4]), product: x[5])
            case .nps:
                guard x[0] != 0 || x[1] != 0 || x[2] != 0 else { continue }
                aggregate = .nps(promoters: x[0], passives: x[1], detractors: x[2])
            case .quantile:
                continue
            }
            totals[metricNames[m], default: [:]][variants[v], default: [:]][days[d]] = aggregate
        }
        for (cell, sketch) in sketches where !sketch.isEmpty {
            let d = cell % layout.days, v = (cell / layout.days) % layout.variants, m = cell / (layout.days * layout.variants)
            totals[metricNames[m], default: [:]][variants[v], default: [:]][days[d]] = .quantile(q: layout.metrics[m].quantile ?? 0.5, sketch: sketch)
        }
        return totals
    }
}

/// One dimension's sums per value for one worker: a block of the layout's cells per value number, in raw memory
/// (written for every metric of every row of every unit). Values numbered past ``capacity`` (the blocks of one
/// dimension stay within 64 MB) share the overflow block, which ends in `(other)`.
final class SegmentStore: @unchecked Sendable {
    let width: Int
    let capacity: Int
    /// Block of each value number, or nil before the value's first unit.
    private(set) var blocks: [UnsafeMutablePointer<Double>?] = []
    let overflow: UnsafeMutablePointer<Double>
    /// Quantile metrics: per value number (−1 for the overflow), each cell's sketch.
    private(set) var sketches: [Int: [Int: QuantileSketch]] = [:]

    init(width: Int) {
        self.width = width
        capacity = max(1, min(Layout.maxSegmentsPerWorker, (64 << 20) / max(1, width * 8)))
        overflow = Self.block(width)
    }

    deinit {
        overflow.deallocate()
        for case let b? in blocks { b.deallocate() }
    }

    private static func block(_ width: Int) -> UnsafeMutablePointer<Double> {
        let b = UnsafeMutablePointer<Double>.allocate(capacity: width)
        b.initialize(repeating: 0, count: width)
        return b
    }

    /// The sums of value number `n`, made on first sight.
    @inline(__always)
    func sums(of n: Int) -> UnsafeMutablePointer<Double> {
        if n < blocks.count, let b = blocks[n] { return b }
        guard n < capacity else { return overflow }
        if n >= blocks.count { blocks += Array(repeating: nil, count: n + 1 - blocks.count) }
        let b = Self.block(width)
        blocks[n] = b
        return b
    }

    /// Adds a unit's value of a quantile metric to its value's sketch of `cell`.
    @inline(__always)
    func insert(_ x: Double, number n: Int, cell: Int) {
        sketches[n < capacity ? n : -1, default: [:]][cell, default: QuantileSketch()].insert(x)
    }

    /// The overflow block's sums and sketches.
    var overflowSums: Accumulators {
        Accumulators(cells: Array(UnsafeBufferPointer(start: overflow, count: width)), sketches: sketches[-1] ?? [:])
    }

    /// Adds another worker's sums, value by value.
    func add(_ other: SegmentStore) {
        for (n, cells) in other.sketches { Accumulators.merge(cells, into: &sketches[n, default: [:]]) }
        func add(_ from: UnsafeMutablePointer<Double>, into to: UnsafeMutablePointer<Double>) { for i in 0..<width { to[i] += from[i] } }
        add(other.overflow, into: overflow)
        for (n, b) in other.blocks.enumerated() { if let b { add(b, into: sums(of: n)) } }
    }

    /// The value numbers with their sums, as accumulators.
    var values: [(number: Int, sums: Accumulators)] {
        blocks.enumerated().compactMap { n, b in b.map { (n, Accumulators(cells: Array(UnsafeBufferPointer(start: $0, count: width)), sketches: sketches[n] ?? [:])) } }
    }
}
