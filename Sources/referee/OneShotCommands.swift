import ArgumentParser
import Foundation
import Service
import RPC
import JSONCore

/// Runs one method in-process on the store and prints the outcome.
/// Exit codes: 0 ok, 1 rejected by the service, 2 usage or I/O error.
struct OneShot {
    var options: StoreOptions
    var json: Bool

    func call(_ method: String, _ params: JSON, text: (JSON) -> String) throws {
        let service = try options.makeService(readOnly: RefereeService.isReadOnly(method))
        let dispatcher = Dispatcher()
        service.install(on: dispatcher)
        let request: JSON = ["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": params]
        let wire = dispatcher.handle(message: request, context: RPCContext(principal: options.principal)) ?? .null
        // Read the reply as a client would, from its wire text (stored documents pass through as raw JSON).
        let reply = (try? JSONParser.parse(wire.serialized())) ?? wire
        if let result = reply["result"] {
            print(json ? result.serialized() : text(result))
            return
        }
        let error = reply["error"] ?? .null
        if json {
            print(error.serialized())
        } else {
            var lines = ["referee: \(error["message"]?.stringValue ?? "error")"]
            for v in error["data"]?["violations"]?.arrayValue ?? [] {
                lines.append("  \(v["path"]?.stringValue ?? ""): \(v["message"]?.stringValue ?? "") [\(v["rule"]?.stringValue ?? "")]")
            }
            FileHandleStderr.write(lines.joined(separator: "\n") + "\n")
        }
        let code = error["code"]?.intValue ?? -32603
        // Envelope and params problems are usage errors; application refusals are rejections.
        throw ExitCode(code >= 1000 ? 1 : 2)
    }
}

func readJSONFile(_ path: String) throws -> JSON {
    let data: Data
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
        line += "  plan: \(perArm) units per arm, \(days) days"
    }
    return line
}

struct RegisterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "register", abstract: "Register the experiment in FILE as a draft.")
    @OptionGroup var options: StoreOptions
    @Flag(help: "Print JSON instead of text.") var json = false
    @Argument(help: "Experiment document (JSON).") var file: String

    func run() throws {
        let doc = try readJSONFile(file)
        try OneShot(options: options, json: json).call("experiment.register", ["experiment": doc], text: describeRecord)
    }
}

struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one experiment.")
    @OptionGroup var options: StoreOptions
    @Flag(help: "Print JSON instead of text.") var json = false
    @Argument var key: String

    func run() throws {
        try OneShot(options: options, json: json).call("experiment.get", ["key": .string(key)]) { r in
            describeRecord(r) + "\n" + (r["document"] ?? .null).pretty()
        }
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List experiments.")
    @OptionGroup var options: StoreOptions
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
        try OneShot(options: options, json: json).call("experiment.list", .object(params)) { r in
            let rows = (r["experiments"]?.arrayValue ?? []).map(describeRecord)
            let more = r["next_after"]?.stringValue.map { "\n(more: referee list --after \($0))" } ?? ""
            return (rows.isEmpty ? "no experiments" : rows.joined(separator: "\n")) + more
        }
    }
}

struct TransitionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "transition", abstract: "Move an experiment to another state (uses its current version).")
    @OptionGroup var options: StoreOptions
    @Flag(help: "Print JSON instead of text.") var json = false
    @Argument var key: String
    @Argument(help: "review, approved, running, stopped, concluded, archived or aborted.") var state: String
    @Option(help: "Why (recorded in the audit log).") var reason: String?
    @Option(help: "Required for concluded: ship, rollback, iterate or inconclusive.") var decision: String?
    @Option(help: "Expected version (default: the current one).") var version: Int?

    func run() throws {
        let shot = OneShot(options: options, json: json)
        var expected = version
        if expected == nil {
            let service = try options.makeService()
            let dispatcher = Dispatcher()
            service.install(on: dispatcher)
            let reply = dispatcher.handle(message: ["jsonrpc": "2.0", "id": 1, "method": "experiment.get", "params": ["key": .string(key)]],
                                          context: RPCContext(principal: options.principal))
            // The record arrives as wire text: read it as a client would.
            expected = reply.flatMap { try? JSONParser.parse($0.serialized()) }?["result"]?["version"]?.intValue
        }
        var params: [String: JSON] = ["key": .string(key), "to": .string(state), "version": JSON(expected ?? 0)]
        if let reason { params["reason"] = .string(reason) }
        if let decision { params["decision"] = .string(decision) }
        try shot.call("experiment.transition", .object(params), text: describeRecord)
    }
}

struct CallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "call", abstract: "Call any method with JSON params; prints the JSON result.")
    @OptionGroup var options: StoreOptions
    @Flag(help: "Compact JSON on one line.") var json = false
    @Option(help: "Call a shared `referee serve --socket PATH` instead of opening the store in-process.") var socket: String?
    @Argument(help: "Method name, e.g. experiment.list.") var method: String
    @Argument(help: "Params as a JSON object (default {}).") var params: String = "{}"

    func run() throws {
        let value: JSON
        do { value = try JSONParser.parse(params) } catch { throw ValidationError("params are not valid JSON: \(error)") }
        if let socket {
            try callOverSocket(socket, value)
            return
        }
        try OneShot(options: options, json: json).call(method, value) { $0.pretty() }
    }

    /// Over the socket the server decides who we are (peer credentials); --actor is only "on behalf of".
    func callOverSocket(_ path: String, _ params: JSON) throws {
        let reply: JSON
        do {
            let connection = try SocketClient(path: path)
            if let actor = options.actor {
                _ = try connection.request(["jsonrpc": "2.0", "id": 0, "method": "session.act_for", "params": ["actor": .string(actor)]])
            }
            reply = try connection.request(["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": params])
        } catch {
            throw CLIError.io(error.description)
        }
        if let result = reply["result"] {
            print(json ? result.serialized() : result.pretty())
            return
        }
        let error = reply["error"] ?? .null
        if json { print(error.serialized()) } else { FileHandleStderr.write("referee: \(error["message"]?.stringValue ?? "error")\n") }
        throw ExitCode((error["code"]?.intValue ?? -32603) >= 1000 ? 1 : 2)
    }
}
