import ArgumentParser
import Foundation
import API
import Service
import RPC
import JSONCore

/// The one client inside the CLI: every command sends its requests through the dispatcher and authorization of
/// the control interface, in process on the store (opened once, read-only for commands that only read) or over
/// `--socket PATH` to a shared daemon; the envelope and the exit rule live here. Exit codes: 0 ok, 1 rejected by
/// the service, 2 usage or I/O error (1010 and 1011 included).
final class Client {
    let options: ClientOptions
    let json: Bool
    let limits: DocumentLimitOptions?
    /// Commands that act on an existing experiment cannot succeed on a store that does not exist: they never create one.
    let mustExist: Bool
    /// An in-process command that reads an absent store reads an empty one instead of failing (`check --allow-empty-store`).
    var allowEmptyStore = false
    /// In process: progress of long methods (ingestion) and how to ask them to stop.
    var progress: (@Sendable (Int, Int) -> Void)?
    var isCancelled: @Sendable () -> Bool = { false }
    var spillDirectory: String?
    private var inProcess: (RefereeService, Dispatcher)?
    private var connection: SocketClient?
    private var nextID = 0

    init(options: ClientOptions, json: Bool, limits: DocumentLimitOptions? = nil, existingStore: Bool = false) {
        self.options = options
        self.json = json
        self.limits = limits
        self.mustExist = existingStore
    }

    var overSocket: Bool { options.socket != nil }

    /// The reply envelope to one request, read as a client reads it: from its wire text.
    func request(_ method: String, _ params: JSON) throws -> JSON {
        nextID += 1
        let message: JSON = ["jsonrpc": "2.0", "id": JSON(nextID), "method": .string(method), "params": params]
        if let socket = options.socket { return try send(message, to: socket) }
        let (service, dispatcher) = try openInProcess(for: method)
        var context = RPCContext(principal: options.principal, transport: .inProcess)
        context.progress = progress
        context.isCancelled = isCancelled
        let wire = withExtendedLifetime(service) { dispatcher.handle(message: message, context: context) ?? .null }
        return (try? JSONParser.parse(wire.serialized())) ?? wire
    }

    /// The result of one request; an error is printed (JSON or for a person) and ends the command with its exit status.
    func result(_ method: String, _ params: JSON) throws -> JSON {
        let reply = try request(method, params)
        if let result = reply["result"] { return result }
        let error = reply["error"] ?? .null
        if json {
            print(error.serialized())
        } else {
            FileHandleStderr.write(describeError(error) + "\n")
            for p in error["data"]?["problems"]?.arrayValue ?? [] { FileHandleStderr.write("  \(p["message"]?.stringValue ?? "")\n") }
        }
        throw ExitCode(exitStatus(forErrorCode: error["code"]?.intValue ?? -32603))
    }

    /// Runs one method and prints its result (JSON, or `text` of it), warnings on stderr in text mode.
    func call(_ method: String, _ params: JSON, text: (JSON) -> String) throws {
        let result = try result(method, params)
        print(json ? result.serialized() : text(result))
        // Warnings always reach a person in text mode (JSON carries them in the result).
        if !json, let warnings = result["warnings"]?.arrayValue, !warnings.isEmpty {
            FileHandleStderr.write(warnings.map { w in
                "warning: \(w["kind"]?.stringValue ?? "finding")\(w["with"]?.stringValue.map { " with \($0)" } ?? ""): \(cliWording(w["message"]?.stringValue ?? ""))"
            }.joined(separator: "\n") + "\n")
        }
    }

    private func openInProcess(for method: String) throws -> (RefereeService, Dispatcher) {
        if let inProcess { return inProcess }
        var storeOptions = options.store
        let descriptor = Catalog.byName[method]
        let location = options.storePath
        let absent = !(location.hasPrefix("postgresql://") || location.hasPrefix("postgres://")) && !FileManager.default.fileExists(atPath: location)
        // Statistics and the self-description need no registry: without a store they run on an empty one.
        if absent, descriptor?.needsRegistry == false || allowEmptyStore { storeOptions.store = ":memory:" }
        let service = try storeOptions.makeService(readOnly: !mustExist && descriptor?.isReadOnly == true, mustExist: mustExist, limits: limits)
        service.spillDirectory = spillDirectory
        let dispatcher = Dispatcher()
        service.install(on: dispatcher)
        inProcess = (service, dispatcher)
        return (service, dispatcher)
    }

    /// Over the socket the server decides who we are (peer credentials); --actor is only "on behalf of".
    private func send(_ message: JSON, to path: String) throws -> JSON {
        do {
            if connection == nil {
                let c = try SocketClient(path: path)
                if let actor = options.actor {
                    _ = try c.request(["jsonrpc": "2.0", "id": 0, "method": "session.act_for", "params": ["actor": .string(actor)]])
                }
                connection = c
            }
            return try connection!.request(message)
        } catch {
            throw CLIError.io(error.description)
        }
    }
}
