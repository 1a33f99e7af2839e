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

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, junit, github }

    @OptionGroup var options: ClientOptions
    @OptionGroup var documentLimits: DocumentLimitOptions
    @Option(help: "Output format: text, json, junit (Jenkins xunit schema) or github (workflow commands that annotate the diff).") var format: Format = .text
    @Flag(help: "Fail on warnings too.") var strict = false
    @Flag(help: "Check against an empty registry when the store does not exist (by default a missing store is an error, exit 2).") var allowEmptyStore = false
    @Argument(help: "Experiment documents (JSON); they are proposals meant to run, checked against the registry and each other.") var files: [String]

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one experiment file") }
    }

    struct Report {
        var file: String
        var key: String?
        var result: JSON?       // experiment.check result
        var ioError: String?
        var text: String?       // the file's text, to find the line of a member
    }

    func run() throws {
        let started = Date()
        var documents: [(file: String, doc: JSON?, error: String?, text: String?)] = []
        for file in files {
            let text = try? String(contentsOfFile: file, encoding: .utf8)
            do { documents.append((file, try readJSONFile(file), nil, text)) } catch {
                documents.append((file, nil, "\(error)".replacingOccurrences(of: "referee: ", with: ""), text))
            }
        }
        let send = try checker()
        var reports: [Report] = []
        // A key in two files is an error naming both.
        var filesByKey: [String: [String]] = [:]
        for d in documents { if let k = d.doc?["key"]?.stringValue { filesByKey[k, default: []].append(d.file) } }
        for (i, d) in documents.enumerated() {
            guard let doc = d.doc else { reports.append(Report(file: d.file, ioError: d.error, text: d.text)); continue }
            let others = documents.enumerated().compactMap { j, o in j != i ? o.doc : nil }
                .filter { $0["key"]?.stringValue != nil && $0["protocol"]?.stringValue != nil && $0["key"] != doc["key"] }
            let reply = try send(["experiment": doc, "with": .array(others), "proposed": true])
            guard var result = reply["result"]?.objectValue else {
                // A refusal (forbidden, say) is a rejection; only I/O and usage problems are errors of the file.
                let code = reply["error"]?["code"]?.intValue ?? -32603
                let message = cliWording(reply["error"]?["message"]?.stringValue ?? "check failed")
                if exitStatus(forErrorCode: code) == 1 {
                    reports.append(Report(file: d.file, key: doc["key"]?.stringValue,
                                          result: ["valid": false, "violations": [["path": "", "rule": .string(reply["error"]?["data"]?["reason"]?.stringValue ?? "refused"), "message": .string(message)]],
                                                   "conflicts": [], "errors": 0, "warnings": 0], text: d.text))
                } else {
                    reports.append(Report(file: d.file, ioError: message, text: d.text))
                }
                continue
            }
            if let k = doc["key"]?.stringValue, let same = filesByKey[k], same.count > 1 {
                var violations = result["violations"]?.arrayValue ?? []
                violations.append(["path": "key", "rule": "duplicate_key",
                                   "message": .string("key \"\(k)\" is also used by \(same.filter { $0 != d.file }.joined(separator: ", ")); every experiment needs its own key")])
                result["violations"] = .array(violations)
                result["valid"] = false
            }
            reports.append(Report(file: d.file, key: doc["key"]?.stringValue, result: .object(result), text: d.text))
        }
        let violations = reports.reduce(0) { $0 + ($1.result?["violations"]?.arrayValue?.count ?? 0) }
        let errors = reports.reduce(0) { $0 + ($1.result?["errors"]?.intValue ?? 0) }
        let warnings = reports.reduce(0) { $0 + ($1.result?["warnings"]?.intValue ?? 0) }
        let ioErrors = reports.filter { $0.ioError != nil }.count
        let exit: Int32 = ioErrors > 0 ? 2 : (violations > 0 || errors > 0 || (strict && warnings > 0) ? 1 : 0)
        switch format {
        case .text: print(text(reports, violations: violations, errors: errors, warnings: warnings, ioErrors: ioErrors, exit: exit), terminator: "")
        case .json:
            print(JSON.object([
                "files": .array(reports.map { r in
                    var o = r.result?.objectValue ?? [:]
                    o["file"] = .string(r.file)
                    o["key"] = JSON(r.key)
                    if let e = r.ioError { o["error"] = .string(e) }
                    return .object(o)
                }),
                "violations": JSON(violations), "errors": JSON(errors), "warnings": JSON(warnings), "io_errors": JSON(ioErrors), "exit": JSON(Int(exit)),
            ]).serialized())
        case .junit: print(junit(reports, elapsed: Date().timeIntervalSince(started), at: started), terminator: "")
        case .github: print(github(reports, violations: violations, errors: errors, warnings: warnings, ioErrors: ioErrors, exit: exit), terminator: "")
        }
        if exit != 0 { throw ExitCode(exit) }
    }

    /// Sends one `experiment.check` through the CLI's client: in process on the store (opened read-only: never
    /// created unless --allow-empty-store), or to a shared socket.
    func checker() throws -> (JSON) throws -> JSON {
        let client = Client(options: options, json: false, limits: documentLimits)
        client.allowEmptyStore = allowEmptyStore
        return { params in try client.request("experiment.check", params) }
    }

    static func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }

    func text(_ reports: [Report], violations: Int, errors: Int, warnings: Int, ioErrors: Int, exit: Int32) -> String {
        var out = ""
        for r in reports {
            if let e = r.ioError { out += "\(r.file): ERROR \(e)\n"; continue }
            let res = r.result!
            let v = res["violations"]?.arrayValue ?? []
            let c = res["conflicts"]?.arrayValue ?? []
            let registered = res["registered"]?["state"]?.stringValue.map { ", registered (\($0)): checked as an \(res["checked_as"]?.stringValue ?? "update")" } ?? ""
            out += "\(r.file): \(r.key ?? "?") — \(v.isEmpty ? "valid" : Self.plural(v.count, "violation")), \(Self.plural(c.count, "finding"))\(registered)\n"
            for x in v { out += "  violation \(x["path"]?.stringValue ?? ""): \(x["message"]?.stringValue ?? "") [\(x["rule"]?.stringValue ?? "")]\n" }
            for f in c {
                out += "  \(f["severity"]?.stringValue ?? "") \(f["kind"]?.stringValue ?? "")\(f["with"]?.stringValue.map { " with \($0)" } ?? ""): \(f["message"]?.stringValue ?? "")\n"
            }
        }
        out += "\(Self.plural(reports.count, "file")): \(Self.plural(violations, "violation")), \(Self.plural(errors, "error")), \(Self.plural(warnings, "warning")), \(Self.plural(ioErrors, "unreadable file")); exit \(exit)\n"
        return out
    }

    /// The 1-based line of a member's key in a JSON file (`design.alpha` → the line of `"alpha"` after `"design"`).
    static func line(of path: String, in text: String?) -> Int? {
        guard let text else { return nil }
        let names = path.split(separator: ".").map { String($0.prefix(while: { $0 != "[" })) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { return nil }
        var from = text.startIndex
        var found: String.Index?
        for name in names {
            guard let r = text.range(of: "\"\(name)\"", range: from..<text.endIndex) else { break }
            found = r.lowerBound
            from = r.upperBound
        }
        guard let at = found else { return nil }
        return text[..<at].reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
    }

    /// GitHub Actions workflow commands: one annotation per finding, on the line of the member concerned.
    func github(_ reports: [Report], violations: Int, errors: Int, warnings: Int, ioErrors: Int, exit: Int32) -> String {
        func escapeData(_ s: String) -> String { s.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\r", with: "%0D").replacingOccurrences(of: "\n", with: "%0A") }
        func escapeProperty(_ s: String) -> String { escapeData(s).replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C") }
        var out = ""
        for r in reports {
            if let e = r.ioError { out += "::error file=\(escapeProperty(r.file)),title=\(escapeProperty("cannot check"))::\(escapeData(e))\n"; continue }
            let res = r.result!
            for v in res["violations"]?.arrayValue ?? [] {
                let path = v["path"]?.stringValue ?? ""
                let line = Self.line(of: path, in: r.text).map { ",line=\($0)" } ?? ""
                out += "::error file=\(escapeProperty(r.file))\(line),title=\(escapeProperty("\(v["rule"]?.stringValue ?? "violation") at \(path)"))::\(escapeData(v["message"]?.stringValue ?? ""))\n"
            }
            for f in res["conflicts"]?.arrayValue ?? [] {
                let level = f["severity"] == "error" || strict ? "error" : "warning"
                let line = Self.line(of: f["kind"] == "parameter" ? "parameters" : "layer", in: r.text).map { ",line=\($0)" } ?? ""
                let title = "\(f["kind"]?.stringValue ?? "conflict")\(f["with"]?.stringValue.map { " with \($0)" } ?? "")"
                out += "::\(level) file=\(escapeProperty(r.file))\(line),title=\(escapeProperty(title))::\(escapeData(f["message"]?.stringValue ?? ""))\n"
            }
        }
        out += "\(Self.plural(reports.count, "file")): \(Self.plural(violations, "violation")), \(Self.plural(errors, "error")), \(Self.plural(warnings, "warning")), \(Self.plural(ioErrors, "unreadable file")); exit \(exit)\n"
        return out
    }

    /// JUnit XML that validates against the Jenkins xunit schema (junit-10.xsd): one testsuite per file (its path
    /// in `file`, with `time` and `timestamp`), one testcase per rule and finding named after the rule and the member
    /// it concerns; warnings pass with their text in `system-out`; unreadable files are `error`s.
    func junit(_ reports: [Report], elapsed: Double, at: Date) -> String {
        // XML 1.0 has no way to write most control characters: they become U+FFFD; line breaks and tabs in
        // attributes are written as references so parsers keep them.
        func esc(_ s: String) -> String {
            var out = ""
            for scalar in s.unicodeScalars {
                switch scalar.value {
                case 0x26: out += "&amp;"
                case 0x3C: out += "&lt;"
                case 0x3E: out += "&gt;"
                case 0x22: out += "&quot;"
                case 0x0A: out += "&#10;"
                case 0x09: out += "&#9;"
                case 0x0D: out += "&#13;"
                case 0x00...0x1F, 0xFFFE, 0xFFFF: out += "\u{FFFD}"
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out
        }
        let stamp = ISO8601DateFormatter().string(from: at)
        let time = String(format: "%.3f", elapsed)
        var suites = ""
        var totals = (tests: 0, failures: 0, errors: 0)
        enum Outcome { case pass(String?), failure(String), error(String) }
        for r in reports {
            var cases: [(name: String, outcome: Outcome)] = []
            if let e = r.ioError {
                cases.append(("read \(r.file)", .error(e)))
            } else {
                let res = r.result!
                for v in res["violations"]?.arrayValue ?? [] {
                    cases.append(("\(v["rule"]?.stringValue ?? "violation") \(v["path"]?.stringValue ?? "")", .failure(v["message"]?.stringValue ?? "")))
                }
                for f in res["conflicts"]?.arrayValue ?? [] {
                    let name = "\(f["kind"]?.stringValue ?? "conflict")\(f["with"]?.stringValue.map { " with \($0)" } ?? "")"
                    let message = f["message"]?.stringValue ?? ""
                    cases.append((name, f["severity"] == "error" || strict ? .failure(message) : .pass("warning: " + message)))
                }
                if cases.isEmpty { cases.append(("protocol and conflicts", .pass("valid and conflict-free"))) }
            }
            let failures = cases.filter { if case .failure = $0.outcome { true } else { false } }.count
            let errors = cases.filter { if case .error = $0.outcome { true } else { false } }.count
            totals.tests += cases.count; totals.failures += failures; totals.errors += errors
            suites += "  <testsuite name=\"\(esc(r.key ?? r.file))\" file=\"\(esc(r.file))\" tests=\"\(cases.count)\" failures=\"\(failures)\" errors=\"\(errors)\" skipped=\"0\" time=\"\(time)\" timestamp=\"\(stamp)\">\n"
            for c in cases {
                suites += "    <testcase classname=\"\(esc(r.file))\" name=\"\(esc(c.name))\" time=\"0\""
                switch c.outcome {
                case .pass(let text?): suites += ">\n      <system-out>\(esc(text))</system-out>\n    </testcase>\n"
                case .pass(nil): suites += "/>\n"
                case .failure(let m): suites += ">\n      <failure type=\"finding\" message=\"\(esc(m))\">\(esc(m))</failure>\n    </testcase>\n"
                case .error(let m): suites += ">\n      <error type=\"io\" message=\"\(esc(m))\">\(esc(m))</error>\n    </testcase>\n"
                }
            }
            suites += "  </testsuite>\n"
        }
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"referee check\" tests=\"\(totals.tests)\" failures=\"\(totals.failures)\" errors=\"\(totals.errors)\" time=\"\(time)\">\n\(suites)</testsuites>\n"
    }
}
