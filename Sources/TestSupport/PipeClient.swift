public import Foundation
import Testing
import Synchronization
public import JSONCore

/// The real `referee` binary, as built next to the test bundle.
public let refereeBinary: String = {
    if let explicit = ProcessInfo.processInfo.environment["REFEREE_BIN"] { return explicit }
    var candidates: [URL] = []
    let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var dir = testBinary.deletingLastPathComponent()
    for _ in 0..<4 {
        candidates.append(dir.appendingPathComponent("referee"))
        dir.deleteLastPathComponent()
    }
    candidates.append(repositoryRoot.appendingPathComponent(".build/debug/referee"))
    for c in candidates where FileManager.default.isExecutableFile(atPath: c.path) { return c.path }
    fatalError("referee binary not found (looked in \(candidates.map(\.path))); run swift build first")
}()

/// Runs `referee` with arguments to completion; returns exit code, stdout and stderr.
public func runReferee(_ arguments: [String], stdin: String = "", environment: [String: String] = [:], cwd: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: refereeBinary)
    process.arguments = try TestStores.endToEnd(arguments: arguments)
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let input = Pipe(), output = Pipe(), error = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = error
    try process.run()
    input.fileHandleForWriting.write(stdin.data(using: .utf8)!)
    try input.fileHandleForWriting.close()
    // Read both streams concurrently so neither pipe fills up.
    nonisolated(unsafe) var errData = Data()
    let errThread = Thread { errData = error.fileHandleForReading.readDataToEndOfFile() }
    errThread.start()
    let outData = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errThread.isFinished { usleep(1000) }
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// A `referee serve` process driven through its stdin/stdout pipes, one JSON line at a time.
public final class PipeClient: @unchecked Sendable {
    public let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()
    private var buffer = Data()
    private var nextID = 0
    /// The last bytes the daemon wrote to stderr: a daemon that dies mid-test says why in the failure.
    private let stderrTail = StderrTail()
    private final class StderrTail: Sendable { let bytes = Mutex<[UInt8]>([]) }

    public init(store: String, actor: String = "pm.alice", extra: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: refereeBinary)
        process.arguments = ["serve", "--store", try TestStores.endToEnd(store), "--protocols", repositoryRoot.appendingPathComponent("Protocols").path, "--actor", actor] + extra
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Drain stderr so logging never blocks the daemon.
        let errHandle = errors.fileHandleForReading
        let tail = stderrTail
        Thread {
            while true {
                let chunk = errHandle.availableData
                if chunk.isEmpty { return }
                tail.bytes.withLock { $0.append(contentsOf: chunk); if $0.count > 4096 { $0.removeFirst($0.count - 4096) } }
            }
        }.start()
        // A hung daemon must fail the test, not the whole run: kill it after a generous lifetime.
        let pid = process.processIdentifier
        let proc = process
        Thread {
            let deadline = Date().addingTimeInterval(300)
            while proc.isRunning && Date() < deadline { usleep(100_000) }
            if proc.isRunning { Foundation.kill(pid, SIGKILL) }
        }.start()
    }

    public func send(raw line: String) {
        input.fileHandleForWriting.write((line + "\n").data(using: .utf8)!)
    }

    public func send(bytes: [UInt8]) {
        input.fileHandleForWriting.write(Data(bytes))
    }

    /// Reads one response line (blocking, with a deadline).
    public func readLine(timeout: TimeInterval = 30) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var scanned = buffer.startIndex   // bytes before this hold no newline (long replies arrive in many chunks)
        while true {
            if let nl = buffer[scanned...].firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<nl]
                let text = String(decoding: line, as: UTF8.self)
                buffer = Data(buffer[(nl + 1)...])
                return text
            }
            scanned = buffer.endIndex
            guard Date() < deadline else { throw PipeError.timeout }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw PipeError.closed(exit()) }
            buffer.append(chunk)
        }
    }

    public func readJSON() throws -> JSON { try JSONParser.parse(try readLine()) }

    /// Sends a request and returns the whole response object.
    public func request(_ method: String, _ params: JSON = [:]) throws -> JSON {
        nextID += 1
        send(raw: JSON.object(["jsonrpc": "2.0", "id": JSON(nextID), "method": .string(method), "params": params]).serialized())
        let reply = try readJSON()
        #expect(reply["id"] == JSON(nextID))
        return reply
    }

    @discardableResult
    public func result(_ method: String, _ params: JSON = [:]) throws -> JSON {
        let reply = try request(method, params)
        guard let result = reply["result"] else { throw PipeError.error(reply) }
        return result
    }

    public func closeInput() throws { try input.fileHandleForWriting.close() }

    public func waitForExit(timeout: TimeInterval = 30) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(2000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    public func kill(_ signal: Int32 = SIGKILL) {
        Foundation.kill(process.processIdentifier, signal)
    }

    deinit {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    /// How the daemon ended, for a failure message: its exit status or signal and the tail of its stderr.
    private func exit() -> String {
        _ = waitForExit(timeout: 2)
        let status = process.isRunning ? "still running" : "\(process.terminationReason == .uncaughtSignal ? "killed by signal" : "exit status") \(process.terminationStatus)"
        return "\(status); stderr ends: \(String(decoding: stderrTail.bytes.withLock { $0 }, as: UTF8.self).suffix(1500))"
    }

    public enum PipeError: Error { case timeout, closed(String), error(JSON) }
}
