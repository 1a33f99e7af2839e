import ArgumentParser
import Foundation
import API
import Service
import RPC
import JSONCore

/// An error for a person: violations one per line (the path once), the message in the CLI's words.
func describeError(_ error: JSON) -> String {
    let violations = error["data"]?["violations"]?.arrayValue ?? []
    guard !violations.isEmpty else { return "referee: " + cliWording(error["message"]?.stringValue ?? "error") }
    var lines = ["referee: \(violations.count) protocol violation\(violations.count == 1 ? "" : "s"):"]
    for v in violations {
        let path = v["path"]?.stringValue ?? "", message = v["message"]?.stringValue ?? ""
        lines.append("  " + (message.hasPrefix(path) ? message : "\(path): \(message)") + " [\(v["rule"]?.stringValue ?? "")]")
    }
    return lines.joined(separator: "\n")
}

/// The control interface's messages name its methods and parameters; the CLI's name its commands and flags.
func cliWording(_ message: String) -> String {
    var text = message
    for (wire, cli) in [("pass allow_partial", "pass --allow-partial"), ("use experiment.update", "use `referee update`"),
                        ("(experiment.amend)", "(`referee amend`)"), ("experiment.list pages with limit and after", "`referee list --limit --after`"),
                        ("strict_dates", "--strict-dates"), ("(access.grant)", "(`referee call access.grant`)")] {
        text = text.replacingOccurrences(of: wire, with: cli)
    }
    return text
}

/// The CLI's one exit rule for an error code: usage, params and I/O (1010, 1011) exit 2; refusals exit 1.
func exitStatus(forErrorCode code: Int) -> Int32 {
    code >= 1000 && code != 1010 && code != 1011 ? 1 : 2
}

/// "1 day", "2 days".
func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }

/// Reads a JSON document from a file, or from standard input for `-`.
func readJSONFile(_ path: String) throws -> JSON {
    let data: Data
    if path == "-" {
        data = FileHandle.standardInput.readDataToEndOfFile()
        do { return try JSONParser.parse([UInt8](data)) } catch { throw CLIError.io("standard input is not valid JSON: \(error)") }
    }
    do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
        throw CLIError.io("cannot read \(path): \(error.localizedDescription)")
    }
    do { return try JSONParser.parse([UInt8](data)) } catch {
        throw CLIError.io("\(path) is not valid JSON: \(error)")
    }
}

/// One line per experiment record, for people.
func describeRecord(_ r: JSON) -> String {
    let key = r["key"]?.stringValue ?? "?"
    let state = r["state"]?.stringValue ?? "?"
    let version = r["version"]?.intValue.map(String.init) ?? "?"
    let proto = r["protocol"]?.stringValue ?? "?"
    let hash = String((r["protocol_hash"]?.stringValue ?? "").prefix(12))
    var line = "\(key)  \(state)  v\(version)  protocol \(proto) (\(hash))  owner \(r["owner"]?.stringValue ?? "?")"
    if let plan = r["plan"], let perArm = plan["per_arm"]?.intValue, let days = plan["days_needed"]?.intValue {
        line += "  plan: \(plural(perArm, "unit")) per arm, \(plural(days, "day"))"
    }
    return line
}

struct RegisterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "register", abstract: "Register the experiment in FILE as a draft.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var documentLimits: DocumentLimitOptions
    @Flag(help: "Print JSON instead of text.") var json = false
    @Argument(help: "Experiment document (JSON); - reads standard input.") var file: String

    func run() throws {
        let doc = try readJSONFile(file)
        try Client(options: options, json: json, limits: documentLimits).call("experiment.register", ["experiment": doc], text: describeRecord)
    }
}

struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one experiment.")
    @OptionGroup var options: ClientOptions
    @Flag(help: "Print JSON instead of text.") var json = false
    @Argument(help: "The experiment's key.") var key: String

    func run() throws {
        try Client(options: options, json: json).call("experiment.get", ["key": .string(key)]) { r in
            describeRecord(r) + "\n" + (r["document"] ?? .null).pretty()
        }
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List experiments.")
    @OptionGroup var options: ClientOptions
    @Flag(help: "Print JSON instead of text.") var json = false
    @Option(help: "Only this state.") var state: String?
    @Option(help: "Only this owner.") var owner: String?
    @Option(help: "Only this layer.") var layer: String?
    @Option(help: "At most this many experiments (1 to 1000, default 100).") var limit: Int?
    @Option(help: "Start after this key (the next_after of the previous page).") var after: String?

    func run() throws {
        var params: [String: JSON] = [:]
        if let limit { params["limit"] = JSON(limit) }
        if let after { params["after"] = .string(after) }
        if let state { params["state"] = .string(state) }
        if let owner { params["owner"] = .string(owner) }
        if let layer { params["layer"] = .string(layer) }
        try Client(options: options, json: json).call("experiment.list", .object(params)) { r in
            let rows = (r["experiments"]?.arrayValue ?? []).map(describeRecord)
            let more = r["next_after"]?.stringValue.map { "\n(more: referee list --after \($0))" } ?? ""
            return (rows.isEmpty ? "no experiments" : rows.joined(separator: "\n")) + more
        }
    }
}

struct TransitionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "transition", abstract: "Move an experiment to another state (uses its current version).")
    @OptionGroup var options: ClientOptions
    @Flag(help: "Print JSON instead of text.") var json = false
    @Argument(help: "The experiment's key.") var key: String
    @Argument(help: "review, approved, running, stopped, concluded, archived or aborted.") var state: String
    @Option(help: "Why (recorded in the audit log).") var reason: String?
    @Option(help: "Required for concluded: ship, rollback, iterate or inconclusive.") var decision: String?
    @Option(name: .customLong("expected-version"), help: "Refuse unless the experiment is at this version (default: the current one).") var expectedVersion: Int?

    func run() throws {
        let shot = Client(options: options, json: json, existingStore: true)
        try shot.call("experiment.transition", .object(try params(shot)), text: describeRecord)
    }

    func params(_ shot: Client) throws -> [String: JSON] {
        var version = expectedVersion
        if version == nil { version = try shot.request("experiment.get", ["key": .string(key)])["result"]?["version"]?.intValue }
        var params: [String: JSON] = ["key": .string(key), "to": .string(state), "version": JSON(version ?? 0)]
        if let reason { params["reason"] = .string(reason) }
        if let decision { params["decision"] = .string(decision) }
        return params
    }
}

/// `referee update KEY --changes JSON|@FILE`: a merge patch on a draft or an experiment in review.
struct UpdateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "update", abstract: "Change a draft or an experiment in review with a JSON Merge Patch.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var documentLimits: DocumentLimitOptions
    @Flag(help: "Print JSON instead of text.") var json = false
    @Argument(help: "The experiment's key.") var key: String
    @Option(help: "The merge patch: JSON, @FILE, or - for standard input.") var changes: String
    @Option(name: .customLong("expected-version"), help: "Refuse unless the experiment is at this version (default: the current one).") var expectedVersion: Int?
    @Option(help: "Why (recorded in the audit log).") var reason: String?

    func run() throws {
        try EditCommands.run("experiment.update", key: key, changes: changes, version: expectedVersion, reason: reason, options: options, json: json, limits: documentLimits)
    }
}

/// `referee amend KEY --changes JSON|@FILE --reason TEXT`: changes to an approved or running experiment.
struct AmendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "amend", abstract: "Amend an approved or running experiment; fields the protocol locks are refused.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var documentLimits: DocumentLimitOptions
    @Flag(help: "Print JSON instead of text.") var json = false
    @Argument(help: "The experiment's key.") var key: String
    @Option(help: "The merge patch: JSON, @FILE, or - for standard input.") var changes: String
    @Option(help: "Why (required; recorded in the audit log).") var reason: String
    @Option(name: .customLong("expected-version"), help: "Refuse unless the experiment is at this version (default: the current one).") var expectedVersion: Int?

    func run() throws {
        try EditCommands.run("experiment.amend", key: key, changes: changes, version: expectedVersion, reason: reason, options: options, json: json, limits: documentLimits)
    }
}

enum EditCommands {
    static func run(_ method: String, key: String, changes: String, version: Int?, reason: String?, options: ClientOptions, json: Bool,
                    limits: DocumentLimitOptions) throws {
        let patch: JSON
        if changes == "-" || changes.hasPrefix("@") {
            patch = try readJSONFile(changes == "-" ? "-" : String(changes.dropFirst()))
        } else {
            do { patch = try JSONParser.parse(changes) } catch { throw ValidationError("--changes is not valid JSON: \(error)") }
        }
        let shot = Client(options: options, json: json, limits: limits, existingStore: true)
        var expected = version
        if expected == nil { expected = try shot.request("experiment.get", ["key": .string(key)])["result"]?["version"]?.intValue }
        var params: [String: JSON] = ["key": .string(key), "version": JSON(expected ?? 0), "changes": patch]
        if let reason { params["reason"] = .string(reason) }
        try shot.call(method, .object(params), text: describeRecord)
    }
}

/// `referee audit [KEY] [--limit N]`: the audit log, newest last.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Show the audit log (of one experiment with KEY).")
    @OptionGroup var options: ClientOptions
    @Flag(help: "Print JSON instead of text.") var json = false
    @Argument(help: "Only this experiment's entries.") var key: String?
    @Option(help: "At most this many entries.") var limit: Int?

    func run() throws {
        var params: [String: JSON] = [:]
        if let key { params["key"] = .string(key) }
        if let limit { params["limit"] = JSON(limit) }
        try Client(options: options, json: json).call("audit.log", .object(params)) { r in
            let entries = r["entries"]?.arrayValue ?? []
            guard !entries.isEmpty else { return "no audit entries" }
            return entries.map { e in
                let who = (e["principal"]?.stringValue ?? "?") + (e["on_behalf_of"]?.stringValue.map { " for \($0)" } ?? "")
                return "\(e["seq"]?.intValue ?? 0)  \(e["at"]?.stringValue ?? "")  \(who)  \(e["method"]?.stringValue ?? "")\(e["key"]?.stringValue.map { " \($0)" } ?? "")"
                    + (e["reason"]?.stringValue.map { "  (\($0))" } ?? "")
            }.joined(separator: "\n")
        }
    }
}

/// `referee scan [--at T]`: every pair of live experiments that can collide.
struct ScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scan", abstract: "Scan the registry for experiments that can collide.")
    @OptionGroup var options: ClientOptions
    @Flag(help: "Print JSON instead of text.") var json = false
    @Option(help: "Only findings at this instant (RFC 3339 or a date).") var at: String?

    func run() throws {
        var params: [String: JSON] = [:]
        if let at { params["at"] = .string(at) }
        try Client(options: options, json: json).call("conflicts.scan", .object(params)) { r in
            let findings = r["findings"]?.arrayValue ?? []
            let lines = findings.map { f in
                "\(f["severity"]?.stringValue ?? "") \(f["kind"]?.stringValue ?? "") \((f["experiments"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: " × ")): \(f["message"]?.stringValue ?? "")"
            }
            return (lines + ["\(plural(findings.count, "finding")): \(plural(r["errors"]?.intValue ?? 0, "error")), \(plural(r["warnings"]?.intValue ?? 0, "warning"))"]).joined(separator: "\n")
        }
    }
}

struct CallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "call", abstract: "Call any method with JSON params; prints the JSON result.")
    @OptionGroup var options: ClientOptions
    @Flag(help: "Compact JSON on one line.") var json = false
    @Argument(help: "Method name, e.g. experiment.list.") var method: String
    @Argument(help: "Params as a JSON object.") var params: String = "{}"

    func run() throws {
        let value: JSON
        do { value = try JSONParser.parse(params) } catch { throw ValidationError("params are not valid JSON: \(error)") }
        try Client(options: options, json: json).call(method, value) { $0.pretty() }
    }
}

/// `referee eval FILE|KEY --attributes JSON`: whether a unit is in an experiment's audience, and why.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate an experiment's targeting (a file, - for standard input, or a registered key) for one unit's attributes, clause by clause.")
    @OptionGroup var options: ClientOptions
    @Flag(help: "Print JSON instead of text.") var json = false
    @Option(help: "The unit's attributes as a JSON object, e.g. '{\"country\": \"US\", \"tags\": [\"beta\"]}'.") var attributes: String = "{}"
    @Flag(help: "Exit 1 when the attributes do not satisfy the targeting (0 when they do).") var exitStatus = false
    @Argument(help: "An experiment file or a bare condition (JSON), - for standard input, or the key of a registered experiment.") var source: String

    func run() throws {
        let attrs: JSON
        do { attrs = try JSONParser.parse(attributes) } catch { throw ValidationError("--attributes is not valid JSON: \(error)") }
        var params: [String: JSON] = ["attributes": attrs]
        let client = Client(options: options, json: json)
        if source == "-" || FileManager.default.fileExists(atPath: source) {
            let document = try readJSONFile(source)
            // An experiment document holds its condition under "targeting"; anything else is the condition itself.
            params["targeting"] = document["key"] != nil && document["protocol"] != nil ? (document["targeting"] ?? .object([:])) : document
            client.allowEmptyStore = true
        } else {
            params["key"] = .string(source)
        }
        let result = try client.result("targeting.eval", .object(params))
        let matches = result["matches"]?.boolValue == true
        if json {
            print(result.serialized())
        } else {
            print(matches ? "MATCHES: the unit is in the audience" : "DOES NOT MATCH: the unit is not in the audience")
            for entry in result["trace"]?.arrayValue ?? [] {
                var line = (entry["holds"]?.boolValue == true ? "  ✓ " : "  ✗ ") + (entry["clause"]?.stringValue ?? "?")
                if let attribute = entry["attribute"]?.stringValue {
                    let value = entry["value"] ?? .null
                    line += "   \(attribute) = " + (value.isNull ? "missing" : value.serialized())
                }
                if let note = entry["note"]?.stringValue { line += "   (\(note))" }
                print(line)
            }
        }
        if exitStatus && !matches { throw ExitCode(1) }
    }
}

/// `referee store copy --from A --to B`: moving a registry between SQLite and PostgreSQL.
struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "store", abstract: "Operations on a whole registry.",
                                                    subcommands: [StoreCopyCommand.self])
}

struct StoreCopyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy a whole registry (records, audit chain, grants, results, groups, holdouts) into a new, empty store.",
        discussion: "Either side is a SQLite file or a postgresql:// URL. The target must be empty; its audit chain is verified after the copy. Exit 0 copied and verified, 1 refused (target not empty) or not verified, 2 I/O error.")

    @Option(help: "The registry to copy: a SQLite file or postgresql://USER@HOST:PORT/DB (opened read-only).")
    var from: String

    @Option(help: "The new registry: a SQLite file or postgresql://USER@HOST:PORT/DB, empty.")
    var to: String

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        let report: JSON
        do { report = try RefereeService.copyStore(from: from, to: to) } catch {
            FileHandleStderr.write("referee store copy: \(error.description)\n")
            throw ExitCode(error.description.contains("is not empty") ? 1 : 2)
        }
        let ok = report["audit"]?["ok"] == true
        if json { print(report.serialized()) } else {
            let tables = report["tables"]?.objectValue?.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.serialized())" }.joined(separator: ", ") ?? ""
            print("copied \(report["from"]?.stringValue ?? from) → \(report["to"]?.stringValue ?? to): \(tables); audit.verify \(ok ? "ok" : "FAILED")")
        }
        if !ok { throw ExitCode(1) }
    }
}
