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

    @OptionGroup var options: StoreOptions
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(help: "Load the valid rows even when some are bad.") var allowPartial = false
    @Flag(help: "Reject the file when rows are dated outside the experiment's schedule (default: leave them out and count them).") var strictDates = false
    @Option(help: "Folder for the spill files (default: $TMPDIR, else the system's temporary folder).") var spillDir: String?
    @Option(help: "csv or jsonl (default: from the file name).") var format: String?
    @Argument(help: "The experiment's key.") var key: String
    @Argument(help: "Unit-level rows (CSV or JSON lines); - reads standard input.") var file: String

    func run() throws {
        let file = self.file == "-" ? "/dev/stdin" : self.file
        guard FileManager.default.isReadableFile(atPath: file) else { throw CLIError.io("cannot read \(file)") }
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        // Ingestion needs an experiment that has run, so a missing store is never created for it.
        let service = try options.makeService(mustExist: true)
        // The same authorization as results.ingest over the control interface.
        do { try service.authorizeInProcess("results.ingest", ["key": .string(key), "path": .string(file)], principal: options.principal) } catch {
            let wire = RefereeService.wireError(error)
            if json { print(wire.json.serialized()) } else { FileHandleStderr.write("referee: \(wire.message)\n") }
            throw ExitCode(exitStatus(forErrorCode: wire.code.rawValue))
        }
        // Ctrl-C stops the ingestion cleanly: nothing written, the spill folder removed.
        SignalFlag.install()
        let started = Date()
        var lastDraw = Date.distantPast
        // Progress frames only on a terminal: never carriage returns in a CI log.
        let showProgress = isatty(STDERR_FILENO) != 0 && !options.quiet
        let progress: (Int, Int) -> Void = { bytes, rows in
            guard showProgress, Date().timeIntervalSince(lastDraw) > 0.25 || bytes == size else { return }
            lastDraw = Date()
            let elapsed = max(Date().timeIntervalSince(started), 1e-3)
            let share = size > 0 ? Double(bytes) / Double(size) : 1
            let filled = Int(share * 30)
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
            FileHandleStderr.write(String(format: "\r[%@] %5.1f%%  %.1f/%.1f MB  %d rows  %.0f rows/s", bar, share * 100,
                                          Double(bytes) / 1e6, Double(size) / 1e6, rows, Double(rows) / elapsed))
        }
        let report: JSON
        do {
            report = try service.ingest(key: key, path: file, format: format, allowPartial: allowPartial, principal: options.principal,
                                        progress: progress, cancelled: { SignalFlag.isRaised }, strictDates: strictDates, spillDirectory: spillDir)
            if showProgress { FileHandleStderr.write("\n") }
        } catch {
            if showProgress { FileHandleStderr.write("\n") }
            let wire = RefereeService.wireError(error)
            let code = wire.code.rawValue
            let payload = wire.json
            if json { print(payload.serialized()) } else { FileHandleStderr.write("referee: \(cliWording(payload["message"]?.stringValue ?? "\(error)"))\n") }
            if let problems = payload["data"]?["problems"]?.arrayValue, !json {
                for p in problems { FileHandleStderr.write("  \(p["message"]?.stringValue ?? "")\n") }
            }
            throw ExitCode(exitStatus(forErrorCode: code))
        }
        if json { print(report.serialized()) } else {
            let outside = report["rows_outside_schedule"]?["count"]?.intValue ?? 0
            print("loaded \(plural(report["units_loaded"]?.intValue ?? 0, "unit")) from \(plural(report["rows_read"]?.intValue ?? 0, "row")) into \(key); "
                  + "\(plural(report["units_in_several_variants"]?.intValue ?? 0, "unit")) excluded (seen in several variants), "
                  + "\(plural(report["rows_rejected"]?.intValue ?? 0, "row")) rejected"
                  + (outside > 0 ? ", \(plural(outside, "row")) outside the schedule left out (\(report["rows_outside_schedule"]?["first_day"]?.stringValue ?? "") to \(report["rows_outside_schedule"]?["last_day"]?.stringValue ?? ""))" : ""))
        }
    }
}

/// `referee summary KEY`: the pre-registered analysis as JSON, Markdown or one self-contained HTML page.
struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Report an experiment's results: decision, metrics, sample-ratio check, progress.")

    @OptionGroup var options: StoreOptions
    @Option(help: "The report's form.") var format: ReportFormat = .markdown
    @Option(name: [.short, .customLong("output")], help: "Write to FILE instead of stdout.") var output: String?
    @Option(help: "Analyse the data as of this time (RFC 3339 or YYYY-MM-DD).") var asOf: String?
    @Argument(help: "The experiment's key.") var key: String

    func run() throws {
        let service = try options.makeService(readOnly: true)
        let dispatcher = Dispatcher()
        service.install(on: dispatcher)
        let context = RPCContext(principal: options.principal, transport: .inProcess)
        var params: [String: JSON] = ["key": .string(key)]
        if let asOf { params["as_of"] = .string(asOf) }
        let reply = dispatcher.handle(message: ["jsonrpc": "2.0", "id": 1, "method": "results.summary", "params": .object(params)], context: context)
        guard let summary = reply?["result"] else {
            let error = reply?["error"] ?? .null
            FileHandleStderr.write(describeError(error) + "\n")
            throw ExitCode(exitStatus(forErrorCode: error["code"]?.intValue ?? -32603))
        }
        let series = dispatcher.handle(message: ["jsonrpc": "2.0", "id": 2, "method": "results.timeseries", "params": ["key": .string(key)]],
                                       context: context)?["result"]
        let text = ReportRenderer.render(format, summary: summary, series: series)
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
