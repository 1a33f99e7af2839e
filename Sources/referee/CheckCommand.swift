import ArgumentParser
import Foundation
import Service
import RPC
import JSONCore

/// `referee check FILE...`: CI's gate for proposed experiment files.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate experiment files and check them for conflicts with the store and with each other.",
        discussion: "Exit 0 when no error-severity finding (with --strict, no warning either), 1 on findings, 2 on usage or I/O errors.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, junit }

    @OptionGroup var options: StoreOptions
    @Option(help: "Output format: text, json or junit.") var format: Format = .text
    @Flag(help: "Fail on warnings too.") var strict = false
    @Flag(help: "Check against an empty registry when the store does not exist (by default a missing store is an error, exit 2).") var allowEmptyStore = false
    @Argument(help: "Experiment documents (JSON).") var files: [String]

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one experiment file") }
    }

    struct Report {
        var file: String
        var key: String?
        var result: JSON?       // experiment.check result
        var ioError: String?
    }

    func run() throws {
        var documents: [(String, JSON?, String?)] = []
        for file in files {
            do { documents.append((file, try readJSONFile(file), nil)) } catch {
                documents.append((file, nil, "\(error)"))
            }
        }
        var storeOptions = options
        if allowEmptyStore, !FileManager.default.fileExists(atPath: options.storePath) { storeOptions.store = ":memory:" }
        let service = try storeOptions.makeService(readOnly: true)
        let dispatcher = Dispatcher()
        service.install(on: dispatcher)
        let context = RPCContext(principal: options.principal)
        var reports: [Report] = []
        for (i, (file, doc, ioError)) in documents.enumerated() {
            guard let doc else { reports.append(Report(file: file, ioError: ioError)); continue }
            let others = documents.enumerated().compactMap { j, d in j != i ? d.1 : nil }
                .filter { $0["key"] != nil && $0["protocol"] != nil && $0.objectValue != nil }
            let reply = dispatcher.handle(message: ["jsonrpc": "2.0", "id": 1, "method": "experiment.check",
                                                    "params": ["experiment": doc, "with": .array(others)]], context: context)
            if let result = reply?["result"] {
                reports.append(Report(file: file, key: doc["key"]?.stringValue, result: result))
            } else {
                reports.append(Report(file: file, ioError: reply?["error"]?["message"]?.stringValue ?? "check failed"))
            }
        }
        let violations = reports.reduce(0) { $0 + ($1.result?["violations"]?.arrayValue?.count ?? 0) }
        let errors = reports.reduce(0) { $0 + ($1.result?["errors"]?.intValue ?? 0) }
        let warnings = reports.reduce(0) { $0 + ($1.result?["warnings"]?.intValue ?? 0) }
        let ioErrors = reports.filter { $0.ioError != nil }.count
        switch format {
        case .text: print(text(reports, violations: violations, errors: errors, warnings: warnings), terminator: "")
        case .json:
            print(JSON.object([
                "files": .array(reports.map { r in
                    var o = r.result?.objectValue ?? [:]
                    o["file"] = .string(r.file)
                    o["key"] = JSON(r.key)
                    if let e = r.ioError { o["error"] = .string(e) }
                    return .object(o)
                }),
                "violations": JSON(violations), "errors": JSON(errors), "warnings": JSON(warnings),
            ]).serialized())
        case .junit: print(junit(reports), terminator: "")
        }
        if ioErrors > 0 { throw ExitCode(2) }
        if violations > 0 || errors > 0 || (strict && warnings > 0) { throw ExitCode(1) }
    }

    func text(_ reports: [Report], violations: Int, errors: Int, warnings: Int) -> String {
        var out = ""
        for r in reports {
            if let e = r.ioError { out += "\(r.file): ERROR \(e)\n"; continue }
            let res = r.result!
            let v = res["violations"]?.arrayValue ?? []
            let c = res["conflicts"]?.arrayValue ?? []
            out += "\(r.file): \(r.key ?? "?") — \(v.isEmpty ? "valid" : "\(v.count) violation\(v.count == 1 ? "" : "s")"), \(c.count) finding\(c.count == 1 ? "" : "s")\n"
            for x in v { out += "  violation \(x["path"]?.stringValue ?? ""): \(x["message"]?.stringValue ?? "") [\(x["rule"]?.stringValue ?? "")]\n" }
            for f in c {
                out += "  \(f["severity"]?.stringValue ?? "") \(f["kind"]?.stringValue ?? "")\(f["with"]?.stringValue.map { " with \($0)" } ?? ""): \(f["message"]?.stringValue ?? "")\n"
            }
        }
        out += "\(reports.count) file\(reports.count == 1 ? "" : "s"): \(violations) violation\(violations == 1 ? "" : "s"), \(errors) error\(errors == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")\n"
        return out
    }

    func junit(_ reports: [Report]) -> String {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var suites = ""
        var totalTests = 0, totalFailures = 0
        for r in reports {
            var cases: [(name: String, failure: String?)] = []
            if let e = r.ioError {
                cases.append(("read \(r.file)", e))
            } else {
                let res = r.result!
                for v in res["violations"]?.arrayValue ?? [] {
                    cases.append(("violation \(v["rule"]?.stringValue ?? "") at \(v["path"]?.stringValue ?? "")", v["message"]?.stringValue ?? ""))
                }
                for f in res["conflicts"]?.arrayValue ?? [] {
                    let name = "\(f["severity"]?.stringValue ?? "") \(f["kind"]?.stringValue ?? "")\(f["with"]?.stringValue.map { " with \($0)" } ?? "")"
                    let failing = f["severity"] == "error" || strict
                    cases.append((name, failing ? f["message"]?.stringValue ?? "" : nil))
                }
                if cases.isEmpty { cases.append(("valid and conflict-free", nil)) }
            }
            let failures = cases.filter { $0.failure != nil }.count
            totalTests += cases.count
            totalFailures += failures
            suites += "  <testsuite name=\"\(esc(r.file))\" tests=\"\(cases.count)\" failures=\"\(failures)\">\n"
            for c in cases {
                suites += "    <testcase classname=\"\(esc(r.key ?? r.file))\" name=\"\(esc(c.name))\""
                if let f = c.failure {
                    suites += ">\n      <failure message=\"\(esc(f))\">\(esc(f))</failure>\n    </testcase>\n"
                } else {
                    suites += "/>\n"
                }
            }
            suites += "  </testsuite>\n"
        }
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"referee check\" tests=\"\(totalTests)\" failures=\"\(totalFailures)\">\n\(suites)</testsuites>\n"
    }
}
