public import Foundation
public import Testing
public import Service
public import RPC
public import JSONCore
public import Registry
import Store

/// Protocols as shipped under `Protocols/`.
public let shippedProtocols: ProtocolSet = {
    try! ProtocolLoader.load(directory: repositoryRoot.appendingPathComponent("Protocols").path)
}()

public let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
    }
    fatalError("Package.swift not found above \(#filePath)")
}()

/// The example experiment of the issue, as a JSON value, with optional merge-patch changes.
public func exampleExperiment(_ changes: JSON = [:]) -> JSON {
    let text = try! String(contentsOf: repositoryRoot.appendingPathComponent("Protocols/examples/checkout-green-button.json"), encoding: .utf8)
    return try! JSONParser.parse(text).merging(patch: changes)
}

/// A fixed clock so timestamps are predictable.
public let fixedNow: @Sendable () -> Timestamp = { Timestamp(rfc3339: "2026-11-20T10:00:00Z")! }

/// An in-process client on a fresh store: the same dispatcher and handlers as the daemon.
public final class TestClient {
    public let service: RefereeService
    public let dispatcher = Dispatcher()
    public var principal: String
    private var nextID = 0

    public init(principal: String = "pm.alice", storePath: String = ":memory:", protocols: ProtocolSet = shippedProtocols) throws {
        // A private in-memory store becomes a fresh PostgreSQL database when the suite runs on PostgreSQL.
        let location = storePath == ":memory:" ? try TestStores.fresh() : try TestStores.endToEnd(storePath)
        service = RefereeService(store: try Store(path: location), protocols: protocols, now: fixedNow)
        service.install(on: dispatcher)
        self.principal = principal
    }

    /// Calls a method; returns the result, or the error object as `.failure`.
    public func call(_ method: String, _ params: JSON = [:], as who: String? = nil, onBehalfOf: String? = nil) -> Result<JSON, WireError> {
        nextID += 1
        let raw = dispatcher.handle(message: ["jsonrpc": "2.0", "id": JSON(nextID), "method": .string(method), "params": params],
                                    context: RPCContext(principal: who ?? principal, onBehalfOf: onBehalfOf))!
        // Read the reply as a client would: from its wire text (stored documents pass through as raw JSON).
        let reply = try! JSONParser.parse(raw.serialized())
        if let result = reply["result"] { return .success(result) }
        return .failure(WireError(json: reply["error"]!))
    }

    @discardableResult
    public func ok(_ method: String, _ params: JSON = [:], as who: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
        switch call(method, params, as: who) {
        case .success(let r): return r
        case .failure(let e):
            Issue.record("\(method) failed: \(e.json.serialized())", sourceLocation: sourceLocation)
            throw e
        }
    }

    public func error(_ method: String, _ params: JSON = [:], as who: String? = nil, onBehalfOf: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> WireError? {
        switch call(method, params, as: who, onBehalfOf: onBehalfOf) {
        case .success(let r):
            Issue.record("\(method) unexpectedly succeeded: \(r.serialized().prefix(300))", sourceLocation: sourceLocation)
            return nil
        case .failure(let e): return e
        }
    }

    /// Registers the example (with changes) and returns the record.
    @discardableResult
    public func register(_ changes: JSON = [:], as who: String? = nil) throws -> JSON {
        try ok("experiment.register", ["experiment": exampleExperiment(changes)], as: who)
    }

    /// Moves an experiment through states, each by a principal allowed to.
    public func advance(_ key: String, to states: [String], as who: String = "approver.bob", decision: String? = nil) throws {
        for state in states {
            let version = try ok("experiment.get", ["key": .string(key)])["version"]!
            var params: [String: JSON] = ["key": .string(key), "version": version, "to": .string(state)]
            if state == "concluded" { params["decision"] = .string(decision ?? "ship") }
            try ok("experiment.transition", .object(params), as: who)
        }
    }
}

public struct WireError: Error {
    public init(json: JSON) { self.json = json }
    public let json: JSON
    public var code: Int { json["code"]!.intValue! }
    public var reason: String? { json["data"]?["reason"]?.stringValue }
    public var message: String { json["message"]!.stringValue! }
    public var violations: [JSON] { json["data"]?["violations"]?.arrayValue ?? [] }
    public var rules: [String] { violations.compactMap { $0["rule"]?.stringValue } }
    public var paths: [String] { violations.compactMap { $0["path"]?.stringValue } }
}

/// A temporary directory removed when the value is released.
public final class TemporaryDirectory {
    public let url: URL
    public init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("referee-test-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Moves the example experiment to running through the CLI, each step by a principal allowed to take it
/// (results are recorded only for experiments that have run; the registrant never approves).
public func makeRunning(_ store: [String], key: String = "checkout-green-button") throws {
    for (state, actor) in [("review", "pm.alice"), ("approved", "approver.bob"), ("running", "pm.alice")] {
        let r = try runReferee(["transition", key, state, "--actor", actor] + store)
        #expect(r.status == 0, "transition to \(state): \(r.stderr)")
    }
}

/// `referee call METHOD PARAMS --json --socket PATH`, optionally under a `prefix` such as setpriv (another user).
public func socketCall(_ socket: String, _ method: String, _ params: String = "{}", extra: [String] = [], prefix: [String] = []) throws -> (status: Int32, json: JSON?) {
    let r: (status: Int32, stdout: String, stderr: String)
    if prefix.isEmpty {
        r = try runReferee(["call", method, params, "--json", "--socket", socket] + extra)
    } else {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: prefix[0])
        p.arguments = Array(prefix.dropFirst()) + [refereeBinary, "call", method, params, "--json", "--socket", socket] + extra
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        r = (p.terminationStatus, String(decoding: data, as: UTF8.self), "")
    }
    return (r.status, try? JSONParser.parse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
}
