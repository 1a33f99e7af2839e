import POSIX
public import Foundation
import Synchronization
public import JSONCore
public import Registry
import Statistics

/// Streams unit-level rows (CSV or JSON lines) into additive aggregates with bounded memory, on every core.
///
/// Pass 1 splits a CSV file into byte ranges at line boundaries, one per worker; each worker validates its
/// rows and spills compact fixed-size records into partition files by a 64-bit fingerprint of the unit id.
/// Pass 2 takes one partition at a time per worker, groups its records by unit with a hash table, excludes
/// units seen in more than one variant, folds each unit's rows in file order (sums; 0/1 metrics take the
/// maximum; the first day is the unit's exposure day) and adds them to flat per-metric, per-variant,
/// per-day accumulators, which the workers sum at the end. Memory is a partition's records per worker
/// (about 1/128 of the file's records each) plus write buffers, whatever the file size.
public final class Ingestor {
    public struct Problem { public var line: Int; public var kind: String; public var message: String }

    enum Column { case unit, variant, day, value(metric: Int, role: ValueRole), dimension(Int), attribute }
    enum ValueRole: Int { case value = 0, pre = 1, numerator = 2, denominator = 3 }

    struct MetricSlot {
        var name: String
        var type: MetricType
        var hasPre = false
        /// The cap of each unit's value: the catalog's absolute cap, or a percentile cap once computed.
        var cap: Double? = nil
        /// Percentile capping: the fraction p whose quantile of the units' values becomes `cap`.
        var percentile: Double? = nil
        /// A quantile metric's q.
        var quantile: Double? = nil
        /// A quantile metric that reads another slot's value column (two quantiles of one value): that slot.
        var source: Int? = nil
    }

    /// The experiment the rows belong to: its key (for messages), variant keys, metric names and their definitions.
    let experimentKey: String
    let variantKeys: [String]
    let metricNames: [String]
    let catalog: MetricsCatalog
    /// The experiment's dimensions: columns whose value on a unit's earliest row puts the unit in a segment.
    let dimensionNames: [String]
    /// Per dimension: segments kept by units (the rest are folded into ``otherSegment``).
    public static let segmentsKept = 50
    public static let otherSegment = "(other)"
    /// Per segment name (`dimension=value`): the same aggregates as the overall ones, by metric, variant and day.
    public internal(set) var segmentTotals: [String: Totals] = [:]
    /// Per dimension: values seen, values folded into (other), units whose value changed between rows.
    public internal(set) var dimensionReport: [String: JSON] = [:]
    /// Per capped metric: the cap and how many units' values it lowered.
    public internal(set) var capping: [String: JSON] = [:]
    /// Every dimension value gets a small number, shared by all workers (spilled in one byte while below 254).
    let dimensionValues: DimensionValues
    let allowPartial: Bool
    let progress: ((_ bytes: Int, _ rows: Int) -> Void)?
    public internal(set) var problems: [Problem] = []
    public internal(set) var problemCounts: [String: Int] = [:]
    public internal(set) var rowsRead = 0
    public internal(set) var rowsRejected = 0
    public internal(set) var unitsExcluded = 0
    public internal(set) var unitsLoaded = 0

    /// A CSV body shorter than this per worker is read by fewer workers (tests lower it to exercise the split).
    public var bytesPerWorker = 4 << 20
    /// From this many rows on, percentile caps are read from a sample of one partition in 16 (tests lower it): the
    /// sample adds at most about a quarter to the rank-error bound (0.4% of the units from the sketch alone).
    public var sampleFromRows = 4_000_000
    /// Upper bound on workers in each pass.
    public var maxWorkers = min(4, max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    /// The most spilled bytes one pass-2 worker loads at once (all workers together hold at most 64 MB of
    /// records); a larger partition is first split by further fingerprint bits, as often as needed.
    public lazy var maxPartitionBytes = max(1 << 22, (64 << 20) / maxWorkers)
    /// Above this many sums, pass 2 keeps only the cells that occur (tests lower it).
    public var maxDenseSums = 1 << 22
    static let partitions = 128
    /// Distinct days one file may hold (as before: about 178 years of daily rows).
    static let maxDays = 65_000

    var columns: [Column] = []
    var metrics: [MetricSlot] = []
    var valueCount = 0             // value slots in memory: 4 per metric (value, pre, numerator, denominator)
    /// The slots the file's columns fill, in record order: only these are spilled, so records stay small.
    var usedSlots: [Int] = []
    /// Record position of each slot, or -1 when no column fills it.
    var recordPosition: [Int] = []
    let variants: [String]

    /// Experiments running beside this one, each a dimension `arm:KEY` whose value is the unit's arm in it.
    let crossings: [Crossing]
    /// Per crossing: where its arms came from (`column`, `computed`) or why it was `skipped`.
    public internal(set) var crossingReport: [String: JSON] = [:]
    /// The crossings whose arm is computed from the unit id (and the attributes their targeting reads), by header.
    var computedArms: [ComputedArm] = []
    /// The dimensions units are placed in and segments stored for: all but the crossings the file cannot give.
    var activeDimensions: [Int] {
        let skipped = Set(crossings.filter { crossingReport[$0.key]?["source"] == "skipped" }.map(\.dimension))
        return dimensionNames.indices.filter { !skipped.contains(dimensionNames[$0]) }
    }

    public init(experiment: ExperimentDocument, metrics: [String], catalog: MetricsCatalog, allowPartial: Bool,
                crossings: [Crossing] = [], progress: ((Int, Int) -> Void)? = nil) {
        experimentKey = experiment.key
        variantKeys = experiment.variants.map(\.key)
        metricNames = metrics
        let kept = Array(crossings.prefix(Self.maxCrossings))
        self.crossings = kept
        dimensionNames = experiment.dimensions + kept.map(\.dimension)
        dimensionValues = DimensionValues(presets: experiment.dimensions.map { _ in [] } + kept.map(\.values))
        self.catalog = catalog
        self.allowPartial = allowPartial
        self.progress = progress
        self.variants = variantKeys
    }

    func problem(_ line: Int, _ kind: String, _ message: String) {
        problemCounts[kind, default: 0] += 1
        if problems.count < 100 { problems.append(Problem(line: line, kind: kind, message: message)) }
    }

    /// Aggregates keyed by metric, variant and day ('' when the file has no day column).
    public typealias Totals = [String: [String: [String: Aggregate]]]

    /// Spill folders are named `referee-ingest-PID-RANDOM`; one whose process is gone is removed by the next run.
    public static let spillPrefix = "referee-ingest-"
    /// Values beyond this magnitude are rejected row by row: their squares would overflow a double.
    public static let maxValueMagnitude = 1e150
    /// Where spill folders go: `$TMPDIR`, else the system's temporary directory.
    public var spillDirectory = FileManager.default.temporaryDirectory
    /// A pipe or device that produces nothing for this long is given up (`REFEREE_INGEST_STREAM_TIMEOUT`, seconds).
    public var streamIdleSeconds: Double = {
        if let text = ProcessInfo.processInfo.environment["REFEREE_INGEST_STREAM_TIMEOUT"], let s = Double(text), s > 0 { return s }
        return 30
    }()
    /// The file being read, for messages.
    var inputPath = ""
    /// The path being streamed (not a regular file), for messages.
    var streamPath: String?
    /// Rows dated outside the schedule make the file a rejection instead of being left out.
    public var strictDates = false
    /// Day indexes of the schedule (first and last day included): rows dated outside are left out, or with
    /// `strictDates` rejected. Set by `RefereeService.ingest` from the document; nil reads every day.
    public var scheduleDays: ClosedRange<Int32>?

    /// The schedule of a document as day indexes (the end instant is exclusive).
    public static func scheduleDays(of doc: ExperimentDocument) -> ClosedRange<Int32>? {
        guard let start = doc.start, let end = doc.end,
              let first = Array(start.day.utf8).withUnsafeBufferPointer({ CalendarDay.parse($0) }),
              let last = Array(Timestamp(seconds: end.seconds - 0.001).day.utf8).withUnsafeBufferPointer({ CalendarDay.parse($0) }),
              first <= last else { return nil }
        return first...last
    }
    var outsideSchedule = 0
    var outsideDays: ClosedRange<Int32>?

    /// Checked between chunks and partitions: an interrupted CLI stops, and the spill folder is removed.
    public var cancelled: @Sendable () -> Bool = { false }

    /// A row that runs this far without a newline ends the reading: the source is not line-oriented
    /// (`/dev/zero`, a binary file) and would otherwise be read for ever.
    static let maxBytesWithoutNewline = 64 << 20

    /// Removes spill folders left by ingestions whose process no longer exists (killed, or the machine stopped).
    public static func removeStaleSpills(in root: URL) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root.path) else { return }
        for name in names where name.hasPrefix(spillPrefix) {
            let rest = name.dropFirst(spillPrefix.count)
            guard let pid = rest.split(separator: "-").first.flatMap({ Int32($0) }), pid > 0, pid != getpid() else { continue }
            var info = stat()
            let path = root.appendingPathComponent(name).path
            guard lstat(path, &info) == 0, info.st_uid == geteuid(), (info.st_mode & S_IFMT) == S_IFDIR else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(atPath: path) }
        }
    }

    /// `read` on a pipe or device, waiting at most `streamIdleSeconds` for data.
    func readStream(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) throws -> Int {
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, Int32(min(streamIdleSeconds, 86_400) * 1000))
            if ready < 0 && SystemCall.wasInterrupted { if cancelled() { throw Ingestor.cancellation }; continue }
            if ready == 0 {
                throw IngestError(.io, message: "\(streamPath ?? "the input") produced no data for \(streamIdleSeconds.wholeText) s (a pipe without a writer?); nothing was written",
                               data: ["reason": "io_error", "path": JSON(streamPath), "detail": .string("no data within \(streamIdleSeconds.wholeText) s")])
            }
            let n = SystemCall.retrying { read(fd, buffer, count) }
            if n < 0 && errno == EAGAIN { continue }
            if n < 0 {
                throw IngestError(.io, message: "cannot read \(streamPath ?? "the input"): \(String(cString: strerror(errno)))",
                               data: ["reason": "io_error", "path": JSON(streamPath), "detail": .string(String(cString: strerror(errno)))])
            }
            return n
        }
    }

    static let cancellation = IngestError(.io, message: "ingestion interrupted; nothing was written", data: ["reason": "io_error", "detail": "interrupted"])

    /// An input/output failure (1010, never "invalid params"): what failed, the path and the system's message.
    static func ioError(_ what: String, path: String, errno code: Int32 = errno) -> IngestError {
        let system = String(cString: strerror(code))
        return IngestError(.io, message: "\(what) \(path): \(system); nothing was written",
                        data: ["reason": "io_error", "path": .string(path), "detail": .string(system)])
    }

    /// When set (the shared socket), only a regular file owned by this user is read, checked on the open
    /// descriptor (no symbolic link followed), so the file cannot be swapped between a check and the read.
    public var requiredOwner: uid_t?

    public func run(path: String, format: String) throws -> Totals {
        guard variants.count <= 255 else {
            throw FieldError(path: "key", message: "ingestion supports at most 255 variants; \(experimentKey) has \(variants.count)")
        }
        // Opened without blocking: a FIFO without a writer would otherwise hang the open itself.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (requiredOwner == nil ? 0 : O_NOFOLLOW))
        guard fd >= 0 else { throw Ingestor.ioError("cannot open", path: path) }
        inputPath = path
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR else {
            throw FieldError(path: "path", message: "cannot read \(path): not a regular file")
        }
        if (info.st_mode & S_IFMT) != S_IFREG {
            // A pipe or device is read blocking, each read waiting at most `streamIdleSeconds` for data.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            streamPath = path
        }
        if let owner = requiredOwner, (info.st_mode & S_IFMT) != S_IFREG || info.st_uid != owner {
            throw IngestError.forbidden("over the shared socket, results.ingest reads only regular files owned by the caller; \(path) is not",
                                          details: ["path": .string(path)])
        }
        // A regular file is split between workers; a pipe or a device (`<(zcat …)`, /dev/stdin) is streamed by one.
        let isRegular = (info.st_mode & S_IFMT) == S_IFREG
        let size = isRegular ? Int(info.st_size) : 0
        let spillRoot = spillDirectory
        Self.removeStaleSpills(in: spillRoot)
        let dir = spillRoot.appendingPathComponent("\(Self.spillPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
            throw Ingestor.ioError("cannot create the spill folder", path: dir.path, errno: (error as NSError).userInfo[NSUnderlyingErrorKey].flatMap { ($0 as? NSError)?.code }.map { Int32($0) } ?? EACCES)
        }
        defer { try? FileManager.default.removeItem(at: dir) }

        // The header (CSV) is read here; the body is split between workers at line boundaries.
        var sources: [Pass1Worker.Source]
        var bodyStart = 0
        if format == "csv" {
            let header: String?
            if isRegular {
                let first = try Self.firstLine(fd: fd, size: size)
                header = first?.0
                bodyStart = first?.1 ?? 0
                sources = try split(fd: fd, from: bodyStart, to: size).map { .file(fd: fd, range: $0) }
            } else {
                let first = try firstLine(stream: fd)
                header = first.header
                sources = [.stream(fd: fd, prefix: first.rest)]
            }
            guard let header else { throw FieldError(path: "path", message: "\(path) is empty: expected a header line") }
            try readHeader(Self.splitCSV(header), line: 1)
        } else {
            sources = [isRegular ? .file(fd: fd, range: 0..<size) : .stream(fd: fd, prefix: [])]
        }

        // Pass 1: read, validate, spill.
        let shared = Pass1Shared(ingestor: self, format: format, dir: dir)
        let bytesDone = Atomic<Int>(bodyStart), rowsDone = Atomic<Int>(0)
        let outcomes = Mutex([Pass1Outcome?](repeating: nil, count: sources.count))
        let failure = Mutex<(any Error)?>(nil)
        // Only the first worker reports progress, so the callback is never called concurrently.
        nonisolated(unsafe) let report = progress
        let work = sources
        DispatchQueue.concurrentPerform(iterations: work.count) { w in
            var worker = Pass1Worker(shared: shared, index: w)
            do {
                try worker.run(work[w]) { bytes, rows in
                    let b = bytesDone.add(bytes, ordering: .relaxed).newValue
                    let r = rowsDone.add(rows, ordering: .relaxed).newValue
                    if w == 0 { report?(b, r) }
                }
                let outcome = try worker.finish()
                outcomes.withLock { $0[w] = outcome }
            } catch {
                failure.withLock { $0 = $0 ?? error }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        let results = outcomes.withLock { $0.map { $0! } }
        if format == "jsonl", let first = results.first, let header = first.jsonlHeader {
            // JSON lines name their columns in the first row; the single worker read them.
            columns = header.columns; metrics = header.metrics; valueCount = header.valueCount
            usedSlots = header.usedSlots; recordPosition = header.recordPosition
            for p in header.problems { problem(p.line, p.kind, p.message) }
        }
        // Every worker kept its first 100 problems with lines counted from its own start: number them from
        // the file's start, and keep the first 100 of the file (header problems included) in line order.
        var found = problems
        var lineBase = format == "csv" ? 1 : 0
        var seen: [UInt64] = []
        for r in results {
            for p in r.problems { found.append(Problem(line: lineBase + p.line, kind: p.kind, message: p.render(lineBase + p.line))) }
            for (kind, n) in r.problemCounts { problemCounts[kind, default: 0] += n }
            rowsRead += r.rowsRead
            rowsRejected += r.rowsRejected
            outsideSchedule += r.outsideSchedule
            if let d = r.outsideDays { outsideDays = outsideDays.map { min($0.lowerBound, d.lowerBound)...max($0.upperBound, d.upperBound) } ?? d }
            lineBase += r.lines
            if seen.isEmpty { seen = r.daysSeen } else { for (i, word) in r.daysSeen.enumerated() where word != 0 { seen[i] |= word } }
        }
        problems = Array(found.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }.prefix(100).map(\.element))
        progress?(max(size, bytesDone.load(ordering: .relaxed)), rowsRead)
        if !problems.isEmpty && !allowPartial { return [:] }
        if rowsRead - rowsRejected == 0 { return [:] }
        let distinctDays = seen.reduce(0) { $0 + $1.nonzeroBitCount }
        guard distinctDays <= Self.maxDays else {
            throw IngestError(.invalidInput,
                           message: "\(path) has rows on \(distinctDays) distinct days; at most \(Self.maxDays) are supported: aggregate to coarser days first",
                           data: ["reason": "invalid_input", "field": "day", "distinct_days": JSON(distinctDays), "max": JSON(Self.maxDays)])
        }

        // Days in use, densely numbered in calendar order.
        var dayMin = 0
        var dense: [Int32] = [0]
        var dayNames: [String] = [""]
        if let first = seen.firstIndex(where: { $0 != 0 }), let last = seen.lastIndex(where: { $0 != 0 }) {
            dayMin = first * 64
            dense = [Int32](repeating: -1, count: (last + 1) * 64 - dayMin)
            dayNames = []
            for w in first...last where seen[w] != 0 {
                for bit in 0..<64 where seen[w] & (1 << UInt64(bit)) != 0 {
                    dense[w * 64 + bit - dayMin] = Int32(dayNames.count)
                    dayNames.append(CalendarDay.format(w * 64 + bit))
                }
            }
        }

        // Pass 2: per partition, group by unit, exclude multi-variant units, fold and aggregate.
        var layout = Layout(metrics: metrics, variants: variants.count, days: dayNames.count, valueCount: valueCount,
                            recordPosition: recordPosition, slots: usedSlots.count,
                            dayMin: dayMin, dense: dense, maxDenseSums: maxDenseSums, dimensions: dimensionNames.count)
        layout.activeDimensions = activeDimensions
        let foldFailure = Mutex<(any Error)?>(nil)
        let fileNames = (0..<Self.partitions).map { p in (0..<sources.count).map { w in dir.appendingPathComponent("w\(w)p\(p)").path } }
        let budget = maxPartitionBytes
        // Partitions are dealt to workers by number and the workers' sums added in worker order, so the
        // floating-point totals are the same on every run.
        let workers = min(maxWorkers, Self.partitions)
        let isCancelled = cancelled
        // Percentile capping: a first sweep puts every unit's value in a sketch per capped metric; its quantile is the cap.
        // From `sampleFromRows` rows on, the sweep reads one partition in 16: partitions are by unit fingerprint, so that
        // is a random sample of the units (a quarter of a million at least), whose sampling error is small beside the sketch's
        // own; the bound reported counts both.
        let percentileCapped = metrics.indices.filter { metrics[$0].percentile != nil }
        var capSketches: [QuantileSketch] = []
        let sweepStride = rowsRead - rowsRejected >= sampleFromRows ? 16 : 1
        if !percentileCapped.isEmpty {
            let frozen = layout
            let found = Mutex([[QuantileSketch]?](repeating: nil, count: workers))
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var sketches = percentileCapped.map { _ in QuantileSketch() }
                var grouping = UnitGrouping()
                do {
                    for p in stride(from: w * sweepStride, to: Self.partitions, by: workers * sweepStride) {
                        if isCancelled() { throw Ingestor.cancellation }
                        try Self.visit(fileNames[p], name: "p\(p)", usedBits: 7, budget: budget, dir: dir, layout: frozen, keep: true) { records in
                            Accumulators.unitValues(records, layout: frozen, metrics: percentileCapped, grouping: &grouping, into: &sketches)
                        }
                    }
                } catch {
                    foldFailure.withLock { $0 = $0 ?? error }
                }
                found.withLock { $0[w] = sketches }
            }
            if let error = foldFailure.withLock({ $0 }) { throw error }
            capSketches = percentileCapped.map { _ in QuantileSketch() }
            for part in found.withLock({ $0.compactMap { $0 } }) { for j in part.indices { capSketches[j].merge(part[j]) } }
            for (j, m) in percentileCapped.enumerated() where !capSketches[j].isEmpty {
                let cap = capSketches[j].view().quantile(metrics[m].percentile!)
                metrics[m].cap = cap
                layout.metrics[m].cap = cap
            }
        }
        let frozen = layout
        let folded = Mutex([Accumulators?](repeating: nil, count: workers))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var acc = Accumulators(layout: frozen)
            var grouping = UnitGrouping()
            do {
                for p in stride(from: w, to: Self.partitions, by: workers) {
                    if isCancelled() { throw Ingestor.cancellation }
                    try Self.visit(fileNames[p], name: "p\(p)", usedBits: 7, budget: budget, dir: dir, layout: frozen, keep: false) { records in
                        acc.fold(records, layout: frozen, grouping: &grouping)
                    }
                }
            } catch {
                foldFailure.withLock { $0 = $0 ?? error }
            }
            acc.settleSketches()
            folded.withLock { $0[w] = acc }
        }
        if let error = foldFailure.withLock({ $0 }) { throw error }
        var parts = folded.withLock { $0.compactMap { $0 } }
        guard !parts.isEmpty else { return [:] }
        var acc = parts.removeFirst()
        for part in parts { acc.add(part) }
        unitsLoaded = acc.unitsLoaded
        unitsExcluded = acc.unitsExcluded
        for (m, slot) in metrics.enumerated() where slot.cap != nil || slot.percentile != nil {
            let touched = JSON(m < acc.cappedUnits.count ? acc.cappedUnits[m] : 0)
            if let p = slot.percentile, let j = percentileCapped.firstIndex(of: m) {
                // Units with a value (the sketch's when every partition was read); a sample's bound is scaled up to them
                // and adds five standard deviations of the sample's own rank error.
                let sketch = capSketches[j]
                let units = sweepStride == 1 || m >= acc.valueUnits.count ? sketch.count : Double(acc.valueUnits[m])
                let fraction = units > 0 ? min(1, sketch.count / units) : 1
                var bound = sketch.rankErrorBound / fraction
                if fraction < 1 { bound += 5 * (units * p * (1 - p) * (1 - fraction) / fraction).squareRoot() }
                capping[slot.name] = ["type": "percentile", "value": .number(p), "cap": JSON(slot.cap), "units_capped": touched,
                                      "units": .number(units), "units_in_sketch": .number(sketch.count),
                                      "exact": .bool(sketch.isExact && fraction == 1), "rank_error_bound": .number(bound)]
            } else {
                capping[slot.name] = ["type": "absolute", "value": .number(slot.cap!), "cap": .number(slot.cap!), "units_capped": touched]
            }
        }
        let totals = acc.totals(layout: layout, metricNames: metrics.map(\.name), variants: variants, days: dayNames)
        segmentTotals = segments(acc, layout: layout, days: dayNames)
        // Values below 1e150 can still sum past the largest double over enough rows: never store a sum that is not finite.
        for (metric, perVariant) in totals.sorted(by: { $0.key < $1.key }) {
            for (variant, perDay) in perVariant.sorted(by: { $0.key < $1.key }) {
                for (day, aggregate) in perDay.sorted(by: { $0.key < $1.key }) where !aggregate.isFinite {
                    throw IngestError(.invalidInput,
                                   message: "the sums of \(metric) for \(variant)\(day.isEmpty ? "" : " on \(day)") overflow a double (not finite); nothing was written. Scale the values down (e.g. cents to thousands)",
                                   data: ["reason": "invalid_input", "field": .string(metric), "variant": .string(variant), "day": .string(day)])
                }
            }
        }
        return totals
    }

    /// Hands the records of one partition (its files in file order) to `body`. A partition larger than `budget` is
    /// first split into 16 by the next four fingerprint bits, streaming and keeping file order, and each part
    /// is handed over in turn; a unit's records share every fingerprint bit, so they stay together. With `keep`
    /// the partition's files stay for another sweep (the parts are made again then).
    static func visit(_ paths: [String], name: String, usedBits: Int, budget: Int, dir: URL, layout: Layout, keep: Bool,
                      _ body: ([UInt8]) -> Void) throws {
        let size = paths.reduce(0) { total, path in
            var info = stat()
            return total + (stat(path, &info) == 0 ? Int(info.st_size) : 0)
        }
        guard size > budget, usedBits <= 60 else {
            body(try readAll(paths))
            return
        }
        let parts = (0..<16).map { dir.appendingPathComponent("\(name)-\($0)").path }
        let writers = try parts.map { try SpillWriter(path: $0) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        for path in paths {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd); if !keep { unlink(path) } }
            var offset = 0, filled = 0
            while true {
                let n = chunk.withUnsafeMutableBytes { b in SystemCall.retrying { pread(fd, b.baseAddress! + filled, b.count - filled, off_t(offset)) } }
                guard n >= 0 else { throw Ingestor.ioError("cannot read a spill file", path: path) }
                if n == 0 { break }
                offset += n
                filled += n
                // Whole records go to their parts; a record cut by the chunk's end waits for the next read.
                let used = try chunk.withUnsafeBytes { all -> Int in
                    let raw = UnsafeRawBufferPointer(rebasing: all[0..<filled])
                    var r = 0
                    while let length = SpillRecord.length(raw, at: r, slots: layout.slots) {
                        let fp = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: r, as: UInt64.self))
                        try writers[Int((fp << UInt64(usedBits)) >> 60)].append(UnsafeRawBufferPointer(rebasing: raw[r..<(r + length)]))
                        r += length
                    }
                    return r
                }
                chunk.withUnsafeMutableBytes { b in b.baseAddress!.copyMemory(from: b.baseAddress! + used, byteCount: filled - used) }
                filled -= used
            }
            guard filled == 0 else { throw IngestError.internal("spill file \(path) ends inside a record") }
        }
        for writer in writers { try writer.close() }
        for (k, part) in parts.enumerated() {
            try visit([part], name: "\(name)-\(k)", usedBits: usedBits + 4, budget: budget, dir: dir, layout: layout, keep: false, body)
            unlink(part)
        }
    }

    /// Byte ranges of the body, one per worker, each starting at a line.
    func split(fd: Int32, from start: Int, to end: Int) throws -> [Range<Int>] {
        let workers = min(maxWorkers, max(1, (end - start) / max(1, bytesPerWorker)))
        var cuts = [start]
        for k in 1..<max(workers, 1) {
            var at = start + (end - start) * k / workers
            if at <= cuts.last! { continue }
            at = try Self.nextLineStart(fd: fd, at: at, end: end)
            if at > cuts.last! && at < end { cuts.append(at) }
        }
        cuts.append(end)
        return (0..<(cuts.count - 1)).map { cuts[$0]..<cuts[$0 + 1] }
    }

    /// The offset just after the first newline at or after `at` (or `end`).
    static func nextLineStart(fd: Int32, at: Int, end: Int) throws -> Int {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var offset = at
        while offset < end {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, min($0.count, end - offset), off_t(offset)) }
            guard n > 0 else { throw Ingestor.ioError("read failed at byte \(offset) of", path: "the input", errno: n == 0 ? EIO : errno) }
            if let i = buffer[0..<n].firstIndex(of: 0x0A) { return offset + i + 1 }
            offset += n
        }
        return end
    }

    /// The first line (without CR/LF) and the offset after it; nil for an empty file.
    static func firstLine(fd: Int32, size: Int) throws -> (String, Int)? {
        guard size > 0 else { return nil }
        let next = try nextLineStart(fd: fd, at: 0, end: min(size, Pass1Worker.maxLineBytes + 2))
        if next < size, next == Pass1Worker.maxLineBytes + 2 {
            throw FieldError(path: "path", message: "the header line is longer than 1 MiB")
        }
        var bytes = [UInt8](repeating: 0, count: next)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, next, 0) }
        guard n == next else { throw Ingestor.ioError("read failed in the header of", path: "the input", errno: n >= 0 ? EIO : errno) }
        while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
        return (String(decoding: bytes, as: UTF8.self), next)
    }

    /// The first line of a stream (without CR/LF) and the bytes read after it.
    func firstLine(stream fd: Int32) throws -> (header: String?, rest: [UInt8]) {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while bytes.count <= Pass1Worker.maxLineBytes {
            let n = try chunk.withUnsafeMutableBytes { try readStream(fd, $0.baseAddress!, $0.count) }
            if n == 0 { break }
            let start = bytes.count
            bytes.append(contentsOf: chunk[0..<n])
            if let nl = bytes[start...].firstIndex(of: 0x0A) {
                var line = Array(bytes[..<nl])
                if line.last == 0x0D { line.removeLast() }
                return (String(decoding: line, as: UTF8.self), Array(bytes[(nl + 1)...]))
            }
        }
        guard bytes.count <= Pass1Worker.maxLineBytes else { throw FieldError(path: "path", message: "the header line is longer than 1 MiB") }
        if bytes.last == 0x0D { bytes.removeLast() }
        return (bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self), [])
    }

    static func readAll(_ paths: [String]) throws -> [UInt8] {
        var out: [UInt8] = []
        for path in paths {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { continue }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0 else { continue }
            let start = out.count, size = Int(info.st_size)
            out.append(contentsOf: repeatElement(0, count: size))
            var done = 0
            while done < size {
                let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + start + done, size - done, off_t(done)) }
                guard n > 0 else { throw Ingestor.ioError("cannot read a spill file", path: path) }
                done += n
            }
        }
        return out
    }

    public var report: JSON {
        ["rows_read": JSON(rowsRead), "rows_rejected": JSON(rowsRejected), "units_loaded": JSON(unitsLoaded),
         "units_in_several_variants": JSON(unitsExcluded),
         "problems": .array(problems.map { ["line": JSON($0.line), "kind": .string($0.kind), "message": .string($0.message)] }),
         "problem_counts": .object(problemCounts.mapValues { JSON($0) }),
         "rows_outside_schedule": ["count": JSON(outsideSchedule),
                                   "first_day": outsideDays.map { .string(CalendarDay.format(Int($0.lowerBound))) } ?? .null,
                                   "last_day": outsideDays.map { .string(CalendarDay.format(Int($0.upperBound))) } ?? .null],
         "dimensions": .object(dimensionReport.filter { !$0.key.hasPrefix(Crossing.prefix) }), "capping": .object(capping),
         "interactions": .object(crossingReport)]
    }
}

extension Ingestor {
    /// At most this many overlapping experiments are crossed with one ingestion (each adds a segment per arm).
    public static let maxCrossings = 8

    /// An experiment B overlapping the one ingested: each unit's arm in B becomes the value of dimension `arm:KEY`,
    /// so A's aggregates are stored per (arm of A × arm of B) cell as segments `arm:KEY=ARM`. The arm is read from a
    /// column `arm:KEY` when the file has one, else computed by `assigner` (exactly as `assign` answers) when the file
    /// carries every attribute B's targeting reads, else the crossing is skipped and the report says why.
    public struct Crossing: Sendable {
        public static let prefix = "arm:"
        /// The value of units that B did not assign (outside its buckets, held out, not targeted).
        public static let notAssigned = "(not assigned)"
        public let key: String
        public let arms: [String]
        public let assigner: ExperimentAssigner?
        public init(key: String, arms: [String], assigner: ExperimentAssigner?) {
            self.key = key; self.arms = arms; self.assigner = assigner
        }
        public var dimension: String { Self.prefix + key }
        /// Values numbered up front (after `(missing)`): a computed arm spills its number without a table lookup.
        var values: [String] { arms + [Self.notAssigned] }
        /// The top-level attributes B's targeting reads.
        var attributes: [String] { assigner.map { $0.subject.targeting.attributeRoots.sorted() } ?? [] }
    }

    /// A crossing computed from each row: the dimension it fills, the assigner, and the columns of its attributes.
    struct ComputedArm: @unchecked Sendable {
        var dimension: Int
        var assigner: ExperimentAssigner
        var attributes: [(name: String, column: Int)]
        /// Dimension value numbers: arm `v` is `v + 1`, not assigned is `arms + 1`.
        var notAssigned: Int
        /// What the row loop reads: plain values and pointers (valid while `assigner` lives), no reference counts.
        var plan: Plan { Plan(dimension: dimension, notAssigned: notAssigned, raw: assigner.raw) }

        struct Plan { var dimension: Int; var notAssigned: Int; var raw: RawAssigner }
    }
}

/// The columns of a file, as read from its header.

extension Ingestor {
    /// Each dimension's segments as totals named `dimension=value`: the ``segmentsKept`` largest values by units,
    /// the rest (and values past a worker's limit) folded into `dimension=(other)`. Fills ``dimensionReport``.
    func segments(_ acc: Accumulators, layout: Layout, days: [String]) -> [String: Totals] {
        var out: [String: Totals] = [:]
        let exposureCells = (0..<(layout.variants * layout.days)).map { layout.metrics.count * layout.variants * layout.days + $0 }
        for d in layout.activeDimensions where d < acc.segments.count {
            let dimension = dimensionNames[d]
            let names = dimensionValues.names(d)
            let store = acc.segments[d]
            func units(_ a: inout Accumulators) -> Double { exposureCells.reduce(0) { $0 + a.cells[a.offset($1)] } }
            var values: [(number: Int, sums: Accumulators, units: Double, name: String)] = store.values.map { v in
                var sums = v.sums
                return (v.number, v.sums, units(&sums), v.number < names.count ? names[v.number] : "(other)")
            }
            values.sort { ($0.units, $1.name) > ($1.units, $0.name) }
            var other = store.overflowSums
            let overflowUnits = units(&other)
            let kept = values.prefix(Self.segmentsKept).filter { $0.number < names.count }
            let keptNumbers = Set(kept.map(\.number))
            for v in values where !keptNumbers.contains(v.number) { other.add(v.sums) }
            for v in kept {
                out["\(dimension)=\(v.name)"] = v.sums.totals(layout: layout, metricNames: metrics.map(\.name), variants: variants, days: days)
            }
            let folded = values.count - kept.count
            if folded > 0 || overflowUnits > 0 {
                out["\(dimension)=\(Self.otherSegment)"] = other.totals(layout: layout, metricNames: metrics.map(\.name), variants: variants, days: days)
            }
            dimensionReport[dimension] = ["values": JSON(values.count), "segments_kept": JSON(kept.count), "values_in_other": JSON(folded),
                                          "units_whose_value_changed": JSON(acc.changedUnits[d])]
        }
        return out
    }
}

/// The values of each dimension, numbered in order of first sight across all workers: a row spills its value's
/// number, not its text. Number 0 is `(missing)` (a unit with no value); past ``limit`` values a dimension's new
/// values all get ``overflow`` and end in `(other)`.
final class DimensionValues: @unchecked Sendable {
    static let limit = 100_000
    static let overflow = limit
    private let state: Mutex<[(numbers: [UInt64: Int], names: [String])]>

    /// `presets[d]`: values of dimension `d` numbered 1, 2, … before any row is read.
    init(presets: [[String]]) {
        state = Mutex(presets.map { names in
            var numbers: [UInt64: Int] = [:]
            for (i, name) in names.enumerated() {
                let bytes = Array(name.utf8)
                numbers[bytes.withUnsafeBufferPointer { Ingestor.fingerprint($0) }] = i + 1
            }
            return (numbers, ["(missing)"] + names)
        })
    }

    /// The number of the value `text` (whose fingerprint is `hash`) in dimension `d`.
    func number(_ d: Int, hash: UInt64, text: UnsafeBufferPointer<UInt8>) -> Int {
        state.withLock { s in
            if let n = s[d].numbers[hash] { return n }
            guard s[d].names.count < Self.limit else { return Self.overflow }
            s[d].names.append(String(decoding: text.prefix(200), as: UTF8.self))
            s[d].numbers[hash] = s[d].names.count - 1
            return s[d].names.count - 1
        }
    }

    func names(_ d: Int) -> [String] { state.withLock { $0[d].names } }
}

/// What ingestion can fail with, mapped to the wire by `Service` in one place: input/output (1010), input that
/// cannot be loaded (1009), a file the caller may not make the service read (1004), a broken invariant.
public struct IngestError: Error, CustomStringConvertible {
    public enum Kind: Sendable { case io, invalidInput, forbidden, `internal` }
    public let kind: Kind
    public let message: String
    /// Structured details for the error's `data` (`path`, `line`, `field` …).
    public let data: JSON

    public init(_ kind: Kind, message: String, data: JSON = [:]) {
        self.kind = kind
        self.message = message
        self.data = data
    }

    static func forbidden(_ message: String, details: [String: JSON]) -> IngestError { IngestError(.forbidden, message: message, data: .object(details)) }
    static func `internal`(_ message: String) -> IngestError { IngestError(.internal, message: message) }
    public var description: String { message }
}
