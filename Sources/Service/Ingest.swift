import Foundation
import Synchronization
import API
import RPC
import Registry
import Store
import JSONCore
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

    /// A CSV body shorter than this per worker is read by fewer workers (tests lower it to exercise the split).
    var bytesPerWorker = 4 << 20
    /// Upper bound on workers in each pass.
    var maxWorkers = min(4, max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    /// The most spilled bytes one pass-2 worker loads at once (all workers together hold at most 64 MB of
    /// records); a larger partition is first split by further fingerprint bits, as often as needed.
    lazy var maxPartitionBytes = max(1 << 22, (64 << 20) / maxWorkers)
    /// Above this many sums, pass 2 keeps only the cells that occur (tests lower it).
    var maxDenseSums = 1 << 22
    static let partitions = 128
    /// Distinct days one file may hold (as before: about 178 years of daily rows).
    static let maxDays = 65_000

    private var columns: [Column] = []
    private var metrics: [MetricSlot] = []
    private var valueCount = 0             // value slots in memory: 4 per metric (value, pre, numerator, denominator)
    /// The slots the file's columns fill, in record order: only these are spilled, so records stay small.
    private var usedSlots: [Int] = []
    /// Record position of each slot, or -1 when no column fills it.
    private var recordPosition: [Int] = []
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

    /// Spill folders are named `referee-ingest-PID-RANDOM`; one whose process is gone is removed by the next run.
    static let spillPrefix = "referee-ingest-"
    /// Values beyond this magnitude are rejected row by row: their squares would overflow a double.
    static let maxValueMagnitude = 1e150
    /// Where spill folders go: `$TMPDIR`, else the system's temporary directory.
    var spillDirectory = FileManager.default.temporaryDirectory
    /// A pipe or device that produces nothing for this long is given up (`REFEREE_INGEST_STREAM_TIMEOUT`, seconds).
    var streamIdleSeconds: Double = {
        if let text = ProcessInfo.processInfo.environment["REFEREE_INGEST_STREAM_TIMEOUT"], let s = Double(text), s > 0 { return s }
        return 30
    }()
    /// The file being read, for messages.
    fileprivate(set) var inputPath = ""
    /// The path being streamed (not a regular file), for messages.
    fileprivate(set) var streamPath: String?
    /// Rows dated outside the schedule make the file a rejection instead of being left out.
    var strictDates = false
    /// Day indexes of the schedule (first and last day included): rows dated outside are left out, or with
    /// `strictDates` rejected. Set by `RefereeService.ingest` from the document; nil reads every day.
    var scheduleDays: ClosedRange<Int32>?

    /// The schedule of a document as day indexes (the end instant is exclusive).
    static func scheduleDays(of doc: ExperimentDocument) -> ClosedRange<Int32>? {
        guard let start = doc.start, let end = doc.end,
              let first = Array(start.day.utf8).withUnsafeBufferPointer({ CalendarDay.parse($0) }),
              let last = Array(Timestamp(seconds: end.seconds - 0.001).day.utf8).withUnsafeBufferPointer({ CalendarDay.parse($0) }),
              first <= last else { return nil }
        return first...last
    }
    private(set) var outsideSchedule = 0
    private(set) var outsideDays: ClosedRange<Int32>?

    /// Checked between chunks and partitions: an interrupted CLI stops, and the spill folder is removed.
    var cancelled: @Sendable () -> Bool = { false }

    /// A row that runs this far without a newline ends the reading: the source is not line-oriented
    /// (`/dev/zero`, a binary file) and would otherwise be read for ever.
    static let maxBytesWithoutNewline = 64 << 20

    /// Removes spill folders left by ingestions whose process no longer exists (killed, or the machine stopped).
    static func removeStaleSpills(in root: URL) {
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
            if ready < 0 && errno == EINTR { if cancelled() { throw Ingestor.cancellation }; continue }
            if ready == 0 {
                throw RPCError(code: .ioError, message: "\(streamPath ?? "the input") produced no data for \(streamIdleSeconds.wholeText) s (a pipe without a writer?); nothing was written",
                               data: ["reason": "io_error", "path": JSON(streamPath), "detail": .string("no data within \(streamIdleSeconds.wholeText) s")])
            }
            let n = read(fd, buffer, count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { continue }
            if n < 0 {
                throw RPCError(code: .ioError, message: "cannot read \(streamPath ?? "the input"): \(String(cString: strerror(errno)))",
                               data: ["reason": "io_error", "path": JSON(streamPath), "detail": .string(String(cString: strerror(errno)))])
            }
            return n
        }
    }

    static let cancellation = RPCError(code: .ioError, message: "ingestion interrupted; nothing was written", data: ["reason": "io_error", "detail": "interrupted"])

    /// An input/output failure (1010, never "invalid params"): what failed, the path and the system's message.
    static func ioError(_ what: String, path: String, errno code: Int32 = errno) -> RPCError {
        let system = String(cString: strerror(code))
        return RPCError(code: .ioError, message: "\(what) \(path): \(system); nothing was written",
                        data: ["reason": "io_error", "path": .string(path), "detail": .string(system)])
    }

    /// When set (the shared socket), only a regular file owned by this user is read, checked on the open
    /// descriptor (no symbolic link followed), so the file cannot be swapped between a check and the read.
    var requiredOwner: uid_t?

    func run(path: String, format: String) throws -> Totals {
        guard variants.count <= 255 else {
            throw RPCError.invalidParams(path: "key", "ingestion supports at most 255 variants; \(context.doc.key) has \(variants.count)")
        }
        // Opened without blocking: a FIFO without a writer would otherwise hang the open itself.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (requiredOwner == nil ? 0 : O_NOFOLLOW))
        guard fd >= 0 else { throw Ingestor.ioError("cannot open", path: path) }
        inputPath = path
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR else {
            throw RPCError.invalidParams(path: "path", "cannot read \(path): not a regular file")
        }
        if (info.st_mode & S_IFMT) != S_IFREG {
            // A pipe or device is read blocking, each read waiting at most `streamIdleSeconds` for data.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            streamPath = path
        }
        if let owner = requiredOwner, (info.st_mode & S_IFMT) != S_IFREG || info.st_uid != owner {
            throw RegistryError.forbidden("over the shared socket, results.ingest reads only regular files owned by the caller; \(path) is not",
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
            guard let header else { throw RPCError.invalidParams(path: "path", "\(path) is empty: expected a header line") }
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
            throw RPCError(code: .invalidInput,
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
        let layout = Layout(metrics: metrics, variants: variants.count, days: dayNames.count, valueCount: valueCount,
                            recordPosition: recordPosition, slots: usedSlots.count,
                            dayMin: dayMin, dense: dense, maxDenseSums: maxDenseSums)
        let foldFailure = Mutex<(any Error)?>(nil)
        let fileNames = (0..<Self.partitions).map { p in (0..<sources.count).map { w in dir.appendingPathComponent("w\(w)p\(p)").path } }
        let budget = maxPartitionBytes
        // Partitions are dealt to workers by number and the workers' sums added in worker order, so the
        // floating-point totals are the same on every run.
        let workers = min(maxWorkers, Self.partitions)
        let isCancelled = cancelled
        let folded = Mutex([Accumulators?](repeating: nil, count: workers))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var acc = Accumulators(layout: layout)
            var grouping = UnitGrouping()
            do {
                for p in stride(from: w, to: Self.partitions, by: workers) {
                    if isCancelled() { throw Ingestor.cancellation }
                    try Self.fold(fileNames[p], name: "p\(p)", usedBits: 7, budget: budget, dir: dir, layout: layout,
                                  into: &acc, grouping: &grouping)
                }
            } catch {
                foldFailure.withLock { $0 = $0 ?? error }
            }
            folded.withLock { $0[w] = acc }
        }
        if let error = foldFailure.withLock({ $0 }) { throw error }
        var parts = folded.withLock { $0.compactMap { $0 } }
        guard !parts.isEmpty else { return [:] }
        var acc = parts.removeFirst()
        for part in parts { acc.add(part) }
        unitsLoaded = acc.unitsLoaded
        unitsExcluded = acc.unitsExcluded
        let totals = acc.totals(layout: layout, metricNames: metrics.map(\.name), variants: variants, days: dayNames)
        // Values below 1e150 can still sum past the largest double over enough rows: never store a sum that is not finite.
        for (metric, perVariant) in totals.sorted(by: { $0.key < $1.key }) {
            for (variant, perDay) in perVariant.sorted(by: { $0.key < $1.key }) {
                for (day, aggregate) in perDay.sorted(by: { $0.key < $1.key }) where !aggregate.isFinite {
                    throw RPCError(code: .invalidInput,
                                   message: "the sums of \(metric) for \(variant)\(day.isEmpty ? "" : " on \(day)") overflow a double (not finite); nothing was written. Scale the values down (e.g. cents to thousands)",
                                   data: ["reason": "invalid_input", "field": .string(metric), "variant": .string(variant), "day": .string(day)])
                }
            }
        }
        return totals
    }

    /// Folds the records of one partition (its files in file order). A partition larger than `budget` is
    /// first split into 16 by the next four fingerprint bits, streaming and keeping file order, and each part
    /// is folded in turn; a unit's records share every fingerprint bit, so they stay together.
    private static func fold(_ paths: [String], name: String, usedBits: Int, budget: Int, dir: URL, layout: Layout,
                             into acc: inout Accumulators, grouping: inout UnitGrouping) throws {
        let size = paths.reduce(0) { total, path in
            var info = stat()
            return total + (stat(path, &info) == 0 ? Int(info.st_size) : 0)
        }
        guard size > budget, usedBits <= 60 else {
            acc.fold(try readAll(paths), layout: layout, grouping: &grouping)
            return
        }
        let parts = (0..<16).map { dir.appendingPathComponent("\(name)-\($0)").path }
        let writers = try parts.map { try SpillWriter(path: $0) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        for path in paths {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd); unlink(path) }
            var offset = 0, filled = 0
            while true {
                let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + filled, $0.count - filled, off_t(offset)) }
                if n < 0 && errno == EINTR { continue }
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
            guard filled == 0 else { throw RPCError.internalError("spill file \(path) ends inside a record") }
        }
        for writer in writers { try writer.close() }
        for (k, part) in parts.enumerated() {
            try fold([part], name: "\(name)-\(k)", usedBits: usedBits + 4, budget: budget, dir: dir, layout: layout, into: &acc, grouping: &grouping)
            unlink(part)
        }
    }

    /// Byte ranges of the body, one per worker, each starting at a line.
    private func split(fd: Int32, from start: Int, to end: Int) throws -> [Range<Int>] {
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
    private static func nextLineStart(fd: Int32, at: Int, end: Int) throws -> Int {
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
    private static func firstLine(fd: Int32, size: Int) throws -> (String, Int)? {
        guard size > 0 else { return nil }
        let next = try nextLineStart(fd: fd, at: 0, end: min(size, Pass1Worker.maxLineBytes + 2))
        if next < size, next == Pass1Worker.maxLineBytes + 2 {
            throw RPCError.invalidParams(path: "path", "the header line is longer than 1 MiB")
        }
        var bytes = [UInt8](repeating: 0, count: next)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, next, 0) }
        guard n == next else { throw Ingestor.ioError("read failed in the header of", path: "the input", errno: n >= 0 ? EIO : errno) }
        while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
        return (String(decoding: bytes, as: UTF8.self), next)
    }

    /// The first line of a stream (without CR/LF) and the bytes read after it.
    private func firstLine(stream fd: Int32) throws -> (header: String?, rest: [UInt8]) {
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
        guard bytes.count <= Pass1Worker.maxLineBytes else { throw RPCError.invalidParams(path: "path", "the header line is longer than 1 MiB") }
        if bytes.last == 0x0D { bytes.removeLast() }
        return (bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self), [])
    }

    private static func readAll(_ paths: [String]) throws -> [UInt8] {
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

    /// The file's columns, from the CSV header or the first JSON line.
    fileprivate func readHeader(_ names: [some StringProtocol], line: Int) throws {
        // A column named twice has no one meaning: which of the two values would count?
        var counts: [String: Int] = [:]
        for raw in names { counts[String(raw), default: 0] += 1 }
        let repeated = counts.filter { $0.value > 1 }.keys.sorted()
        if !repeated.isEmpty {
            throw RPCError(code: .invalidInput,
                           message: "the header (line \(line)) names \(repeated.map { "\"\($0.prefix(60))\"" }.joined(separator: ", ")) more than once; each column must appear once. Nothing was written",
                           data: ["reason": "invalid_input", "field": "path", "line": JSON(line), "duplicate_columns": JSON(repeated.map { String($0.prefix(200)) })])
        }
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
        guard names.count <= 4096 else {
            throw RPCError.invalidParams(path: "path", "the header (line \(line)) has \(names.count) columns; at most 4096 are supported")
        }
        // Unknown metric columns (metric -1) are skipped in the records; they were reported above.
        valueCount = metrics.count * 4
        for case .value(let m, let role) in columns where m >= 0 { usedSlots.append(m * 4 + role.rawValue) }
        usedSlots = Array(Set(usedSlots)).sorted()
        recordPosition = [Int](repeating: -1, count: valueCount)
        for (i, k) in usedSlots.enumerated() { recordPosition[k] = i }
    }

    /// A copy with no columns read yet (the JSON-lines worker reads its header from the first row).
    fileprivate func headerState() -> HeaderState {
        HeaderState(columns: columns, metrics: metrics, valueCount: valueCount, usedSlots: usedSlots, recordPosition: recordPosition, problems: [])
    }

    fileprivate func readJSONLHeader(_ keys: [String], line: Int) throws -> HeaderState {
        let before = problems
        let beforeCounts = problemCounts
        try readHeader(keys, line: line)
        let added = Array(problems.dropFirst(before.count))
        problems = before
        problemCounts = beforeCounts
        var state = headerState()
        state.problems = added
        return state
    }

    /// Splits one CSV record (RFC 4180 quoting).
    static func splitCSV(_ line: String) -> [Substring] {
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
    static func fingerprint(_ s: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s { h ^= UInt64(b); h = h &* 0x0000_0100_0000_01b3 }
        return h
    }

    private static let powers: [Double] = (0...22).map { e in (0..<e).reduce(1.0) { r, _ in r * 10 } }

    /// A decimal number from bytes: exact fast path for up to 15 significant digits, else the standard parser.
    static func number(_ f: UnsafeBufferPointer<UInt8>) -> Double? {
        var i = 0
        var negative = false
        if f[i] == UInt8(ascii: "-") { negative = true; i += 1 } else if f[i] == UInt8(ascii: "+") { i += 1 }
        var mantissa: UInt64 = 0, digits = 0, scale = 0, sawDigit = false
        while i < f.count, f[i] >= 0x30, f[i] <= 0x39 { mantissa = mantissa &* 10 &+ UInt64(f[i] - 0x30); digits += 1; sawDigit = true; i += 1 }
        if i < f.count, f[i] == UInt8(ascii: ".") {
            i += 1
            while i < f.count, f[i] >= 0x30, f[i] <= 0x39 { mantissa = mantissa &* 10 &+ UInt64(f[i] - 0x30); digits += 1; scale -= 1; sawDigit = true; i += 1 }
        }
        if i == f.count, sawDigit, digits <= 15, scale >= -22 {
            let v = scale == 0 ? Double(mantissa) : Double(mantissa) / powers[-scale]
            return negative ? -v : v
        }
        return Double(String(decoding: f, as: UTF8.self))
    }

    var report: JSON {
        ["rows_read": JSON(rowsRead), "rows_rejected": JSON(rowsRejected), "units_loaded": JSON(unitsLoaded),
         "units_in_several_variants": JSON(unitsExcluded),
         "problems": .array(problems.map { ["line": JSON($0.line), "kind": .string($0.kind), "message": .string($0.message)] }),
         "problem_counts": .object(problemCounts.mapValues { JSON($0) }),
         "rows_outside_schedule": ["count": JSON(outsideSchedule),
                                   "first_day": outsideDays.map { .string(CalendarDay.format(Int($0.lowerBound))) } ?? .null,
                                   "last_day": outsideDays.map { .string(CalendarDay.format(Int($0.upperBound))) } ?? .null]]
    }
}

/// The columns of a file, as read from its header.
struct HeaderState: @unchecked Sendable {
    var columns: [Ingestor.Column]
    var metrics: [Ingestor.MetricSlot]
    var valueCount: Int
    var usedSlots: [Int]
    var recordPosition: [Int]
    var problems: [Ingestor.Problem]
}

/// `YYYY-MM-DD` as a day index (days since 0000-03-01, so every year 0000-9999 but two months is
/// non-negative and below ``span``), validated as a calendar date.
enum CalendarDay {
    static let span = 3_652_425

    static func parse(_ f: UnsafeBufferPointer<UInt8>) -> Int32? {
        guard f.count == 10, f[4] == UInt8(ascii: "-"), f[7] == UInt8(ascii: "-") else { return nil }
        func digits(_ from: Int, _ count: Int) -> Int? {
            var v = 0
            for i in from..<(from + count) {
                let d = Int(f[i]) &- 0x30
                guard d >= 0 && d <= 9 else { return nil }
                v = v * 10 + d
            }
            return v
        }
        guard let y = digits(0, 4), let m = digits(5, 2), let d = digits(8, 2), (1...12).contains(m), d >= 1 else { return nil }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let length = m == 2 ? (leap ? 29 : 28) : (m == 4 || m == 6 || m == 9 || m == 11 ? 30 : 31)
        guard d <= length else { return nil }
        // Howard Hinnant's days_from_civil.
        let yy = m <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let index = era * 146_097 + doe
        return index >= 0 && index < span ? Int32(index) : nil
    }

    static func format(_ index: Int) -> String {
        Timestamp(seconds: Double(index - 719_468) * 86_400).day
    }
}

/// What every pass-1 worker shares: read-only after the header.
final class Pass1Shared: @unchecked Sendable {
    let columns: [Ingestor.Column]
    let metrics: [Ingestor.MetricSlot]
    let valueCount: Int
    let usedSlots: [Int]
    let variants: [String]
    let format: String
    let dir: URL
    let ingestor: Ingestor
    /// Day indexes (``CalendarDay``) of the schedule, first and last day included; rows outside are not counted.
    let scheduleDays: ClosedRange<Int32>?

    init(ingestor: Ingestor, format: String, dir: URL) {
        let header = ingestor.headerState()
        columns = header.columns; metrics = header.metrics; valueCount = header.valueCount; usedSlots = header.usedSlots
        variants = ingestor.context.doc.variants.map(\.key)
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
    private(set) var starts: UnsafeMutablePointer<Int>
    private(set) var ends: UnsafeMutablePointer<Int>
    private(set) var fieldCapacity: Int
    var fields = 0
    private(set) var values: UnsafeMutablePointer<Double>
    private(set) var valueCount: Int
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
    private var columns: [Ingestor.Column]
    private var metrics: [Ingestor.MetricSlot]
    private var valueCount: Int
    private var usedSlots: [Int]
    private var jsonlHeader: HeaderState?
    private var jsonlKeys: [String] = []
    private var problems: [Pass1Outcome.LocalProblem] = []
    private var problemCounts: [String: Int] = [:]
    private var rowsRead = 0, rowsRejected = 0, line = 0
    private var daysSeen: [UInt64]
    private var outsideSchedule = 0
    private var outsideDays: ClosedRange<Int32>?
    private let memory: WorkerMemory
    private var scratch: [UInt8] = []
    /// Per-row lookups as plain values, private to this worker (see ``Accumulators/fold``).
    private var types: [MetricType]
    private let isJSONL: Bool
    private var variantBytes: [UInt8] = []
    private var variantRanges: [Range<Int>] = []

    init(shared: Pass1Shared, index: Int) {
        self.shared = shared
        self.index = index
        // Copies of their own (map makes new storage): the row loop must not share reference counts with the
        // other workers.
        columns = shared.columns.map { $0 }; metrics = shared.metrics; valueCount = shared.valueCount; usedSlots = shared.usedSlots.map { $0 }
        types = metrics.map(\.type)
        isJSONL = shared.format == "jsonl"
        for v in shared.variants {
            let start = variantBytes.count
            variantBytes.append(contentsOf: Array(v.utf8))
            variantRanges.append(start..<variantBytes.count)
        }
        memory = WorkerMemory(valueCount: shared.valueCount)
        daysSeen = []
    }

    private mutating func reject(_ kind: String, _ render: @escaping (Int) -> String) {
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
                              : pread(fd, b.baseAddress! + filled, min(b.count - filled, end - offset), off_t(offset))
                }
                if n < 0 && errno == EINTR { continue }
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
                    throw RPCError(code: .invalidInput,
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
    private mutating func consume(_ raw: UnsafeBufferPointer<UInt8>) throws {
        let length = raw.count - (raw.last == 0x0D ? 1 : 0)
        if length > Self.maxLineBytes { tooLong() } else { try handle(raw) }
    }

    private mutating func tooLong() {
        line += 1
        rowsRead += 1
        reject("malformed_row") { "line \($0) is longer than 1 MiB" }
    }

    private mutating func handle(_ raw: UnsafeBufferPointer<UInt8>) throws {
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
    private mutating func row(_ base: UnsafeBufferPointer<UInt8>) throws {
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

    private func variantIndex(_ f: UnsafeBufferPointer<UInt8>) -> Int? {
        variantBytes.withUnsafeBufferPointer { all in
            for (v, r) in variantRanges.enumerated() where r.count == f.count {
                if f.isEmpty || memcmp(all.baseAddress! + r.lowerBound, f.baseAddress!, r.count) == 0 { return v }
            }
            return nil
        }
    }

    private mutating func flush(_ p: Int) throws {
        if memory.files[p] < 0 {
            let path = shared.dir.appendingPathComponent("w\(index)p\(p)").path
            memory.files[p] = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard memory.files[p] >= 0 else { throw Ingestor.ioError("cannot write a spill file", path: path) }
        }
        let fd = memory.files[p]
        let b = memory.spill + p * WorkerMemory.spillBytes
        var done = 0
        while done < memory.filled[p] {
            let n = write(fd, b + done, memory.filled[p] - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Ingestor.ioError("cannot write a spill file", path: shared.dir.appendingPathComponent("w\(index)p\(p)").path) }
            done += n
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

/// The spilled form of one row: fingerprint (8 bytes), variant (1), day index (4), then per value slot a tag
/// byte: 0 for no value, 1...254 for the whole numbers 0...253 (0/1 metrics, counts, scores), 255 followed by
/// the 8 bytes of any other double. Most rows take half the bytes of fixed-width doubles, which halves what
/// goes to disk and back.
enum SpillRecord {
    static let header = 13
    static func maxSize(_ slots: Int) -> Int { header + 9 * slots }

    /// Writes a record at `b`; returns its length.
    @inline(__always)
    static func write(fp: UInt64, variant: Int, day: Int32, values: UnsafeMutablePointer<Double>, slots: [Int],
                      to b: UnsafeMutableRawPointer) -> Int {
        b.storeBytes(of: fp.littleEndian, toByteOffset: 0, as: UInt64.self)
        b.storeBytes(of: UInt8(variant), toByteOffset: 8, as: UInt8.self)
        b.storeBytes(of: day.littleEndian, toByteOffset: 9, as: Int32.self)
        var at = header
        for k in slots {
            let x = values[k]
            if x.isNaN {
                b.storeBytes(of: 0, toByteOffset: at, as: UInt8.self); at += 1
            } else if x >= 0 && x <= 253 && x == x.rounded() && x.sign == .plus {
                b.storeBytes(of: UInt8(x) + 1, toByteOffset: at, as: UInt8.self); at += 1
            } else {
                b.storeBytes(of: 255, toByteOffset: at, as: UInt8.self)
                b.storeBytes(of: x.bitPattern.littleEndian, toByteOffset: at + 1, as: UInt64.self)
                at += 9
            }
        }
        return at
    }

    /// The length of the record at `at`, or nil when `raw` ends inside it.
    @inline(__always)
    static func length(_ raw: UnsafeRawBufferPointer, at: Int, slots: Int) -> Int? {
        var i = at + header
        for _ in 0..<slots {
            guard i < raw.count else { return nil }
            i += raw[i] == 255 ? 9 : 1
        }
        return i <= raw.count ? i - at : nil
    }

    /// The value of the slot whose tag is at `at`, and where the next tag is.
    @inline(__always)
    static func value(_ raw: UnsafeRawBufferPointer, at: Int) -> (Double, Int) {
        let tag = raw[at]
        switch tag {
        case 0: return (.nan, at + 1)
        case 255: return (Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at + 1, as: UInt64.self))), at + 9)
        default: return (Double(tag - 1), at + 1)
        }
    }
}

/// Appends to one file through a buffer.
final class SpillWriter {
    private var fd: Int32
    private let path: String
    private var buffer: [UInt8] = []
    private static let bufferBytes = 1 << 18

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Ingestor.ioError("cannot write a spill file", path: path) }
        buffer.reserveCapacity(Self.bufferBytes)
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.bufferBytes { try flush() }
    }

    private func flush() throws {
        let fd = self.fd
        try buffer.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                let n = write(fd, b.baseAddress! + done, b.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw Ingestor.ioError("cannot write a spill file", path: path) }
                done += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func close() throws {
        try flush()
        Glibc.close(fd)
        fd = -1
    }
}

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
}

enum FoldRule { case sum, maximum, last }

/// Sums per metric, variant and day (six numbers a cell: enough for every aggregate shape) and exposures.
struct Accumulators: Sendable {
    /// Six sums per cell; cell `(m * variants + v) * days + d`, where metric index `metrics.count` holds the
    /// exposures. Dense while every cell fits in 32 MB; beyond (many days, metrics and variants) only the
    /// cells that occur are kept, found through `sparse`.
    private(set) var cells: [Double]
    private(set) var sparse: [Int: Int]?
    var unitsLoaded = 0
    var unitsExcluded = 0

    init(layout: Layout) {
        let count = (layout.metrics.count + 1) * layout.variants * layout.days * 6
        if count <= layout.maxDenseSums {
            cells = [Double](repeating: 0, count: count)
        } else {
            cells = []
            sparse = [:]
        }
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
        if sparse == nil {
            for i in cells.indices { cells[i] += other.cells[i] }
        } else {
            for (cell, from) in other.occupied {
                let to = offset(cell)
                for j in 0..<6 { cells[to + j] += other.cells[from + j] }
            }
        }
        unitsLoaded += other.unitsLoaded
        unitsExcluded += other.unitsExcluded
    }

    /// Groups one partition's records by unit and adds every unit that stayed in one variant.
    mutating func fold(_ records: [UInt8], layout: Layout, grouping g: inout UnitGrouping) {
        // Where each record starts (records have different lengths).
        var starts: [Int] = []
        records.withUnsafeBytes { raw in
            var r = 0
            while let length = SpillRecord.length(raw, at: r, slots: layout.slots) { starts.append(r); r += length }
        }
        let count = starts.count
        guard count > 0 else { return }
        var capacity = 16
        while capacity < count + count / 2 { capacity <<= 1 }
        let mask = capacity - 1
        if g.slots.count != capacity {
            g.slots = [UnitGrouping.Slot](repeating: .init(fingerprint: 0, head: -1, tail: -1), count: capacity)
        } else {
            for slot in g.used { g.slots[Int(slot)].head = -1 }
        }
        g.used.removeAll(keepingCapacity: true)
        if g.next.count < count {
            g.next = [Int32](repeating: -1, count: count)
            g.isHead = [Bool](repeating: false, count: count)
        }
        // Plain values only in the loops: copying a slot (it holds a String) would retain shared storage
        // on every record, and both workers retaining the same object serialises them on its reference count.
        let types = layout.metrics.map(\.type), hasPre = layout.metrics.map(\.hasPre)
        let valueCount = layout.valueCount, position = layout.recordPosition, dense = layout.dense
        let dayMin = layout.dayMin, days = layout.days, variants = layout.variants
        // The value slots a record holds, in record order, and how a unit's rows combine in each.
        var slotKeys: [Int] = [], slotRules: [FoldRule] = []
        for k in 0..<valueCount where position[k] >= 0 {
            slotKeys.append(k)
            switch (types[k / 4], k % 4) {
            case (.binomial, 0): slotRules.append(.maximum)
            case (.nps, 0), (_, 1): slotRules.append(.last)     // last score; pre-period is per unit
            default: slotRules.append(.sum)
            }
        }
        precondition(slotKeys.enumerated().allSatisfy { position[$0.element] == $0.offset })
        var unitValues = [Double](repeating: .nan, count: valueCount)
        records.withUnsafeBytes { raw in
            func fp(_ i: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: starts[i], as: UInt64.self)) }
            func variant(_ i: Int) -> Int { Int(raw[starts[i] + 8]) }
            func day(_ i: Int) -> Int { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: starts[i] + 9, as: Int32.self))) }
            // Chain each unit's records in file order.
            for i in 0..<count {
                let f = fp(i)
                var slot = Int(truncatingIfNeeded: (f ^ (f >> 29)) & UInt64(mask))
                while g.slots[slot].head >= 0 && g.slots[slot].fingerprint != f { slot = (slot + 1) & mask }
                g.next[i] = -1
                if g.slots[slot].head < 0 {
                    g.slots[slot] = .init(fingerprint: f, head: Int32(i), tail: Int32(i))
                    g.used.append(Int32(slot))
                    g.isHead[i] = true
                } else {
                    g.next[Int(g.slots[slot].tail)] = Int32(i); g.slots[slot].tail = Int32(i)
                    g.isHead[i] = false
                }
            }
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
                // Fold the unit's rows.
                for k in 0..<valueCount { unitValues[k] = .nan }
                i = head
                while i >= 0 {
                    var at = starts[i] + SpillRecord.header
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
                        }
                    }
                    i = Int(g.next[i])
                }
                unitsLoaded += 1
                let d = Int(dense[firstDay - dayMin])
                cells[offset((types.count * variants + v0) * days + d)] += 1
                for m in 0..<types.count {
                    let x = unitValues[m * 4], pre = unitValues[m * 4 + 1], num = unitValues[m * 4 + 2], den = unitValues[m * 4 + 3]
                    if x.isNaN && (num.isNaN || den.isNaN) { continue }
                    let c = offset(((m * variants + v0) * days + d))
                    switch types[m] {
                    case .binomial:
                        guard !x.isNaN else { continue }
                        cells[c] += 1; cells[c + 1] += x
                    case .continuous:
                        guard !x.isNaN else { continue }
                        cells[c] += 1; cells[c + 1] += x; cells[c + 2] += x * x
                        if hasPre[m] {
                            let pr = pre.isNaN ? 0 : pre
                            cells[c + 3] += pr; cells[c + 4] += pr * pr; cells[c + 5] += x * pr
                        }
                    case .ratio:
                        guard !num.isNaN, !den.isNaN else { continue }
                        cells[c] += 1; cells[c + 1] += num; cells[c + 2] += num * num
                        cells[c + 3] += den; cells[c + 4] += den * den; cells[c + 5] += num * den
                    case .nps:
                        guard !x.isNaN else { continue }
                        cells[c + (x >= 9 ? 0 : x >= 7 ? 1 : 2)] += 1
                    }
                }
            }
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
                guard x[0] > 0 else { continue }
                aggregate = .binomial(n: x[0], successes: x[1])
            case .continuous where slot.hasPre:
                guard x[0] > 0 else { continue }
                aggregate = .cuped(n: x[0], post: .init(sum: x[1], sumSquares: x[2]), pre: .init(sum: x[3], sumSquares: x[4]), postPre: x[5])
            case .continuous:
                guard x[0] > 0 else { continue }
                aggregate = .continuous(n: x[0], sum: x[1], sumSquares: x[2])
            case .ratio:
                guard x[0] > 0 else { continue }
                aggregate = .ratio(n: x[0], numerator: .init(sum: x[1], sumSquares: x[2]), denominator: .init(sum: x[3], sumSquares: x[4]), product: x[5])
            case .nps:
                guard x[0] + x[1] + x[2] > 0 else { continue }
                aggregate = .nps(promoters: x[0], passives: x[1], detractors: x[2])
            }
            totals[metricNames[m], default: [:]][variants[v], default: [:]][days[d]] = aggregate
        }
        return totals
    }
}
extension RefereeService {
    /// `results.ingest {key, path, format?, allow_partial?}`: all or nothing unless `allow_partial`.
    public func ingest(key: String, path: String, format: String?, allowPartial: Bool, principal: String,
                       requiredOwner: uid_t? = nil, progress: ((Int, Int) -> Void)? = nil,
                       cancelled: @escaping @Sendable () -> Bool = { false }, strictDates: Bool = false, spillDirectory: String? = nil) throws -> JSON {
        let c = try resultsContext(key)
        try requireHasRun(c)
        let fmt = format ?? (path.hasSuffix(".jsonl") || path.hasSuffix(".ndjson") ? "jsonl" : "csv")
        guard fmt == "csv" || fmt == "jsonl" else { throw FieldError(path: "format", message: "must be csv or jsonl") }
        let ingestor = Ingestor(context: c, allowPartial: allowPartial, progress: progress)
        ingestor.requiredOwner = requiredOwner
        ingestor.cancelled = cancelled
        ingestor.strictDates = strictDates
        if let spillDirectory { ingestor.spillDirectory = URL(fileURLWithPath: spillDirectory) }
        ingestor.scheduleDays = Ingestor.scheduleDays(of: c.doc)
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

    func ingestMethod(_ p: ResultsIngest.Params, _ ctx: RPCContext) throws -> JSON {
        if ctx.transport == .socket {
            // The shared service reads files with its own rights: only accept a regular file that the client owns,
            // so a client cannot make the service read what the client itself may not.
            let path = p.path
            var st = stat()
            guard lstat(path, &st) == 0 else { throw FieldError(path: "path", message: "cannot read \(path)") }
            guard (st.st_mode & S_IFMT) == S_IFREG, let uid = ctx.peerUID, st.st_uid == uid else {
                throw RegistryError.forbidden("over the shared socket, results.ingest reads only regular files owned by the caller (\(ctx.principal)); \(path) is not",
                                              details: ["principal": .string(ctx.principal), "path": .string(path)])
            }
        }
        return try ingest(key: p.key, path: p.path, format: p.format?.rawValue,
                          allowPartial: p.allow_partial ?? false, principal: ctx.principal,
                          requiredOwner: ctx.transport == .socket ? (ctx.peerUID ?? UInt32.max) : nil,
                          strictDates: p.strict_dates ?? false)
    }
}
