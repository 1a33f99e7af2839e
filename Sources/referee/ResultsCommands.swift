public import ArgumentParser
import Foundation
import Service
import JSONCore
import RPC
import Reports

/// `referee ingest KEY FILE`: unit-level rows into aggregates. Exit 0 loaded, 1 rejected, 2 usage or I/O error.
struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Load unit-level rows (CSV or JSON lines) into an experiment's results.",
        discussion: "Columns: unit_id, variant, day (optional, YYYY-MM-DD), one column per metric (METRIC.numerator/.denominator for ratios, METRIC.pre for CUPED). Nothing is written when any row is bad unless --allow-partial.")

    @OptionGroup var options: ClientOptions
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(help: "Load the valid rows even when some are bad.") var allowPartial = false
    @Flag(help: "Reject the file when rows are dated outside the experiment's schedule (default: leave them out and count them).") var strictDates = false
    @Option(help: "Folder for the spill files (default: $TMPDIR, else the system's temporary folder).") var spillDir: String?
    @Option(help: "csv or jsonl (default: from the file name).") var format: String?
    @Argument(help: "The experiment's key.") var key: String
    @Argument(help: "Unit-level rows (CSV or JSON lines); - reads standard input.") var file: String

    func run() throws {
        let file = self.file == "-" ? "/dev/stdin" : self.file
        let client = Client(options: options, json: json, existingStore: true)
        client.spillDirectory = spillDir
        var showProgress = false
        if !client.overSocket {
            guard FileManager.default.isReadableFile(atPath: file) else { throw CLIError.io("cannot read \(file)") }
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            // Ctrl-C stops the ingestion cleanly: nothing written, the spill folder removed.
            SignalFlag.install()
            client.isCancelled = { SignalFlag.isRaised }
            // Progress frames only on a terminal: never carriage returns in a CI log.
            showProgress = isatty(STDERR_FILENO) != 0 && !options.quiet
            if showProgress { client.progress = ProgressBar(size: size).draw }
        }
        // Over the socket the daemon reads the file: name it absolutely.
        let path = client.overSocket && !file.hasPrefix("/") ? FileManager.default.currentDirectoryPath + "/" + file : file
        var params: [String: JSON] = ["key": .string(key), "path": .string(path)]
        if let format { params["format"] = .string(format) }
        if allowPartial { params["allow_partial"] = true }
        if strictDates { params["strict_dates"] = true }
        let report: JSON
        do {
            defer { if showProgress { FileHandleStderr.write("\n") } }
            report = try client.result("results.ingest", .object(params))
        }
        if json { print(report.serialized()) } else {
            let outside = report["rows_outside_schedule"]?["count"]?.intValue ?? 0
            print("loaded \(plural(report["units_loaded"]?.intValue ?? 0, "unit")) from \(plural(report["rows_read"]?.intValue ?? 0, "row")) into \(key); "
                  + "\(plural(report["units_in_several_variants"]?.intValue ?? 0, "unit")) excluded (seen in several variants), "
                  + "\(plural(report["rows_rejected"]?.intValue ?? 0, "row")) rejected"
                  + (outside > 0 ? ", \(plural(outside, "row")) outside the schedule left out (\(report["rows_outside_schedule"]?["first_day"]?.stringValue ?? "") to \(report["rows_outside_schedule"]?["last_day"]?.stringValue ?? ""))" : ""))
            for (metric, c) in (report["capping"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                let at = (c["cap"] ?? c["value"]).map { $0.serialized() } ?? "?"
                let which = c["type"] == "percentile" ? " (the \(c["value"].map { $0.serialized() } ?? "?") quantile of the units' values)" : ""
                print("\(metric) capped at \(at)\(which): \(plural(c["units_capped"]?.intValue ?? 0, "unit")) lowered to the cap")
            }
        }
    }
}

/// `referee summary KEY`: the pre-registered analysis as JSON, Markdown or one self-contained HTML page.
struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Report an experiment's results: decision, metrics, sample-ratio check, progress.")

    @OptionGroup var options: ClientOptions
    @Option(help: "The report's form.") var format: ReportFormat = .markdown
    @Option(name: [.short, .customLong("output")], help: "Write to FILE instead of stdout.") var output: String?
    @Option(help: "Analyse the data as of this time (RFC 3339 or YYYY-MM-DD).") var asOf: String?
    @Argument(help: "The experiment's key.") var key: String

    func run() throws {
        let client = Client(options: options, json: false)
        var params: [String: JSON] = ["key": .string(key)]
        if let asOf { params["as_of"] = .string(asOf) }
        let summary = try client.result("results.summary", .object(params))
        var seriesParams: [String: JSON] = ["key": .string(key)]
        if let asOf { seriesParams["as_of"] = .string(asOf) }
        let series = try client.request("results.timeseries", .object(seriesParams))["result"]
        // One breakdown per declared dimension: the report names a dimension whose effect differs.
        var segments: [JSON] = []
        for dimension in summary["dimensions"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
            var p: [String: JSON] = ["key": .string(key), "dimension": .string(dimension)]
            if let asOf { p["as_of"] = .string(asOf) }
            if let r = try client.request("results.segments", .object(p))["result"] { segments.append(r) }
        }
        // Every metric by day (the HTML page's small multiples).
        var everyMetric: [JSON] = []
        if format == .html {
            for metric in summary["metrics"]?.arrayValue?.compactMap({ $0["metric"]?.stringValue }) ?? [] {
                var p = seriesParams
                p["metric"] = .string(metric)
                if let r = try client.request("results.timeseries", .object(p))["result"] { everyMetric.append(r) }
            }
        }
        let text = ReportRenderer.render(format, summary: summary, series: series, segments: segments, everyMetric: everyMetric)
        if let output {
            do { try text.write(toFile: output, atomically: true, encoding: .utf8) } catch {
                throw CLIError.io("cannot write \(output): \(error.localizedDescription)")
            }
        } else {
            print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
        }
    }
}

extension ReportFormat: ExpressibleByArgument {}

/// `referee export KEY --what summary|timeseries --format csv|jsonl`: results as a table for other tools.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export an experiment's results as CSV or JSON lines: a row per metric × arm (summary) or per metric × arm × day (timeseries).")

    enum What: String, ExpressibleByArgument, CaseIterable { case summary, timeseries, segments }
    enum Format: String, ExpressibleByArgument, CaseIterable { case csv, jsonl }

    @OptionGroup var options: ClientOptions
    @Option(help: "summary, timeseries or segments.") var what: What = .summary
    @Option(help: "With --what segments: one dimension (default: every declared one).") var dimension: String?
    @Option(help: "csv or jsonl.") var format: Format = .csv
    @Option(name: [.short, .customLong("output")], help: "Write to FILE instead of stdout.") var output: String?
    @Option(help: "Read the data as of this time (RFC 3339 or YYYY-MM-DD).") var asOf: String?
    @Option(help: "One segment.") var segment: String?
    @Argument(help: "The experiment's key.") var key: String

    func run() throws {
        var params: [String: JSON] = ["key": .string(key), "what": .string(what.rawValue), "format": .string(format.rawValue)]
        if let asOf { params["as_of"] = .string(asOf) }
        if let segment { params["segment"] = .string(segment) }
        if let dimension { params["dimension"] = .string(dimension) }
        let text = try Client(options: options, json: false).result("results.export", .object(params))["text"]?.stringValue ?? ""
        if let output {
            do { try text.write(toFile: output, atomically: true, encoding: .utf8) } catch {
                throw CLIError.io("cannot write \(output): \(error.localizedDescription)")
            }
        } else {
            print(text, terminator: "")
        }
    }
}

struct SQLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql",
        abstract: "Print the one warehouse query of an experiment's sufficient statistics (Protocols/warehouse.json); nothing runs.")

    enum Dialect: String, ExpressibleByArgument, CaseIterable { case postgresql, duckdb, bigquery, snowflake }

    @OptionGroup var options: ClientOptions
    @Option(help: "postgresql, duckdb, bigquery or snowflake (default: the source's own).") var dialect: Dialect?
    @Option(help: "A source of warehouse.json (default: the only one).") var source: String?
    @Option(help: "Only exposures and events before this time (RFC 3339 or YYYY-MM-DD).") var asOf: String?
    @Flag(help: "Print the whole answer as JSON: the SQL, its SHA-256, its columns and how each is read.") var json = false
    @Argument(help: "The experiment's key.") var key: String

    func run() throws {
        var params: [String: JSON] = ["key": .string(key)]
        if let dialect { params["dialect"] = .string(dialect.rawValue) }
        if let source { params["source"] = .string(source) }
        if let asOf { params["as_of"] = .string(asOf) }
        let answer = try Client(options: options, json: json).result("results.sql", .object(params))
        if json { print(answer.serialized()) } else { print(answer["sql"]?.stringValue ?? "", terminator: "") }
    }
}

struct PullCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Run an experiment's warehouse query on a PostgreSQL source and store the aggregates it returns (all or nothing).")

    @OptionGroup var options: ClientOptions
    @Option(help: "A PostgreSQL source of warehouse.json.") var source: String
    @Option(help: "Only exposures and events before this time (RFC 3339 or YYYY-MM-DD).") var asOf: String?
    @Argument(help: "The experiment's key.") var key: String

    func run() throws {
        var params: [String: JSON] = ["key": .string(key), "source": .string(source)]
        if let asOf { params["as_of"] = .string(asOf) }
        print(try Client(options: options, json: true).result("results.pull", .object(params)).serialized())
    }
}

/// `[#####.....]  52.0%  12.3/23.6 MB  120000 rows  400000 rows/s` on standard error, redrawn at most four times a second.
final class ProgressBar: @unchecked Sendable {
    let size: Int
    let started = Date()
    var lastDraw = Date.distantPast

    init(size: Int) { self.size = size }

    func draw(bytes: Int, rows: Int) {
        guard Date().timeIntervalSince(lastDraw) > 0.25 || bytes == size else { return }
        lastDraw = Date()
        let elapsed = max(Date().timeIntervalSince(started), 1e-3)
        let share = size > 0 ? Double(bytes) / Double(size) : 1
        let filled = Int(min(share, 1) * 30)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
        FileHandleStderr.write(String(format: "\r[%@] %5.1f%%  %.1f/%.1f MB  %d rows  %.0f rows/s", bar, share * 100,
                                      Double(bytes) / 1e6, Double(size) / 1e6, rows, Double(rows) / elapsed))
    }
}
